"""OpenVINO FP32 and OpenVINO INT8 (NNCF) on the same exported graphs.

optimum-intel, the usual route (OVModelForSpeechSeq2Seq + NNCF), cannot be
installed beside this project: optimum-intel 2.2.0 (the newest on PyPI)
requires transformers<5.6 and torchvision, and pip would replace this
project's transformers 5.23.0 and torch 2.13.0. So the peer uses OpenVINO
itself (`openvino`, `nncf` on PyPI; neither changes an installed package):
OpenVINO reads this project's exported FP32 ONNX graphs (the ORT-FP32
artifacts: encoder, KV-cache decoder), compiled for the CPU with the same
thread count, behind this project's greedy decoder, so against ORT-FP32 it
shows the runtime alone. Two INT8 rows:

- `openvino-int8`: NNCF's data-free weight compression (`nncf.compress_weights`,
  INT8_ASYM: every MatMul/Gather weight in 8 bits with per-channel scale and
  zero point, activations in FP32), the default of optimum-intel's
  `--weight-format int8`;
- `openvino-int8-sq`: NNCF's full INT8 (`nncf.quantize`, model type TRANSFORMER:
  8-bit weights and activations) with SmoothQuant, as OpenVINO's Whisper
  notebook does it: alpha 0.80 for the encoder and 0.96 for the decoder, the
  calibration feeds recorded from the FP32 graphs decoding this project's 30
  first packaged calibration clips (the notebook takes 30 LibriSpeech clips;
  no data set is downloaded here). Our decoder is one graph for the prompt and
  for each step, so it is quantized whole, where the notebook leaves the
  first-step decoder in FP32.

Either is saved once as OpenVINO IR in the cache, keyed by the graphs, the
libraries, the settings (and the calibration speech's digest) and this file.
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

    def feed(self, enc: Any, tokens: np.ndarray, cache: Any) -> dict:
        """One step's decoder inputs: the window's cross keys and values (shared, not copied), cache, tokens."""
        feed = dict(enc)
        feed.update(zip(self._cache, cache if cache is not None else self._empty))
        feed["tokens"] = np.ascontiguousarray(tokens, dtype=np.int64)
        return feed

    def step(self, enc: Any, tokens: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        self.decoder.infer(self.feed(enc, tokens, cache))
        out = [self.decoder.get_tensor(k).data.copy() for k in self._outputs]
        return out[0][0, -1], out[1:]


def _compressed(folder, onnx_dir) -> None:
    import nncf
    import openvino as ov

    core = ov.Core()
    for name in ort_artifacts.FILES:
        model = nncf.compress_weights(core.read_model(str(onnx_dir / name)), mode=nncf.CompressWeightsMode.INT8_ASYM)
        ov.save_model(model, str(folder / name.replace(".onnx", ".xml")), compress_to_fp16=False)


# OpenVINO's Whisper notebook (whisper-asr-genai / distil-whisper quantization): alphas from its grid search
SQ_ALPHA = {"encoder.onnx": 0.80, "decoder.onnx": 0.96}
SQ_CLIPS = 30


class _Recorder:
    """A StepModel that keeps every encoder input and decoder feed it is given (the calibration data)."""

    def __init__(self, inner: OVStepModel):
        self.inner, self.mels, self.feeds = inner, [], []

    def encode(self, mel: np.ndarray) -> Any:
        self.mels.append({"mel": np.ascontiguousarray(mel, dtype=np.float32)})
        return self.inner.encode(mel)

    def step(self, enc: Any, tokens: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        self.feeds.append(self.inner.feed(enc, tokens, cache))
        return self.inner.step(enc, tokens, cache)


def _smoothquant(folder, onnx_dir, bundle: WhisperBundle, threads: int, dims: dict) -> None:
    import nncf
    import openvino as ov

    from .. import calibration, decoding, features

    rec = _Recorder(OVStepModel(str(onnx_dir / "encoder.onnx"), str(onnx_dir / "decoder.onnx"), threads, dims))
    for utt, samples in calibration.calibration_clips(SQ_CLIPS):
        for w in features.windows(samples, bundle.n_mels):
            decoding.decode(rec, w.mel, bundle.tokens, utt.language if bundle.tokens.multilingual else "en")
    core = ov.Core()
    for name, data in (("encoder.onnx", rec.mels), ("decoder.onnx", rec.feeds)):
        model = nncf.quantize(core.read_model(str(onnx_dir / name)), nncf.Dataset(data), subset_size=len(data),
                              model_type=nncf.ModelType.TRANSFORMER,
                              advanced_parameters=nncf.AdvancedQuantizationParameters(
                                  smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=SQ_ALPHA[name])))
        ov.save_model(model, str(folder / name.replace(".onnx", ".xml")), compress_to_fp16=False)


class OpenVINOEngine(Engine):
    carries_context = True  # the shared long-form loop: previous text as prompt, window progress

    def __init__(self, bundle: WhisperBundle, kind: str, threads: int, cache_dir: str):
        import openvino as ov

        t0 = time.perf_counter()
        onnx_dir, manifest = ort_artifacts.ensure(bundle, "fp32", QuantConfig(), threads, cache_dir)
        if kind in ("int8", "int8-sq"):
            import nncf

            from .. import calibration

            sq = kind == "int8-sq"
            key = key_of(dict(onnx=onnx_dir.name, nncf=nncf.__version__, openvino=ov.__version__,
                              mode="smoothquant" if sq else "INT8_ASYM", code=source_hash(__file__),
                              **({"alpha": SQ_ALPHA, "clips": SQ_CLIPS, "calibration": calibration.digest()}
                                 if sq else {})))
            folder = bundle.cache_dir / f"openvino-{kind}-{key}"
            build = ((lambda tmp: _smoothquant(tmp, onnx_dir, bundle, threads, manifest["dims"])) if sq
                     else (lambda tmp: _compressed(tmp, onnx_dir)))
            build_dir(folder, build, valid=lambda f: (f / "decoder.bin").is_file())
            files = [folder / n.replace(".onnx", s) for n in ort_artifacts.FILES for s in (".xml", ".bin")]
            enc, dec = str(folder / "encoder.xml"), str(folder / "decoder.xml")
            self.folder = folder
            how = (f"NNCF full INT8 (weights and activations, model type TRANSFORMER) with SmoothQuant, alpha "
                   f"{SQ_ALPHA['encoder.onnx']} encoder / {SQ_ALPHA['decoder.onnx']} decoder as OpenVINO's Whisper "
                   f"notebook, calibrated on the FP32 graphs decoding {SQ_CLIPS} packaged calibration clips, "
                   f"nncf {nncf.__version__}" if sq else
                   "NNCF data-free weight compression INT8_ASYM (per-channel, activations FP32) of the exported "
                   f"graphs, nncf {nncf.__version__}")
        else:
            files = [onnx_dir / n for n in ort_artifacts.FILES]
            enc, dec = (str(f) for f in files)
            self.folder = onnx_dir
            how = "the exported FP32 ONNX graphs (ORT-FP32's) read by OpenVINO"
        with _memory.LoadMeter("cpu") as meter:
            self.step_model = OVStepModel(enc, dec, threads, manifest["dims"])
        self.bundle = bundle
        self.info = EngineInfo(
            name={"int8": "OpenVINO INT8 (NNCF)", "int8-sq": "OpenVINO INT8 (NNCF SmoothQuant)"}.get(kind, "OpenVINO FP32"),
            precision="int8" if kind.startswith("int8") else kind, runtime=f"OpenVINO {ov.__version__.split('-')[0]}", device="cpu", model=bundle.name,
            details=(f"peer: {how}; CPU plugin, {threads} inference threads, f32 inference precision; this "
                     f"project's greedy decoder (optimum-intel not used: {REASON_OPTIMUM})"),
            threads=threads, disk_bytes=_memory.disk_bytes(*files), resident_bytes=meter.grown_bytes,
            load_s=time.perf_counter() - t0)

    def _run(self, clip: Clip, language: str | None, prompt: str | None = None, progress=None) -> RawResult:
        return longform.transcribe_samples(self.step_model, clip.samples, self.bundle.tokens, language,
                                           n_mels=self.bundle.n_mels, prompt=prompt, progress=progress)

    def close(self) -> None:
        self.step_model = None
