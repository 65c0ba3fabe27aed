"""INT8 Whisper graphs with onnxruntime.quantization, chosen by measured error.

Recipe (each step answers a measured problem, see issue 3):
- Encoder, "static": `quant_pre_process`, then static PTQ in QDQ format
  calibrated on synthesized speech (calibration.py), on the MatMul and Gemm
  nodes that multiply by a weight (pre-processing fuses MatMul+Add into Gemm),
  named one by one: in QDQ mode `MatMulConstBOnly` is not honoured, and the
  attention score/value MatMuls (softmax output in uint8) garble the text.
- Encoder, "dynamic": every weight MatMul as MatMulInteger, activation scales
  computed per call.
- Decoder: always dynamic (per-token activations are tiny and varied), with
  per-channel weight scales. Its one token table (see onnx_export.py) is
  quantized once and shared by the output projection and the embedding
  lookup, so it is stored once, in INT8.
- The `fc2` layers read GELU outputs with a few outlier channels (decoder
  layer 2: one channel at 184 where the median channel peaks at 0.17) that
  wreck a per-tensor activation scale, static or dynamic. Measured one module
  type at a time on hold-out clips (mean KL of next-token distributions vs
  FP32): decoder fc2 0.10 (layer 2 alone 0.097), encoder fc2 0.028 (dynamic)
  and 0.92 (static), every other module type <= 0.005. (Those figures came
  from one teacher-forced decoder call, which scales all tokens at once; as
  the engine decodes, one token per call, decoder layer 2's MLP alone costs
  0.0047, all from the start sequence's shared call, and 0.00005 split: see
  sensitivity.py.) SmoothQuant did not fix it (0.10 at alpha 0.5, worse at
  0.3 and 0.7). fc2="split" (default)
  finds each MLP's top `outlier_channels` hidden channels on the calibration
  clips and computes them apart in FP32 (onnx_export._SplitMLP), so the rest
  of fc1/fc2 is INT8; fc2="fp32" keeps the whole fc2 in FP32.
- mode "auto" builds both encoders and keeps the one whose full INT8 model
  (with the INT8 decoder) is closer to FP32 on hold-out clips, measured as the
  mean KL divergence of next-token distributions under teacher forcing, decoded
  step by step as the engine decodes (measure.py). The
  figures and the choice are written into the artifact's manifest.
- Plan "blockwise" (blockwise.py) replaces all of the above: both graphs'
  weight MatMuls as 8-bit MatMulNBits blocks with activations quantized per
  row and block, so there is nothing to calibrate, split or choose; it is
  measured on the hold-out clips like the recipe.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .. import calibration
from . import search
from .common import FIXED, BuildContext, BuildReport, Plan, counted, finished, holdout, measured_reason
from .config import OUTLIER_CLIPS, QuantConfig
from .measure import choose, measure
from .sensitivity import groups

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- pieces

def _reader(mels: list[np.ndarray], progress: Callable[[str], None] | None = None):
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter([{"mel": m} for m in mels])
            self._n = 0

        def get_next(self):
            item = next(self._it, None)
            if item is not None and progress is not None:  # the calibrator runs each clip as it asks for it
                self._n += 1
                progress(f"calibrating {self._n}/{len(mels)}")
            return item

    return _Reader()


def _matches(node_name: str, modules: Iterable[str]) -> bool:
    return any(f"/{m}/" in node_name or node_name.endswith(f"/{m}") for m in modules)


def _weight_nodes(path: Path, op_types: Iterable[str]) -> list:
    """Nodes of these types whose second input is a constant weight."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    return [n for n in graph.node if n.op_type in op_types and len(n.input) > 1 and n.input[1] in inits]


