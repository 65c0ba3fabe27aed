"""Whisper in PyTorch at FP32, FP16 or BF16, decoded by the shared `decoding`.

FP16/BF16 follow openai-whisper's mixed precision: every weight is cast
(`.half()`), but each LayerNorm keeps FP32 weights and normalises in FP32
before casting back, because LayerNorm's variance loses too much in 16 bits.
Logits are handed to the decoder as FP32 in every precision.

On a CPU without arithmetic for that 16-bit type (no avx512_fp16/amx_fp16, or
ARM's asimdhp, for FP16; no avx512_bf16/amx_bf16, or ARM's bf16, for BF16) PyTorch's own half kernels are slow
scalar paths (a 30 s window's FP16 encoder: 5.5 s against FP32's 1.2 s here,
its two convolutions alone 1.35 s). There the products of many rows (every
encoder product, a decoder call's prompt) and attention take the values as
stored, compute in FP32 and round the result back to 16 bits: what ONNX
Runtime's CPU provider and OpenVINO do with FP16 models on such CPUs, and what
a GPU's half GEMM does (FP16 in, FP32 accumulate, FP16 out). Weights,
activations between products and the KV cache stay 16-bit; one-token
products (the decoder's steps) keep PyTorch's half kernel, which is
memory-bound there and faster than upcasting the weight each step. Decided by
the CPU's flags, not by a timing, so the arithmetic is the same on every load.
"""
from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np

from .. import gate as _gate
from .. import runtime_policy
from ..base import Engine, EngineInfo, RawResult
from ... import memory as _memory
from ...audio import Clip
from . import longform
from .model import WhisperBundle

_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
_THREADS_SET = False


def set_threads(threads: int) -> None:
    """torch.set_num_threads once per process (it is process-wide)."""
    global _THREADS_SET
    runtime_policy.prepare()
    import torch

    if not _THREADS_SET:
        torch.set_num_threads(max(1, int(threads)))
        _THREADS_SET = True


def keep_layernorm_fp32(model) -> None:
    """Swap every nn.LayerNorm for one with FP32 weights that normalises in
    FP32 and casts back (openai-whisper's `LayerNorm.forward` does the same)."""
    from torch import nn

    class FP32LayerNorm(nn.LayerNorm):
        def forward(self, x):
            return super().forward(x.float()).to(x.dtype)

    for module in model.modules():
        for name, child in list(module.named_children()):
            if isinstance(child, nn.LayerNorm) and not isinstance(child, FP32LayerNorm):
                ln = FP32LayerNorm(child.normalized_shape, eps=child.eps, elementwise_affine=child.elementwise_affine)
                ln.load_state_dict({k: v.float() for k, v in child.state_dict().items()})
                setattr(module, name, ln)


# x86 flags, then ARM's /proc/cpuinfo Features (asimdhp: NEON FP16 arithmetic; bf16: BFDOT/BFMMLA)
_NATIVE_HALF_FLAGS = {"fp16": ("avx512_fp16", "amx_fp16", "asimdhp"), "bf16": ("avx512_bf16", "amx_bf16", "bf16")}
MANY_ROWS = 16  # a product over at least this many rows computes in FP32 on a CPU without 16-bit math
ATTENTION = "asrq_fp32_compute_sdpa"


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """All of this CPU's flags (host.Isa keeps only those of integer products), read once:
    each half engine's load asks twice (its arithmetic, its details)."""
    from ...host import parse_cpuinfo

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return frozenset(parse_cpuinfo(f.read())[1])
    except OSError:
        return frozenset()


def cpu_has_half_math(precision: str, flags: set[str] | None = None) -> bool:
    """Whether this CPU has arithmetic for the precision's 16-bit type."""
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in _NATIVE_HALF_FLAGS.get(precision, ()))


