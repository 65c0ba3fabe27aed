"""INT8 plans: per-group sensitivity and the mixed-precision search
(engines/whisper/sensitivity.py, mixed_plan.py), their settings and cache key,
and how the benchmark and the page show them."""
from __future__ import annotations

import numpy as np
import pytest

from asr_quant.engines.whisper.plans import search as mixed_plan, sensitivity
from asr_quant.engines.whisper.plans.config import DEFAULT_BUDGET, Budget, QuantConfig


# --------------------------------------------------------------------------- no model needed

def test_budget_parses_kl_and_top1_and_rejects_the_rest():
    assert Budget.parse("kl=0.004").met({"kl": 0.003, "top1": 0.5})
    assert not Budget.parse("kl=0.004").met({"kl": 0.005, "top1": 1.0})
    assert Budget.parse("top1=0.99").met({"kl": 9.0, "top1": 0.995})
    assert not Budget.parse("top1=0.99").met({"kl": 0.0, "top1": 0.985})
    assert str(Budget.parse("kl=4e-3")) == str(Budget.parse("kl=0.0040")) == "kl=0.004"
    for bad in ("0.004", "kl:0.1", "wer=0.1", "top1=1.5", "kl=-1", "kl=abc", "", "kl=nan", "kl=inf"):
        with pytest.raises(ValueError, match="budget"):
            Budget.parse(bad)


def test_plan_and_budget_enter_the_artifact_key_and_are_checked():
    """The key the cache uses (ort_artifacts.artifact_key): the plan, the budget
    (one spelling per value) and the source of the modules that make a plan."""
    from types import SimpleNamespace

    from asr_quant.engines.whisper import ort_artifacts

    names = {f"{p.parent.name}/{p.name}" for p in ort_artifacts.builder_sources()}
    assert {"plans/sensitivity.py", "plans/search.py", "plans/recipe.py", "plans/rows.py", "whisper/decoding.py",
            "whisper/torch_engine.py", "asr_quant/memory.py"} <= names
    bundle = SimpleNamespace(sha256="sha")

    def akey(**q):
        return ort_artifacts.artifact_key(bundle, "int8", QuantConfig(**q))

    assert akey(plan="search") != akey() and akey(plan="search", budget="kl=0.001") != akey(plan="search")
    assert akey(plan="search", budget="kl=4e-3") == akey(plan="search", budget="kl=0.004")
    assert QuantConfig().plan == "recipe"  # a bare QuantConfig is the recipe; the app's default is "auto"
    assert akey(budget=DEFAULT_BUDGET) == akey()
    with pytest.raises(ValueError, match="plan"):
        QuantConfig(plan="magic")
    with pytest.raises(ValueError, match="budget"):
        QuantConfig(budget="kl")
    with pytest.raises(ValueError, match="dynamically"):
        QuantConfig(plan="search", mode="static")


def test_the_app_settings_choose_the_plan():
    from asr_quant.settings import Settings

    s = Settings.from_env({"ASRQ_INT8_PLAN": "search", "ASRQ_INT8_BUDGET": "top1=0.97"})
    q = QuantConfig.from_settings(s)
    assert (q.plan, q.budget) == ("search", "top1=0.97")
    from asr_quant import host
    from asr_quant.engines.whisper.plans import default

    plan, _, budget = default.choose(host.detect().level)[0].partition(":")
    want = QuantConfig(plan=plan, **({"budget": budget} if budget else {}),
                       **({"levels": default.fixed_levels(f"{plan}:{budget}", host.detect().level)} if budget else {}))
    assert QuantConfig.from_settings(Settings()) == want
    assert QuantConfig.from_settings(Settings(int8_plan="recipe")) == QuantConfig()
    # only the search has a budget: another budget is the same recipe (same key), not a rebuild
    assert QuantConfig.from_settings(Settings(int8_plan="recipe", int8_budget="kl=0.5")) == QuantConfig()


def test_memory_alone_measures_the_plan_the_app_built():
    """The child that measures an engine alone builds the same INT8 plan, and
    the plan is part of its cache key."""
    from asr_quant.engines import alone
    from asr_quant.settings import Settings

    s = Settings(int8_plan="search", int8_budget="kl=0.01")
    spec = alone.spec_for(s, "int8", __file__, "en")
    assert (spec["int8_plan"], spec["int8_budget"]) == ("search", "kl=0.01")
    assert alone.cache_path(spec) != alone.cache_path(alone.spec_for(Settings(), "int8", __file__, "en"))
    # the other engines' figures do not depend on the INT8 plan
    assert alone.spec_for(s, "fp32", __file__, "en") == alone.spec_for(Settings(), "fp32", __file__, "en")


