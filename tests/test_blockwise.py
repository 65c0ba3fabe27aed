"""INT8 plan "blockwise" (engines/whisper/blockwise.py): 8-bit weights in
blocks, activations per row and block. Its agreement with FP32 on recorded
speech is a benchmark figure (docs/int8-plans.md); here: the settings, the
graphs it writes, the shared token table, and that the build measures it
closer to FP32 than the recipe on the same hold-out clips."""
from __future__ import annotations

import numpy as np
import pytest

from asr_quant.engines.whisper.plans.config import QuantConfig


def test_blockwise_settings_have_one_key_each():
    a = QuantConfig(plan="blockwise")
    assert a.mode == "dynamic"  # activations are quantized at each call; "auto" is the same build
    from types import SimpleNamespace

    from asr_quant.engines.whisper import ort_artifacts

    def key(cfg):
        return ort_artifacts.artifact_key(SimpleNamespace(sha256="x"), "int8", cfg)

    assert key(a) == key(QuantConfig(plan="blockwise", mode="dynamic"))
    assert key(a) != key(QuantConfig(plan="blockwise", block_size=32)) != key(QuantConfig())
    with pytest.raises(ValueError, match="dynamic"):
        QuantConfig(plan="blockwise", mode="static")
    with pytest.raises(ValueError, match="block_size"):
        QuantConfig(plan="blockwise", block_size=24)


@pytest.fixture(scope="module")
def blockwise(whisper_blockwise):
    return whisper_blockwise  # conftest: built once per session, shared with test_export


def _graph(path):
    import onnx

    return onnx.load(str(path)).graph


@pytest.mark.model
def test_every_weight_matmul_is_8_bit_blocks_and_the_table_is_stored_once(blockwise):
    from onnx import helper

    for name in ("encoder", "decoder"):
        g = _graph(blockwise.folder / f"{name}.onnx")
        inits = {i.name for i in g.initializer}
        inits |= {n.output[0] for n in g.node if n.op_type == "Cast" and n.input[0] in inits}  # stored FP16
        assert not [n.name for n in g.node if n.op_type == "MatMul" and n.input[1] in inits], name
        nbits = [n for n in g.node if n.op_type == "MatMulNBits"]
        assert nbits, name
        for n in nbits:
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            assert (attrs["bits"], attrs["block_size"], attrs["accuracy_level"]) == (8, 16, 4), n.name
    g = _graph(blockwise.folder / "decoder.onnx")
    vocab, d = blockwise.bundle.config.vocab_size, blockwise.bundle.config.d_model
    assert not [i.name for i in g.initializer if sorted(i.dims) == sorted([d, vocab])]  # no FP32 table left
    disk = blockwise.info.disk_bytes
    assert disk < 100e6 and disk < 0.35 * blockwise.bundle.fp32_file.stat().st_size  # base: 290 MB in FP32
    assert blockwise.info.name == "INT8-blockwise" and "blocks of 16 inputs" in blockwise.info.details


