"""INT8 plan "blockwise": 8-bit weights in blocks, activations quantized per row and block.

Why: the recipe's INT8 has two coarse scales. Each weight column has one
scale over all its 512 or 2048 inputs, and each activation tensor one scale
per call, over all 1500 encoder frames at once. Measured on 267 recorded clips
(docs/int8-plans.md), even FP32 activations on per-channel 8-bit weights
change the transcript on 13 % of clips. ONNX Runtime's `MatMulNBits` with
bits=8 stores each weight column in blocks of `block_size` inputs with one
scale per block, and at accuracy level 4 it quantizes the activations to int8
per row and per block at each call, then multiplies in integers. Both scales
are then local: an outlier channel or a loud frame spoils one block of one
row, not the tensor. No calibration speech is needed, and no outlier channels
are split out.

The cost is speed: MLAS's 8-bit block kernels are slower on this CPU than the
recipe's MatMulInteger (see the benchmark), and each block's FP32 scale adds
4 / block_size bytes a weight.

The token table is quantized once, by the output projection's MatMulNBits,
and the embedding lookup reads those same blocks (`share_embedding`), so the
table is stored once in 8 bits as in the recipe.

The CUDA recipe (cuda_recipe.py) writes its graphs with the same two
functions, at accuracy level 0 (FP32 activations: its CUDA kernel
dequantizes) and blocks of 128. `build` is the plan's part of
recipe.build.
"""
from __future__ import annotations

import logging
from pathlib import Path

from .common import FIXED, BuildContext, BuildReport, Plan, finished, holdout, measure_built, measured_sentence
from .sensitivity import groups

ACCURACY_LEVEL = 4  # MatMulNBits on the CPU: int8 activations, integer products (0 dequantizes to FP32)
BITS = 8


