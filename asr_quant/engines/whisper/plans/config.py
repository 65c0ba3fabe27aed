"""How the INT8 engine is built (`QuantConfig`), without torch: the runtime and
the artifact cache read it; the plans, which import torch, carries it out."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .... import host
from .. import calibration

OUTLIER_CLIPS = 4  # calibration clips used to find the MLPs' outlier channels
RECIPE_VERSION = 6  # bump when the recipe changes so old caches become misses
PLANS = ("recipe", "search", "blockwise", "rows", "costed")  # see QuantConfig.plan; "auto" picks one (default.py)
BLOCK_SIZES = (16, 32, 64, 128, 256)  # plan "blockwise": what MatMulNBits takes
DEFAULT_BUDGET = "kl=0.004"  # the search keeps FP32 up to the size cap when it cannot be met


@dataclass(frozen=True)
class Budget:
    """What the mixed-precision search must reach on the hold-out speech:
    'kl=0.004' (mean KL of the next-token distributions at most) or
    'top1=0.99' (top-1 agreement with FP32 at least)."""

    kind: str
    value: float

    @classmethod
    def parse(cls, text: str) -> "Budget":
        kind, sep, value = str(text).partition("=")
        try:
            v = float(value)
        except ValueError:
            v = None
        if not sep or kind not in ("kl", "top1") or v is None or not math.isfinite(v):
            raise ValueError(f"an INT8 budget is kl=<mean KL> or top1=<agreement 0..1>, not {text!r}")
        if (kind == "kl" and v < 0) or (kind == "top1" and not 0 <= v <= 1):
            raise ValueError(f"INT8 budget {text!r} is out of range")
        return cls(kind, v)

    def met(self, m: dict) -> bool:
        return m["kl"] <= self.value if self.kind == "kl" else m["top1"] >= self.value

    def __str__(self) -> str:  # canonical: "kl=4e-3" and "kl=0.004" are one budget, one cache key
        return f"{self.kind}={self.value!r}"


def _probe() -> str:
    from .probe import u8s8

    return u8s8()


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
    holdout_size: int = 4  # clips used to measure static vs dynamic (mode "auto") and to score plans
    # "recipe": every weight MatMul INT8 but the MLPs' outlier channels (above), encoder static or
    # dynamic by `mode`. "search": each group's INT8 sensitivity measured, then the smallest mix of
    # INT8 / outlier split / FP32 groups that meets `budget` (sensitivity.py, search.py; encoder dynamic).
    # "blockwise": every weight MatMul in 8-bit blocks of `block_size` inputs, activations int8 per row
    # and block (blockwise.py); no calibration, no outlier split.
    plan: str = "recipe"
    budget: str = DEFAULT_BUDGET  # for plans "search" and "costed" ("costed" also takes time=<ratio to FP32>)
    max_extra_mb: float = 20.0  # the search keeps no more FP32 than this above all-INT8
    block_size: int = 16  # for plan "blockwise": inputs per weight scale and per activation scale
    cost_threads: int = 2  # for plan "costed": the threads its kernel cost table is measured with (costs.py)
    # For plan "costed": a plan fixed beforehand, ((group, option), ...), built as it is with no cost table
    # and no search: what `auto` builds from a benchmark's evidence (default.py), so the default is exactly
    # the plan that was measured. Empty: search on this host's cost table for `budget`.
    levels: tuple = ()
    # The instruction-set level the graphs are built for (host.LEVELS): plan "rows" rounds the encoder's
    # weights to 7 bits where u8s8 products saturate (no VNNI). This host's, unless a test asks for another.
    isa: str = field(default_factory=lambda: host.detect().level)
    # Whether this host's ONNX Runtime adds u8 x s8 products in saturating 16-bit pairs (probe.py: measured,
    # since CPU flags do not tell): "saturates" puts the u8s8 kernels' weights on 7 bits (|w| <= 63).
    u8s8: str = field(default_factory=lambda: _probe())

    @classmethod
    def from_settings(cls, settings) -> "QuantConfig":
        """The app's INT8 build: the plan it was told (Settings.int8_plan; "auto":
        the plan default.py names for this host's instruction set) and, for
        "search", the budget (Settings.int8_budget); the other plans have no
        budget, so it is not in their key."""
        from .default import resolve

        from .default import fixed_levels

        isa = host.detect().level
        name = resolve(settings.int8_plan, isa)
        plan, _, budget = name.partition(":")
        if plan in ("search", "costed"):  # the evidence's own budget and plan for "auto" (default.py), else the setting
            auto = settings.int8_plan == "auto"
            levels = fixed_levels(name, isa) if auto else ()
            return cls(plan=plan, budget=budget if auto and budget else settings.int8_budget, levels=levels)
        return cls(plan=plan)

    @property
    def weight_qmax(self) -> int:
        """The u8s8 kernels' weight grid: 7 bits where pair sums can saturate (no
        VNNI at this instruction-set level, or the probe saw it), else 8."""
        return 63 if self.u8s8 == "saturates" or not host.Isa(self.isa).vnni else 127

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
        if self.plan not in PLANS:
            raise ValueError(f"INT8 plan must be one of {', '.join(PLANS)}, not {self.plan!r}")
        if self.plan == "search" and self.mode == "static":
            raise ValueError("the searched INT8 plan quantizes the encoder dynamically; use mode auto or dynamic")
        if self.plan in ("blockwise", "rows"):
            if self.mode == "static":
                raise ValueError(f"the {self.plan} INT8 plan quantizes activations at each call; use mode auto or dynamic")
            object.__setattr__(self, "mode", "dynamic")  # one build, one cache key, however it was asked for
        if self.u8s8 not in ("exact", "saturates"):
            raise ValueError(f"u8s8 must be exact or saturates, not {self.u8s8!r}")
        if self.isa not in host.LEVELS:
            raise ValueError(f"isa must be one of {', '.join(host.LEVELS)}, not {self.isa!r}")
        if self.block_size not in BLOCK_SIZES:
            raise ValueError(f"block_size must be one of {', '.join(map(str, BLOCK_SIZES))}, not {self.block_size}")
        if self.levels and self.plan != "costed":
            raise ValueError("levels fix a plan 'costed'; other plans take none")
        object.__setattr__(self, "levels", tuple(sorted((str(g), str(o)) for g, o in self.levels)))
        if self.plan == "costed":
            from .costed import parse_budget

            object.__setattr__(self, "mode", "dynamic")
            object.__setattr__(self, "budget", str(parse_budget(self.budget)))
        else:
            object.__setattr__(self, "budget", str(Budget.parse(self.budget)))
        if self.cost_threads < 1:
            raise ValueError(f"cost_threads must be >= 1, not {self.cost_threads}")
        if not 1 <= self.calib_size <= len(calibration.CALIBRATION):
            raise ValueError(f"calib_size must be 1..{len(calibration.CALIBRATION)}, not {self.calib_size}")