def quantize_encoder_static(fp32: Path, out: Path, mels: list[np.ndarray], cfg: QuantConfig, work: Path,
                            keep_fp32: Iterable[str] = (),
                            progress: Callable[[str], None] | None = None) -> tuple[int, list[str]]:
    """Static QDQ encoder. Returns (quantized nodes, weight nodes left in FP32)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static

    pre = work / "encoder.pre.onnx"
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=False)
    weighted = _weight_nodes(pre, cfg.op_types)
    keep = [n.name for n in weighted if _matches(n.name, keep_fp32)]
    method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
              "entropy": CalibrationMethod.Entropy}[cfg.calib_method]
    quantize_static(
        str(pre), str(out), _reader(mels, progress),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=list(cfg.op_types),
        per_channel=cfg.per_channel,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        # Named explicitly: in QDQ mode MatMulConstBOnly is not honoured, and the
        # attention score/value MatMuls (softmax output in uint8) garble the text.
        nodes_to_quantize=[n.name for n in weighted if n.name not in keep],
        calibrate_method=method,
        calibration_providers=["CPUExecutionProvider"],
        reduce_range=cfg.weight_qmax < 127,  # 7-bit weights where u8s8 pair sums saturate (probe.py)
        extra_options={"MatMulConstBOnly": True},
    )
    return len(weighted) - len(keep), keep


def quantize_dynamic_graph(fp32: Path, out: Path, per_channel: bool = False,
                           keep_fp32: Iterable[str] = (), reduce_range: bool = False) -> tuple[int, list[str]]:
    """Weight MatMuls -> MatMulInteger, but those in `keep_fp32` modules
    (`reduce_range`: 7-bit weights, where u8s8 pair sums saturate).
    Returns (quantized nodes, nodes left in FP32)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weighted = _weight_nodes(fp32, ["MatMul"])
    keep_fp32 = tuple(keep_fp32)  # module names, or initializer names (the token table)
    keep = [n.name for n in weighted if _matches(n.name, keep_fp32) or n.input[1] in keep_fp32]
    todo = [n.name for n in weighted if n.name not in keep]
    if not todo:  # an empty list would mean "everything" to quantize_dynamic
        raise ValueError(f"nothing to quantize in {fp32.name}: every weight MatMul is kept in FP32")
    quantize_dynamic(str(fp32), str(out), op_types_to_quantize=["MatMul"], per_channel=per_channel,
                     nodes_to_quantize=todo, weight_type=QuantType.QInt8, reduce_range=reduce_range,
                     extra_options={"MatMulConstBOnly": True})
    return len(todo), keep


def share_embedding(path: Path) -> None:
    """Point the decoder's token lookup at the INT8 table the output projection
    already uses (Gather of int8 columns, then DequantizeLinear with the
    gathered per-column scales), and drop the FP32 copy. Saves ~100 MB for base."""
    from .. import onnx_export
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    fp32 = onnx_export.EMBED_NAME
    q, s, z = fp32 + "_quantized", fp32 + "_scale", fp32 + "_zero_point"
    if q not in inits:
        raise RuntimeError(f"the output projection's INT8 table {q} is missing from {path.name}")
    per_column = len(inits[s].dims) == 1 and inits[s].dims[0] > 1
    for n in [n for n in g.node if n.op_type == "Gather" and n.input[0] == fp32]:
        axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
        if per_column and axis != 1:
            raise RuntimeError("per-column scales of the token table need the lookup to gather columns")
        ids, out = n.input[1], n.output[0]
        new = [helper.make_node("Gather", [q, ids], [out + "_int8"], name=n.name + "_int8", axis=axis)]
        if per_column:
            new += [helper.make_node("Gather", [s, ids], [out + "_scale"], name=n.name + "_scale", axis=0),
                    helper.make_node("Gather", [z, ids], [out + "_zp"], name=n.name + "_zp", axis=0),
                    helper.make_node("DequantizeLinear", [out + "_int8", out + "_scale", out + "_zp"], [out],
                                     name=n.name + "_dequant", axis=1)]
        else:
            new.append(helper.make_node("DequantizeLinear", [out + "_int8", s, z], [out], name=n.name + "_dequant"))
        idx = list(g.node).index(n)
        g.node.remove(n)
        for node in reversed(new):
            g.node.insert(idx, node)
    if any(fp32 in n.input for n in g.node):
        raise RuntimeError(f"{fp32} is still read by another node; cannot drop it")
    g.initializer.remove(inits[fp32])
    onnx.save(model, str(path))


def fc2_input_amax(hf_model, batches: list[tuple[np.ndarray, list[int]]]) -> dict[str, list]:
    """Per-channel max |x| of every fc2 input (the GELU outputs), encoder and
    decoder, over calibration clips run through the FP32 model with their own
    text teacher-forced (smooth.input_amax's hooks on the fc2 layers)."""
    from .smooth import input_amax

    sides = {"encoder": hf_model.model.encoder.layers, "decoder": hf_model.model.decoder.layers}
    found = input_amax(hf_model, batches, {f"{side}.{i}": layer.fc2 for side, layers in sides.items()
                                           for i, layer in enumerate(layers)})
    return {side: [found.get(f"{side}.{i}") for i in range(len(layers))] for side, layers in sides.items()}


def outlier_channels(amax: dict[str, list], k: int) -> dict[str, list]:
    """The k hidden channels of each MLP with the largest fc2 input |x|."""
    import torch

    return {side: [torch.sort(torch.topk(a, min(k, a.numel())).indices).values for a in layers]
            for side, layers in amax.items()}


