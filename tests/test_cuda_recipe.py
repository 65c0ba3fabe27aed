"""The CUDA INT8 recipe (engines/whisper/cuda_recipe.py), checked on a CPU:
every op of its graphs has a CUDA kernel in the pinned onnxruntime (vendored
table, and the installed wheel's own CUDA library where present), the packed
token table is the output projection's, and on the CPU provider it gives
FP32's tokens on the English examples."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr_quant import audio
from asr_quant.engines import device
from asr_quant.engines.whisper import cuda_recipe
from asr_quant.examples import read_examples

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle(whisper_engines):
    return whisper_engines.by_name("FP32").bundle


@pytest.fixture(scope="module")
def artifacts(bundle):
    return cuda_recipe.ensure_artifacts(bundle)  # cached under the model's folder, own key


@pytest.fixture(scope="module")
def cuda_engine(bundle):
    """The CUDA recipe's engine, run on the CPU provider (no GPU here)."""
    from asr_quant.engines.whisper.int8_cuda import WhisperInt8CudaEngine
    from asr_quant.settings import Settings

    plan = device.choose("cpu", cuda_available=False, ort_available=["CPUExecutionProvider"])
    engine = WhisperInt8CudaEngine(bundle, Settings(model="base", device="cpu", threads=2), plan)
    yield engine
    engine.close()