def compute_products_in_fp32(model) -> None:
    """Products of many rows (Linear, Conv1d) and attention compute in FP32 on
    the stored 16-bit values and round back (module docstring)."""
    import torch.nn.functional as F
    from torch import nn
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    class Fp32ComputeLinear(nn.Linear):
        def forward(self, x):
            if x.numel() // x.shape[-1] < MANY_ROWS:
                return super().forward(x)
            bias = None if self.bias is None else self.bias.float()
            return F.linear(x.float(), self.weight.float(), bias).to(x.dtype)

    class Fp32ComputeConv1d(nn.Conv1d):
        def forward(self, x):
            bias = None if self.bias is None else self.bias.float()
            return self._conv_forward(x.float(), self.weight.float(), bias).to(x.dtype)

    def attention(module, query, key, value, attention_mask, **kwargs):
        mask = attention_mask
        if mask is not None and mask.is_floating_point():
            mask = mask.float()
        out, weights = sdpa_attention_forward(module, query.float(), key.float(), value.float(), mask, **kwargs)
        return out.to(query.dtype), weights

    AttentionInterface.register(ATTENTION, attention)
    AttentionMaskInterface.register(ATTENTION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])  # sdpa's masks, as before
    for m in model.modules():
        if type(m) is nn.Linear:
            m.__class__ = Fp32ComputeLinear
        elif type(m) is nn.Conv1d:
            m.__class__ = Fp32ComputeConv1d
    model.set_attn_implementation(ATTENTION)


