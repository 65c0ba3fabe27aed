"""Does this host's ONNX Runtime add u8 x s8 products in 16 bits? Measured, not assumed.

Why: MLAS's u8s8 GEMM (behind MatMulInteger and MatMulIntegerToFloat, the
recipe's and plan "rows"' encoder kernel) either accumulates in 32 bits
(VNNI's vpdpbusd, AMX) or adds pairs of u8 x s8 products in 16 bits with
saturation (vpmaddubsw: AVX2 without VNNI). Which one runs is MLAS's dispatch,
not the CPU flags host.py reads (a hypervisor can hide a feature's state, a
build can lack a kernel), so it is measured. On an AMD EPYC with AVX2 and FMA
only, ONNX Runtime 1.31 saturates: 255 x 127 summed over 64 inputs came back
as 32 x 32767, and on random 512 x 512 products 8-bit weights gave 2.4 %
relative error against 1.1 % for exact 8-bit arithmetic; 7-bit weights
(|w| <= 63: 2 x 255 x 63 < 2^15, ONNX Runtime's own `reduce_range`) gave
1.7 %, exactly what 7-bit rounding predicts.

The probe multiplies the worst case (all 255 by all 127) in a tiny graph and
compares with the exact sum. It runs once per process (microseconds of
compute) and its answer is a QuantConfig field, so it is in the artifact key.
The graph ships as `u8s8_probe.onnx` (1 KB, written by `probe_model`, which a
test checks it equals): every INT8 engine's load asks the probe, and building
the graph there would import the `onnx` package, ~1 s and 16 MB of resident
memory in a process that otherwise never needs it.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

EXACT, SATURATES = "exact", "saturates"
PROBE_FILE = Path(__file__).with_name("u8s8_probe.onnx")
M, K, N = 16, 64, 16


def probe_model() -> bytes:
    """The probe graph: A [M, K] uint8 (fed) times B [K, N] int8 (all 127), MatMulInteger to int32."""
    from onnx import TensorProto, helper, numpy_helper

    b = np.full((K, N), 127, np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "probe",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [M, K])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, None)], [numpy_helper.from_array(b, "B")])
    return helper.make_model(graph, ir_version=9, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@lru_cache(maxsize=None)
def u8s8() -> str:
    """"exact" or "saturates" for this process's ONNX Runtime on this CPU
    ("exact" where ONNX Runtime cannot be loaded: nothing is built then)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return EXACT
    model = PROBE_FILE.read_bytes() if PROBE_FILE.is_file() else probe_model()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    a = np.full((M, K), 255, np.uint8)
    y = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]).run(None, {"A": a})[0]
    return EXACT if int(y[0, 0]) == K * 255 * 127 else SATURATES
