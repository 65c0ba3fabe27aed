"""FP32, FP16 and BF16 engines: funasr's model in PyTorch, decoded greedily.

FP32 is funasr as is (`llm_dtype="fp32"`). Half precision uses funasr's own
mechanism: the Qwen3 LLM built in that dtype and run under `torch.autocast`,
while the SenseVoice encoder and the adaptor stay FP32 (their SANM layers
multiply by an FP32 mask before a Conv1d, so `.half()` on them fails with a
dtype mismatch; funasr's inference code says the same). Each engine owns its
own model so its resident memory is its own.
"""
from __future__ import annotations

import gc
import time


from ... import memory as _memory
from ..base import Engine, EngineError, EngineInfo
from . import loading, pipeline

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class TorchEngine(Engine):
    """One precision of Fun-ASR-Nano in PyTorch."""

    def __init__(self, folder: loading.ModelFolder, precision: str, torch_device: str, threads: int,
                 model_label: str, max_new_tokens: int | None = None):
        import torch

        if precision not in DTYPES:
            raise EngineError(f"unknown precision {precision!r}")
        self.precision = precision
        self.device = torch_device
        self.dtype = getattr(torch, DTYPES[precision])
        self.max_new_tokens = max_new_tokens or pipeline.MAX_NEW_TOKENS
        start = time.perf_counter()
        with _memory.LoadMeter(torch_device) as meter:
            self.automodel, self.load_report = loading.build_automodel(folder, torch_device, threads, precision)
            self.model = self.automodel.model
            self.model.llm.to(self.dtype)  # what funasr's inference_llm does on its first call
            frontend = self.automodel.kwargs["frontend"]
            frontend.dither = 0.0  # deterministic features: engines then differ by precision only
            self.tokenizer = self.automodel.kwargs["tokenizer"]
            self.builder = pipeline.PromptBuilder(self.tokenizer, frontend, self.model.use_low_frame_rate)
            self.eos = pipeline.eos_ids_of(folder.llm_dir)
        _memory.synchronize(torch_device)
        if precision == "fp32":
            details = "encoder, adaptor and Qwen3 decoder in FP32 (funasr as is)"
        else:
            p = precision.upper()
            details = (f"Qwen3 decoder weights in {p}, run under torch.autocast({p}) as funasr's "
                       f"llm_dtype='{precision}' does; SenseVoice encoder + adaptor in FP32 (funasr's SANM "
                       f"layers fail in half precision). Outputs with NaN/inf logits or empty text are "
                       f"reported as errors, repeated-token loops as warnings.")
        details += "; greedy decoding, features without dither"
        if not self.load_report.complete:
            details += f"; {len(self.load_report.unused)} model.pt tensors unused"
        self.info = EngineInfo(
            name=precision.upper(), precision=precision, runtime=f"PyTorch {torch.__version__.split('+')[0]}",
            device=torch_device, model=model_label, details=details, threads=threads,
            disk_bytes=_memory.disk_bytes(folder.path / "model.pt", folder.llm_dir),
            resident_bytes=meter.grown_bytes, load_s=time.perf_counter() - start,
        )

    # -- the pieces -----------------------------------------------------------------
    def encode(self, p: pipeline.Prepared):
        """Encoder + adaptor in FP32; returns adaptor output [1, T', D]."""
        import torch

        with torch.no_grad():
            enc, lens = self.model.audio_encoder(p.speech.to(self.device), p.speech_lengths.to(self.device))
            out, _ = self.model.audio_adaptor(enc, lens)
        return out

    def _embed(self, ids: list[int]):
        import torch

        with torch.no_grad():
            return self.model.llm.get_input_embeddings()(torch.tensor([ids], device=self.device))

    def _step(self, embeds, cache):
        import torch

        with torch.no_grad(), torch.autocast(_autocast_device(self.device), enabled=self.precision != "fp32",
                                             dtype=self.dtype):
            out = self.model.llm(inputs_embeds=embeds.to(self.dtype), past_key_values=cache, use_cache=True)
        return out.logits[0, -1].float().cpu().numpy(), out.past_key_values

    def decode(self, p: pipeline.Prepared, audio_embeds) -> pipeline.Decoded:
        embeds = pipeline.splice(self._embed(p.source_ids), audio_embeds, p)
        return pipeline.greedy(self._step, embeds, self._embed, self.eos, self.max_new_tokens)

    # -- Engine --------------------------------------------------------------------
    def _run(self, clip, language):
        return pipeline.transcribe_segments(
            clip, language, self.builder, self.tokenizer, self.encode, self.decode,
            sync=lambda: _memory.synchronize(self.device), on_degenerate=self._refuse_half_failure)

    def _refuse_half_failure(self, why: str, d: pipeline.Decoded) -> None:
        if self.precision != "fp32" and (d.nonfinite or not d.token_ids):
            raise EngineError(f"{self.info.name} decoding failed ({why}): the known Qwen3 "
                              f"half-precision failure, so no text is shown; use FP32, BF16 or INT8")

    def close(self) -> None:
        self.model = self.automodel = None
        gc.collect()


def _autocast_device(device: str) -> str:
    from funasr.models.fun_asr_nano.device_utils import resolve_autocast_device_type

    return resolve_autocast_device_type(device)
