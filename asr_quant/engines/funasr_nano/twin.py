"""A structure-identical Fun-ASR-Nano folder with random weights.

The real model cannot be downloaded here, so tests (and the real-size
benchmark script) build one from funasr's own classes: the same config keys as
FunAudioLLM's `config.yaml`, the same files (`config.yaml`,
`configuration.json`, `model.pt` as a bf16 state dict, `multilingual.tiktoken`,
`Qwen3-0.6B/` with config and tokenizer files only), loaded by exactly the
production path. Only the sizes differ (`TINY` vs `REAL`).
"""
from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

# The real model's dimensions (Fun-ASR-(MLT-)Nano-2512 config.yaml and Qwen3-0.6B config.json).
REAL = {
    "encoder": dict(output_size=512, attention_heads=4, linear_units=2048, num_blocks=50, tp_blocks=20),
    "adaptor": dict(downsample_rate=1, ffn_dim=2048, n_layer=2),
    "ctc_decoder": dict(downsample_rate=1, ffn_dim=2048, llm_dim=512, n_layer=5),
    "qwen3": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                  num_key_value_heads=8, head_dim=128, vocab_size=151936),
    "bpe_vocab": None,  # None: a small byte-level BPE is still trained; the embedding table is real-size
}
# The tiny twin used by the tests.
TINY = {
    "encoder": dict(output_size=64, attention_heads=4, linear_units=128, num_blocks=2, tp_blocks=1),
    "adaptor": dict(downsample_rate=1, ffn_dim=128, n_layer=2),
    "ctc_decoder": dict(downsample_rate=1, ffn_dim=128, llm_dim=64, n_layer=1),
    "qwen3": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16, vocab_size=512),
}

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _config_yaml(dims: dict) -> str:
    """The real file's keys, with `dims` filled in (relative paths kept relative, as shipped)."""
    e, a, c = dims["encoder"], dims["adaptor"], dims["ctc_decoder"]
    q = dims["qwen3"]
    return f"""\
model: FunASRNano
model_conf:
  lsm_weight: 0.1
  length_normalized_loss: true
audio_encoder: SenseVoiceEncoderSmall
audio_encoder_conf:
  output_size: {e['output_size']}
  attention_heads: {e['attention_heads']}
  linear_units: {e['linear_units']}
  num_blocks: {e['num_blocks']}
  tp_blocks: {e['tp_blocks']}
  dropout_rate: 0.1
  positional_dropout_rate: 0.1
  attention_dropout_rate: 0.1
  input_layer: pe
  pos_enc_class: SinusoidalPositionEncoder
  normalize_before: true
  kernel_size: 11
  sanm_shfit: 0
  selfattention_layer_type: sanm
  feat_permute: true
  freeze: true
llm: Qwen3-0.6b
llm_conf:
  hub: hf
  freeze: true
  llm_dtype: bf16
  init_param_path: Qwen3-0.6B
  use_lora: false
audio_adaptor: Transformer
audio_adaptor_conf:
  downsample_rate: {a['downsample_rate']}
  use_low_frame_rate: true
  ffn_dim: {a['ffn_dim']}
  llm_dim: {q['hidden_size']}
  encoder_dim: {e['output_size']}
  n_layer: {a['n_layer']}
  freeze: true
ctc_decoder: Transformer
detach_ctc_decoder: true
ctc_decoder_conf:
  downsample_rate: {c['downsample_rate']}
  ffn_dim: {c['ffn_dim']}
  llm_dim: {c['llm_dim']}
  encoder_dim: {e['output_size']}
  n_layer: {c['n_layer']}
  freeze: false
ctc_weight: 1.0
ctc_conf:
  dropout_rate: 0.0
  ctc_type: builtin
  reduce: true
  ignore_nan_grad: true
frontend: WavFrontend
frontend_conf:
  fs: 16000
  window: hamming
  n_mels: 80
  frame_length: 25
  frame_shift: 10
  lfr_m: 7
  lfr_n: 6
  cmvn_file: null
tokenizer: HuggingfaceTokenizer
tokenizer_conf:
  init_param_path: ${{llm_conf.init_param_path}}
dataset: FunASR
dataset_conf:
  index_ds: FunASR
  batch_sampler: BatchSampler
  batch_type: token
  batch_size: 6000
  max_token_length: 3500
  shuffle: true
  num_workers: 4
  audio_adaptor_downsample_rate: ${{audio_adaptor_conf.downsample_rate}}
  audio_encoder_downsample_rate: 6
  ctc_tokenizer: SenseVoiceTokenizer
  ctc_target_normalize: true
  ctc_tokenizer_conf:
    vocab_path: null
    is_multilingual: true
    num_languages: 8749
"""


