"""How the INT8 engine is built (`QuantConfig`), without torch: the runtime and
the artifact cache read it; quantize.py, which imports torch, carries it out."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from . import calibration

OUTLIER_CLIPS = 4  # calibration clips used to find the MLPs' outlier channels
RECIPE_VERSION = 5  # bump when the recipe changes so old caches become misses


@dataclass(frozen=True)
class QuantConfig:
    """How the INT8 engine is built; every field is part of the cache key."""

    mode: str = "auto"  # encoder: "static" | "dynamic" | "auto" (keep whichever measures closer to FP32)
    calib_size: int = 8  # calibration clips (static ranges, SmoothQuant scales)
    calib_method: str = "minmax"  # "minmax" | "percentile" | "entropy"
    per_channel: bool = True  # per-output-channel weight scales (encoder; the decoder always)
    op_types: tuple[str, ...] = ("MatMul", "Gemm")  # static encoder op types
    fc2: str = "split"  # "split" (outlier channels apart in FP32, rest INT8) | "fp32" (whole fc2 in FP32)
    outlier_channels: int = 16  # per MLP, for fc2="split"
    holdout_size: int = 4  # clips used to measure static vs dynamic (mode "auto")

    @property
    def keep_fp32(self) -> tuple[str, ...]:
        return ("fc2",) if self.fc2 == "fp32" else ("fc1_outliers", "fc2_outliers")

    def __post_init__(self):
        if self.mode not in ("auto", "static", "dynamic"):
            raise ValueError(f"quantization mode must be auto, static or dynamic, not {self.mode!r}")
        if self.calib_method not in ("minmax", "percentile", "entropy"):
            raise ValueError(f"calibration method must be minmax, percentile or entropy, not {self.calib_method!r}")
        if self.fc2 not in ("split", "fp32"):
            raise ValueError(f"fc2 must be split or fp32, not {self.fc2!r}")
        if not 1 <= self.calib_size <= len(calibration.CALIBRATION):
            raise ValueError(f"calib_size must be 1..{len(calibration.CALIBRATION)}, not {self.calib_size}")

    def key(self, model_sha256: str) -> str:
        """Cache key: model weights + recipe + these settings."""
        blob = json.dumps({"sha": model_sha256, "recipe": RECIPE_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
