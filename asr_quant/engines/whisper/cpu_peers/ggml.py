"""Whisper weights to whisper.cpp's ggml file, from the openai-whisper
checkpoint that openai_ref.py converts from our FP32 weights.

The layout follows whisper.cpp's models/convert-pt-to-ggml.py: magic, the
eleven int32 hparams (the last one the ftype), the mel filter bank and the
tokenizer's byte strings (both from openai-whisper's wheel assets, as that
script reads them from the openai-whisper repository), then per tensor
(n_dims, name length, type, dims innermost first, name, data). F16: tensors of
2 or more dims in float16, the rest (and the conv biases, reshaped [n, 1], and
the positional embeddings) in float32. Q8_0 is what whisper.cpp's `quantize`
tool writes for `q8_0` (pywhispercpp's wheel ships no quantize entry point):
every 2-D tensor but the conv biases and positional embeddings in blocks of
32 values, each an fp16 scale amax/127 and 32 int8 values round(x/scale);
3-D conv weights stay F16; the hparams ftype becomes 2000 + 7 (quantization
version 2, GGML_FTYPE_MOSTLY_Q8_0).
"""
from __future__ import annotations

import base64
import struct
from pathlib import Path

import numpy as np

MAGIC = 0x67676D6C
GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8
QK8_0 = 32
FTYPE = {"f16": 1, "q8_0": 2000 + 7}
_F32_ONLY = ("encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding",
             "decoder.positional_embedding")


def quantize_q8_0(x: np.ndarray) -> bytes:
    """ggml's block_q8_0 rows: per 32 values, fp16 d = amax/127, then int8 round(x/d)."""
    rows = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK8_0)
    amax = np.abs(rows).max(axis=1, keepdims=True)
    d = amax / 127.0
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d > 0)
    q = np.round(rows * inv).astype(np.int8)
    blocks = np.empty(len(rows), dtype=[("d", "<f2"), ("qs", "i1", QK8_0)])
    blocks["d"] = d[:, 0].astype(np.float16)
    blocks["qs"] = q
    return blocks.tobytes()


def dequantize_q8_0(data: bytes, shape) -> np.ndarray:
    blocks = np.frombuffer(data, dtype=[("d", "<f2"), ("qs", "i1", QK8_0)])
    return (blocks["qs"].astype(np.float32) * blocks["d"].astype(np.float32)[:, None]).reshape(shape)


def _assets():
    import whisper  # lazy: openai-whisper's wheel ships the mel filters and tokenizer files

    return Path(whisper.__file__).parent / "assets"


def write(checkpoint: dict, out: Path, kind: str) -> None:
    """checkpoint = {"dims", "model_state_dict"} (openai-whisper's names); kind 'f16' or 'q8_0'."""
    h = checkpoint["dims"]
    assets = _assets()
    with np.load(assets / "mel_filters.npz") as f:
        filters = f[f"mel_{h['n_mels']}"].astype(np.float32)
    multilingual = h["n_vocab"] >= 51865
    tik = assets / ("multilingual.tiktoken" if multilingual else "gpt2.tiktoken")
    tokens = [base64.b64decode(line.split()[0]) for line in tik.read_bytes().splitlines() if line]
    with open(out, "wb") as f:
        f.write(struct.pack("i", MAGIC))
        for k in ("n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer", "n_text_ctx",
                  "n_text_state", "n_text_head", "n_text_layer", "n_mels"):
            f.write(struct.pack("i", int(h[k])))
        f.write(struct.pack("i", FTYPE[kind]))
        f.write(struct.pack("ii", *filters.shape))
        f.write(filters.tobytes())
        f.write(struct.pack("i", len(tokens)))
        for t in tokens:
            f.write(struct.pack("i", len(t)))
            f.write(t)
        for name, tensor in checkpoint["model_state_dict"].items():
            data = tensor.detach().float().squeeze().numpy()
            if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
                data = data.reshape(data.shape[0], 1)
            n_dims = data.ndim
            if n_dims < 2 or name in _F32_ONLY:
                ttype, blob = GGML_F32, data.astype(np.float32).tobytes()
            elif kind == "q8_0" and n_dims == 2 and data.shape[-1] % QK8_0 == 0:
                ttype, blob = GGML_Q8_0, quantize_q8_0(data)
            else:
                ttype, blob = GGML_F16, data.astype(np.float16).tobytes()
            raw = name.encode("utf-8")
            f.write(struct.pack("iii", n_dims, len(raw), ttype))
            for i in range(n_dims):
                f.write(struct.pack("i", data.shape[n_dims - 1 - i]))
            f.write(raw)
            f.write(blob)
