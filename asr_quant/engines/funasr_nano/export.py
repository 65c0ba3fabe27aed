"""Fun-ASR-Nano to INT8 ONNX, once, cached on disk.

Three artifacts:
- `encoder.int8.onnx`: SenseVoice encoder + adaptor, (1, T, 560) fbank-LFR
  features in, adaptor output out. funasr's adaptor builds its mask with
  `make_pad_mask(olens)`, which takes `int(max(lengths))` and would freeze the
  time axis in the graph; `EncoderAdaptor` builds it from the tensor's shape.
  Quantized two ways, dynamic (QUInt8 weights, MatMul only: sherpa-onnx found
  QInt8 weights wrong for this encoder family in onnxruntime) and static QDQ
  with a calibration reader; the one with the lower measured error against
  FP32 ONNX is kept.
- `decoder.int8.onnx`: Qwen3 with an explicit KV cache, taking `inputs_embeds`
  (audio embeddings are spliced in before the LLM), last-position logits out;
  `quantize_dynamic` on its weight MatMuls.
- `embed.int8.npz`: the token-embedding table, int8 per row.

Everything is written into a temporary folder that is renamed into place, so
two processes never see half an export.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np


EXPORT_VERSION = 1
OPSET = 17


# --------------------------------------------------------------------------- torch wrappers
def _torch():
    import torch

    return torch


class _Modules:
    """Lazy nn.Module definitions (torch is imported only when exporting)."""

    _cache: dict = {}

    @classmethod
    def get(cls):
        if cls._cache:
            return cls._cache
        torch = _torch()
        nn = torch.nn

        class EncoderAdaptor(nn.Module):
            """audio_encoder + audio_adaptor for one unpadded clip (batch 1)."""

            def __init__(self, model):
                super().__init__()
                self.encoder = model.audio_encoder
                self.adaptor = model.audio_adaptor

            def forward(self, speech):
                speech = speech * 1.0  # funasr's encoder scales its input in place
                ilens = torch.ones_like(speech[:, :, 0]).sum(1).to(torch.int32)
                x, olens = self.encoder(speech, ilens)
                return adaptor_forward(self.adaptor, x, olens)

        class DecoderKV(nn.Module):
            """Qwen3ForCausalLM with the cache as explicit tensors.

            past_keys/past_values: [layers, 1, kv_heads, past, head_dim].
            Returns last-position logits [1, vocab] and the grown cache.
            Uses the HF modules' own weights, norms and MLPs; attention and
            rotary are written out so the graph has no cache objects.
            """

            def __init__(self, llm):
                super().__init__()
                self.llm = llm
                cfg = llm.config
                self.n_heads = cfg.num_attention_heads
                self.n_kv = cfg.num_key_value_heads
                self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
                rot = llm.model.rotary_emb
                self.register_buffer("inv_freq", rot.inv_freq.detach().clone().float(), persistent=False)
                self.rope_scale = float(getattr(rot, "attention_scaling", 1.0))

            def forward(self, inputs_embeds, past_keys, past_values):
                m = self.llm.model
                seq = torch.ones_like(inputs_embeds[0, :, 0])
                past = torch.onnx.operators.shape_as_tensor(past_keys)[3].to(torch.float32)
                pos = torch.cumsum(seq, 0) - 1.0 + past  # [S]
                freqs = pos[:, None] * self.inv_freq[None, :]
                emb = torch.cat((freqs, freqs), dim=-1)
                cos = (emb.cos() * self.rope_scale)[None, None]
                sin = (emb.sin() * self.rope_scale)[None, None]
                total = torch.cumsum(torch.ones_like(torch.cat([past_keys[0, 0, 0, :, 0], seq], 0)), 0) - 1.0
                mask = torch.where(total[None, :] <= pos[:, None], 0.0, -1e9)[None, None]  # [1,1,S,P+S]
                h = inputs_embeds
                keys, values = [], []
                rep = self.n_heads // self.n_kv
                for i, layer in enumerate(m.layers):
                    a = layer.self_attn
                    r = layer.input_layernorm(h)
                    q = a.q_norm(a.q_proj(r).view(1, -1, self.n_heads, self.head_dim)).transpose(1, 2)
                    k = a.k_norm(a.k_proj(r).view(1, -1, self.n_kv, self.head_dim)).transpose(1, 2)
                    v = a.v_proj(r).view(1, -1, self.n_kv, self.head_dim).transpose(1, 2)
                    q = q * cos + _rotate_half(q) * sin
                    k = k * cos + _rotate_half(k) * sin
                    k = torch.cat([past_keys[i], k], dim=2)
                    v = torch.cat([past_values[i], v], dim=2)
                    keys.append(k)
                    values.append(v)
                    kr = k.repeat_interleave(rep, dim=1) if rep > 1 else k
                    vr = v.repeat_interleave(rep, dim=1) if rep > 1 else v
                    scores = torch.matmul(q, kr.transpose(2, 3)) * (self.head_dim ** -0.5) + mask
                    att = torch.matmul(torch.softmax(scores, dim=-1), vr)
                    att = att.transpose(1, 2).reshape(1, -1, self.n_heads * self.head_dim)
                    h = h + a.o_proj(att)
                    h = h + layer.mlp(layer.post_attention_layernorm(h))
                h = m.norm(h[:, -1:, :])
                logits = self.llm.lm_head(h)[:, 0, :]
                return logits, torch.stack(keys), torch.stack(values)

        cls._cache.update(EncoderAdaptor=EncoderAdaptor, DecoderKV=DecoderKV)
        return cls._cache


def _rotate_half(x):
    torch = _torch()
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def adaptor_forward(ad, x, olens_in):
    """funasr's `Transformer` adaptor forward with the mask built from x's shape."""
    torch = _torch()
    import torch.nn.functional as F

    b, t, c = x.shape
    k = ad.k
    if k > 1:
        pad = (-t) % k
        x = F.pad(x, (0, 0, 0, pad, 0, 0), value=0.0)
        x = x.reshape(b, -1, c * k)
    x = ad.linear2(ad.relu(ad.linear1(x)))
    olens = (olens_in - 1) // k + 1
    steps = torch.cumsum(torch.ones_like(x[0, :, 0]), 0) - 1.0
    masks = (steps[None, :] < olens[:, None].to(steps.dtype))[:, None, :]
    if ad.blocks is not None:
        for block in ad.blocks:
            x, masks = block(x, masks)
    return x


def encoder_adaptor(model):
    return _Modules.get()["EncoderAdaptor"](model).eval()


def decoder_kv(llm):
    return _Modules.get()["DecoderKV"](llm).eval()


def empty_cache(llm_config, past: int = 0) -> tuple[np.ndarray, np.ndarray]:
    c = llm_config
    hd = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    shape = (c.num_hidden_layers, 1, c.num_key_value_heads, past, hd)
    return np.zeros(shape, np.float32), np.zeros(shape, np.float32)


# --------------------------------------------------------------------------- export
def export_encoder(model, path: Path, feat_dim: int = 560) -> Path:
    torch = _torch()
    mod = encoder_adaptor(model)
    x = torch.randn(1, 37, feat_dim)
    with torch.no_grad():
        torch.onnx.export(mod, (x,), str(path), input_names=["speech"], output_names=["audio_embeds"],
                          dynamic_axes={"speech": {1: "frames"}, "audio_embeds": {1: "tokens"}},
                          opset_version=OPSET, dynamo=False)
    return path


def export_decoder(llm, path: Path) -> Path:
    torch = _torch()
    mod = decoder_kv(llm.float())
    pk, pv = empty_cache(llm.config, past=3)
    x = torch.randn(1, 5, llm.config.hidden_size)
    big = sum(p.numel() for p in llm.parameters()) * 4 > 1.8e9
    with torch.no_grad():
        torch.onnx.export(
            mod, (x, torch.from_numpy(pk), torch.from_numpy(pv)), str(path),
            input_names=["inputs_embeds", "past_keys", "past_values"],
            output_names=["logits", "present_keys", "present_values"],
            dynamic_axes={"inputs_embeds": {1: "seq"}, "past_keys": {3: "past"}, "past_values": {3: "past"},
                          "present_keys": {3: "total"}, "present_values": {3: "total"}},
            opset_version=OPSET, dynamo=False, external_data=big,
        )
    return path


def quantize_embeddings(weight: np.ndarray, path: Path) -> Path:
    """int8 per row, symmetric: ~1/4 of the FP32 table."""
    w = weight.astype(np.float32)
    scale = np.maximum(np.abs(w).max(axis=1), 1e-12) / 127.0
    q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
    np.savez(path, q=q, scale=scale.astype(np.float32))
    return path


class EmbeddingTable:
    """Row lookup into the int8 table."""

    def __init__(self, path: Path):
        z = np.load(path)
        self.q, self.scale = z["q"], z["scale"]

    def __call__(self, ids) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        return (self.q[ids].astype(np.float32) * self.scale[ids, None])[None]

    @property
    def nbytes(self) -> int:
        return self.q.nbytes + self.scale.nbytes


class FeatureReader:
    """onnxruntime CalibrationDataReader over a list of feature arrays."""

    def __init__(self, feats: list[np.ndarray]):
        self.feats = feats
        self._it = iter(feats)

    def get_next(self):
        x = next(self._it, None)
        return None if x is None else {"speech": x}

    def rewind(self):
        self._it = iter(self.feats)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def session(path: Path, threads: int, providers=("CPUExecutionProvider",)):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=list(providers))


def quantize_encoder(fp32: Path, out_dir: Path, calib: list[np.ndarray], held_out: list[np.ndarray],
                     threads: int) -> dict:
    """Dynamic and static (QDQ) INT8; keep the one closer to FP32 on held-out clips."""
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)

    ref = session(fp32, threads)
    refs = [ref.run(None, {"speech": x})[0] for x in held_out]
    results = {}
    t = time.perf_counter()
    dyn = out_dir / "encoder.dynamic.onnx"
    quantize_dynamic(str(fp32), str(dyn), weight_type=QuantType.QUInt8, op_types_to_quantize=["MatMul"],
                     extra_options={"MatMulConstBOnly": True})
    results["dynamic"] = {"path": dyn, "quantize_s": time.perf_counter() - t}
    t = time.perf_counter()
    sta = out_dir / "encoder.static.onnx"
    try:
        quantize_static(str(fp32), str(sta), FeatureReader(calib), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        op_types_to_quantize=["MatMul"], calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"MatMulConstBOnly": True})
        results["static"] = {"path": sta, "quantize_s": time.perf_counter() - t}
    except Exception as exc:  # noqa: BLE001 - static PTQ is the optional candidate
        results["static"] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    for name, r in results.items():
        if "path" not in r:
            continue
        s = session(r["path"], threads)
        outs = [s.run(None, {"speech": x})[0] for x in held_out]
        r["cosine"] = min(cosine(a, b) for a, b in zip(outs, refs))
        r["rel_err"] = max(float(np.linalg.norm(a - b) / (np.linalg.norm(b) + 1e-30)) for a, b in zip(outs, refs))
        r["bytes"] = r["path"].stat().st_size
    ok = {k: v for k, v in results.items() if "rel_err" in v}
    chosen = min(ok, key=lambda k: ok[k]["rel_err"])
    final = out_dir / "encoder.int8.onnx"
    os.replace(ok[chosen]["path"], final)
    for k, v in results.items():
        if k != chosen and "path" in v:
            Path(v["path"]).unlink(missing_ok=True)
        v.pop("path", None)
    return {"chosen": chosen, "candidates": results, "file": final.name}


def quantize_decoder(fp32: Path, out: Path) -> float:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    t = time.perf_counter()
    quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QUInt8, op_types_to_quantize=["MatMul"],
                     extra_options={"MatMulConstBOnly": True},
                     use_external_data_format=False)
    return time.perf_counter() - t
