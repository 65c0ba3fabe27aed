"""plans/storage.py: FP32 weights that FP16 holds exactly go to disk in FP16, and nothing else changes.

A small graph with one weight of FP16 values (as Whisper's float16 checkpoint
gives) and one of arbitrary FP32 values: the first is stored in FP16, the
second is left alone, the file shrinks by the first's half, ONNX Runtime's
output is the same bits, and the session folds the Cast away (the optimized
graph has no Cast left, so no call pays for it)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from asr_quant.engines.runtime_policy import ort_session_options
from asr_quant.engines.whisper.plans.storage import exactly_fp16, store_exact_fp16


def _graph(path, exact, inexact):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 256])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 256])
    nodes = [helper.make_node("MatMul", ["x", "W_exact"], ["h"], name="mm_exact"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "W_inexact"], ["y"], name="mm_inexact")]
    inits = [numpy_helper.from_array(exact, "W_exact"), numpy_helper.from_array(inexact, "W_inexact")]
    g = helper.make_graph(nodes, "g", [x], [y], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))


def _run(path, x, optimized=None):
    so = ort_session_options(1)
    if optimized:
        so.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(["y"], {"x": x})[0]


def test_exact_fp16_weights_are_stored_in_fp16_and_the_output_keeps_every_bit(tmp_path):
    rng = np.random.default_rng(0)
    exact = rng.standard_normal((256, 256)).astype(np.float16).astype(np.float32)
    inexact = rng.standard_normal((256, 256)).astype(np.float32)
    assert exactly_fp16(exact) and not exactly_fp16(inexact)
    path = tmp_path / "m.onnx"
    _graph(path, exact, inexact)
    x = rng.standard_normal((4, 256)).astype(np.float32)
    before, size = _run(path, x), path.stat().st_size

    out = store_exact_fp16(path)
    assert out == {"tensors": 1, "bytes_saved": exact.nbytes // 2}
    inits = {i.name: i for i in onnx.load(str(path)).graph.initializer}
    assert inits["W_exact_fp16"].data_type == TensorProto.FLOAT16 and "W_exact" not in inits
    assert inits["W_inexact"].data_type == TensorProto.FLOAT  # FP16 would round it: left as it is
    assert np.array_equal(numpy_helper.to_array(inits["W_exact_fp16"]).astype(np.float32), exact)
    assert size - path.stat().st_size >= exact.nbytes // 2 - 1024

    after = _run(path, x, optimized=tmp_path / "opt.onnx")
    assert np.array_equal(before, after)  # bit for bit
    assert not [n for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node if n.op_type == "Cast"]


def test_small_tensors_and_nothing_to_convert_leave_the_file_untouched(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "m.onnx"
    _graph(path, rng.standard_normal((256, 256)).astype(np.float32), rng.standard_normal((256, 256)).astype(np.float32))
    raw = path.read_bytes()
    assert store_exact_fp16(path) == {"tensors": 0, "bytes_saved": 0}
    assert path.read_bytes() == raw
    small = rng.standard_normal((256, 256)).astype(np.float16).astype(np.float32)
    _graph(path, small, small)
    assert store_exact_fp16(path, min_elements=256 * 256 + 1)["tensors"] == 0
