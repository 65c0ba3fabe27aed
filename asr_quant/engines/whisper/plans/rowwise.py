"""Weight products with one activation scale per row (per frame, per token).

Why: the recipe's dynamic INT8 scales a whole activation tensor at once, all
1500 encoder frames of a 30 s window together, so one loud frame coarsens
every other frame's grid. ONNX Runtime has no per-row dynamic quantizer, but
the fast u8s8 GEMM (MatMulIntegerToFloat, the kernel behind MatMulInteger)
takes any uint8 input: each row is divided by its own max |x| / 127 and
rounded to a symmetric int8 grid stored as uint8 + 128, multiplied by int8
weights with one scale per output column, and the row scales are multiplied
back into the FP32 result. A weight product becomes

    Abs -> ReduceMax(last axis) -> Mul(1/127) -> Max(tiny)      row scale s
    Div(x, s) -> QuantizeLinear(scale 1, zero point 128)          uint8 rows
    MatMulIntegerToFloat(q, Wq, 1, w_scale, 128, 0) -> Mul(s)      FP32 out

with the row scale and the uint8 rows computed once for all products that read
the same input (q/k/v read one LayerNorm). The extra elementwise passes cost
about 1.1x the recipe's time end to end (docs/int8-plans.md).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

QMAX = 127


def int8_columns(w: np.ndarray, qmax: int = QMAX) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output column on [-qmax, qmax]: (Wq [K, N] int8, scale [N] float32)."""
    scale = np.maximum(np.abs(w).max(axis=0), 1e-12).astype(np.float32) / qmax
    return np.clip(np.rint(w / scale), -qmax, qmax).astype(np.int8), scale


def rewrite(model, select: Callable[[str], bool], qmax: int = QMAX) -> int:
    """Every MatMul of `model` whose second input is a constant weight and whose
    node name `select`s becomes the per-row product above, in place (weights on
    [-qmax, qmax]: 63 where 16-bit pair sums could saturate). Returns how many
    were rewritten."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    todo = [n for n in g.node if n.op_type == "MatMul" and n.input[1] in inits and select(n.name)]
    if not todo:
        return 0
    consts = {"rq_inv127": np.float32(1.0 / QMAX), "rq_tiny": np.float32(1e-12), "rq_one": np.float32(1.0),
              "rq_zp": np.uint8(128)}
    g.initializer.extend(numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items())
    rows: dict[str, tuple[list, str, str]] = {}  # input name -> (nodes, uint8 rows, row scale)
    replaced: dict[int, list] = {}
    for n in todo:
        x = n.input[0]
        if x not in rows:
            p = f"{x}_rq".replace("/", "_").replace(":", "_")
            nodes = [helper.make_node("Abs", [x], [p + "_abs"], name=p + "_abs"),
                     helper.make_node("ReduceMax", [p + "_abs"], [p + "_max"], name=p + "_max", axes=[-1], keepdims=1),
                     helper.make_node("Mul", [p + "_max", "rq_inv127"], [p + "_s0"], name=p + "_s0"),
                     helper.make_node("Max", [p + "_s0", "rq_tiny"], [p + "_s"], name=p + "_s"),
                     helper.make_node("Div", [x, p + "_s"], [p + "_x"], name=p + "_div"),
                     helper.make_node("QuantizeLinear", [p + "_x", "rq_one", "rq_zp"], [p + "_q"], name=p + "_q")]
            rows[x] = (nodes, p + "_q", p + "_s")
            first = nodes
        else:
            first = []
        _, q, s = rows[x]
        w = numpy_helper.to_array(inits[n.input[1]])
        wq, ws = int8_columns(w.astype(np.float32), qmax)
        wn = n.input[1]
        g.initializer.extend([numpy_helper.from_array(wq, wn + "_rq_int8"), numpy_helper.from_array(ws, wn + "_rq_scale"),
                              numpy_helper.from_array(np.zeros(ws.shape, np.int8), wn + "_rq_zp")])
        y = n.output[0]
        replaced[id(n)] = first + [
            helper.make_node("MatMulIntegerToFloat", [q, wn + "_rq_int8", "rq_one", wn + "_rq_scale", "rq_zp",
                                                      wn + "_rq_zp"], [y + "_rq"], name=n.name + "_rq",
                             domain="com.microsoft"),
            helper.make_node("Mul", [y + "_rq", s], [y], name=n.name + "_rq_rows")]
    nodes = [m for n in g.node for m in replaced.get(id(n), [n])]
    del g.node[:]
    g.node.extend(nodes)
    used = {i for n in g.node for i in n.input}
    for name in {n.input[1] for n in todo} - used:  # the FP32 copies of rewritten weights
        g.initializer.remove(inits[name])
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return len(todo)


def quantize(fp32: Path, out: Path, select: Callable[[str], bool] = lambda name: True, qmax: int = QMAX) -> int:
    """`rewrite` from file to file. Returns how many products were rewritten."""
    import onnx

    model = onnx.load(str(fp32))
    n = rewrite(model, select, qmax)
    if n == 0:
        raise RuntimeError(f"no weight MatMul of {fp32.name} was selected for per-row INT8")
    onnx.save(model, str(out))
    return n
