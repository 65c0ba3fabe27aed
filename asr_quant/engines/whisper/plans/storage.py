"""How an INT8 plan's graphs store the FP32 weights they keep: in FP16 where FP16 holds them exactly.

Why: Whisper's weights here come from a float16 checkpoint (ct2.py), so every
weight a plan leaves in FP32 (its fp32 groups, an MLP's outlier channels,
the positional tables) holds FP16 values in 4 bytes. Stored as FP16 with a
Cast to FP32 in front, they take half the disk and no bit changes: ONNX
Runtime's constant folding (graph optimization level basic and above, which
every engine here uses) replaces Cast(initializer) with the FP32 initializer
when the session is made, so the products read the same FP32 tensor as before.

Only tensors that round-trip FP32 -> FP16 -> FP32 bit for bit are converted;
a scale, a smoothed weight or anything else FP16 would round stays FP32. This
runs on every INT8 plan's output (ort_artifacts), after the plan has written
and measured its graphs, so no plan repeats it.
"""
from __future__ import annotations

from pathlib import Path

MIN_ELEMENTS = 16384  # below this the Cast's bookkeeping outweighs the bytes (LayerNorm scales, biases)
SUFFIX = "_fp16"


def exactly_fp16(w) -> bool:
    """Whether FP16 holds every value of the FP32 array `w` exactly."""
    import numpy as np

    return bool(np.array_equal(w.astype(np.float16).astype(np.float32), w, equal_nan=True))


def store_exact_fp16(path: Path, min_elements: int = MIN_ELEMENTS) -> dict:
    """Rewrite the ONNX file at `path` in place: each FP32 initializer of at
    least `min_elements` values that FP16 holds exactly becomes an FP16
    initializer and a Cast node named like the FP32 tensor, so every consumer
    reads the same name. Returns {"tensors": n, "bytes_saved": b}."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    g = model.graph
    graph_inputs = {i.name for i in g.input}
    keep, casts, saved, n = [], [], 0, 0
    for init in g.initializer:
        if (init.data_type != TensorProto.FLOAT or init.name in graph_inputs
                or int(np.prod(init.dims, dtype=np.int64)) < min_elements):
            keep.append(init)
            continue
        w = numpy_helper.to_array(init)
        if not exactly_fp16(w):
            keep.append(init)
            continue
        keep.append(numpy_helper.from_array(w.astype(np.float16), init.name + SUFFIX))
        casts.append(helper.make_node("Cast", [init.name + SUFFIX], [init.name], name=init.name + "_to_fp32",
                                      to=TensorProto.FLOAT))
        saved += w.nbytes // 2
        n += 1
    if n:
        del g.initializer[:]
        g.initializer.extend(keep)
        nodes = casts + list(g.node)  # the Casts first: the graph stays topologically sorted
        del g.node[:]
        g.node.extend(nodes)
        onnx.save(model, str(path))
    return {"tensors": n, "bytes_saved": saved}
