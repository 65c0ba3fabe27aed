"""openai-whisper, the reference implementation, at FP32 on the same weights:
the transformers FP32 model's state dict renamed to openai-whisper's layout
(the inverse of transformers' convert_openai_to_hf mapping), saved once as an
openai-whisper checkpoint ({"dims", "model_state_dict"}) in the cache and
loaded with `whisper.load_model(path)`: nothing is downloaded (its tokenizer
and mel filters ship in the wheel). Decoded with `model.transcribe`: greedy
(temperature 0, no fallback), no timestamps, no conditioning on previous
text, no no-speech or compression checks, language forced, fp16 off. Its own
decoder caps a window at 224 tokens and has no repetition-loop guard.
"""
from __future__ import annotations

import importlib.metadata
import time

from ...base import Engine, EngineError, EngineInfo, RawResult
from .... import memory as _memory
from ....audio import Clip
from ....cache import build_dir
from ..model import WhisperBundle
from ..torch_engine import set_threads

_RENAMES = [  # transformers name piece -> openai-whisper's, applied in order
    ("model.", ""), (".layers.", ".blocks."), (".self_attn.q_proj", ".attn.query"), (".self_attn.k_proj", ".attn.key"),
    (".self_attn.v_proj", ".attn.value"), (".self_attn.out_proj", ".attn.out"),
    (".self_attn_layer_norm", ".attn_ln"), (".encoder_attn.q_proj", ".cross_attn.query"),
    (".encoder_attn.k_proj", ".cross_attn.key"), (".encoder_attn.v_proj", ".cross_attn.value"),
    (".encoder_attn.out_proj", ".cross_attn.out"), (".encoder_attn_layer_norm", ".cross_attn_ln"),
    (".fc1", ".mlp.0"), (".fc2", ".mlp.2"), (".final_layer_norm", ".mlp_ln"),
    ("encoder.layer_norm", "encoder.ln_post"), ("decoder.layer_norm", "decoder.ln"),
    ("encoder.embed_positions.weight", "encoder.positional_embedding"),
    ("decoder.embed_positions.weight", "decoder.positional_embedding"),
    ("decoder.embed_tokens", "decoder.token_embedding"),
]


def openai_state_dict(hf_model) -> dict:
    """openai-whisper's names for the transformers model's tensors (proj_out is the tied token table)."""
    out = {}
    for name, t in hf_model.state_dict().items():
        if name.startswith("proj_out."):
            continue
        for a, b in _RENAMES:
            name = name.replace(a, b)
        out[name] = t.detach().float().clone()
    return out


def dims_of(hf_model) -> dict:
    """openai-whisper's ModelDimensions; its MLPs are 4 x d_model wide by construction."""
    c = hf_model.config
    if c.encoder_ffn_dim != 4 * c.d_model or c.decoder_ffn_dim != 4 * c.d_model:
        raise EngineError(f"openai-whisper builds MLPs of 4 x d_model; this model's are {c.encoder_ffn_dim}")
    return dict(n_mels=c.num_mel_bins, n_audio_ctx=c.max_source_positions, n_audio_state=c.d_model,
                n_audio_head=c.encoder_attention_heads, n_audio_layer=c.encoder_layers, n_vocab=c.vocab_size,
                n_text_ctx=c.max_target_positions, n_text_state=c.d_model, n_text_head=c.decoder_attention_heads,
                n_text_layer=c.decoder_layers)


def checkpoint(bundle: WhisperBundle):
    """The converted checkpoint file, written once per model."""
    import torch

    from ....cache import source_hash

    folder = bundle.cache_dir / f"openai-whisper-{source_hash(__file__)}"  # bundle.cache_dir is per model sha256
    build_dir(folder, lambda tmp: torch.save(dict(dims=dims_of(bundle.hf_model),
                                                  model_state_dict=openai_state_dict(bundle.hf_model)),
                                             tmp / "model.pt"),
              valid=lambda f: (f / "model.pt").is_file())
    return folder / "model.pt"


class OpenAIWhisperEngine(Engine):
    def __init__(self, bundle: WhisperBundle, threads: int):
        import torch
        import whisper  # lazy: optional peer, installed with --no-deps (requirements-peers.txt)

        set_threads(threads)
        t0 = time.perf_counter()
        path = checkpoint(bundle)
        bundle._hf_model = None  # the transformers copy was needed only to write the checkpoint
        self.model = whisper.load_model(str(path), device="cpu")
        self.langs = list(whisper.tokenizer.LANGUAGES)[: self.model.num_languages]
        self.info = EngineInfo(
            name="openai-whisper FP32", precision="fp32",
            runtime=f"openai-whisper {importlib.metadata.version('openai-whisper')} / PyTorch "
                    f"{torch.__version__.split('+')[0]}",
            device="cpu", model=bundle.name,
            details=("peer: the reference implementation on the same FP32 weights (converted checkpoint); "
                     "greedy, temperature 0 only, no timestamps, no conditioning, language forced; "
                     "its decoder caps a window at 224 tokens, no loop guard"),
            threads=torch.get_num_threads(), disk_bytes=_memory.disk_bytes(path),
            weights_bytes=sum(p.numel() * p.element_size() for p in self.model.parameters()),  # (its
            # alignment_heads buffer is sparse, no storage to count)
            load_s=time.perf_counter() - t0)

    def _language(self, language: str | None) -> str | None:
        if language is None or not self.model.is_multilingual:
            return language if self.model.is_multilingual else "en"
        if language in self.langs:
            return language
        if language == "yue":
            return "zh"  # Whisper before large-v3 has no <|yue|>, as the project's engines decode it
        raise EngineError(f"this model has no language {language!r}")

    def _run(self, clip: Clip, language: str | None) -> RawResult:
        lang = self._language(language)
        out = self.model.transcribe(clip.samples, language=lang, task="transcribe", temperature=0.0,
                                    compression_ratio_threshold=None, logprob_threshold=None,
                                    no_speech_threshold=None, condition_on_previous_text=False, fp16=False,
                                    without_timestamps=True, verbose=None)
        tokens = [t for s in out["segments"] for t in s["tokens"]]
        warnings = [f"language {language!r} decoded as {lang!r}"] if lang != language else []
        return RawResult(text=out["text"].strip(), language=out.get("language") or lang, token_ids=tokens,
                         warnings=warnings)

    def close(self) -> None:
        self.model = None