def test_cpu_recipe_fails_the_kernel_check_the_cuda_recipe_passes(tmp_path):
    """The check can fail: a DynamicQuantizeLinear graph (the CPU recipe's
    dynamic INT8) is reported, a MatMulNBits graph is not."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 4])
    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, [])
    z = helper.make_tensor_value_info("z", TensorProto.UINT8, [])
    g = helper.make_graph([helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])], "g", [x], [y, s, z])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "dq.onnx"))
    assert cuda_recipe.missing_kernels(tmp_path / "dq.onnx") == ["ai.onnx:DynamicQuantizeLinear"]
    table = cuda_recipe.cuda_table()
    assert "1.31.1" in table["pinned"] and table["source"].startswith("https://github.com/microsoft/onnxruntime/")
    assert "com.microsoft:MatMulNBits" in table["kernels"] and "ai.onnx:DynamicQuantizeLinear" in table["absent"]


def test_installed_cuda_library_has_the_recipe_kernels():
    """The pinned wheel's own libonnxruntime_providers_cuda.so: the 8-bit
    MatMulNBits kernels are compiled in, DynamicQuantizeLinear is not."""
    names = cuda_recipe.installed_cuda_kernels()
    if names is None:
        pytest.skip("onnxruntime without its CUDA provider library")
    assert {"MatMulNBits", "MultiHeadAttention", "MatMulFloat8bKernelM1", "LayerNorm"} <= names
    assert "DynamicQuantizeLinear" not in names


@pytest.mark.model
def test_every_op_of_the_cuda_graphs_has_a_cuda_kernel(artifacts):
    folder, manifest = artifacts
    for name in cuda_recipe.FILES:
        ops = cuda_recipe.graph_ops(folder / name)
        assert ("com.microsoft", "MatMulNBits") in ops
        assert not {op for _, op in ops} & {"DynamicQuantizeLinear", "MatMulInteger", "QuantizeLinear"}
        assert cuda_recipe.missing_kernels(folder / name) == [], name
    r = manifest["report"]
    assert (r["bits"], r["encoder_nodes"], r["decoder_nodes"]) == (8, 48, 49)  # base: 6 layers x 8 + 6 x 8 + logits


@pytest.mark.model
def test_token_table_is_stored_once_and_lookup_matches_fp32(artifacts, bundle):
    """No FP32 table left; the lookup path (Gather of the packed INT8 columns,
    -128, x block scale) reproduces the FP32 embedding to within the
    quantization step of each block."""
    import onnx
    from onnx import numpy_helper

    folder, _ = artifacts
    g = onnx.load(str(folder / "decoder.onnx")).graph
    inits = {i.name: i for i in g.initializer}
    assert "embed_tokens_t" not in inits
    packed = numpy_helper.to_array(next(i for n, i in inits.items() if n.startswith("embed_tokens_t") and i.data_type == 2))
    scales = numpy_helper.to_array(next(i for n, i in inits.items() if n.startswith("embed_tokens_t") and "scale" in n))
    vocab, blocks, size = packed.shape
    scales = scales.reshape(vocab, blocks)
    q = packed.astype(np.float32) - 128
    rows = q * scales[:, :, None]
    ref = bundle.hf_model.model.decoder.embed_tokens.weight.detach().numpy().reshape(vocab, blocks, size)
    step = np.abs(scales)[:, :, None]
    err = np.abs(rows - ref)
    # Symmetric 8 bits: each block's largest |x| maps to -128 (the scales are
    # negative), so a value of the other sign near it clips at +127: within one
    # step there, within half a step everywhere else.
    assert (err[q != 127] <= step.repeat(size, -1)[q != 127] / 2 + 1e-7).all()
    assert (err <= step + 1e-7).all()
    assert err.max() > 0  # it is quantized, not a copy


@pytest.mark.model
def test_cuda_recipe_gives_fp32_tokens_on_the_english_examples(cuda_engine, whisper_engines):
    """Same decoding loop, same features. The CUDA recipe is weight-only INT8
    (8-bit blocks of 128 inputs, FP32 activations, accuracy level 0, so the CPU
    provider computes it the same way on every instruction set): its only
    error is the weight grid, and that must not change a token of FP32's on
    any English example. The CPU INT8 engine is not the yardstick: its INT8
    activations, and on a host whose u8s8 sums saturate its 7-bit weights,
    change a word on some clips (on an AVX2 host, 2 of these 5), which the
    benchmark reports; the CUDA recipe owes FP32 more than that."""
    fp32 = whisper_engines.by_name("FP32")
    assert cuda_engine.info.device == "CPUExecutionProvider" and cuda_engine.info.nodes_on_cpu is None
    english = [e for e in read_examples(REPO / "examples") if e.language == "en"]
    assert len(english) == 5
    for ex in english:
        clip = audio.load(ex.path)
        got, ref = cuda_engine.transcribe(clip, "en"), fp32.transcribe(clip, "en")
        assert got.ok and ref.ok, (got.error, ref.error)
        assert got.token_ids == ref.token_ids, (ex.path.name, got.text, ref.text)


@pytest.mark.model
def test_cuda_recipe_has_its_own_cache_key(bundle, artifacts):
    from asr_quant.engines.whisper import ort_artifacts
    from asr_quant.engines.whisper.plans.config import QuantConfig

    folder, manifest = artifacts
    assert folder.name.startswith("int8cuda-") and folder != ort_artifacts.artifact_dir(bundle, "int8", QuantConfig())
    assert manifest["key"] == cuda_recipe.recipe_key(bundle.sha256)
    assert cuda_recipe.ensure_artifacts(bundle)[0] == folder  # reused, not rebuilt


@pytest.mark.model
def test_gpu_plan_without_a_working_cuda_provider_is_warned_about(bundle):
    """A GPU plan where ONNX Runtime cannot start its CUDA provider (this
    machine: no GPU, no CUDA 13 libraries) falls back to the CPU; the engine's
    profiled warm-up finds every node there and says so, and still answers."""
    from asr_quant.app import present
    from asr_quant.engines.whisper.int8_cuda import WhisperInt8CudaEngine
    from asr_quant.settings import Settings

    plan = device.DevicePlan("cuda:0", ("CUDAExecutionProvider", "CPUExecutionProvider"))
    assert plan.int8_recipe == "cuda"
    engine = WhisperInt8CudaEngine(bundle, Settings(model="base", threads=2), plan)
    try:
        info = engine.info
        assert info.device == "CPUExecutionProvider" and info.nodes_on_cpu == engine.placement.total > 300
        assert len(info.warnings) == 1 and "instead of CUDAExecutionProvider" in info.warnings[0]
        assert "MatMulNBits" in info.warnings[0]
        assert f"⚠️ **{info.nodes_on_cpu} nodes on the CPU**" in present.placement(info)
        t = engine.transcribe(audio.load(REPO / "examples" / "weather_en.flac"), "en")
        assert t.ok and "weather" in t.text.lower()
    finally:
        engine.close()


@pytest.mark.model
def test_fp16_tensorrt_is_listed_unavailable_with_its_reason_on_the_cpu():
    from asr_quant.app import present
    from asr_quant.engines import load_engines
    from asr_quant.settings import Settings

    es = load_engines(Settings(model="base", precisions="int8,fp16-trt", device="cpu", threads=2,
                               cache_dir=Settings.from_env().cache_dir))
    try:
        i8, trt = es.engines
        assert i8.info.available and type(i8).__name__ == "WhisperInt8Engine"  # the CPU recipe stays the CPU's
        assert trt.info.name == "FP16 (TensorRT)" and not trt.info.available and trt.info.error == "no GPU in use"
        assert "| **FP16 (TensorRT)** | unavailable: no GPU in use |" in present.model_card(es)
        assert trt.transcribe(audio.load(REPO / "examples" / "weather_en.flac")).error.endswith("no GPU in use")
    finally:
        for e in es.engines:
            e.close()