class TorchStepModel:
    """`decoding.StepModel` over a transformers Whisper: encoder once, then the
    decoder one token at a time with its `past_key_values` cache."""

    def __init__(self, hf_model, device: str, dtype):
        self.model = hf_model
        self.device = device
        self.dtype = dtype
        _pause_between_layers(hf_model.model)

    def encode(self, mel: np.ndarray) -> Any:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(mel).to(self.device, self.dtype)
            return self.model.model.encoder(input_features=x).last_hidden_state

    def step(self, enc: Any, tokens: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        import torch

        with torch.inference_mode():
            ids = torch.from_numpy(np.ascontiguousarray(tokens, dtype=np.int64)).to(self.device)
            out = self.model.model.decoder(input_ids=ids, encoder_hidden_states=enc,
                                           past_key_values=cache, use_cache=True)
            logits = self.model.proj_out(out.last_hidden_state[:, -1])
            return logits[0].float().cpu().numpy(), out.past_key_values


def _pause_between_layers(model) -> None:
    """`gate.pause_point()` before each leaf layer of the encoder: the encoder
    is most of a segment's compute here (a second or more a window), and a live
    engine ranked lower must give the cores back within milliseconds. The
    decoder pauses once a token, in the decoding loop: a hook on each of its
    leaf layers would cost Python time every token in every benchmark, for
    the same live figures (run A of docs/live.md paused the encoder only)."""
    if getattr(model, "_asrq_pause_points", False):
        return  # FP32 engines share the bundle's model
    for m in model.encoder.modules():
        if not any(True for _ in m.children()):
            m.register_forward_pre_hook(lambda *_: _gate.pause_point())
    model._asrq_pause_points = True


def build_model(bundle: WhisperBundle, precision: str, device: str):
    """The torch model for one precision (FP32 is the bundle's own model)."""
    if precision == "fp32":
        return bundle.hf_model.to(device)
    model = _load_half(bundle, precision)
    keep_layernorm_fp32(model)
    if device == "cpu" and not cpu_has_half_math(precision):
        compute_products_in_fp32(model)
    return model.to(device).eval()


def _copy(model):
    import copy

    return copy.deepcopy(model)


def _load_half(bundle: WhisperBundle, precision: str):
    """FP16/BF16 weights from their own safetensors file in the cache, written
    once, so the engine's size on disk is a real file's size. (The CT2 weights
    were FP16 to begin with, so the FP16 file holds them exactly.)"""
    import torch
    from transformers import WhisperForConditionalGeneration

    path = half_dir(bundle, precision)
    if not (path / "model.safetensors").is_file():
        from ...cache import build_dir
        from .ct2 import has_safetensors

        def fill(tmp):
            half = _copy(bundle.hf_model).to(getattr(torch, _DTYPES[precision]))
            half.save_pretrained(tmp, safe_serialization=True)
            del half

        build_dir(path, fill, valid=has_safetensors)
    return WhisperForConditionalGeneration.from_pretrained(path, dtype=_DTYPES[precision]).eval()


def half_dir(bundle: WhisperBundle, precision: str):
    """Cast from the converted FP32 folder by this module: keyed by both."""
    from ...cache import key_of, source_hash

    return bundle.cache_dir / f"torch-{precision}-{key_of([bundle.fp32_dir.name, source_hash(__file__)], 12)}"


class WhisperTorchEngine(Engine):
    """One precision of Whisper in PyTorch."""

    carries_context = True

    def __init__(self, bundle: WhisperBundle, precision: str, device: str, threads: int):
        import torch

        set_threads(threads)
        self.bundle = bundle
        self.precision = precision
        self.device = device
        t0 = time.perf_counter()
        self.model = build_model(bundle, precision, device)
        dtype = getattr(torch, _DTYPES[precision])
        speed = None
        if precision != "fp32" and device == "cpu":
            speed = relative_speed(self.model, dtype)
        self.step_model = TorchStepModel(self.model, device, dtype)
        self.info = EngineInfo(
            name=precision.upper(),
            precision=precision,
            runtime=f"PyTorch {torch.__version__.split('+')[0]}",
            device=device,
            model=bundle.name,
            details=_details(precision, device, speed) + "; " + runtime_policy.describe(torch.get_num_threads(),
                                                                                     "torch"),
            threads=torch.get_num_threads(),
            disk_bytes=_memory.disk_bytes(weights_file(bundle, precision)),
            weights_bytes=_memory.module_tensor_bytes(self.model),
            load_s=time.perf_counter() - t0,
            artifact=f"{bundle.sha256[:12]}/{weights_file(bundle, precision).parent.name}",
        )

    def _run(self, clip: Clip, language: str | None, prompt: str | None = None, progress=None) -> RawResult:
        return longform.transcribe_samples(self.step_model, clip.samples, self.bundle.tokens, language,
                                           n_mels=self.bundle.n_mels, prompt=prompt, progress=progress)

    def close(self) -> None:
        self.model = None
        self.step_model = None


def weights_file(bundle: WhisperBundle, precision: str):
    """The weights file this precision loads."""
    return bundle.fp32_file if precision == "fp32" else half_dir(bundle, precision) / "model.safetensors"


def cpu_half_flags() -> str:
    """Which 16-bit float instructions this CPU advertises (Linux /proc/cpuinfo)."""
    flags = cpu_flags()
    if not flags:
        return "CPU flags unknown"
    wanted = ["avx512_fp16", "amx_fp16", "avx512_bf16", "amx_bf16"]
    have = [w for w in wanted if w in flags]
    missing = [w for w in wanted if w not in flags]
    return f"CPU has {', '.join(have) or 'none of ' + '/'.join(wanted)}" + (
        f"; lacks {', '.join(missing)}" if have and missing else "")


def relative_speed(half_model, dtype, reps: int = 3) -> float:
    """FP32 time / half time for the first encoder layer's fc1 on a 30 s
    window's activations ([1, 1500, d_model]); >1 means the half model is faster.
    A small, real matmul: enough to tell emulated from native 16-bit math
    (the FP32 side is a float copy of the same layer, so no FP32 model is needed)."""
    import copy

    import torch

    b = half_model.model.encoder.layers[0].fc1
    a = copy.deepcopy(b).float()
    x32 = torch.randn(1, half_model.config.max_source_positions, half_model.config.d_model,
                      generator=torch.Generator().manual_seed(0)).to(a.weight.device)
    x16 = x32.to(dtype).to(b.weight.device)

    def best(layer, x) -> float:
        layer(x)
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            layer(x)
            times.append(time.perf_counter() - t)
        return float(np.median(times))

    with torch.inference_mode():
        return best(a, x32) / best(b, x16)


def _details(precision: str, device: str, speed: float | None = None) -> str:
    if precision == "fp32":
        return "all weights and activations in FP32"
    name = precision.upper()
    text = f"weights and activations in {name} (.{'half' if precision == 'fp16' else 'bfloat16'}()); " \
           "LayerNorms kept in FP32; logits read as FP32"
    if device == "cpu" and not cpu_has_half_math(precision):
        text += (f"; this CPU has no {name} arithmetic, so products of {MANY_ROWS}+ rows (the encoder's) and "
                 f"attention compute in FP32 on the {name} values and round back to {name} (as ONNX Runtime "
                 f"and OpenVINO do on such CPUs), one-token products in PyTorch's {name} kernel")
    if device == "cpu" and speed is not None:
        text += (f"; on this CPU ({cpu_half_flags()}) an encoder matmul measured at load runs at "
                 f"{speed:.2f}x the FP32 speed in {name}")
    return text
