"""Does this host's ONNX Runtime add u8 x s8 products in 16 bits? Measured, not assumed.

Why: MLAS's u8s8 GEMM (behind MatMulInteger and MatMulIntegerToFloat, the
recipe's and plan "rows"' encoder kernel) either accumulates in 32 bits
(VNNI's vpdpbusd, AMX) or adds pairs of u8 x s8 products in 16 bits with
saturation (vpmaddubsw), which the CPU flags alone do not tell: on an Intel
Xeon with AVX512-VNNI and AMX, ONNX Runtime 1.31 saturates (255 x 127 x 64
came back as 32 x 32767). A saturated sum is a wrong product, far above
8-bit rounding (2.4 % against 1.1 % relative error on a 512 x 512 product);
weights on 7 bits (|w| <= 63: 2 x 255 x 63 < 2^15) cannot saturate, which is
ONNX Runtime's own `reduce_range`.

The probe multiplies the worst case (all 255 by all 127) in a tiny graph and
compares with the exact sum. It runs once per process (microseconds of
compute) and its answer is a QuantConfig field, so it is in the artifact key.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

EXACT, SATURATES = "exact", "saturates"


@lru_cache(maxsize=None)
def u8s8() -> str:
    """"exact" or "saturates" for this process's ONNX Runtime on this CPU
    ("exact" where ONNX Runtime cannot be loaded: nothing is built then)."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return EXACT
    m, k, n = 16, 64, 16
    a = np.full((m, k), 255, np.uint8)
    b = np.full((k, n), 127, np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "probe",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, None)], [numpy_helper.from_array(b, "B")])
    model = helper.make_model(graph, ir_version=9, opset_imports=[helper.make_opsetid("", 17)])
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    y = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, {"A": a})[0]
    return EXACT if int(y[0, 0]) == k * 255 * 127 else SATURATES
