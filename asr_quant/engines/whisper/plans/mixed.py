"""An exported FP32 graph with each layer group's weight products at its own
granularity (plan "costed"), written by the plans' own writers: the recipe's
quantize_dynamic ("tensor"), rowwise.rewrite ("row", "row-split") and
MatMulNBits ("b16", "b32", "b128"); "fp32" and an MLP's outlier channels
under "row-split" are left as they are. Which node belongs to which group is
search.onnx_patterns, the names onnx_export writes."""
from __future__ import annotations

import logging
from pathlib import Path

from .recipe import _matches
from .search import _group, onnx_patterns


def node_options(model, graph: str, levels: dict[str, str]) -> dict[str, str]:
    """Weight MatMul node name -> option, for one graph ("encoder" | "decoder")."""
    from ..onnx_export import EMBED_NAME

    inits = {i.name for i in model.graph.initializer}
    out = {}
    for n in model.graph.node:
        if n.op_type != "MatMul" or n.input[1] not in inits:
            continue
        for name, option in levels.items():
            g = _group(name)
            if g.kind == "tokens":
                hit = graph == "decoder" and n.input[1] == EMBED_NAME
            else:
                hit = _matches(n.name, onnx_patterns(g).get(graph, []))
            if hit:
                out[n.name] = "fp32" if option == "row-split" and "_outliers" in n.name else option
                break
    return out


def write(fp32: Path, out: Path, graph: str, levels: dict[str, str], qmax: int, work: Path) -> dict[str, int]:
    """`fp32` -> `out` with every group at its option; returns nodes per option."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    from . import blockwise, rowwise
    from ..onnx_export import EMBED_NAME

    opts = node_options(onnx.load(str(fp32)), graph, levels)
    count: dict[str, int] = {}
    for o in opts.values():
        count[o] = count.get(o, 0) + 1
    src = fp32
    tensor = [n for n, o in opts.items() if o == "tensor"]
    if tensor:  # quantize_dynamic on file; an empty list would mean "everything"
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            quantize_dynamic(str(fp32), str(work / f"{graph}-tensor.onnx"), op_types_to_quantize=["MatMul"],
                             per_channel=True, nodes_to_quantize=tensor, weight_type=QuantType.QInt8,
                             reduce_range=qmax < 127, extra_options={"MatMulConstBOnly": True})
        finally:
            root.setLevel(level)
        src = work / f"{graph}-tensor.onnx"
    model = onnx.load(str(src))
    rows = {n for n, o in opts.items() if o in ("row", "row-split")}
    if rows:
        rowwise.rewrite(model, lambda name: name in rows, qmax)
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    for option in ("b16", "b32", "b128"):
        names = [n for n, o in opts.items() if o == option]
        if names:
            # nodes_to_include widens op_types_to_quantize rather than narrowing it: exclude the rest
            others = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.name not in names]
            q = MatMulNBitsQuantizer(model, bits=blockwise.BITS, block_size=int(option[1:]), is_symmetric=True,
                                     accuracy_level=blockwise.ACCURACY_LEVEL, op_types_to_quantize=("MatMul",),
                                     nodes_to_exclude=others)
            q.process()
            model = q.model.model
    onnx.save(model, str(out))
    tokens = levels.get("dec.tokens", "fp32")
    if graph == "decoder" and tokens.startswith("b") and any(i.name == EMBED_NAME for i in model.graph.initializer):
        blockwise.share_embedding(out)  # the lookup reads the output projection's blocks
    return count
