"""The pieces of INT8 plan "rows" and of the default-plan rule, without the
real model: SmoothQuant folding, the per-row product, the host's weight grid,
the rule that names the default plan, and the cache key's inputs."""
from __future__ import annotations

import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from asr_quant.engines.whisper.plans import default, rows, rowwise
from asr_quant.engines.whisper.plans.config import QuantConfig


def _tiny_whisper(seed: int = 0):
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(seed)
    cfg = WhisperConfig(vocab_size=96, num_mel_bins=8, encoder_layers=2, decoder_layers=2, d_model=32,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                        max_source_positions=16, max_target_positions=16, pad_token_id=0, bos_token_id=1,
                        eos_token_id=2, decoder_start_token_id=1)
    model = WhisperForConditionalGeneration(cfg).eval()
    with torch.no_grad():  # loud input channels, as Whisper's LayerNorms and GELUs have
        for layer in list(model.model.encoder.layers) + list(model.model.decoder.layers):
            layer.final_layer_norm.weight[:3] *= 20
            layer.self_attn_layer_norm.weight[-2:] *= 15
    return model


def test_smoothquant_folding_leaves_the_fp32_output_unchanged():
    import copy

    import torch

    from asr_quant.engines.whisper.plans import smooth

    model = _tiny_whisper()
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((1, 8, 32)).astype(np.float32), [1, 5, 7, 9]) for _ in range(3)]
    folded = copy.deepcopy(model)
    amax = smooth.input_amax(folded, batches, smooth.linears(folded))
    done = smooth.fold(folded, amax, {"encoder": 0.8, "decoder": 0.95})
    assert done.products and max(v[0] for v in done.products.values()) > 1.5  # it did move something
    with torch.inference_mode():
        for mel, tokens in batches + [(rng.standard_normal((1, 8, 32)).astype(np.float32), [1, 3, 4])]:
            a = model(input_features=torch.from_numpy(mel), decoder_input_ids=torch.tensor([tokens])).logits
            b = folded(input_features=torch.from_numpy(mel), decoder_input_ids=torch.tensor([tokens])).logits
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * float(a.abs().max()))
    # and the activations it smoothed are flatter: the largest channel over the median, before and after
    after = smooth.input_amax(folded, batches, smooth.linears(folded))
    before_ratio = float(amax["encoder.0.fc1"].max() / amax["encoder.0.fc1"].median())
    after_ratio = float(after["encoder.0.fc1"].max() / after["encoder.0.fc1"].median())
    assert after_ratio < before_ratio / 2


def _matmul_model(w: np.ndarray, m: int):
    from onnx import TensorProto, helper, numpy_helper

    g = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"], name="/layers.0/fc1/MatMul")], "g",
                          [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, m, w.shape[0]])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "W")])
    return helper.make_model(g, ir_version=9, opset_imports=[helper.make_opsetid("", 17)])


def _run(model, x):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]


def test_per_row_product_keeps_quiet_frames_that_one_scale_per_tensor_loses(tmp_path):
    from asr_quant.engines.whisper.plans.recipe import quantize_dynamic_graph

    rng = np.random.default_rng(1)
    w = (rng.standard_normal((64, 48)) * 0.05).astype(np.float32)
    x = rng.standard_normal((1, 40, 64)).astype(np.float32) * 0.05
    x[0, 7] *= 400  # one loud frame
    ref = x[0] @ w
    model = _matmul_model(w, 40)
    qmax = QuantConfig(plan="rows").weight_qmax  # this host's grid: 7 bits where its u8s8 sums saturate (probe.py)
    assert rowwise.rewrite(model, lambda name: True, qmax) == 1
    assert not any(i.name == "W" for i in model.graph.initializer)  # the FP32 copy is gone
    got = _run(model, x)[0]
    import onnx

    onnx.save(_matmul_model(w, 40), str(tmp_path / "f.onnx"))
    quantize_dynamic_graph(tmp_path / "f.onnx", tmp_path / "q.onnx", per_channel=True, reduce_range=qmax < 127)
    recipe = _run(onnx.load(str(tmp_path / "q.onnx")), x)[0]
    quiet = np.arange(40) != 7

    def rel(a):
        return float(np.linalg.norm(a[quiet] - ref[quiet]) / np.linalg.norm(ref[quiet]))

    assert rel(got) < 0.02  # 8-bit rounding of weights and of each row
    assert rel(recipe) > 4 * rel(got)  # the loud frame coarsens every frame's grid under one scale