def _qwen3_config(q: dict, eos_id: int, bos_id: int) -> dict:
    return {
        "architectures": ["Qwen3ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "head_dim": q["head_dim"],
        "hidden_act": "silu",
        "hidden_size": q["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": q["intermediate_size"],
        "max_position_embeddings": 40960,
        "max_window_layers": q["num_hidden_layers"],
        "model_type": "qwen3",
        "num_attention_heads": q["num_attention_heads"],
        "num_hidden_layers": q["num_hidden_layers"],
        "num_key_value_heads": q["num_key_value_heads"],
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000,
        "sliding_window": None,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": q["vocab_size"],
    }


_CORPUS = [
    "语音转写：", "语音转写成中文：", "语音转写成英文：", "，不进行文本规整",
    "You are a helpful assistant.", "system", "user", "assistant", "null",
    "今天天气很好，我们去公园散步吧。", "The quick brown fox jumps over the lazy dog.",
    "こんにちは、元気ですか。", "안녕하세요 반갑습니다", "我哋今日去饮茶。",
    "热词列表", "请结合上下文信息，更加准确地完成语音转写任务。",
]


def _write_tokenizer(folder: Path, vocab_size: int) -> dict[str, int]:
    """Train a byte-level BPE offline and save it as Qwen's files (tokenizer.json,
    vocab.json, merges.txt, tokenizer_config.json). Returns the special-token ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS), show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[],
    )
    tok.train_from_iterator(_CORPUS * 20, trainer=trainer)
    tok.add_special_tokens(SPECIAL_TOKENS)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    tok.model.save(str(folder))  # vocab.json + merges.txt, as in Qwen3-0.6B/
    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    added = {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False, "special": True} for t, i in ids.items()}
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": added,
        "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
        "errors": "replace", "model_max_length": 131072, "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer", "unk_token": None,
    }, ensure_ascii=False, indent=2))
    return ids


def _write_tiktoken(path: Path) -> None:
    """The CTC tokenizer's vocabulary in tiktoken format (byte tokens only)."""
    lines = [f"{base64.b64encode(bytes([b])).decode()} {b}" for b in range(256)]
    path.write_text("\n".join(lines) + "\n")


def build(folder: str | Path, dims: dict = TINY, seed: int = 0, save_ctc: bool = False) -> Path:
    """Write a FunASRNano folder in the real layout with random weights.

    `save_ctc=False` mirrors the released checkpoints, which do not ship
    trained CTC weights (FunAudioLLM/Fun-ASR README, issue #106).
    """
    import torch
    from omegaconf import OmegaConf

    import funasr  # noqa: F401 - registers FunASRNano and its parts
    from funasr.register import tables

    folder = Path(folder)
    qdir = folder / "Qwen3-0.6B"
    qdir.mkdir(parents=True, exist_ok=True)
    q = dims["qwen3"]
    bpe_vocab = min(q["vocab_size"], 512)
    ids = _write_tokenizer(qdir, bpe_vocab)
    (qdir / "config.json").write_text(json.dumps(
        _qwen3_config(q, eos_id=ids["<|im_end|>"], bos_id=ids["<|endoftext|>"]), indent=2))
    _write_tiktoken(folder / "multilingual.tiktoken")
    (folder / "config.yaml").write_text(_config_yaml(dims))
    (folder / "configuration.json").write_text(json.dumps({
        "framework": "pytorch", "task": "auto-speech-recognition",
        "model": {"type": "funasr"}, "pipeline": {"type": "funasr-pipeline"},
        "file_path_metas": {"init_param": "model.pt", "config": "config.yaml"},
    }, indent=2))

    # Build the model with funasr's own classes from that config, paths made absolute.
    cfg = OmegaConf.to_container(OmegaConf.load(folder / "config.yaml"), resolve=True)
    cfg["llm_conf"]["init_param_path"] = str(qdir.resolve())
    cfg["dataset_conf"]["ctc_tokenizer_conf"]["vocab_path"] = str((folder / "multilingual.tiktoken").resolve())
    torch.manual_seed(seed)
    model_class = tables.model_classes.get(cfg["model"])
    conf = copy.deepcopy(cfg)
    model = model_class(input_size=560, **conf)
    _randomize(model, seed)
    state = {k: v.detach().to(torch.bfloat16) if v.is_floating_point() else v
             for k, v in model.state_dict().items()
             if save_ctc or not (k.startswith("ctc_decoder.") or k.startswith("ctc."))}
    torch.save({"state_dict": state}, folder / "model.pt")
    return folder


def _randomize(model, seed: int) -> None:
    """Random weights with a scale that keeps activations finite and varied, so
    decoding produces different tokens (not one token forever)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.is_floating_point():
                continue
            if p.dim() == 1:
                if "norm" in name or name.endswith("weight"):
                    p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(0.02 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[-1] if p.dim() == 2 else max(1, p[0].numel())
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)


if __name__ == "__main__":  # python -m asr_quant.engines.funasr_nano.twin OUT_DIR
    import sys

    print(build(sys.argv[1]))