def test_simulated_int8_is_onnxruntime_dynamic_arithmetic(tmp_path):
    """The search scores plans in PyTorch; its fake INT8 must be what
    onnxruntime's dynamic MatMulInteger computes, on a weight with one outlier
    column: over all rows in one call (the encoder) and one row per call (the
    decoder, one token per step)."""
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 32)).astype(np.float32)
    w[:, 5] *= 40.0
    x = (rng.standard_normal((7, 64)) * 3 + 0.5).astype(np.float32)
    x[3] *= 20.0  # one loud token: a per-call scale over all rows differs from one per row
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 32])],
                              [numpy_helper.from_array(w, "w")])
    fp32, int8 = tmp_path / "m.onnx", tmp_path / "m8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(fp32))
    reduce = QuantConfig().weight_qmax < 127  # 7-bit weights where this host's u8s8 sums saturate (probe.py)
    quantize_dynamic(str(fp32), str(int8), per_channel=True, weight_type=QuantType.QInt8, reduce_range=reduce,
                     extra_options={"MatMulConstBOnly": True})
    session = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x})[0]  # all rows in one call: the encoder
    got_rows = np.concatenate([session.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])  # the decoder
    lin = torch.nn.Linear(64, 32, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w.T))
        q = 64 if reduce else 127
        sim = sensitivity._linear(lin, qmax=q)(torch.from_numpy(x)).numpy()
        sim_rows = sensitivity._linear(lin, first_call=1, qmax=q)(torch.from_numpy(x)).numpy()
        sim_head = sensitivity._linear(lin, first_call=4, qmax=q)(torch.from_numpy(x)).numpy()
    exact = x @ w
    tol = 1e-4 * np.abs(exact).max(1, keepdims=True)  # per row: the loud row must not widen the quiet rows' tolerance
    assert (np.abs(sim - exact) > 10 * tol).any()  # the simulation does quantize
    assert (np.abs(sim - got) <= tol).all(), np.abs(sim - got).max()
    quiet = [i for i in range(len(x)) if i != 3]  # rows the loud one's scale coarsens
    assert np.abs(got_rows - got)[quiet].max() > 1e-2 * np.abs(exact[quiet]).max()  # one call or one per token differ
    assert (np.abs(sim_rows - got_rows) <= tol).all(), np.abs(sim_rows - got_rows).max()
    # the decoder's first call holds the start sequence (4 rows here, the loud one among them), then one per call
    got_head = np.concatenate([session.run(None, {"x": x[:4]})[0]] + [session.run(None, {"x": x[i:i + 1]})[0]
                                                                     for i in range(4, len(x))])
    assert (np.abs(sim_head - got_head) <= tol).all(), np.abs(sim_head - got_head).max()
    assert np.abs(got_head - got_rows)[:3].max() > 1e-2 * np.abs(exact[:3]).max()


def test_a_plan_maps_onto_the_onnx_graphs():
    """Each group kept FP32 names the nodes quantize.build leaves alone (the
    names onnx_export gives them), in the graph where they run."""
    from asr_quant.engines.whisper.onnx_export import EMBED_NAME

    plan = mixed_plan.Plan("search", {"enc.conv": "fp32", "enc.2.attn": "fp32", "dec.1.cross": "fp32",
                                      "dec.3.mlp": "split", "enc.0.mlp": "int8", "dec.tokens": "fp32"})
    outliers = {"encoder": [[1, 2]] * 6, "decoder": [[3]] * 6}
    enc, dec, split, tokens_fp32 = mixed_plan.onnx_keep(plan, outliers)
    assert set(enc) == {"layers.2/q_proj", "layers.2/k_proj", "layers.2/v_proj", "layers.2/out_proj",
                        "cross.1/k_proj", "cross.1/v_proj"}  # the cross-attention K/V run in the encoder graph
    assert set(dec) == {"layers.1/cross_q", "layers.1/cross_out", EMBED_NAME,
                        "layers.3/mlp/fc1_outliers", "layers.3/mlp/fc2_outliers"}
    assert split["decoder"][3] == [3] and split["decoder"][2] is None and split["encoder"] == [None] * 6
    assert tokens_fp32