def test_weights_are_7_bit_where_u8s8_pair_sums_can_saturate():
    assert rows.weight_qmax("avx2") == rows.QMAX_7BIT == 63 and rows.weight_qmax("avx512") == 63
    for isa in ("amx", "avx512-vnni", "avx-vnni", "arm-dotprod"):
        assert rows.weight_qmax(isa) == 127
        assert rows.weight_qmax(isa, "saturates") == 63  # what the probe measured overrides the CPU flags
    assert 2 * 255 * rows.QMAX_7BIT < 2 ** 15 <= 2 * 255 * 127  # why 63: vpmaddubsw adds two u8 x s8 in int16
    rng = np.random.default_rng(2)
    wq, scale = rowwise.int8_columns(rng.standard_normal((32, 8)).astype(np.float32), rows.QMAX_7BIT)
    assert np.abs(wq).max() == 63 and scale.shape == (8,)
    with pytest.raises(ValueError):
        QuantConfig(isa="avx9000")


@pytest.mark.parametrize("isa", ["amx", "avx512-vnni", "avx-vnni", "avx2", "arm-dotprod", "other"])
def test_every_instruction_set_gets_a_plan_and_the_reason(isa, monkeypatch):
    plan, why = default.choose(isa)
    assert plan.partition(":")[0] in ("recipe", "blockwise", "rows", "search", "costed") and why
    ev = {"avx512-vnni": default.Evidence("h", "cmd", 10, {"recipe": default.Score(0.7, 0.6),
                                                          "blockwise": default.Score(0.9, 1.2),
                                                          "rows": default.Score(0.85, 0.8)})}
    monkeypatch.setattr(default, "EVIDENCE", ev)
    if isa == "avx2":  # no VNNI: only a run on such a host applies, and there is none in this evidence
        assert default.choose(isa)[0] == default.FALLBACK
        return
    plan, why = default.choose(isa)
    assert plan == "rows"
    assert ("no run on" in why) == (isa != "avx512-vnni")


def test_the_rule_picks_the_best_agreement_no_slower_than_the_peer():
    s = default.Score
    assert default.pick({"recipe": s(0.77, 0.6), "blockwise": s(0.92, 1.1), "rows": s(0.84, 0.7)})[0] == "rows"
    assert default.pick({"recipe": s(0.77, 0.6), "blockwise": s(0.92, 0.95), "rows": s(0.84, 0.7)})[0] == "blockwise"
    assert default.pick({"a": s(0.8, 0.9), "b": s(0.8, 0.7)})[0] == "b"  # a tie goes to the faster
    plan, why = default.pick({"a": s(0.9, 1.3), "b": s(0.5, 1.1)})
    assert plan == "b" and "no plan was as fast" in why
    assert default.resolve("blockwise", "amx") == "blockwise" and default.resolve("auto", "amx") == default.choose("amx")[0]


def test_the_artifact_key_covers_the_host_the_libraries_and_the_calibration_files(tmp_path, monkeypatch):
    from asr_quant.engines.whisper import calibration, ort_artifacts

    bundle = SimpleNamespace(sha256="sha")

    def key(**q):
        return ort_artifacts.artifact_key(bundle, "int8", QuantConfig(**q))

    assert key(plan="rows", isa="amx") != key(plan="rows", isa="avx2")
    assert key(plan="rows") != key(plan="blockwise")
    versions = ort_artifacts.library_versions()
    assert {"torch", "transformers", "onnx"} <= set(versions)
    before = key(plan="rows", isa="amx")
    monkeypatch.setattr(ort_artifacts, "library_versions", lambda: {**versions, "torch": "0.0"})
    assert key(plan="rows", isa="amx") != before
    monkeypatch.undo()

    # a damaged or missing calibration clip gives another digest, and the full one comes back with the files
    speech = tmp_path / "speech"
    shutil.copytree(calibration.SPEECH_DIR, speech)
    monkeypatch.setattr(calibration, "SPEECH_DIR", speech)
    monkeypatch.setattr(calibration, "INDEX", speech / calibration.INDEX.name)
    full = calibration.digest()
    assert not full.endswith("-degraded") and full != "none"
    clip = sorted(speech.glob("*.flac"))[3]
    good = clip.read_bytes()
    clip.write_bytes(good[:-100] + bytes(100))
    damaged = calibration.digest()
    clip.unlink()
    missing = calibration.digest()
    assert damaged.endswith("-degraded") and missing.endswith("-degraded") and len({full, damaged, missing}) == 3
    clip.write_bytes(good)
    assert calibration.digest() == full