# --------------------------------------------------------------------------- build

def recipe_plan(hf_model, outliers, outlier_k: int) -> Plan:
    """The fixed recipe as a plan: every group INT8, the MLPs split where
    outlier channels were found (else FP32, recipe.build's fallback). Not
    scored here: its error is what the build measures in ONNX Runtime."""
    gs = groups(hf_model)
    mlp = "split" if outliers else "fc2-fp32"  # recipe.build keeps fc2 FP32 when no outliers were found
    levels = {g.name: (mlp if g.kind == "mlp" else "int8") for g in gs}
    levels.update(FIXED)
    by_name = {g.name: g for g in gs}
    return Plan("recipe", levels, "", {}, sum(search.extra_bytes(by_name[k], v, outlier_k) for k, v in levels.items()))


def build(ctx: BuildContext) -> BuildReport:
    """Plans "recipe" and "search": export, quantize, plan and (mode auto)
    choose; writes encoder.onnx and decoder.onnx into out_dir (the caller adds
    the manifest and makes it atomic).

    features: audio float32 16 kHz -> mel [1, n_mels, 3000] (the engines' own).
    prompt: (text, language) -> (token ids: start sequence + text, index of the
    first scored position). progress: hears each step ("exporting ONNX", "calibrating 3/8").
    teacher: (mel, language) -> the same with FP32's own greedy tokens, which
    plan "search" scores and measures on (agreement with FP32 is its goal)."""
    from .. import onnx_export

    hf_model, out_dir, cfg, features, prompt = ctx.hf_model, ctx.out_dir, ctx.cfg, ctx.features, ctx.prompt
    cache_dir, threads, say, teacher = ctx.cache_dir, ctx.threads, ctx.say, ctx.teacher

    t0 = time.perf_counter()
    secs: dict[str, float] = {}
    report = BuildReport(encoder=cfg.mode)
    work = out_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    d = onnx_export.dims(hf_model.config)

    calib: list[tuple[np.ndarray, list[int]]] | None = None
    if cfg.mode != "dynamic" or cfg.fc2 == "split":
        say("making calibration speech")
        try:
            calib = [(features(a), prompt(u.text, u.language)[0])
                     for u, a in calibration.calibration_clips(max(cfg.calib_size, OUTLIER_CLIPS), cache_dir)]
        except calibration.CalibrationError as exc:
            if cfg.mode == "static":
                raise
            report.reason = f"no calibration speech ({exc}): dynamic, fc2 in FP32; "
        secs["calibration_audio"] = time.perf_counter() - t0

    t = time.perf_counter()
    samples = holdout(cfg, features, prompt, teacher if cfg.plan == "search" else None, report, say)
    secs["holdout"] = time.perf_counter() - t

    keep = cfg.keep_fp32
    outliers = None
    if cfg.fc2 == "split" and calib is not None:
        t = time.perf_counter()
        say("finding outlier channels")
        # Outlier channels are a property of the weights: the same few show on
        # any speech, so a few clips find them (they cost a full FP32 pass each).
        outliers = outlier_channels(fc2_input_amax(hf_model, calib[:OUTLIER_CLIPS]), cfg.outlier_channels)
        report.fc2 = "split"
        report.outlier_clips = len(calib[:OUTLIER_CLIPS])
        report.outliers = {side: [o.tolist() for o in layers] for side, layers in outliers.items()}
        secs["outliers"] = time.perf_counter() - t
    else:
        keep = ("fc2",)
    keep_enc = keep_dec = keep
    mode, share = cfg.mode, True
    if cfg.plan == "search" and not samples:  # nothing to score plans on: say so, build the recipe
        report.reason += "plan 'search' needs hold-out speech to score plans on; the recipe was built instead; "
    if cfg.plan == "search" and samples:
        t = time.perf_counter()
        say(f"measuring each group's INT8 sensitivity, then searching a plan for {cfg.budget}")
        plan, report.sensitivity = search.searched_plan(hf_model, samples, cfg, outliers)
        keep_enc, keep_dec, outliers, tokens_fp32 = search.onnx_keep(plan, outliers)
        share, mode = not tokens_fp32, "dynamic"  # the search's scores are of dynamic INT8
        secs["plan"] = time.perf_counter() - t
    else:
        plan = recipe_plan(hf_model, outliers, cfg.outlier_channels)
    report.plan = asdict(plan)
    t = time.perf_counter()
    say("exporting ONNX")
    enc32, dec32 = onnx_export.export(hf_model, work, outliers=outliers)
    secs["export"] = time.perf_counter() - t

    t = time.perf_counter()
    dec8 = out_dir / "decoder.onnx"
    say("quantizing the decoder")
    n_dec, dec_fp32 = quantize_dynamic_graph(dec32, dec8, per_channel=True, keep_fp32=keep_dec,
                                             reduce_range=cfg.weight_qmax < 127)
    if share:
        share_embedding(dec8)
    secs["decoder"] = time.perf_counter() - t

    candidates: dict[str, tuple[Path, Path]] = {}
    infos: dict[str, tuple[int, list[str]]] = {}
    if mode in ("static", "auto") and calib is not None:
        t = time.perf_counter()
        infos["static"] = quantize_encoder_static(enc32, work / "encoder.static.onnx", [m for m, _ in calib[:cfg.calib_size]],
                                                  cfg, work, keep_fp32=keep_enc, progress=say)
        candidates["static"] = (work / "encoder.static.onnx", dec8)
        secs["encoder_static"] = time.perf_counter() - t
    if mode in ("dynamic", "auto") or not candidates:
        t = time.perf_counter()
        say("quantizing the encoder (dynamic)")
        infos["dynamic"] = quantize_dynamic_graph(enc32, work / "encoder.dynamic.onnx", per_channel=cfg.per_channel,
                                                  keep_fp32=keep_enc, reduce_range=cfg.weight_qmax < 127)
        candidates["dynamic"] = (work / "encoder.dynamic.onnx", dec8)
        secs["encoder_dynamic"] = time.perf_counter() - t

    if samples:
        t = time.perf_counter()
        report.measured = measure((enc32, dec32), candidates, counted(samples, "measuring hold-out clips", say),
                                  d, threads)
        secs["measure"] = time.perf_counter() - t

    m = report.measured
    if len(candidates) == 1:
        choice = next(iter(candidates))
        report.reason += (f"{choice} was requested" if cfg.mode == choice else
                          f"{choice} (the searched plan)" if cfg.plan == "search" else f"{choice} only")
        if m:
            report.reason += measured_reason(m[choice], cfg.holdout_size)
    elif m:
        choice, why = choose(m)
        report.reason += f"{why} ({cfg.holdout_size} hold-out clips)"
    else:
        choice = "dynamic"
        report.reason += "dynamic by default"
    if m:
        report.plan["measured"] = {**m[choice], "teacher": report.holdout_tokens}
    report.encoder = choice
    n_enc, enc_fp32 = infos[choice]
    if choice == "static":
        report.static_nodes = n_enc
    else:
        report.dynamic_nodes = n_enc
    report.decoder_nodes = n_dec
    report.fp32_nodes = ["encoder" + n for n in enc_fp32] + ["decoder" + n for n in dec_fp32]
    candidates[choice][0].replace(out_dir / "encoder.onnx")
    return finished(report, secs, t0, work)