@pytest.mark.model
def test_the_token_lookup_reads_the_output_projections_blocks(blockwise):
    """The embedding lookup dequantizes exactly the 8-bit blocks the output
    projection multiplies by, and those lie within half a step of FP32's table."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    model = onnx.load(str(blockwise.folder / "decoder.onnx"))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    proj = next(n for n in g.node if n.op_type == "MatMulNBits" and n.input[1].startswith("embed_tokens_t"))
    (gather,) = [n for n in g.node if n.op_type == "Gather" and n.input[0] == proj.input[1]]  # one lookup
    prefix = gather.name[:-len("_q")]
    nodes = [n for n in g.node if n.name == "embed_q8_scales_2d" or n.name.startswith(prefix + "_")]
    # weights FP16 holds exactly are stored in FP16 behind a Cast (plans/storage.py)
    casts = {n.output[0]: n for n in g.node if n.op_type == "Cast" and n.input[0] in inits}
    nodes = [casts[i] for n in nodes for i in n.input if i in casts] + nodes
    need = {i for n in nodes for i in n.input}

    def const(name):
        return numpy_helper.to_array(inits[casts[name].input[0] if name in casts else name]).astype(np.float32)

    ids_name, out_name = gather.input[1], nodes[-1].output[0]
    sub = helper.make_graph(nodes, "lookup", [helper.make_tensor_value_info(ids_name, onnx.TensorProto.INT64, [None])],
                            [helper.make_tensor_value_info(out_name, onnx.TensorProto.FLOAT, None)],
                            [inits[n] for n in need if n in inits])
    run = ort.InferenceSession(helper.make_model(sub, opset_imports=model.opset_import,
                                                 ir_version=model.ir_version).SerializeToString())
    vocab = blockwise.bundle.config.vocab_size
    ids = np.array([0, 1, 220, vocab // 2, vocab - 1], np.int64)
    got = run.run(None, {ids_name: ids})[0]  # [d_model, k], as the FP32 lookup gave
    packed = const(proj.input[1])  # [vocab, blocks, block]
    scales = const(proj.input[2]).reshape(packed.shape[0], packed.shape[1], 1)
    want = ((packed[ids] - 128.0) * scales[ids]).reshape(len(ids), -1).T
    assert np.array_equal(got, want)
    table = blockwise.bundle.hf_model.model.decoder.embed_tokens.weight.detach().numpy()[ids].T
    half_step = np.abs(np.repeat(scales[ids][..., 0], packed.shape[2], axis=1).T) / 2  # symmetric: signed scales
    assert np.all(np.abs(got - table) <= half_step * (1 + 1e-5) + 1e-12)


@pytest.mark.model
def test_the_build_measures_blockwise_closer_to_fp32_than_the_default_plan(blockwise, whisper_engines):
    """Both builds measure their graphs on the same hold-out clips; blocks on
    both sides must be clearly closer to FP32 than a plan whose encoder runs on
    the fast u8s8 GEMM: the default where it is one (rows on an AVX512 Xeon,
    costed on an AVX2 EPYC), else plan rows (where blockwise is the default
    itself, as on the AVX512-VNNI EPYC). Measured on base: mean KL 0.0012
    against rows' 0.0037 on the Xeon and 0.0073 with 7-bit weights on the AVX2
    EPYC, costed's 0.0043, the recipe's 0.0118; 0.0011 against rows' 0.0035 on
    the VNNI EPYC."""
    engine = whisper_engines.by_name("INT8")
    if engine.manifest["report"]["plan"]["name"] == "blockwise":
        from dataclasses import replace

        from asr_quant.bench.run import int8_plan_variants
        from asr_quant.settings import Settings

        settings = replace(Settings.from_env(), model="base", device="cpu", threads=2)
        (engine,) = int8_plan_variants(whisper_engines, settings, "rows", lambda message: None)
        assert engine.info.available, engine.info.error
    default = engine.manifest["report"]
    mine = blockwise.manifest["report"]
    name = default["plan"]["name"]
    assert name in ("rows", "costed") and mine["plan"]["name"] == "blockwise"
    assert default["holdout_tokens"] == mine["holdout_tokens"] == "reference text"
    r, b = default["measured"][name], mine["measured"]["blockwise"]
    assert r["positions"] == b["positions"] > 0
    assert b["kl"] < 0.5 * r["kl"]  # top-1 over ~80 positions moves by one position either way: not asserted
    from asr_quant import audio
    from asr_quant.examples import EXAMPLES_DIR

    out = blockwise.transcribe(audio.load(EXAMPLES_DIR / "asterisk_conf-kicked_es.wav", max_s=None), "es")
    assert out.error is None and "conferencia" in out.text.lower()


@pytest.mark.model
def test_explain_reads_the_blockwise_graphs_layer_by_layer(blockwise, whisper_engines):
    """'Explain the difference' traces the blockwise graphs as it does the
    recipe's: every layer's output, close to FP32's."""
    from asr_quant import audio
    from asr_quant.engines.whisper import explain, features
    from asr_quant.examples import EXAMPLES_DIR

    fp32 = whisper_engines.by_name("FP32")
    clip = audio.load(EXAMPLES_DIR / "asterisk_conf-kicked_es.wav", max_s=None)
    mel = features.windows(clip.samples, blockwise.bundle.n_mels)[0].mel
    info = blockwise.bundle.tokens
    tokens = info.prompt("es") + info.tokenizer.encode(" ha sido expulsado", add_special_tokens=False).ids
    la, ea, da = explain.probe_of(fp32).trace(mel, tokens)
    lb, eb, db = explain.probe_of(blockwise).trace(mel, tokens)
    n = blockwise.bundle.config.decoder_layers
    assert len(eb) == len(ea) == n and len(db) == len(da) == n and lb.shape == la.shape
    for x, y in zip(eb + db, ea + da):
        cos = float((x * y).sum() / (np.linalg.norm(x) * np.linalg.norm(y)))
        # measured: >= 0.992 (the deepest encoder layers lowest); the recipe's encoder layers 3-5: 0.87-0.92
        assert cos > 0.98, cos
    assert (lb.argmax(-1) == la.argmax(-1)).mean() >= 0.9
