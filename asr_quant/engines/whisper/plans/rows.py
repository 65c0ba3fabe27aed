"""INT8 plan "rows": the encoder's products scaled per frame, the decoder in blocks.

Why this split (docs/int8-plans.md has the ablation that shows it):
- The encoder's time is its 1500-frame products, and only the u8s8 GEMM
  behind MatMulInteger runs those fast (MatMulNBits' block kernels run them
  at FP32 speed or slower: scripts/int8_kernels.py). The recipe's one scale
  per tensor is what loses agreement there; one scale per frame (rowwise.py)
  keeps that GEMM and most of the agreement.
- The MLPs' GELU outputs have a few hidden channels 100x louder than the
  rest, within a frame too: those channels stay FP32, as in the recipe
  (onnx_export._SplitMLP, found on packaged calibration speech).
- The decoder multiplies one token at a time, where MatMulNBits' 8-bit
  blocks of 16 are as fast as MatMulInteger and much closer to FP32 (blocks
  on both sides); its token table is stored once in those blocks.

Where MLAS's u8s8 kernel adds pairs of u8 x s8 products in 16 bits
(`vpmaddubsw`: a CPU without VNNI, host.Isa.vnni false, or wherever probe.py
measures it), sums saturate for |w| > 63 when activations use the full uint8
range; there the encoder's weights are rounded to 7 bits (ONNX Runtime's
`reduce_range`), so no sum can saturate.
"""
from __future__ import annotations

import time
from dataclasses import asdict

from . import blockwise, rowwise
from .common import FIXED, BuildContext, BuildReport, Plan, finished, holdout, measure_built, measured_sentence
from .outliers import encoder_outliers
from .sensitivity import groups

DECODER_BLOCK = 16
QMAX_7BIT = 63  # |w| <= 63: 2 x 255 x 63 < 2^15, no saturation in vpmaddubsw's 16-bit pair sums


def weight_qmax(isa: str, u8s8: str = "exact") -> int:
    """The encoder's weight grid for an instruction-set level (host.LEVELS) and
    what the probe measured of this host's u8s8 sums (QuantConfig.weight_qmax)."""
    from .config import QuantConfig

    return QuantConfig(plan="rows", isa=isa, u8s8=u8s8).weight_qmax


def rows_plan(hf_model, outliers) -> Plan:
    gs = groups(hf_model)
    levels = {g.name: ("split" if g.kind == "mlp" and g.side == "encoder" and outliers else "int8") for g in gs}
    levels.update(FIXED)
    return Plan("rows", levels)


def build(ctx: BuildContext) -> BuildReport:
    """Export (MLP outlier channels apart), the encoder per row, the decoder in
    blocks of 16 with the token table shared, measured on the hold-out clips."""
    from .. import onnx_export

    hf_model, out_dir, cfg, say = ctx.hf_model, ctx.out_dir, ctx.cfg, ctx.say
    t0 = time.perf_counter()
    secs: dict[str, float] = {}
    report = BuildReport(encoder="rows", decoder="blockwise", fc2="fp32")
    work = out_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    outliers = encoder_outliers(ctx, report, "encoder fc2 per row with no channel apart")
    secs["outliers"] = time.perf_counter() - t0
    samples = holdout(cfg, ctx.features, ctx.prompt, None, report, say)
    report.plan = asdict(rows_plan(hf_model, outliers))
    t = time.perf_counter()
    say("exporting ONNX")
    enc32, dec32 = onnx_export.export(hf_model, work, outliers=outliers)  # the split encoder is the same function
    secs["export"] = time.perf_counter() - t
    t = time.perf_counter()
    say("quantizing the encoder (per row) and the decoder (blocks)")
    enc8, dec8 = out_dir / "encoder.onnx", out_dir / "decoder.onnx"
    qmax = cfg.weight_qmax
    report.dynamic_nodes = rowwise.quantize(enc32, enc8, lambda name: "_outliers" not in name, qmax=qmax)
    report.fp32_nodes = [f"encoder layers.{i}/mlp/fc{k}_outliers" for i in range(len(outliers["encoder"]))
                         for k in (1, 2)] if outliers else []
    report.decoder_nodes = blockwise.quantize(dec32, dec8, DECODER_BLOCK)
    blockwise.share_embedding(dec8)
    secs["quantize"] = time.perf_counter() - t
    report.reason += (f"encoder per row with {'8' if qmax == rowwise.QMAX else '7'}-bit weights (instruction set "
                      f"{cfg.isa}, u8s8 sums {cfg.u8s8}), decoder in blocks of {DECODER_BLOCK}")
    measure_built(report, "rows", (enc32, dec32), (enc8, dec8), samples, cfg, onnx_export.dims(hf_model.config),
                  ctx.threads, say, secs)
    return finished(report, secs, t0, work)


def describe(manifest: dict) -> str:
    """What runs in which precision, for `EngineInfo.details`."""
    r, q = manifest["report"], manifest["quant"]
    bits = "8-bit" if weight_qmax(q["isa"], q.get("u8s8", "exact")) == rowwise.QMAX else "7-bit"
    split = (f"; each encoder MLP's {q['outlier_channels']} outlier hidden channels (found on {r['outlier_clips']} "
             f"synthesized clips) computed apart in FP32" if r.get("fc2") == "split" else "")
    return (f"Plan 'rows': encoder weight products ({r['dynamic_nodes']}) in INT8 with one activation scale per "
            f"frame (symmetric) and {bits} weights with one scale per output channel (MatMulIntegerToFloat, the "
            f"u8s8 GEMM){split}; decoder weight products ({r['decoder_nodes']}) as MatMulNBits, 8-bit blocks of "
            f"{DECODER_BLOCK} inputs on weights and activations (accuracy level 4); token table stored once in those "
            f"blocks; built for instruction set {q['isa']} (u8s8 sums measured {q.get('u8s8', 'exact')}); FP32: convolutions, LayerNorm, attention scores/softmax."
            + measured_sentence((r.get("plan") or {}).get("measured") or {}))
