"""Optional extra engine "FP16 (TensorRT)": the seed article's "FP16 + TensorRT".

The FP32 ONNX graphs (onnx_export.py) run in ONNX Runtime's TensorRT
execution provider with FP16 enabled; nodes TensorRT cannot take (the
com.microsoft MultiHeadAttention of the encoder) fall to the CUDA provider,
and the engine says how many nodes ended up on the CPU, like the INT8 engine
on a GPU. TensorRT engines and timing caches are kept under the artifact
cache (`trt-<key>/cache`), so only the first load pays for the engine build.

The decoder's inputs grow by one token per step, so it gets explicit
optimization profiles (past length 0..max_target, 1..4 new tokens): without
them TensorRT would rebuild its engine whenever a shape leaves the range seen.
Available only where `device.choose` found the TensorRT provider and its
libraries; otherwise `whisper.load` lists it as unavailable with the reason.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from ... import memory as _memory
from ...cache import build_dir, key_of, source_hash
from ..base import EngineError, EngineInfo
from . import onnx_export
from .int8 import WhisperInt8Engine
from .cuda_recipe import cpu_model
from .int8_cuda import load_step_model, placement_note
from .model import WhisperBundle

NAME = "FP16 (TensorRT)"
PRECISION = "fp16-trt"
MAX_NEW_TOKENS_PER_CALL = 4  # the prompt (start, language, task, no-timestamps), then 1 per step


def artifact_dir(bundle: WhisperBundle) -> Path:
    import onnxruntime as ort

    key = key_of({"sha": bundle.sha256, "code": source_hash(onnx_export.__file__), "ort": ort.__version__})
    return Path(bundle.cache_dir) / f"trt-{key}"


def fp32_graphs(bundle: WhisperBundle) -> Path:
    """The exported FP32 encoder/decoder, once per model and exporter version."""

    def fill(tmp: Path) -> None:
        onnx_export.export(cpu_model(bundle), tmp / "onnx")
        (tmp / "cache").mkdir()

    folder = build_dir(artifact_dir(bundle), fill,
                       valid=lambda f: all((f / "onnx" / n).is_file() for n in ("encoder.onnx", "decoder.onnx")))
    return folder


def profile_shapes(dims: dict) -> dict[str, str]:
    """TensorRT optimization profile options for the decoder session."""
    n, h, hd = dims["n_layers"], dims["n_heads"], dims["head_dim"]
    cross = [f"{name}:1x{h}x{dims['n_ctx']}x{hd}" for name in onnx_export.cross_names(n)]

    def shapes(tokens: int, past: int) -> str:
        return ",".join([f"tokens:1x{tokens}"] + [f"{name}:1x{h}x{past}x{hd}" for name in onnx_export.cache_names(n)]
                        + cross)

    return {"trt_profile_min_shapes": shapes(1, 0), "trt_profile_opt_shapes": shapes(1, 64),
            "trt_profile_max_shapes": shapes(MAX_NEW_TOKENS_PER_CALL, dims["max_target"])}


def providers(cache: Path, dims: dict | None = None) -> list:
    """TensorRT (FP16, engine + timing cache under `cache`), then CUDA, then CPU."""
    opts = {"trt_fp16_enable": True, "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
            "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache)}
    if dims is not None:
        opts.update(profile_shapes(dims))
    return [("TensorrtExecutionProvider", opts), "CUDAExecutionProvider", "CPUExecutionProvider"]


class WhisperTrtEngine(WhisperInt8Engine):
    """Whisper FP16 through ONNX Runtime's TensorRT execution provider; runs
    and closes as the ONNX Runtime INT8 engine does (same step model and loop)."""

    def __init__(self, bundle: WhisperBundle, settings, plan):  # noqa: D107 - its own loader
        import onnxruntime as ort

        if plan.tensorrt_unavailable:
            raise EngineError(plan.tensorrt_unavailable)
        self.bundle = bundle
        t0 = time.perf_counter()
        folder = fp32_graphs(bundle)
        dims = onnx_export.dims(bundle.config)
        files = [folder / "onnx" / n for n in ("encoder.onnx", "decoder.onnx")]
        meter = _memory.LoadMeter("cpu")
        with meter:
            self.step_model, placement = load_step_model(
                files[0], files[1], providers(folder / "cache"), int(settings.threads), dims, bundle.n_mels,
                bundle.tokens.sot, decoder_providers=providers(folder / "cache", dims))
        self.folder = folder
        nodes_on_cpu, warnings = placement_note(placement, "TensorrtExecutionProvider")
        by_provider = json.dumps(placement.providers) if placement else "{}"
        self.info = EngineInfo(
            name=NAME, precision=PRECISION, runtime=f"ONNX Runtime {ort.__version__} + TensorRT",
            device=self.step_model.provider, model=bundle.name,
            details=("FP32 ONNX graphs built into TensorRT engines with FP16 enabled (TensorRT picks FP16 or "
                     f"FP32 per layer); nodes per provider {by_provider}; engine cache {folder / 'cache'}"),
            threads=int(settings.threads), disk_bytes=_memory.disk_bytes(*files),
            resident_bytes=meter.grown_bytes, load_s=time.perf_counter() - t0,
            nodes_on_cpu=nodes_on_cpu, warnings=warnings, artifact=folder.name,
        )

    @property
    def encoder_mode(self) -> str:
        return "fp16-tensorrt"
