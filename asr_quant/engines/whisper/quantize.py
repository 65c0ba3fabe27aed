"""INT8 Whisper graphs with onnxruntime.quantization, chosen by measured error.

Recipe (each step answers a measured problem, see issue 3):
- Encoder, "static": `quant_pre_process`, then static PTQ in QDQ format
  calibrated on synthesized speech (calibration.py), restricted to MatMul and
  Gemm (pre-processing fuses MatMul+Add into Gemm) with constant weights only.
- Encoder, "dynamic": every weight MatMul as MatMulInteger, activation scales
  computed per call.
- Decoder: always dynamic (per-token activations are tiny and varied), with
  per-channel weight scales. Its one token table (see onnx_export.py) is
  quantized once and shared by the output projection and the embedding lookup,
  so it is stored once, in INT8.
- Both graphs keep the `fc2` layers in FP32: the GELU outputs they read have
  outlier channels that wreck a per-tensor activation scale, static or
  dynamic. Measured one module type at a time on hold-out clips (mean KL of
  next-token distributions vs FP32): decoder fc2 0.10 (layer 2 alone 0.097),
  encoder fc2 0.028 (dynamic), every other module type <= 0.005.
- mode "auto" builds both encoders and keeps the one whose full INT8 model
  (with the INT8 decoder) is closer to FP32 on hold-out clips, measured as the
  mean KL divergence of next-token distributions under teacher forcing. The
  figures and the choice are written into the artifact's manifest.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from . import calibration
from . import onnx_export

RECIPE_VERSION = 2  # bump when the recipe changes so old caches become misses
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantConfig:
    """How the INT8 engine is built; every field is part of the cache key."""

    mode: str = "auto"  # encoder: "static" | "dynamic" | "auto" (keep whichever measures closer to FP32)
    calib_size: int = 16  # calibration clips for static quantization
    calib_method: str = "minmax"  # "minmax" | "percentile" | "entropy"
    per_channel: bool = True  # per-output-channel weight scales (static encoder)
    op_types: tuple[str, ...] = ("MatMul", "Gemm")  # static encoder op types
    keep_fp32: tuple[str, ...] = ("fc2",)  # module names left in FP32 in both graphs
    holdout_size: int = 4  # clips used to measure static vs dynamic (mode "auto")

    def __post_init__(self):
        if self.mode not in ("auto", "static", "dynamic"):
            raise ValueError(f"quantization mode must be auto, static or dynamic, not {self.mode!r}")
        if self.calib_method not in ("minmax", "percentile", "entropy"):
            raise ValueError(f"calibration method must be minmax, percentile or entropy, not {self.calib_method!r}")
        if self.mode != "dynamic" and not 1 <= self.calib_size <= len(calibration.CALIBRATION):
            raise ValueError(f"calib_size must be 1..{len(calibration.CALIBRATION)}, not {self.calib_size}")

    def key(self, model_sha256: str) -> str:
        """Cache key: model weights + recipe + these settings."""
        blob = json.dumps({"sha": model_sha256, "recipe": RECIPE_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class BuildReport:
    """What was built and why; saved as manifest.json beside the graphs."""

    encoder: str  # "static" | "dynamic"
    decoder: str = "dynamic"
    measured: dict = field(default_factory=dict)  # variant -> {"kl": .., "top1": ..}
    reason: str = ""
    static_nodes: int = 0  # encoder
    dynamic_nodes: int = 0  # encoder
    decoder_nodes: int = 0
    fp32_nodes: list[str] = field(default_factory=list)  # weight MatMul/Gemm left in FP32, both graphs
    seconds: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- pieces

def _session(path: Path, threads: int = 2):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _reader(mels: list[np.ndarray]):
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter([{"mel": m} for m in mels])

        def get_next(self):
            return next(self._it, None)

    return _Reader()


def _matches(node_name: str, modules: Iterable[str]) -> bool:
    return any(f"/{m}/" in node_name or node_name.endswith(f"/{m}") for m in modules)


def _weight_nodes(path: Path, op_types: Iterable[str]) -> list:
    """Nodes of these types whose second input is a constant weight."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    return [n for n in graph.node if n.op_type in op_types and len(n.input) > 1 and n.input[1] in inits]


