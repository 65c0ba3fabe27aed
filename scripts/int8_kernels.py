"""How fast this machine's ONNX Runtime runs the matrix products behind each INT8 plan.

    python scripts/int8_kernels.py [--threads 2] [--rounds 12]

Why: the two Whisper INT8 plans trade agreement with FP32 against speed, and
the trade is set by kernels, not by the plans. The recipe's MatMulInteger
(one activation scale per call, one weight scale per column) is ONNX Runtime's
fast u8s8 GEMM; the blockwise plan's MatMulNBits (8-bit weights and int8
activations in blocks of 16 inputs, accuracy level 4) runs whatever MLAS has
for this CPU. Each product here is one weight MatMul of Whisper base at the
shapes the engine runs: the encoder's MLP over 1500 frames and the decoder's
MLP and output projection for one token. Products run interleaved, their
order a new row of a balanced Latin square every round, in the engines' own session options; the table
gives median milliseconds and the ratio to FP32 on the same shape.

Per row is a third way, not a plan: activations scaled per frame
(QuantizeLinear per axis) into the same u8s8 GEMM (MatMulIntegerToFloat),
then one Mul for the row scales: the encoder products of plan "rows" (plans/rowwise.py). Measured in docs/int8-plans.md.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from asr_quant.bench.run import rotated  # noqa: E402
from asr_quant.engines import runtime_policy  # noqa: E402
from asr_quant.engines.whisper.plans import costs  # noqa: E402 - the plans' own graph writers
from asr_quant.engines.whisper.plans.config import QuantConfig  # noqa: E402

# (name, rows, inputs, outputs): Whisper base, one 30 s window / one decoded token
SHAPES = [("encoder fc1", 1500, 512, 2048), ("encoder fc2", 1500, 2048, 512),
          ("decoder fc1, one token", 1, 512, 2048), ("output projection, one token", 1, 512, 51865)]
KERNELS = ("FP32 MatMul", "recipe: MatMulInteger", "per row: MatMulIntegerToFloat",
           "blockwise: MatMulNBits, blocks of 16", "MatMulNBits, blocks of 128")


def models(w: np.ndarray, m: int, tmp: Path) -> dict:
    """One graph per kernel of KERNELS, all computing x @ w."""
    qmax = QuantConfig().weight_qmax  # 7-bit weights where this host's u8s8 sums saturate (plans/probe.py)
    return dict(zip(KERNELS, (costs.fp32_model(w, m), costs.tensor_model(w, m, tmp, qmax),
                              costs.row_model(w, m, qmax), costs.blocks_model(w, m, 16),
                              costs.blocks_model(w, m, 128))))


def measure(shapes, threads: int, rounds: int, tmp: Path, seed: int = 0) -> list[dict]:
    """Per shape and kernel: median ms over `rounds`, kernels interleaved and
    rotated; and the output's RMS error relative to FP32's (a check that every
    graph computes the same product)."""
    import onnxruntime as ort

    rng = np.random.default_rng(seed)
    rows = []
    for name, m, k, n in shapes:
        w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
        x = rng.standard_normal((1, m, k)).astype(np.float32)
        so = runtime_policy.ort_session_options(threads)
        sessions = {kn: ort.InferenceSession(g.SerializeToString(), so, providers=["CPUExecutionProvider"])
                    for kn, g in models(w, m, tmp).items()}
        ref = x @ w
        times: dict[str, list[float]] = {kn: [] for kn in sessions}
        err = {}
        for kn, s in sessions.items():  # warm-up, and the check
            y = s.run(None, {"X": x})[0]
            err[kn] = float(np.sqrt(np.mean((y - ref) ** 2)) / np.sqrt(np.mean(ref ** 2)))
        names = list(sessions)
        for r in range(rounds):
            for kn in rotated(names, r):
                t = time.perf_counter()
                sessions[kn].run(None, {"X": x})
                times[kn].append(time.perf_counter() - t)
        fp32 = float(np.median(times[KERNELS[0]]))
        for kn in names:
            med = float(np.median(times[kn]))
            rows.append({"shape": name, "m": m, "k": k, "n": n, "kernel": kn, "ms": med * 1000,
                         "vs_fp32": med / fp32, "rel_error": err[kn]})
    return rows


def table(rows: list[dict]) -> str:
    out = ["| product (rows x inputs -> outputs) | kernel | median ms | vs FP32 | output error vs FP32 (RMS) |",
           "|---|---|---|---|---|"]
    out += [f"| {r['shape']} ({r['m']} x {r['k']} -> {r['n']}) | {r['kernel']} | {r['ms']:.2f} | "
            f"{r['vs_fp32']:.2f}x | {r['rel_error']:.2%} |" for r in rows]
    return "\n".join(out)


def main(argv=None) -> int:
    import tempfile

    import onnxruntime as ort

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=12)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(SHAPES, args.threads, args.rounds, Path(tmp))
    print(f"ONNX Runtime {ort.__version__}, {args.threads} threads, {args.rounds} rounds, interleaved, order balanced (Williams)\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