def quantize_model(model, block_size: int, accuracy_level: int | None = ACCURACY_LEVEL):
    """An ONNX model with every MatMul of a constant weight as MatMulNBits
    (8 bits, symmetric, blocks of `block_size` inputs); scripts/int8_kernels.py
    times the same kernel."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)  # a line a node
    q = MatMulNBitsQuantizer(model, bits=BITS, block_size=block_size, is_symmetric=True,
                             accuracy_level=accuracy_level, op_types_to_quantize=("MatMul",))
    q.process()
    return q.model.model


def quantize(fp32: Path, out: Path, block_size: int, accuracy_level: int | None = ACCURACY_LEVEL) -> int:
    """`quantize_model` from file to file. Returns how many nodes were quantized."""
    import onnx

    model = quantize_model(onnx.load(str(fp32)), block_size, accuracy_level)
    n = sum(node.op_type == "MatMulNBits" for node in model.graph.node)
    if n == 0:
        raise RuntimeError(f"no weight MatMul of {fp32.name} became MatMulNBits")
    onnx.save(model, str(out))
    return n


def share_embedding(path: Path) -> None:
    """Point the decoder's token lookup (Gather of columns of the FP32
    `embed_tokens_t`) at the output projection's packed INT8 table, then drop
    the FP32 table. Packed layout: [vocab, K/block, block] uint8, value
    q + 128 (symmetric 8-bit, MatMulNBits' default zero point), scales [vocab, K/block]."""
    from .. import onnx_export
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    fp32 = onnx_export.EMBED_NAME
    proj = [n for n in g.node if n.op_type == "MatMulNBits" and inits.get(n.input[1]) is not None
            and n.input[1].startswith(fp32)]
    if len(proj) != 1:
        raise RuntimeError(f"expected one MatMulNBits over {fp32}, found {len(proj)}")
    if len(proj[0].input) > 3 and proj[0].input[3]:
        raise RuntimeError("the token table has explicit zero points; the lookup assumes 128")
    packed, scales = proj[0].input[1], proj[0].input[2]
    vocab, n_blocks, block = inits[packed].dims
    d_model = int(inits[fp32].dims[0])
    if n_blocks * block != d_model:
        raise RuntimeError(f"d_model {d_model} is not a multiple of block {block}")
    consts = [numpy_helper.from_array(np.array([vocab, n_blocks], np.int64), "embed_q8_scale_shape"),
              numpy_helper.from_array(np.array([-1, d_model], np.int64), "embed_q8_row_shape"),
              numpy_helper.from_array(np.array(128.0, np.float32), "embed_q8_zero"),
              numpy_helper.from_array(np.array([-1], np.int64), "embed_q8_last_axis")]
    g.initializer.extend(consts)
    g.node.insert(0, helper.make_node("Reshape", [scales, "embed_q8_scale_shape"], ["embed_q8_scales_2d"],
                                      name="embed_q8_scales_2d"))

    def lookup(n) -> list:
        """One Gather of FP32 columns -> the same columns rebuilt from the packed table."""
        axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
        if axis != 1:
            raise RuntimeError("the token lookup must gather columns of embed_tokens_t (axis 1)")
        ids, out, p = n.input[1], n.output[0], n.name
        return [helper.make_node("Gather", [packed, ids], [p + "_q"], name=p + "_q", axis=0),
                helper.make_node("Gather", ["embed_q8_scales_2d", ids], [p + "_s"], name=p + "_s", axis=0),
                helper.make_node("Unsqueeze", [p + "_s", "embed_q8_last_axis"], [p + "_s3"], name=p + "_s3"),
                helper.make_node("Cast", [p + "_q"], [p + "_f"], name=p + "_f", to=TensorProto.FLOAT),
                helper.make_node("Sub", [p + "_f", "embed_q8_zero"], [p + "_c"], name=p + "_c"),
                helper.make_node("Mul", [p + "_c", p + "_s3"], [p + "_x"], name=p + "_x"),
                helper.make_node("Reshape", [p + "_x", "embed_q8_row_shape"], [p + "_rows"], name=p + "_rows"),
                helper.make_node("Transpose", [p + "_rows"], [out], name=p + "_t", perm=[1, 0])]

    nodes = [m for n in g.node for m in (lookup(n) if n.op_type == "Gather" and n.input[0] == fp32 else [n])]
    if any(fp32 in n.input for n in nodes):
        raise RuntimeError(f"{fp32} is still read by another node; cannot drop it")
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.remove(inits[fp32])
    onnx.save(model, str(path))


def extra_bytes(params: int, block_size: int) -> int:
    """Bytes above one a weight: each block's FP32 scale."""
    return 4 * params // block_size


def blockwise_plan(hf_model, block_size: int) -> Plan:
    """Plan "blockwise" (blockwise.py): every group but the convolutions in
    8-bit blocks; its extra bytes are the blocks' FP32 scales. Not scored here."""
    gs = groups(hf_model)
    levels = {g.name: "int8" for g in gs}
    levels.update(FIXED)
    return Plan("blockwise", levels, "", {}, sum(extra_bytes(g.params, block_size) for g in gs if levels[g.name] != "fp32"))


def build(ctx: BuildContext) -> BuildReport:
    """Plan "blockwise": export, both graphs' weight
    MatMuls to 8-bit blocks, the token table shared, measured on the hold-out
    clips (teacher-forced on the reference text, as the recipe is). Returns
    common.BuildReport."""
    from .. import onnx_export
    import time
    from dataclasses import asdict

    hf_model, out_dir, cfg, features, prompt = ctx.hf_model, ctx.out_dir, ctx.cfg, ctx.features, ctx.prompt
    threads, say = ctx.threads, ctx.say

    t0 = time.perf_counter()
    secs: dict[str, float] = {}
    report = BuildReport(encoder="blockwise", decoder="blockwise", fc2="blocks")
    work = out_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    samples = holdout(cfg, features, prompt, None, report, say)
    secs["holdout"] = time.perf_counter() - t0
    report.plan = asdict(blockwise_plan(hf_model, cfg.block_size))
    t = time.perf_counter()
    say("exporting ONNX")
    enc32, dec32 = onnx_export.export(hf_model, work, outliers=None)
    secs["export"] = time.perf_counter() - t
    t = time.perf_counter()
    say("quantizing the decoder and the encoder (blockwise)")
    enc8, dec8 = out_dir / "encoder.onnx", out_dir / "decoder.onnx"
    report.decoder_nodes = quantize(dec32, dec8, cfg.block_size)
    share_embedding(dec8)
    report.dynamic_nodes = quantize(enc32, enc8, cfg.block_size)
    secs["quantize"] = time.perf_counter() - t
    report.reason += f"blockwise, blocks of {cfg.block_size}"
    measure_built(report, "blockwise", (enc32, dec32), (enc8, dec8), samples, cfg, onnx_export.dims(hf_model.config),
                  threads, say, secs)
    return finished(report, secs, t0, work)


def describe(manifest: dict) -> str:
    """What runs in which precision, for `EngineInfo.details`."""
    r, q = manifest["report"], manifest["quant"]
    return (f"Plan 'blockwise': every weight MatMul ({r['dynamic_nodes']} in the encoder, {r['decoder_nodes']} in "
            f"the decoder) as MatMulNBits, 8-bit weights in blocks of {q['block_size']} inputs with one FP32 "
            f"scale each, activations quantized to int8 per row and block at each call (accuracy level 4); "
            f"token table stored once in those blocks (lookup + output projection); no calibration, no "
            f"outlier split; FP32: convolutions, LayerNorm, attention scores/softmax."
            + measured_sentence((r.get("plan") or {}).get("measured") or {}))
