"""Whisper INT8 for ONNX Runtime on a GPU: the CUDA recipe's graphs
(cuda_recipe.py) behind the same `OrtStepModel` and decoding loop as the CPU
INT8 engine, so only where it runs differs.

Chosen automatically by `whisper.load` when the device plan puts ONNX Runtime
on CUDA; the CPU recipe stays the CPU's. On a GPU the engine profiles one
warm-up run and says in `info` how many nodes ONNX Runtime placed on the CPU
(`ort_placement`); a nonzero count is shown on the page as a warning.
"""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from ... import memory as _memory
from ..ort_placement import CPU, Placement, from_sessions
from ..base import EngineInfo
from . import cuda_recipe, onnx_export
from .int8 import WhisperInt8Engine
from .ort_engine import OrtStepModel
from .model import WhisperBundle

log = logging.getLogger(__name__)


def on_gpu(providers) -> bool:
    first = providers[0] if providers else "CPUExecutionProvider"
    return (first[0] if isinstance(first, tuple) else first) != CPU


class BoundStepModel(OrtStepModel):
    """`OrtStepModel` whose encoder outputs and KV cache stay where the
    sessions run (IOBinding): without it every decoder step would copy the
    cross-attention K/V (37 MB for base) from host to device and back.
    Only the logits of the last position come back to the host."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.device_type = "cuda" if on_gpu(self.encoder.get_providers()) else "cpu"

    def encode(self, mel: np.ndarray):
        b = self.encoder.io_binding()
        b.bind_cpu_input("mel", np.ascontiguousarray(mel, dtype=np.float32))
        for name in self._cross:
            b.bind_output(name, self.device_type)
        self.encoder.run_with_iobinding(b)
        return dict(zip(self._cross, b.get_outputs()))

    def step(self, enc, tokens: np.ndarray, cache):
        b = self.decoder.io_binding()
        for name, value in list(enc.items()) + list(zip(self._cache, cache if cache is not None else self._empty)):
            b.bind_ortvalue_input(name, value)
        b.bind_cpu_input("tokens", np.ascontiguousarray(tokens, dtype=np.int64))
        b.bind_output(self._outputs[0], "cpu")
        for name in self._outputs[1:]:
            b.bind_output(name, self.device_type)
        self.decoder.run_with_iobinding(b)
        out = b.get_outputs()
        return out[0].numpy()[0, -1], out[1:]


def load_step_model(encoder: Path, decoder: Path, providers, threads: int, dims: dict, n_mels: int,
                    start_token: int, decoder_providers=None,
                    profile: bool | None = None) -> tuple[OrtStepModel, Placement | None]:
    """The step model; when profiled (default: on a GPU) also one warm-up run
    (silence, the prompt token, one more step) and the placement it showed."""
    profile = on_gpu(providers) if profile is None else profile
    if not profile:
        return BoundStepModel(encoder, decoder, providers, threads, dims, decoder_providers=decoder_providers), None
    with tempfile.TemporaryDirectory(prefix="asrq-ort-profile-") as tmp:
        sm = BoundStepModel(encoder, decoder, providers, threads, dims, profile_dir=tmp,
                            decoder_providers=decoder_providers)
        enc = sm.encode(np.zeros((1, n_mels, dims["n_frames"]), np.float32))
        _, cache = sm.step(enc, np.array([[start_token]], np.int64), None)
        sm.step(enc, np.array([[start_token]], np.int64), cache)
        return sm, from_sessions(sm.encoder, sm.decoder)


def placement_note(placement: Placement | None, main: str) -> tuple[int | None, list[str]]:
    """(nodes on the CPU, warnings) for EngineInfo."""
    if placement is None:
        return None, []
    warning = placement.warning(main)
    return placement.cpu_nodes, [warning] if warning else []


class WhisperInt8CudaEngine(WhisperInt8Engine):
    """Whisper with weight-only INT8 (MatMulNBits) in ONNX Runtime, built for
    CUDA. Runs and closes as the CPU INT8 engine does; loads other artifacts."""

    def __init__(self, bundle: WhisperBundle, settings, plan):  # noqa: D107 - not the CPU recipe's loader
        import onnxruntime as ort

        self.bundle = bundle
        threads = int(settings.threads)
        t0 = time.perf_counter()
        folder, manifest = cuda_recipe.ensure_artifacts(bundle)
        dims = onnx_export.dims(bundle.config)
        meter = _memory.LoadMeter("cpu")
        files = [folder / n for n in cuda_recipe.FILES]
        with meter:
            self.step_model, placement = load_step_model(files[0], files[1], plan.ort_providers, threads, dims,
                                                         bundle.n_mels, bundle.tokens.sot)
        self.folder, self.manifest, self.placement = folder, manifest, placement
        device = self.step_model.provider
        nodes_on_cpu, warnings = placement_note(placement, plan.ort_device)  # the provider asked for
        self.info = EngineInfo(
            name="INT8", precision="int8", runtime=f"ONNX Runtime {ort.__version__}", device=device,
            model=bundle.name, details=cuda_recipe.describe(manifest["report"]), threads=threads,
            disk_bytes=_memory.disk_bytes(*files), weights_bytes=_memory.onnx_initializer_bytes(*files),
            resident_bytes=meter.grown_bytes,
            load_s=time.perf_counter() - t0, nodes_on_cpu=nodes_on_cpu, warnings=warnings,
            artifact=folder.name,
        )

    @property
    def encoder_mode(self) -> str:
        return "weight-only"