def _fake_quant(plan_name="search"):
    plan = {"name": plan_name, "budget": "kl=0.004" if plan_name == "search" else "",
            "levels": {"enc.conv": "fp32", "dec.2.mlp": "fp32", "enc.0.mlp": "split", "enc.1.attn": "int8"},
            "simulated": {"kl": 0.003, "top1": 0.97, "positions": 80},
            "measured": {"kl": 0.0035, "top1": 0.965, "positions": 80}, "extra_bytes": 6e6,
            "steps": [{"action": "start (all INT8)", "kl": 0.02, "top1": 0.9, "extra_bytes": 0},
                      {"action": "dec.2.mlp -> fp32", "kl": 0.003, "top1": 0.97, "extra_bytes": 6e6}]}
    rows = [{"group": "dec.2.mlp", "level": "int8", "kl": 0.1, "top1": 0.9},
            {"group": "dec.2.mlp", "level": "split", "kl": 0.01, "top1": 0.95},
            {"group": "enc.0.mlp", "level": "int8", "kl": 0.02, "top1": 0.97},
            {"group": "enc.1.attn", "level": "int8", "kl": 0.0001, "top1": 1.0}]
    return {"plan": plan, "sensitivity": rows if plan_name == "search" else []}


def test_benchmark_report_shows_each_plan_and_the_sensitivity_table(tmp_path):
    from asr_quant.bench import quant_report

    res = {"engines": [{"name": "INT8", "quant": _fake_quant("recipe")},
                       {"name": "INT8-search", "quant": _fake_quant("search")}, {"name": "FP32", "quant": {}}]}
    md = quant_report.section(res, "##")
    assert "| INT8-search | search (kl=0.004) | enc.conv, dec.2.mlp | 1 | +6.0 MB |" in md
    assert "| INT8 | recipe |" in md
    assert md.count("per-group sensitivity") == 1  # the recipe has no table
    assert md.index("| dec.2.mlp | 0.1000") < md.index("| enc.0.mlp | 0.0200") < md.index("| enc.1.attn | 0.0001")
    assert "| dec.2.mlp | 0.1000 | 90.0% | 0.0100 | kept FP32 |" in md
    assert "dec.2.mlp -> fp32: KL 0.0030, +6.0 MB" in md
    (path,) = quant_report.chart(res, tmp_path)
    assert path.name == "sensitivity-int8-search.html" and "dec.2.mlp" in path.read_text()
    assert quant_report.section({"engines": [{"name": "FP32", "quant": {}}]}, "##") == ""


def test_sensitivity_chart_colours_bars_by_the_plan():
    from asr_quant.sensitivity_chart import sensitivity_figure

    fig = sensitivity_figure("INT8", _fake_quant("search"))
    bars = {t.name: list(t.x) for t in fig.data}
    assert bars == {"INT8": ["enc.1.attn"], "outlier channels FP32": ["enc.0.mlp"], "kept FP32": ["dec.2.mlp"]}
    assert list(fig.data[2].y) == [0.1]
    assert sensitivity_figure("INT8", _fake_quant("recipe")) is None
    assert sensitivity_figure("FP32", {}) is None


# --------------------------------------------------------------------------- real weights

@pytest.fixture(scope="module")
def scored(whisper_engines):
    """A scorer on one packaged hold-out clip, teacher-forced on FP32's own tokens,
    and the decoder's self-attention and MLP groups (the cheap ones to score)."""
    from asr_quant.engines.whisper import calibration, features
    from asr_quant.engines.whisper.ort_artifacts import _teacher_fn

    fp32 = whisper_engines.by_name("FP32")
    model, info = fp32.bundle.hf_model, fp32.bundle.tokens
    teacher = _teacher_fn(model, info)
    samples = []
    for utt, a in calibration.holdout_clips(1, fp32.bundle.cache_dir.parent.parent):
        mel = features.windows(a, fp32.bundle.n_mels)[0].mel
        samples.append(sensitivity.Sample(mel, *teacher(mel, utt.language)))
    scorer = sensitivity.Scorer(model, samples)
    everything = sensitivity.groups(model)
    gs = [g for g in everything if g.side == "decoder" and g.kind in ("self", "mlp")]
    fixed = {g.name: "fp32" for g in everything if g.name not in {x.name for x in gs}}
    return scorer, gs, fixed, model


@pytest.mark.model
def test_groups_cover_every_weight_matrix(scored):
    _, _, _, model = scored
    gs = sensitivity.groups(model)
    linear = sum(m.weight.numel() for m in model.modules() if type(m).__name__ in ("Linear", "Conv1d"))
    # proj_out shares the token table with the embedding: counted once, as the "dec.tokens" group
    assert sum(g.params for g in gs) == linear - model.proj_out.weight.numel() + model.model.decoder.embed_tokens.weight.numel()
    assert len(gs) == 1 + 2 * 6 + 3 * 6 + 1