def quantize_encoder_static(fp32: Path, out: Path, mels: list[np.ndarray], cfg: QuantConfig, work: Path) -> tuple[int, list[str]]:
    """Static QDQ encoder. Returns (quantized nodes, weight nodes left in FP32)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static

    pre = work / "encoder.pre.onnx"
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=False)
    weighted = _weight_nodes(pre, cfg.op_types)
    keep = [n.name for n in weighted if _matches(n.name, cfg.keep_fp32)]
    method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
              "entropy": CalibrationMethod.Entropy}[cfg.calib_method]
    quantize_static(
        str(pre), str(out), _reader(mels),
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
        extra_options={"MatMulConstBOnly": True},
    )
    return len(weighted) - len(keep), keep


def quantize_dynamic_graph(fp32: Path, out: Path, per_channel: bool = False,
                           keep_fp32: Iterable[str] = ()) -> tuple[int, list[str]]:
    """Weight MatMuls -> MatMulInteger, but those in `keep_fp32` modules.
    Returns (quantized nodes, nodes left in FP32)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weighted = _weight_nodes(fp32, ["MatMul"])
    keep = [n.name for n in weighted if _matches(n.name, keep_fp32)]
    todo = [n.name for n in weighted if n.name not in keep]
    if not todo:  # an empty list would mean "everything" to quantize_dynamic
        raise ValueError(f"nothing to quantize in {fp32.name}: every weight MatMul is kept in FP32")
    quantize_dynamic(str(fp32), str(out), op_types_to_quantize=["MatMul"], per_channel=per_channel,
                     nodes_to_quantize=todo, weight_type=QuantType.QInt8, extra_options={"MatMulConstBOnly": True})
    return len(todo), keep


def share_embedding(path: Path) -> None:
    """Point the decoder's token lookup at the INT8 table the output projection
    already uses (Gather of int8 columns, then DequantizeLinear with the
    gathered per-column scales), and drop the FP32 copy. Saves ~100 MB for base."""
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


# --------------------------------------------------------------------------- measure

def _prompt_logits(enc_sess, dec_sess, mel: np.ndarray, tokens: list[int], d: dict) -> np.ndarray:
    """Teacher-forced logits [len(tokens), vocab] in one decoder call."""
    ck, cv = enc_sess.run(None, {"mel": mel})
    empty = np.zeros((d["n_layers"], 1, d["n_heads"], 0, d["head_dim"]), np.float32)
    logits, _, _ = dec_sess.run(None, {"tokens": np.asarray([tokens], np.int64), "self_k": empty, "self_v": empty,
                                       "cross_k": ck, "cross_v": cv})
    return logits[0]


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def compare(ref: np.ndarray, got: np.ndarray, first: int) -> tuple[float, float, int]:
    """(sum KL(ref || got), agreeing top-1 count, positions) from position `first` on."""
    lp, lq = _log_softmax(ref[first:]), _log_softmax(got[first:])
    kl = float((np.exp(lp) * (lp - lq)).sum(-1).sum())
    agree = int((ref[first:].argmax(-1) == got[first:].argmax(-1)).sum())
    return kl, agree, len(lp)


def measure(fp32: tuple[Path, Path], variants: dict[str, tuple[Path, Path]], samples: list[tuple[np.ndarray, list[int], int]],
            d: dict, threads: int = 2) -> dict[str, dict]:
    """Mean KL and top-1 agreement of each variant's next-token distributions
    against FP32, teacher-forced on (mel, tokens, first scored position)."""
    ref_enc, ref_dec = _session(fp32[0], threads), _session(fp32[1], threads)
    refs = [_prompt_logits(ref_enc, ref_dec, m, t, d) for m, t, _ in samples]
    del ref_enc, ref_dec
    out = {}
    for name, (enc, dec) in variants.items():
        es, ds = _session(enc, threads), _session(dec, threads)
        kl = agree = n = 0
        for (m, t, first), ref in zip(samples, refs):
            k, a, c = compare(ref, _prompt_logits(es, ds, m, t, d), first)
            kl, agree, n = kl + k, agree + a, n + c
        out[name] = {"kl": round(kl / max(n, 1), 5), "top1": round(agree / max(n, 1), 4), "positions": n}
    return out


# --------------------------------------------------------------------------- build

