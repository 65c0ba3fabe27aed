"""Whisper INT8 in ONNX Runtime: the quantized graphs of a plan (plans/) (cached
by ort_artifacts.py) behind the shared `decoding` loop, so only precision
differs from the ORT-FP32 engine and the runtime too from PyTorch FP32."""
from __future__ import annotations

from .ort_engine import OrtWhisperEngine
from .model import WhisperBundle
from . import plans
from .plans.config import QuantConfig


class WhisperInt8Engine(OrtWhisperEngine):
    """Whisper with INT8 weights in ONNX Runtime."""

    kind = "int8"
    name = "INT8"
    precision = "int8"

    def __init__(self, bundle, settings, plan, quant: QuantConfig | None = None, progress=None):
        super().__init__(bundle, settings, plan, quant=quant, progress=progress)
        r = self.manifest["report"]
        self.info.quant = {"plan": r.get("plan") or {}, "sensitivity": r.get("sensitivity") or []}
        if quant is None and settings.int8_plan == "auto":  # say why this plan is the default here
            from .plans.default import choose

            self.info.details += (f" Plan '{self.quant.plan}' is the default (--int8-plan auto) for instruction "
                                  f"set {self.quant.isa}: {choose(self.quant.isa)[1]}.")

    def describe(self, manifest: dict) -> str:
        return plans.describe(manifest)

    @property
    def encoder_mode(self) -> str:
        return self.manifest["report"]["encoder"]


def build_variant(bundle: WhisperBundle, settings, device_plan, mode: str = "auto", calib_size: int | None = None,
                  **quant) -> WhisperInt8Engine:
    """An INT8 engine with other quantization settings (benchmark studies:
    calibration size, static vs dynamic, another plan: quant plan="search");
    its name says the encoder mode (the caller may name it otherwise)."""
    cfg = QuantConfig(mode=mode, **({"calib_size": calib_size} if calib_size else {}), **quant)
    engine = WhisperInt8Engine(bundle, settings, device_plan, quant=cfg)
    label = engine.encoder_mode + (f"-c{cfg.calib_size}" if engine.encoder_mode == "static" else "")
    engine.info.name = f"INT8-{label}"
    return engine
