"""Whisper in ONNX Runtime: the exported graphs behind the shared `decoding`
loop, so that only precision (INT8) or only runtime (ORT-FP32) differs from
PyTorch FP32.

Needs numpy, onnxruntime and the tokenizer only: a cached engine loads and
runs with neither torch nor transformers imported (see ort_artifacts.py).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ... import memory as _memory
from ...audio import Clip
from .. import runtime_policy
from ..base import Engine, EngineError, EngineInfo, RawResult
from . import longform, onnx_io, ort_artifacts
from .model import WhisperBundle
from .plans.config import QuantConfig

log = logging.getLogger(__name__)


class OrtStepModel:
    """`decoding.StepModel` over two InferenceSessions. Encoder outputs and the
    self-attention cache stay OrtValues between calls (no numpy round trips)."""

    def __init__(self, encoder, decoder, providers: tuple, threads: int, dims: dict,
                 profile_dir: str | None = None, decoder_providers: tuple | None = None):
        """providers: names, or (name, options) pairs as ONNX Runtime takes them
        (`decoder_providers`, when given, for the decoder session).
        profile_dir: profile the sessions (for `ort_placement`, one warm-up run)."""
        import onnxruntime as ort

        so = runtime_policy.ort_session_options(threads)
        self._ort = ort
        so.enable_profiling = profile_dir is not None
        if profile_dir is not None:
            so.profile_file_prefix = str(Path(profile_dir) / "encoder")
        self.encoder = ort.InferenceSession(str(encoder), so, providers=list(providers))
        if profile_dir is not None:
            so.profile_file_prefix = str(Path(profile_dir) / "decoder")
        self.decoder = ort.InferenceSession(str(decoder), so, providers=list(decoder_providers or providers))
        n = dims["n_layers"]
        empty = np.zeros((1, dims["n_heads"], 0, dims["head_dim"]), np.float32)
        self._empty = [ort.OrtValue.ortvalue_from_numpy(empty)] * (2 * n)
        self._cross = onnx_io.cross_names(n)
        self._cache = onnx_io.cache_names(n)
        self._outputs = onnx_io.decoder_outputs(n)

    @property
    def provider(self) -> str:
        return self.encoder.get_providers()[0]

    def encode(self, mel: np.ndarray) -> Any:
        x = self._ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(mel, dtype=np.float32))
        return dict(zip(self._cross, self.encoder.run_with_ort_values(self._cross, {"mel": x})))

    def step(self, enc: Any, tokens: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        feed = dict(enc)
        feed.update(zip(self._cache, cache if cache is not None else self._empty))
        feed["tokens"] = self._ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(tokens, dtype=np.int64))
        out = self.decoder.run_with_ort_values(self._outputs, feed)
        return out[0].numpy()[0, -1], out[1:]


class OrtWhisperEngine(Engine):
    """One kind of cached ONNX artifacts ("int8" or "fp32") in ONNX Runtime."""

    kind = "fp32"
    name = "ORT-FP32"
    carries_context = True
    precision = "fp32"

    def __init__(self, bundle: WhisperBundle, settings, plan, quant: QuantConfig | None = None,
                 progress: Callable[[str], None] | None = None):
        """`progress` hears the artifact build's steps, if it has to build them."""
        import onnxruntime as ort

        self.bundle = bundle
        self.quant = quant or (QuantConfig.from_settings(settings) if self.kind == "int8" else QuantConfig())
        threads = int(settings.threads)
        t0 = time.perf_counter()
        folder, manifest = ort_artifacts.ensure(bundle, self.kind, self.quant, threads, settings.cache_dir,
                                                progress=progress)
        meter = _memory.LoadMeter("cpu")
        with meter:
            try:
                self.step_model = self._sessions(folder, manifest, plan, threads)
            except Exception as exc:  # noqa: BLE001 - a file ORT can't read is rebuilt once
                log.warning("ONNX Runtime could not load %s (%s); rebuilding", folder, exc)
                folder, manifest = ort_artifacts.ensure(bundle, self.kind, self.quant, threads, settings.cache_dir,
                                                        rebuild=True, progress=progress)
                self.step_model = self._sessions(folder, manifest, plan, threads)
        self.folder = folder
        self.manifest = manifest
        self.info = EngineInfo(
            name=self.name,
            precision=self.precision,
            runtime=f"ONNX Runtime {ort.__version__}",
            device=self.step_model.provider,
            model=bundle.name,
            details=self.describe(manifest) + " " + runtime_policy.describe(threads),
            threads=threads,
            disk_bytes=_memory.disk_bytes(*(folder / n for n in ort_artifacts.FILES)),
            weights_bytes=sum(manifest["weights_bytes"].values()),
            resident_bytes=meter.grown_bytes,
            load_s=time.perf_counter() - t0,
            artifact=folder.name,  # <kind>-<artifact key>
        )

    @staticmethod
    def _sessions(folder, manifest: dict, plan, threads: int) -> OrtStepModel:
        f = ort_artifacts.FILES
        return OrtStepModel(folder / f[0], folder / f[1], plan.ort_providers, threads, manifest["dims"])

    def describe(self, manifest: dict) -> str:
        return ("The exported FP32 graphs (same encoder and KV-cache decoder as INT8, not quantized) in ONNX "
                "Runtime: against PyTorch FP32 it shows what the runtime alone changes, against INT8 what "
                "precision alone changes.")

    def _run(self, clip: Clip, language: str | None, prompt: str | None = None, progress=None) -> RawResult:
        if self.step_model is None:
            raise EngineError(f"the {self.name} engine was closed")
        return longform.transcribe_samples(self.step_model, clip.samples, self.bundle.tokens, language,
                                           n_mels=self.bundle.n_mels, prompt=prompt, progress=progress)

    def close(self) -> None:
        self.step_model = None