def describe(manifest: dict) -> str:
    """What runs in which precision, for `EngineInfo.details` (plans "recipe" and "search")."""
    r, q = manifest["report"], manifest["quant"]
    if r["encoder"] == "static":
        langs = ", ".join(manifest.get("calibration_languages") or []) or "?"
        enc = (f"encoder static INT8 on {r['static_nodes']} {'/'.join(q['op_types'])} nodes (QDQ, "
               f"{q['calib_method']} calibration on {q['calib_size']} packaged synthesized clips in {langs}, "
               f"{'per-channel' if q['per_channel'] else 'per-tensor'} weights)")
    else:
        enc = f"encoder dynamic INT8 on {r['dynamic_nodes']} MatMul nodes"
    if r["fc2"] == "split":
        fc2 = (f"MLPs INT8 except their {q['outlier_channels']} outlier hidden channels each (found on "
               f"{r.get('outlier_clips', '?')} synthesized clips), computed apart in FP32")
    else:
        fc2 = f"fc2 layers ({len(r['fp32_nodes'])}, outlier GELU activations) kept in FP32"
    plan = r.get("plan") or {}
    if plan.get("name") == "search":
        return (f"{enc}; decoder dynamic INT8 on {r['decoder_nodes']} MatMul nodes; FP32: convolutions, LayerNorm, "
                f"attention scores/softmax. " + search.describe_plan(plan))
    return (f"Plan 'recipe': {enc}; decoder dynamic INT8 on {r['decoder_nodes']} MatMul nodes; token table stored "
            f"once in INT8 (lookup + output projection); {fc2}; FP32: convolutions, LayerNorm, attention "
            f"scores/softmax. Encoder {r['encoder']}: {r['reason']}.")
