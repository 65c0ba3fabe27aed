"""The GPU paths that can be checked without a GPU: the device plan (which
INT8 recipe, whether TensorRT FP16 can run and why not), the node-placement
count from ONNX Runtime's profiler, the CUDA memory helpers, and how the page
shows placement."""
from __future__ import annotations

import numpy as np
import pytest

from asr_quant import memory
from asr_quant.engines import EngineInfo, device, ort_placement

CUDA_ORT = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


# --------------------------------------------------------------------------- device plan

def test_gpu_plan_picks_the_cuda_int8_recipe_and_tensorrt_when_its_libraries_load():
    plan = device.choose("auto", cuda_available=True, ort_available=CUDA_ORT, trt_missing=[])
    assert plan.torch_device == "cuda:0" and plan.ort_providers == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert plan.int8_recipe == "cuda" and plan.tensorrt_unavailable is None
    assert device.choose("cuda:1", cuda_available=True, ort_available=CUDA_ORT, trt_missing=[]).torch_device == "cuda:1"


@pytest.mark.parametrize("kwargs, reason", [
    (dict(requested="cpu", cuda_available=True, ort_available=CUDA_ORT), "no GPU in use"),
    (dict(cuda_available=False, ort_available=CUDA_ORT), "no GPU in use"),
    (dict(cuda_available=True, ort_available=["CPUExecutionProvider"]), "no CUDA execution provider"),
    (dict(cuda_available=True, ort_available=CUDA_ORT[1:]), "no TensorRT execution provider"),
    (dict(cuda_available=True, ort_available=CUDA_ORT, trt_missing=["libnvinfer.so.10"]), "cannot load libnvinfer.so.10"),
])
def test_tensorrt_unavailable_says_why(kwargs, reason):
    plan = device.choose(**{"requested": "auto", **kwargs})
    assert reason in plan.tensorrt_unavailable
    if not kwargs["cuda_available"] or kwargs.get("requested") == "cpu" or "CUDAExecutionProvider" not in kwargs["ort_available"]:
        assert plan.int8_recipe == "cpu"  # the CPU recipe stays the CPU's


def test_tensorrt_library_probe_on_this_machine():
    """This machine has the TensorRT provider library but not TensorRT itself."""
    missing = device.tensorrt_libraries_missing()
    assert set(missing) <= set(device.TRT_LIBS)
    real = device.choose("auto", cuda_available=True, ort_available=CUDA_ORT)
    assert (real.tensorrt_unavailable is None) == (missing == [])


def test_unavailable_tensorrt_engine_is_listed_with_its_reason():
    from asr_quant.engines.whisper.trt_engine import WhisperTrtEngine
    from asr_quant.engines.base import EngineError

    plan = device.choose("cpu", cuda_available=False, ort_available=["CPUExecutionProvider"])
    with pytest.raises(EngineError, match="no GPU in use"):
        WhisperTrtEngine(bundle=None, settings=None, plan=plan)


def test_tensorrt_providers_cache_under_the_given_folder_and_profile_the_decoder(tmp_path):
    from asr_quant.engines.whisper import trt_engine

    dims = dict(n_layers=2, n_heads=8, head_dim=64, n_ctx=1500, max_target=448)
    (name, opts), *rest = trt_engine.providers(tmp_path, dims)
    assert name == "TensorrtExecutionProvider" and rest == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert opts["trt_fp16_enable"] and opts["trt_engine_cache_path"] == str(tmp_path)
    assert "self_k_1:1x8x0x64" in opts["trt_profile_min_shapes"]
    assert "tokens:1x4" in opts["trt_profile_max_shapes"] and "self_v_0:1x8x448x64" in opts["trt_profile_max_shapes"]
    assert "trt_profile_min_shapes" not in trt_engine.providers(tmp_path)[0][1]  # the encoder: static shapes


# --------------------------------------------------------------------------- placement

def _events(*nodes):
    return [{"cat": "Node", "name": f"{n}_kernel_time", "args": {"provider": p, "op_name": op}} for n, p, op in nodes] + \
           [{"cat": "Session", "name": "model_run"}, {"cat": "Node", "name": "x_fence_before", "args": {}}]


