"""Where INT8 loses agreement with FP32: Whisper's encoder and decoder quantized
apart, at each granularity, and weights rounded alone against activations
quantized alone, all on recorded speech, against the same graphs in FP32.

    python scripts/int8_ablation.py [--every 3] [--docs docs/int8-ablation.md]

Why: the INT8 plans differ in two places (the encoder's 1500-frame products
and the decoder's one-token products) and along two axes (the weight grid and
the activation grid); this measures each on its own so a plan is chosen for
what it costs and buys, not by guess. Every variant is a pair of ONNX graphs
run by the engines' own step loop (longform.transcribe_samples) in ONNX
Runtime; the reference is the same export unquantized (ORT-FP32), so every
difference is precision alone. Variants run interleaved clip by clip, their
order rotated (bench.run.rotated), with ORT-FP32 among them: time is the
median over clips of each variant's decode time over ORT-FP32's on that clip.
The Pareto front is the variants no other beats on both time and agreement.

Granularities (what each product's int8 scales cover):
    tensor   the recipe's dynamic INT8: one activation scale per call, one weight scale per output column
    row      one activation scale per row (frame or token), one weight scale per output column (plans/rowwise.py)
    b16/b32/b128   MatMulNBits 8-bit blocks of 16/32/128 inputs on weights and activations (accuracy level 4)
    fp32     not quantized
    sqA      SmoothQuant folded with alpha A (plans/smooth.py, scales from 8 packaged calibration clips), then tensor
Studies ("weights alone" / "activations alone"): the FP32 graph with only the
weights rounded to a grid, or only the activations rounded (weights FP32).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from asr_quant import audio, host, metrics  # noqa: E402
from asr_quant.bench import corpus, prompts  # noqa: E402
from asr_quant.bench.run import rotated  # noqa: E402

ENCODER = ("tensor", "row", "b16", "b32", "b128", "fp32")
DECODER = ("tensor", "row", "b16", "fp32")
DEFAULT_VARIANTS = ("tensor/tensor", "tensor/b16", "row/tensor", "row/b16", "b128/b16", "b32/b16", "b16/b16",
                    "b16/tensor", "fp32/b16", "row/fp32", "wts-channel/fp32", "acts-tensor/fp32", "acts-row/fp32")


def fake_quant_weights(model, block: int | None) -> int:
    """Round every constant MatMul weight to symmetric int8 (per output column, or
    per block of `block` inputs), keep it FP32: the weights-alone study."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    n = 0
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[1] in inits:
            t = inits[node.input[1]]
            w = numpy_helper.to_array(t).astype(np.float32)
            k = w.shape[0]
            b = block or k
            wb = w.reshape(k // b, b, -1) if k % b == 0 else w[None]
            s = np.maximum(np.abs(wb).max(axis=1, keepdims=True), 1e-12) / 127
            t.CopyFrom(numpy_helper.from_array((np.clip(np.rint(wb / s), -127, 127) * s).reshape(w.shape)
                                               .astype(np.float32), t.name))
            n += 1
    return n


def fake_quant_activations(model, per_row: bool) -> int:
    """Round the input of every constant-weight MatMul to int8 (one dynamic uint8
    scale per call as the recipe does, or symmetric per row), weights FP32."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {i.name for i in g.initializer}
    g.initializer.extend([numpy_helper.from_array(np.float32(1 / 127), "fq_inv127"),
                          numpy_helper.from_array(np.float32(1e-12), "fq_tiny")])
    done: dict[str, str] = {}
    out = []
    for node in g.node:
        if node.op_type == "MatMul" and node.input[1] in inits:
            x = node.input[0]
            if x not in done:
                p = x.replace("/", "_").replace(":", "_") + "_fq"
                if per_row:
                    out += [helper.make_node("Abs", [x], [p + "a"]),
                            helper.make_node("ReduceMax", [p + "a"], [p + "m"], axes=[-1], keepdims=1),
                            helper.make_node("Mul", [p + "m", "fq_inv127"], [p + "s0"]),
                            helper.make_node("Max", [p + "s0", "fq_tiny"], [p + "s"]),
                            helper.make_node("Div", [x, p + "s"], [p + "d"]),
                            helper.make_node("Round", [p + "d"], [p + "r"]),
                            helper.make_node("Mul", [p + "r", p + "s"], [p + "y"])]
                else:
                    out += [helper.make_node("DynamicQuantizeLinear", [x], [p + "q", p + "s", p + "z"]),
                            helper.make_node("DequantizeLinear", [p + "q", p + "s", p + "z"], [p + "y"])]
                done[x] = p + "y"
            node.input[0] = done[x]
        out.append(node)
    del g.node[:]
    g.node.extend(out)
    return len(done)


def write_side(kind: str, fp32: Path, out: Path, decoder: bool) -> None:
    """One graph at one granularity (or a study) from its FP32 export."""
    import shutil

    import onnx

    from asr_quant.engines.whisper.plans import blockwise, recipe, rowwise

    if kind == "fp32":
        shutil.copy(fp32, out)
    elif kind == "tensor":
        recipe.quantize_dynamic_graph(fp32, out, per_channel=True)
        if decoder:
            recipe.share_embedding(out)
    elif kind == "row":  # in the decoder the output projection too; its lookup keeps the FP32 table (a study)
        rowwise.quantize(fp32, out)
    elif kind.startswith("b"):
        blockwise.quantize(fp32, out, int(kind[1:]))
        if decoder:
            blockwise.share_embedding(out)
    elif kind.startswith("wts-") or kind.startswith("acts-"):
        model = onnx.load(str(fp32))
        if kind == "wts-channel":
            fake_quant_weights(model, None)
        elif kind.startswith("wts-b"):
            fake_quant_weights(model, int(kind[5:]))
        else:
            fake_quant_activations(model, per_row=kind == "acts-row")
        onnx.save(model, str(out))
    else:
        raise SystemExit(f"unknown granularity {kind!r}")


def smoothed_fp32(bundle, alpha: float, work: Path) -> Path:
    """The FP32 export of a copy of the model with SmoothQuant folded into its encoder (plans/smooth.py)."""
    import copy

    from asr_quant.engines.whisper import calibration, features, onnx_export
    from asr_quant.engines.whisper.ort_artifacts import _prompt_fn
    from asr_quant.engines.whisper.plans import smooth

    folder = work / f"sq{alpha:g}-fp32"
    if not (folder / "encoder.onnx").exists():
        model = copy.deepcopy(bundle.hf_model)
        prompt = _prompt_fn(bundle.tokens)
        batches = [(features.windows(a, bundle.n_mels)[0].mel, prompt(u.text, u.language)[0])
                   for u, a in calibration.calibration_clips(8)]
        smooth.fold(model, smooth.input_amax(model, batches, smooth.linears(model)), {"encoder": alpha})
        onnx_export.export(model, folder)
    return folder / "encoder.onnx"


def clips(every: int, speech: Path) -> list:
    utts = corpus.thin(prompts.builtin_es(), every)
    if speech.is_dir():
        utts += corpus.read_folder(speech)
    return [(u, audio.load(str(u.path), max_s=None).samples) for u in utts]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, default=3, help="every n-th Spanish prompt (default 3)")
    ap.add_argument("--speech", default=str(REPO.parent / "shared" / "speech"), help="a folder of recordings too")
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help="encoder/decoder pairs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--work", default="int8_ablation_out", help="graphs and per-clip results")
    ap.add_argument("--docs", default=None, help="write the table into this markdown file")
    ap.add_argument("--section", default="GENERATED", help="the marked block of --docs to write (BEGIN/END <section>)")
    a = ap.parse_args(argv)
    logging.getLogger().setLevel(logging.ERROR)
    from asr_quant.engines.whisper import load_bundle, longform, onnx_export
    from asr_quant.engines.whisper.ort_engine import OrtStepModel
    from asr_quant.settings import Settings

    bundle = load_bundle("base", a.cache_dir or Settings().cache_dir)
    work = Path(a.work)
    fp32 = work / "fp32"
    if not (fp32 / "decoder.onnx").exists():
        onnx_export.export(bundle.hf_model, fp32)
    d = onnx_export.dims(bundle.hf_model.config)
    names = ["ORT-FP32"] + [v for v in a.variants.split(",") if v]
    models = {}
    for v in names:
        folder = work / v.replace("/", "__")
        if v == "ORT-FP32":
            folder = fp32
        elif not (folder / "decoder.onnx").exists():
            folder.mkdir(parents=True, exist_ok=True)
            enc, dec = v.split("/")
            if enc.startswith("sq"):
                write_side("tensor", smoothed_fp32(bundle, float(enc[2:]), work), folder / "encoder.onnx", decoder=False)
            else:
                write_side(enc, fp32 / "encoder.onnx", folder / "encoder.onnx", decoder=False)
            write_side(dec, fp32 / "decoder.onnx", folder / "decoder.onnx", decoder=True)
        models[v] = OrtStepModel(folder / "encoder.onnx", folder / "decoder.onnx", ("CPUExecutionProvider",),
                                 a.threads, d)
    data = clips(a.every, Path(a.speech))
    res: dict[str, list[dict]] = {v: [] for v in names}
    for v in names:  # one untimed call each: first-call allocations and prepacking are not a variant's cost
        longform.transcribe_samples(models[v], data[0][1], bundle.tokens, data[0][0].language)
    for i, (u, samples) in enumerate(data):
        for v in rotated(names, i):
            t = time.perf_counter()
            r = longform.transcribe_samples(models[v], samples, bundle.tokens, u.language)
            res[v].append({"text": r.text, "s": time.perf_counter() - t, "enc": r.encoder_s})
        print(f"{i + 1}/{len(data)}", end="\r", file=sys.stderr, flush=True)
    (work / "results.json").write_text(json.dumps({"clips": [Path(u.path).name for u, _ in data], "results": res}))
    rows = []
    ref = res["ORT-FP32"]
    for v in names[1:]:
        same = sum(metrics.normalize(x["text"], u.language) == metrics.normalize(y["text"], u.language)
                   for (u, _), x, y in zip(data, res[v], ref))
        ratio = float(np.median([x["s"] / y["s"] for x, y in zip(res[v], ref)]))
        enc = float(np.median([x["enc"] / y["enc"] for x, y in zip(res[v], ref)]))
        rows.append({"variant": v, "identical": same, "n": len(data), "time": ratio, "encoder": enc})
    front = {r["variant"] for r in rows if r["variant"].split("/")[0] not in ("wts-channel", "acts-tensor", "acts-row")
             and not any(o is not r and o["identical"] >= r["identical"] and o["time"] <= r["time"]
                         and (o["identical"] > r["identical"] or o["time"] < r["time"]) for o in rows
                         if o["variant"].split("/")[0] not in ("wts-channel", "acts-tensor", "acts-row"))}
    isa = host.detect()
    lines = [f"Run on {isa.describe()}, ONNX Runtime, {a.threads} threads; {len(data)} recorded clips "
             f"(every {a.every}th Spanish prompt of Debian's asterisk-core-sounds-es and the recordings in {a.speech}); "
             f"reference: the same export in FP32 (ORT-FP32).", "",
             "| encoder / decoder | identical to ORT-FP32 | time / ORT-FP32 (median per clip) | encoder time / ORT-FP32 | Pareto front |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['identical']}/{r['n']} ({r['identical'] / r['n']:.0%}) | {r['time']:.2f}x | "
                     f"{r['encoder']:.2f}x | {'yes' if r['variant'] in front else ''} |")
    table = "\n".join(lines)
    print(table)
    if a.docs:
        cmd = "python scripts/int8_ablation.py " + " ".join(argv if argv is not None else sys.argv[1:])
        doc = Path(a.docs)
        begin, end = f"<!-- BEGIN {a.section} -->", f"<!-- END {a.section} -->"
        text = doc.read_text() if doc.exists() else "# INT8 ablation\n"
        if begin not in text:
            text = text.rstrip() + f"\n\n{begin}\n{end}\n"
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        doc.write_text(f"{head}{begin}\nGenerated {time.strftime('%Y-%m-%d')} by `{cmd}`.\n\n{table}\n{end}{tail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