def test_the_benchmark_marks_the_pareto_front_of_its_int8_rows():
    from asr_quant.bench.quant_report import front_section, pareto_front

    assert pareto_front({"a": (0.3, 0.8), "b": (0.5, 0.9), "c": (0.6, 0.85)}) == {"a", "b"}
    assert pareto_front({"a": (0.3, 0.8), "twin": (0.3, 0.8)}) == {"a", "twin"}  # equal is not beaten

    def row(name):
        return {"name": name, "available": True}

    res = {"engines": [row("FP32"), row("INT8"), row("INT8-recipe"), row("INT8-blockwise"), row("faster-whisper int8")],
           "machine": {"isa": {"label": "AVX2 + FMA (no VNNI)"}},
           "pairs": {"INT8 / FP32": {"median_paired": 0.40}, "INT8-recipe / FP32": {"median_paired": 0.35},
                     "INT8-blockwise / FP32": {"median_paired": 0.55},
                     "faster-whisper int8 / FP32": {"median_paired": 0.60}},
           "paired": {"engines": {n: {"recorded": {"identical": a, "clips": 10}} for n, a in
                                  (("INT8", 0.84), ("INT8-recipe", 0.77), ("INT8-blockwise", 0.92),
                                   ("faster-whisper int8", 0.81))}}}
    text = front_section(res, "#")
    assert "(AVX2 + FMA (no VNNI))" in text
    marked = {line.split("|")[1].strip() for line in text.splitlines() if line.endswith("| yes |")}
    assert marked == {"INT8", "INT8-recipe", "INT8-blockwise"}  # faster-whisper is slower and less faithful than INT8


def test_the_int8_engine_path_imports_no_torch():
    """A cached INT8 engine loads and runs with neither torch nor transformers:
    the engine module, every plan's `describe` and the measure module (which
    the plans import) must not pull them in (torch alone cost 230 MB of peak RSS)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from asr_quant.engines.whisper import int8, plans, ort_engine\n"
            "for p in plans.MODULES: plans._module(p)\n"
            "from asr_quant.engines.whisper.plans import measure, default, rowwise\n"
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_ablation_studies_round_only_what_they_say():
    """scripts/int8_ablation.py's studies: weights alone changes the weights
    and not the graph's inputs; activations alone leaves the weights FP32."""
    import importlib.util
    from pathlib import Path

    from onnx import numpy_helper

    spec = importlib.util.spec_from_file_location("int8_ablation", Path(__file__).parents[1] / "scripts" / "int8_ablation.py")
    abl = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(abl)
    rng = np.random.default_rng(3)
    w = (rng.standard_normal((64, 16)) * 0.05).astype(np.float32)
    x = rng.standard_normal((1, 10, 64)).astype(np.float32)
    ref = x[0] @ w

    wts = _matmul_model(w, 10)
    assert abl.fake_quant_weights(wts, None) == 1
    rounded = numpy_helper.to_array(wts.graph.initializer[0])
    step = np.abs(w).max(axis=0) / 127
    assert 0 < np.abs(rounded - w).max() and np.all(np.abs(rounded - w) <= step / 2 + 1e-7)
    acts = _matmul_model(w, 10)
    assert abl.fake_quant_activations(acts, per_row=True) == 1
    assert np.array_equal(numpy_helper.to_array(next(i for i in acts.graph.initializer if i.name == "W")), w)
    for model in (wts, acts):
        got = _run(model, x)[0]
        err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
        assert 0 < err < 0.02


@pytest.mark.parametrize("isa, bits", [("amx", "8-bit"), ("avx512-vnni", "8-bit"), ("avx2", "7-bit")])
def test_rows_says_the_weight_grid_it_was_built_for(isa, bits):
    m = {"report": {"dynamic_nodes": 48, "decoder_nodes": 37, "reason": "", "fc2": "split", "outlier_clips": 4},
         "quant": {"outlier_channels": 16, "isa": isa}}
    text = rows.describe(m)
    assert f"{bits} weights" in text and f"built for instruction set {isa}" in text


def test_auto_builds_the_budgeted_plan_the_evidence_measured(monkeypatch):
    """When the rule names a plan built for a budget ("costed:kl=0.002"), `auto`
    builds that plan with that budget; a plan named by hand keeps the setting's."""
    from asr_quant import host
    from asr_quant.settings import Settings

    ev = default.Evidence("h", "cmd", 10, {"rows": default.Score(0.85, 0.8),
                                           "costed:kl=0.002": default.Score(0.9, 0.9),
                                           "costed:kl=0.004": default.Score(0.88, 0.7),
                                           "blockwise": default.Score(0.95, 1.3)})
    monkeypatch.setattr(default, "EVIDENCE", {level: ev for level in host.LEVELS})
    q = QuantConfig.from_settings(Settings())
    assert (q.plan, q.budget) == ("costed", "kl=0.002")
    q = QuantConfig.from_settings(Settings(int8_plan="costed", int8_budget="time=0.5"))
    assert (q.plan, q.budget) == ("costed", "time=0.5")


def test_a_held_plan_is_not_picked_and_the_reason_says_why(monkeypatch):
    ev = default.Evidence("h", "cmd", 10, {"rows": default.Score(0.8, 0.7), "costed:kl=0.004": default.Score(0.9, 0.8)},
                          held={"costed:kl=0.004": "held back: fails a check"})
    monkeypatch.setattr(default, "EVIDENCE", {"avx2": ev})
    plan, why = default.choose("avx2")
    assert plan == "rows" and "held back: fails a check" in why