def test_placement_counts_distinct_nodes_per_provider_and_names_cpu_ops():
    ev = _events(("a", "CUDAExecutionProvider", "MatMulNBits"), ("b", "CPUExecutionProvider", "Shape"),
                 ("c", "CPUExecutionProvider", "DynamicQuantizeLinear"), ("c", "CPUExecutionProvider", "DynamicQuantizeLinear"),
                 ("d", "CUDAExecutionProvider", "MemcpyToHost"))
    p = ort_placement.count_events(ev)
    assert p.providers == {"CUDAExecutionProvider": 2, "CPUExecutionProvider": 2} and p.total == 4
    assert p.cpu_nodes == 2 and p.cpu_ops == {"Shape": 1, "DynamicQuantizeLinear": 1}
    w = p.warning("CUDAExecutionProvider")
    assert "2 of 4 nodes on the CPU" in w and "DynamicQuantizeLinear x1" in w
    assert p.warning("CPUExecutionProvider") is None  # a CPU session is meant to be on the CPU
    assert ort_placement.count_events(_events(("a", "CUDAExecutionProvider", "MatMul"))).warning("CUDAExecutionProvider") is None
    merged = p.merge(ort_placement.count_events(_events(("e", "CPUExecutionProvider", "Shape"))))
    assert merged.cpu_nodes == 3 and merged.cpu_ops["Shape"] == 2


def test_placement_from_a_real_profiled_session(tmp_path):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
                           helper.make_node("Relu", ["h"], ["y"], name="relu")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], [w])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    so = ort.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / "prof")
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    s.run(None, {"x": np.ones((2, 4), np.float32)})
    p = ort_placement.from_sessions(s)
    assert p.providers == {"CPUExecutionProvider": 2} and p.cpu_ops == {"MatMul": 1, "Relu": 1}
    assert not list(tmp_path.glob("prof*.json"))  # the trace is removed after counting


def test_page_shows_placement_and_warns_on_cpu_nodes():
    from asr_quant.app import present

    info = EngineInfo(name="INT8", precision="int8", runtime="ONNX Runtime", device="CUDAExecutionProvider", model="m")
    assert present.placement(info) == ""  # not measured (CPU session)
    info.nodes_on_cpu = 0
    assert "all nodes on the GPU" in present.placement(info)
    info.nodes_on_cpu, info.warnings = 7, ["ONNX Runtime placed 7 of 300 nodes on the CPU"]
    text = present.placement(info)
    assert "⚠️ **7 nodes on the CPU**" in text and "7 of 300" in text


# --------------------------------------------------------------------------- memory

def test_exact_tensor_bytes_of_a_module_and_of_onnx_initializers(tmp_path):
    import onnx
    import torch
    from onnx import helper, numpy_helper

    m = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.LayerNorm(20)).half()
    m[1].float()
    assert memory.module_tensor_bytes(m) == (10 * 20 + 20) * 2 + (20 + 20) * 4
    tied = torch.nn.Linear(4, 4, bias=False)
    pair = torch.nn.ModuleList([tied, tied])
    assert memory.module_tensor_bytes(pair) == 16 * 4  # shared tensors count once
    inits = [numpy_helper.from_array(np.zeros((3, 5), np.uint8), "q"), numpy_helper.from_array(np.zeros(7, np.float32), "s")]
    g = helper.make_graph([], "g", [], [], inits)
    onnx.save(helper.make_model(g), str(tmp_path / "m.onnx"))
    assert memory.onnx_initializer_bytes(tmp_path / "m.onnx") == 15 + 28


def test_peak_sampler_follows_the_one_definition():
    assert isinstance(memory.sampler_for("cpu"), memory.PeakSampler)
    assert memory.sampler_for("cpu").kind == "cpu-rss"
    assert memory.sampler_for("cuda:0").kind == "cuda-allocator"
    # No NVML on this machine: ORT-on-CUDA would fall back to the RSS sampler, never to a made-up figure.
    if memory.nvml_used_bytes() is None:
        assert memory.sampler_for("CUDAExecutionProvider").kind == "cpu-rss"
        assert memory.device_memory() is None
    assert memory.device_index("cuda:2") == 2 and memory.device_index("CUDAExecutionProvider") == 0