def build(hf_model, out_dir: Path, cfg: QuantConfig, features: Callable[[np.ndarray], np.ndarray],
          prompt: Callable[[str, str], tuple[list[int], int]], cache_dir: str | Path, threads: int = 2) -> BuildReport:
    """Export, quantize and (mode auto) choose; writes encoder.onnx, decoder.onnx
    and manifest.json into out_dir (the caller makes that atomic).

    features: audio float32 16 kHz -> mel [1, n_mels, 3000] (the engines' own).
    prompt: (text, language) -> (token ids: start sequence + text, index of the
    first scored position)."""
    t0 = time.perf_counter()
    secs = {}
    work = out_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    enc32, dec32 = onnx_export.export(hf_model, work)
    secs["export"] = time.perf_counter() - t0
    d = onnx_export.dims(hf_model.config)

    t = time.perf_counter()
    dec8 = out_dir / "decoder.onnx"
    n_dec, dec_fp32 = quantize_dynamic_graph(dec32, dec8, per_channel=True, keep_fp32=cfg.keep_fp32)
    share_embedding(dec8)
    secs["decoder"] = time.perf_counter() - t

    report = BuildReport(encoder=cfg.mode)
    candidates: dict[str, tuple[Path, Path]] = {}
    static_info: tuple[int, list[str]] = (0, [])
    dynamic_info: tuple[int, list[str]] = (0, [])
    if cfg.mode in ("static", "auto"):
        t = time.perf_counter()
        try:
            mels = [features(a) for _, a in calibration.calibration_clips(cfg.calib_size, cache_dir)]
        except calibration.CalibrationError as exc:
            if cfg.mode == "static":
                raise
            mels = None
            report.reason = f"no calibration speech ({exc}); "
        secs["calibration_audio"] = time.perf_counter() - t
        if mels is not None:
            t = time.perf_counter()
            enc_static = work / "encoder.int8-static.onnx"
            static_info = quantize_encoder_static(enc32, enc_static, mels, cfg, work)
            candidates["static"] = (enc_static, dec8)
            secs["encoder_static"] = time.perf_counter() - t
    if cfg.mode in ("dynamic", "auto"):
        t = time.perf_counter()
        enc_dyn = work / "encoder.int8-dynamic.onnx"
        dynamic_info = quantize_dynamic_graph(enc32, enc_dyn, per_channel=cfg.per_channel, keep_fp32=cfg.keep_fp32)
        candidates["dynamic"] = (enc_dyn, dec8)
        secs["encoder_dynamic"] = time.perf_counter() - t

    if len(candidates) > 1 or cfg.holdout_size > 0:
        t = time.perf_counter()
        try:
            samples = []
            for utt, audio in calibration.holdout_clips(cfg.holdout_size, cache_dir):
                tokens, first = prompt(utt.text, utt.language)
                samples.append((features(audio), tokens, first))
            report.measured = measure((enc32, dec32), candidates, samples, d, threads)
        except calibration.CalibrationError as exc:
            report.reason += f"no hold-out speech ({exc}); "
        secs["measure"] = time.perf_counter() - t

    if len(candidates) == 1:
        choice = next(iter(candidates))
        report.reason += f"{choice} was requested"
    elif report.measured:
        choice = min(candidates, key=lambda k: (report.measured[k]["kl"], k))
        m = report.measured
        report.reason += (f"lower mean KL to FP32 on {cfg.holdout_size} hold-out clips: static {m['static']['kl']:.4f} "
                          f"(top-1 {m['static']['top1']:.1%}) vs dynamic {m['dynamic']['kl']:.4f} "
                          f"(top-1 {m['dynamic']['top1']:.1%})")
    else:
        choice = "dynamic"
        report.reason += "dynamic by default"
    report.encoder = choice
    if choice == "static":
        report.static_nodes, enc_fp32 = static_info
    else:
        report.dynamic_nodes, enc_fp32 = dynamic_info
    report.decoder_nodes = n_dec
    report.fp32_nodes = ["encoder" + n for n in enc_fp32] + ["decoder" + n for n in dec_fp32]
    candidates[choice][0].replace(out_dir / "encoder.onnx")
    secs["total"] = time.perf_counter() - t0
    report.seconds = {k: round(v, 2) for k, v in secs.items()}
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return report
