"""Plan "costed" without the real model: the search with time as a cost, the
simulation against the ONNX graphs it stands for, the cost table's cache and
the artifact key that covers it."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from asr_quant.engines.whisper.plans import costed, costs, granular, mixed
from asr_quant.engines.whisper.plans.config import QuantConfig
from asr_quant.engines.whisper.plans.sensitivity import Group

from test_int8_rows import _tiny_whisper


# --------------------------------------------------------------------------- the search, pure

GROUPS = [Group(f"enc.{i}.mlp", "encoder", "mlp", i, 0) for i in range(3)] + \
         [Group(f"dec.{i}.self", "decoder", "self", i, 0) for i in range(3)]
OPTIONS = {g.name: ("fp32", "tensor", "row", "b16") for g in GROUPS}
# ms per window: the encoder's blocks are dear, the decoder's cheap (as measured on VNNI hosts)
COST = {(g.name, o): {"encoder": {"fp32": 10.0, "tensor": 4.0, "row": 5.0, "b16": 12.0},
                      "decoder": {"fp32": 3.0, "tensor": 1.0, "row": 1.2, "b16": 1.1}}[g.side][o]
        for g in GROUPS for o in OPTIONS[g.name]}
ERR = {"fp32": 0.0, "tensor": 0.02, "row": 0.008, "b16": 0.001}


class AdditiveScorer:
    """Each group's error at its option, summed, with the later layers weighing
    more (a stand-in for the Scorer: what the search decides from its scores)."""

    def __init__(self):
        self.calls = 0

    def score(self, plan, outliers=None):
        self.calls += 1
        kl = sum(ERR[o] * (1 + int(g.split(".")[1])) for g, o in plan.items())
        return {"kl": round(kl, 9), "top1": round(1 - kl, 9), "positions": 100}


def _search(budget: str):
    sc = AdditiveScorer()
    table = costed.sensitivities(sc, GROUPS, OPTIONS)
    return costed.search(sc, GROUPS, OPTIONS, COST, costed.parse_budget(budget), table)


def test_a_tight_time_budget_picks_a_plan_no_slower_than_a_loose_one():
    fp32_ms = sum(COST[(g.name, "fp32")] for g in GROUPS)
    plans = {}
    for b in ("time=0.45", "time=0.55", "time=0.8"):
        levels, m, points = _search(b)
        ms = costed.plan_ms(levels, COST)
        assert ms <= float(b.split("=")[1]) * fp32_ms + 1e-9, (b, ms)
        plans[b] = (ms, m["kl"], points)
    (t_ms, t_kl, _), (m_ms, m_kl, _), (l_ms, l_kl, _) = plans.values()
    assert t_ms <= m_ms <= l_ms
    assert l_kl < t_kl  # the time a loose budget allows buys agreement
    # the tight budget cannot afford the encoder's blocks: it keeps the per-call / per-row grid there
    levels, _, _ = _search("time=0.45")
    assert all(levels[g.name] in ("tensor", "row") for g in GROUPS if g.side == "encoder")


def test_an_agreement_budget_gets_the_least_time_that_meets_it_and_the_search_is_deterministic():
    levels, m, points = _search("kl=0.02")
    assert m["kl"] <= 0.02
    assert _search("kl=0.02") == (levels, m, points)  # same table, same scores: same plan, same path
    loose, m2, _ = _search("kl=0.08")
    assert costed.plan_ms(loose, COST) <= costed.plan_ms(levels, COST) and m2["kl"] <= 0.08
    # the front holds only plans no other scored plan beats on both time and KL
    front = costed.front(points)
    assert front and all(not (q["ms"] <= p["ms"] and q["kl"] < p["kl"]) for p in front for q in points)
    assert [p["ms"] for p in front] == sorted(p["ms"] for p in front)


def test_budgets_parse_and_reject():
    assert str(costed.parse_budget("time=0.35")) == "time=0.35"
    assert costed.parse_budget("top1=0.99").kind == "top1"
    for bad in ("time=0", "time=-1", "time=x", "speed=2"):
        with pytest.raises(ValueError):
            costed.parse_budget(bad)
    assert QuantConfig(plan="costed", budget="time=4e-1").budget == "time=0.4"
    with pytest.raises(ValueError):
        QuantConfig(plan="search", budget="time=0.4")  # only the costed plan has time as a cost


# --------------------------------------------------------------------------- the simulation is the graph

def _onnx_logits(enc, dec, mel, tokens, first, d):
    from asr_quant.engines.whisper.plans.measure import _prompt_logits, _session

    return _prompt_logits(_session(enc, 1), _session(dec, 1), mel, tokens, first, d)[0]


def test_each_granularity_simulated_is_what_its_onnx_writer_builds(tmp_path):
    import torch

    from asr_quant.engines.whisper import onnx_export
    from asr_quant.engines.whisper.plans.sensitivity import groups

    model = _tiny_whisper()
    rng = np.random.default_rng(1)
    mel = rng.standard_normal((1, 8, 32)).astype(np.float32)
    tokens, first = [1, 5, 7, 9, 11, 3, 4], 1
    enc32, dec32 = onnx_export.export(model, tmp_path / "fp32")
    d = onnx_export.dims(model.config)
    ref = _onnx_logits(enc32, dec32, mel, tokens, first, d)
    gs = [g for g in groups(model) if g.kind != "conv"]
    qmax = QuantConfig(plan="costed").weight_qmax  # this host's grid: 7 bits where its u8s8 sums saturate (probe.py)
    for option in ("tensor", "row", "b16", "b32"):
        levels = {g.name: option for g in gs}
        levels["dec.tokens"] = "b16" if option in ("tensor", "row") else option  # the token table has blocks only
        out = tmp_path / option
        out.mkdir()
        n_enc = mixed.write(enc32, out / "e.onnx", "encoder", levels, qmax, out)
        n_dec = mixed.write(dec32, out / "d.onnx", "decoder", levels, qmax, out)
        assert n_enc.get(option) == 16 and sum(n_dec.values()) == 17  # every weight product got its option
        got = _onnx_logits(out / "e.onnx", out / "d.onnx", mel, tokens, first, d)
        with granular.simulated(model, levels, None, first + 1, qmax), torch.inference_mode():
            h = model.model.encoder(input_features=torch.from_numpy(mel)).last_hidden_state
            y = model.model.decoder(input_ids=torch.tensor([tokens]), encoder_hidden_states=h).last_hidden_state
            sim = model.proj_out(y)[0].numpy()
        q_err = np.abs(got - ref).mean()  # what quantization moves
        s_err = np.abs(got - sim).mean()  # what the simulation misses of it
        assert q_err > 1e-4, option  # the option did quantize something
        assert s_err < 0.25 * q_err, (option, s_err, q_err)


# --------------------------------------------------------------------------- the cost table and the key

CFG = SimpleNamespace(d_model=32, encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=96, max_source_positions=16)


def test_the_cost_table_is_measured_once_per_host_and_its_digest_is_in_the_artifact_key(tmp_path, monkeypatch):
    calls = []

    def fake_time(products, options, threads, rounds=costs.ROUNDS, qmax=127, seed=0):
        calls.append(threads)
        return {p.label: {o: float(len(calls)) for o in options if costs.valid(p, o)} for p in products}

    monkeypatch.setattr(costs, "time_products", fake_time)
    q = QuantConfig(plan="costed", isa="avx512-vnni")
    a = costs.for_quant(CFG, q, tmp_path)
    b = costs.for_quant(CFG, q, tmp_path)
    assert len(calls) == 1 and a.digest() == b.digest()  # the second read is the cache
    labels = {p.label for p in costs.all_products(costs.dims_of(CFG), 16)}
    assert set(a.ms) == labels and "16x32->48" in labels  # the split MLP's products are there
    costs.for_quant(CFG, QuantConfig(plan="costed", isa="avx512-vnni", cost_threads=1), tmp_path)
    costs.for_quant(CFG, QuantConfig(plan="costed", isa="avx2"), tmp_path)
    assert len(calls) == 3  # another thread count or instruction set is another table

    from asr_quant.engines.whisper import ort_artifacts

    bundle = SimpleNamespace(sha256="x" * 64, config=CFG, cache_dir=tmp_path / "model")
    (tmp_path / "model").mkdir()
    k1 = ort_artifacts.artifact_key(bundle, "int8", q)
    assert ort_artifacts.artifact_key(bundle, "int8", q) == k1
    table = next((tmp_path / "model" / "int8-costs").glob("*.json"))
    data = json.loads(table.read_text())
    first = next(iter(data["ms"]))
    data["ms"][first]["fp32"] += 1.0  # the same host measured again, other figures
    table.write_text(json.dumps(data))
    assert ort_artifacts.artifact_key(bundle, "int8", q) != k1
    rows = QuantConfig(plan="rows", isa="avx512-vnni")
    before = len(calls)
    ort_artifacts.artifact_key(bundle, "int8", rows)
    assert len(calls) == before  # the other plans need no table


def test_the_probe_says_whether_8_bit_weights_survive_this_hosts_u8s8_sums():
    """What the probe answers is what a product of loud activations does here:
    with 8-bit weights exact only where the probe says exact; with the 7-bit
    grid it prescribes, exact everywhere."""
    from asr_quant.engines.whisper.plans import probe

    rng = np.random.default_rng(3)
    m, k, n = 24, 256, 32
    a = rng.integers(200, 256, (m, k)).astype(np.uint8)  # loud rows: most pair sums near the int16 limit
    exact = {}
    for qmax in (127, 63):
        b = rng.integers(-qmax, qmax + 1, (k, n)).astype(np.int8)
        b[:, 0] = qmax  # one column that must saturate if anything does
        want = a.astype(np.int64) @ b.astype(np.int64)
        got = _matmul_integer(a, b)
        exact[qmax] = bool((got == want).all())
    assert exact[63]
    assert exact[127] == (probe.u8s8() == probe.EXACT)
    assert QuantConfig(plan="rows", u8s8="saturates", isa="amx").weight_qmax == 63
    assert QuantConfig(plan="rows", u8s8="exact", isa="amx").weight_qmax == 127
    assert QuantConfig(plan="rows", u8s8="exact", isa="avx2").weight_qmax == 63
    # the shipped probe graph is the one probe_model writes (the engine's load reads the file, without onnx)
    assert probe.PROBE_FILE.read_bytes() == probe.probe_model()


def _matmul_integer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph([helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "g",
                              [helper.make_tensor_value_info("A", TensorProto.UINT8, list(a.shape))],
                              [helper.make_tensor_value_info("Y", TensorProto.INT32, None)],
                              [numpy_helper.from_array(b, "B")])
    model = helper.make_model(graph, ir_version=9, opset_imports=[helper.make_opsetid("", 17)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"A": a})[0].astype(np.int64)


def test_auto_builds_the_plan_the_evidence_measured_with_no_table_or_search(tmp_path, monkeypatch):
    """`auto` on a host whose evidence names a searched plan builds that very
    plan (its levels), so the default is what the benchmark measured: no cost
    table is measured for its key, and the levels are in the key."""
    from asr_quant import host
    from asr_quant.engines.whisper import ort_artifacts
    from asr_quant.engines.whisper.plans import default
    from asr_quant.settings import Settings

    levels = {"enc.0.attn": "row", "dec.tokens": "b32"}
    ev = default.Evidence("h", "cmd", 10, {"costed:kl=0.004": default.Score(0.9, 0.8), "rows": default.Score(0.8, 0.7)},
                          levels={"costed:kl=0.004": levels})
    monkeypatch.setattr(default, "EVIDENCE", {level: ev for level in host.LEVELS})
    q = QuantConfig.from_settings(Settings())
    assert (q.plan, q.budget, dict(q.levels)) == ("costed", "kl=0.004", levels)
    assert QuantConfig.from_settings(Settings(int8_plan="costed")).levels == ()  # by hand: searched
    monkeypatch.setattr(costs, "time_products", lambda *a, **k: pytest.fail("a fixed plan measured a cost table"))
    bundle = SimpleNamespace(sha256="x" * 64, config=CFG, cache_dir=tmp_path)
    other = QuantConfig(plan="costed", levels=tuple({**levels, "dec.tokens": "b16"}.items()))
    assert ort_artifacts.artifact_key(bundle, "int8", q) != ort_artifacts.artifact_key(bundle, "int8", other)
    with pytest.raises(ValueError):
        QuantConfig(plan="rows", levels=(("enc.0.attn", "row"),))
