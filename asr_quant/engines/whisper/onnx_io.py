"""The exported Whisper graphs' input/output names and shapes, without torch.

The ONNX Runtime engines need only these to feed the graphs; keeping them out
of onnx_export.py (which imports torch to build the graphs) lets a cached INT8
or ORT-FP32 engine load and run with neither torch nor transformers imported.
"""
from __future__ import annotations

OPSET = 17
ENCODER_INPUTS = ["mel"]


def cross_names(n_layers: int) -> list[str]:
    """Encoder outputs = the decoder's cross-attention inputs."""
    return [f"cross_k_{i}" for i in range(n_layers)] + [f"cross_v_{i}" for i in range(n_layers)]


def cache_names(n_layers: int, prefix: str = "") -> list[str]:
    return [f"{prefix}self_k_{i}" for i in range(n_layers)] + [f"{prefix}self_v_{i}" for i in range(n_layers)]


def decoder_inputs(n_layers: int) -> list[str]:
    return ["tokens", *cache_names(n_layers), *cross_names(n_layers)]


def decoder_outputs(n_layers: int) -> list[str]:
    return ["logits", *cache_names(n_layers, "new_")]


def dims(config) -> dict[str, int]:
    """Shapes the engine needs to build empty caches, from a transformers
    WhisperConfig (or anything with its attribute names)."""
    return {
        "n_layers": config.decoder_layers,
        "n_heads": config.decoder_attention_heads,
        "head_dim": config.d_model // config.decoder_attention_heads,
        "n_mels": config.num_mel_bins,
        "n_frames": 2 * config.max_source_positions,
        "n_ctx": config.max_source_positions,
        "vocab": config.vocab_size,
        "max_target": config.max_target_positions,
    }


