"""Whisper's CPU INT8 plans, one interface: each plan module has
`build(ctx: BuildContext) -> BuildReport` (writes encoder.onnx and decoder.onnx
into ctx.out_dir) and `describe(manifest) -> str` (what runs in which
precision, for the engine's details). `build` and `describe` here pick the
module by `QuantConfig.plan`.

Layout (arrows are imports; no module imports a plan but this one):
    config       QuantConfig, Budget (no torch: the cache and the engine read it)
    common       BuildContext, BuildReport, Plan, hold-out clips, sentences
    measure      ONNX graphs against FP32 on hold-out clips, step by step
    sensitivity  ONNX Runtime's dynamic INT8 simulated in PyTorch, per layer group
    search       the mixed-precision search over sensitivity
    rowwise      the per-row u8s8 product (graph rewrite)
    smooth       SmoothQuant folded into the weights
    recipe       plans "recipe" and "search" (-> search)
    blockwise    plan "blockwise" (MatMulNBits blocks)
    rows         plan "rows" (per-row encoder, blockwise decoder)
    probe        whether this host's u8s8 sums saturate (measured; QuantConfig.u8s8)
    outliers     the encoder MLPs' outlier channels, for rows and costed
    costs        the host's kernel cost table per granularity (measured once, cached)
    granular     every granularity simulated in PyTorch per group
    mixed        ONNX graphs with a granularity per group
    costed       plan "costed": the search with time as a cost (-> costs, granular, mixed)
    storage      the kept FP32 weights stored in FP16 where FP16 holds them exactly (every plan's output)
"""
from __future__ import annotations

from importlib import import_module

from .common import BuildContext, BuildReport  # noqa: F401 - the interface
from .config import PLANS, QuantConfig  # noqa: F401

MODULES = {"recipe": "recipe", "search": "recipe", "blockwise": "blockwise", "rows": "rows", "costed": "costed"}


def _module(plan: str):
    if plan not in MODULES:
        raise ValueError(f"INT8 plan must be one of {', '.join(MODULES)}, not {plan!r}")
    return import_module(f".{MODULES[plan]}", __name__)


def build(ctx: BuildContext) -> BuildReport:
    """Build ctx.cfg.plan's graphs into ctx.out_dir."""
    return _module(ctx.cfg.plan).build(ctx)


def describe(manifest: dict) -> str:
    """What the plan that built this manifest runs in which precision."""
    plan = (manifest.get("report", {}).get("plan") or {}).get("name") or manifest.get("quant", {}).get("plan", "recipe")
    return _module(plan).describe(manifest)