@pytest.mark.model
def test_a_tighter_budget_keeps_at_least_as_many_groups_fp32(scored):
    """The search on one hold-out clip: a loose budget is met at once by
    all-INT8, an unreachable one keeps groups FP32 up to the size cap, and one
    in between keeps no more than the unreachable one and no fewer than the loose one."""
    scorer, gs, fixed, _ = scored
    table = sensitivity.sensitivity(scorer, gs)
    assert {r["group"] for r in table} == {g.name for g in gs}
    assert all(r["positions"] > 5 and 0 <= r["top1"] <= 1 and r["kl"] >= 0 for r in table)
    start = scorer.score({g.name: "int8" for g in gs})
    assert start["kl"] > 0  # INT8 does move the output

    def kept(plan):
        return [k for k, v in plan.levels.items() if v == "fp32" and k not in fixed]

    cap = 8_000_000

    def spent(plan):  # what the cap limits: the groups the search may move
        by = {g.name: g for g in gs}
        return sum(mixed_plan.extra_bytes(by[k], v, 16) for k, v in plan.levels.items() if k in by)

    loose = mixed_plan.search(scorer, gs, table, Budget("kl", 10.0), fixed=fixed, max_extra_bytes=cap)
    tight = mixed_plan.search(scorer, gs, table, Budget("kl", 0.0), fixed=fixed, max_extra_bytes=cap)
    middle = mixed_plan.search(scorer, gs, table, Budget("kl", start["kl"] / 2), fixed=fixed, max_extra_bytes=cap)
    assert kept(loose) == [] and loose.simulated["kl"] == start["kl"]
    assert len(kept(tight)) >= len(kept(middle)) >= len(kept(loose))
    assert kept(tight) and 0 < spent(tight) == tight.extra_bytes <= cap
    assert tight.simulated["kl"] < start["kl"]
    if Budget("kl", start["kl"] / 2).met(middle.simulated):  # met: the plan's last kept step is its score
        assert kept(middle) and [s for s in middle.steps if s["kept"]][-1]["kl"] == middle.simulated["kl"]
    # a fixed group among the searched ones (the convolutions, in the build) counts in the plan's size
    # but not against the cap: the search spends the same
    conv = next(g for g in sensitivity.groups(scored[3]) if g.name == "enc.conv")
    with_conv = mixed_plan.search(scorer, gs + [conv], table, Budget("kl", 0.0), fixed=fixed, max_extra_bytes=cap)
    assert with_conv.levels == tight.levels
    assert with_conv.extra_bytes == tight.extra_bytes + mixed_plan.extra_bytes(conv, "fp32", 16)
    # the most sensitive group by the table is the first one the search tries
    first = max(gs, key=lambda g: next(r["kl"] for r in table if r["group"] == g.name and r["level"] == "int8"))
    assert tight.steps[1]["action"].startswith(first.name)
    # only raises that scored closer to FP32 were kept: the kept path only improves until pruning
    path = [s["kl"] for s in tight.steps if s["kept"] and "back to" not in s["action"]]
    assert path == sorted(path, reverse=True) and len(set(path)) == len(path)
    assert tight.simulated["kl"] <= min(s["kl"] for s in tight.steps)


def test_the_page_draws_the_sensitivity_of_a_searched_plan():
    """The page's model card shows the per-group chart when an INT8 engine's
    manifest has a sensitivity table, and hides it when none has."""
    from asr_quant.app import ui
    from asr_quant.settings import Settings

    from fake_engines import FakeEngine, fake_set

    def plot_of(engines):
        demo = ui.build(fake_set(*engines), Settings(), examples=[])
        comp = next(c for c in demo.config["components"] if c.get("props", {}).get("elem_id") == "sensitivity")
        return comp["props"]

    searched = FakeEngine("INT8")
    searched.info.quant = _fake_quant("search")
    props = plot_of([FakeEngine("FP32"), searched])
    assert props["visible"] is not False and "dec.2.mlp" in str(props["value"])
    recipe = FakeEngine("INT8")
    recipe.info.quant = _fake_quant("recipe")
    assert plot_of([FakeEngine("FP32"), recipe])["visible"] is False


@pytest.mark.model
def test_a_plan_the_benchmark_cannot_build_is_an_unavailable_row(whisper_engines):
    """`bench --int8-plans` with a plan that does not exist: that row says why,
    the run goes on (no build is started for it)."""
    from asr_quant.bench.run import int8_plan_variants
    from asr_quant.settings import Settings

    from asr_quant.bench.run import BenchError
    from asr_quant.engines.whisper import ort_artifacts

    said, builds = [], ort_artifacts.BUILDS
    (v,) = int8_plan_variants(whisper_engines, Settings(model="base"), "magic:kl=0.01", said.append)
    assert v.info.name == "INT8-magic(kl=0.01)" and not v.info.available
    assert "INT8 plan must be one of recipe, search" in v.info.error
    assert any("magic" in s for s in said) and ort_artifacts.BUILDS == builds
    with pytest.raises(BenchError, match="twice"):
        int8_plan_variants(whisper_engines, Settings(model="base"), "search,search", said.append)
