"""OpenVINO FP32 and OpenVINO INT8 (NNCF) on the same exported graphs.

optimum-intel, the usual route (OVModelForSpeechSeq2Seq + NNCF), cannot be
installed beside this project: optimum-intel 2.2.0 (the newest on PyPI)
requires transformers<5.6 and torchvision, and pip would replace this
project's transformers 5.23.0 and torch 2.13.0. So the peer uses OpenVINO
itself (`openvino`, `nncf` on PyPI; neither changes an installed package):
OpenVINO reads this project's exported FP32 ONNX graphs (the ORT-FP32
artifacts: encoder, KV-cache decoder), compiled for the CPU with the same
thread count, behind this project's greedy decoder, so against ORT-FP32 it
shows the runtime alone. INT8 is NNCF's data-free weight compression
(`nncf.compress_weights`, INT8_ASYM: every MatMul/Gather weight in 8 bits
with per-channel scale and zero point, activations in FP32), the default of
optimum-intel's `--weight-format int8`; NNCF's full INT8 with SmoothQuant
(calibrated activations, as OpenVINO's Whisper notebook does) is not built here.
The compressed graphs are saved once as OpenVINO IR in the cache.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from ...base import Engine, EngineInfo, RawResult
from .... import memory as _memory
from ....audio import Clip
from ....cache import build_dir, key_of, source_hash
from .. import longform, onnx_io, ort_artifacts
from ..model import WhisperBundle
from ..plans.config import QuantConfig

REASON_OPTIMUM = ("optimum-intel 2.2.0 (newest on PyPI) requires transformers<5.6,>=4.51 and torchvision, which "
                  "would replace this project's transformers 5.23.0 and torch 2.13.0")


class OVStepModel:
    """`decoding.StepModel` over two compiled OpenVINO models."""

    def __init__(self, encoder, decoder, threads: int, dims: dict):
        import openvino as ov

        core = ov.Core()
        cfg = {"INFERENCE_NUM_THREADS": int(threads), "INFERENCE_PRECISION_HINT": "f32",
               "PERFORMANCE_HINT": "LATENCY"}
        self.encoder = core.compile_model(encoder, "CPU", cfg).create_infer_request()
        self.decoder = core.compile_model(decoder, "CPU", cfg).create_infer_request()
        n = dims["n_layers"]
        self._empty = [np.zeros((1, dims["n_heads"], 0, dims["head_dim"]), np.float32)] * (2 * n)
        self._cross, self._cache = onnx_io.cross_names(n), onnx_io.cache_names(n)
        self._outputs = onnx_io.decoder_outputs(n)

    def encode(self, mel: np.ndarray) -> Any:
        self.encoder.infer({"mel": np.ascontiguousarray(mel, dtype=np.float32)})
        return {k: self.encoder.get_tensor(k).data.copy() for k in self._cross}

    def step(self, enc: Any, tokens: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        feed = dict(enc)
        feed.update(zip(self._cache, cache if cache is not None else self._empty))
        feed["tokens"] = np.ascontiguousarray(tokens, dtype=np.int64)
        self.decoder.infer(feed)
        out = [self.decoder.get_tensor(k).data.copy() for k in self._outputs]
        return out[0][0, -1], out[1:]


def _compressed(folder, onnx_dir) -> None:
    import nncf
    import openvino as ov

    core = ov.Core()
    for name in ort_artifacts.FILES:
        model = nncf.compress_weights(core.read_model(str(onnx_dir / name)), mode=nncf.CompressWeightsMode.INT8_ASYM)
        ov.save_model(model, str(folder / name.replace(".onnx", ".xml")), compress_to_fp16=False)


class OpenVINOEngine(Engine):
    carries_context = True  # the shared long-form loop: previous text as prompt, window progress

    def __init__(self, bundle: WhisperBundle, kind: str, threads: int, cache_dir: str):
        import openvino as ov

        t0 = time.perf_counter()
        onnx_dir, manifest = ort_artifacts.ensure(bundle, "fp32", QuantConfig(), threads, cache_dir)
        if kind == "int8":
            import nncf

            key = key_of(dict(onnx=onnx_dir.name, nncf=nncf.__version__, openvino=ov.__version__,
                              mode="INT8_ASYM", code=source_hash(__file__)))
            folder = bundle.cache_dir / f"openvino-int8-{key}"
            build_dir(folder, lambda tmp: _compressed(tmp, onnx_dir),
                      valid=lambda f: (f / "decoder.bin").is_file())
            files = [folder / n.replace(".onnx", s) for n in ort_artifacts.FILES for s in (".xml", ".bin")]
            enc, dec = str(folder / "encoder.xml"), str(folder / "decoder.xml")
            how = ("NNCF data-free weight compression INT8_ASYM (per-channel, activations FP32) of the exported "
                   f"graphs, nncf {nncf.__version__}; SmoothQuant full INT8 not built")
        else:
            files = [onnx_dir / n for n in ort_artifacts.FILES]
            enc, dec = (str(f) for f in files)
            how = "the exported FP32 ONNX graphs (ORT-FP32's) read by OpenVINO"
        with _memory.LoadMeter("cpu") as meter:
            self.step_model = OVStepModel(enc, dec, threads, manifest["dims"])
        self.bundle = bundle
        self.info = EngineInfo(
            name="OpenVINO INT8 (NNCF)" if kind == "int8" else "OpenVINO FP32",
            precision=kind, runtime=f"OpenVINO {ov.__version__.split('-')[0]}", device="cpu", model=bundle.name,
            details=(f"peer: {how}; CPU plugin, {threads} inference threads, f32 inference precision; this "
                     f"project's greedy decoder (optimum-intel not used: {REASON_OPTIMUM})"),
            threads=threads, disk_bytes=_memory.disk_bytes(*files), resident_bytes=meter.grown_bytes,
            load_s=time.perf_counter() - t0)

    def _run(self, clip: Clip, language: str | None, prompt: str | None = None, progress=None) -> RawResult:
        return longform.transcribe_samples(self.step_model, clip.samples, self.bundle.tokens, language,
                                           n_mels=self.bundle.n_mels, prompt=prompt, progress=progress)

    def close(self) -> None:
        self.step_model = None
