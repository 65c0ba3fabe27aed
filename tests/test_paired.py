"""Paired statistics against FP32 (bench.paired) and the verdict on recorded
rows only (bench.paired_report), on hand-made transcripts: no model."""
from __future__ import annotations

import numpy as np
import pytest

from asr_quant import metrics
from asr_quant.bench import paired, paired_report, report
from asr_quant.bench.stats import Record

from test_bench import word_edits

REC, SYN = "es (prompts, recorded)", "zh (espeak-ng)"


def r(engine, clip, text, reference="a b c d", row=REC, language="es", run=0, error=None) -> Record:
    return Record(engine=engine, clip=clip, row=row, language=language, run=run, reference=reference,
                  audio_s=1.0, text=text, error=error)


def test_identical_share_error_vs_fp32_and_delta_by_hand():
    fp32 = [r("FP32", "c1", "a b c d"), r("FP32", "c2", "a b x d"), r("FP32", "c3", "a b c d")]
    int8 = [r("INT8", "c1", "a b c d"),  # identical, right
            r("INT8", "c2", "a b c d"),  # differs from FP32 by 1 word, and is right where FP32 was wrong
            r("INT8", "c3", "a y z d")]  # differs by 2 words, 2 errors
    int8.append(r("INT8", "c1", "q q q q", run=1))  # a second run is not scored
    pairs = paired.pair_clips(int8, fp32, word_edits)
    assert [(p.clip, p.engine_edits, p.fp32_edits, p.vs_fp32_edits, p.identical) for p in pairs] == [
        ("c1", 0, 0, 0, True), ("c2", 0, 1, 1, False), ("c3", 2, 0, 2, False)]
    s = paired.summarize_pairs(pairs, resamples=500)
    assert s["clips"] == 3 and s["identical"] == pytest.approx(1 / 3) and s["identical_clips"] == 1
    assert s["vs_fp32"] == pytest.approx(3 / 12)  # 3 edits over FP32's 12 words
    assert s["rate"] == pytest.approx(2 / 12) and s["fp32_rate"] == pytest.approx(1 / 12)
    assert s["delta"] == pytest.approx(1 / 12)
    assert s["ci_low"] <= s["delta"] <= s["ci_high"] and s["resamples"] == 500


def test_bootstrap_is_seeded_and_matches_a_direct_resampling():
    rng = np.random.default_rng(3)
    pairs = [paired.ClipPair(clip=f"c{i}", row=REC, ref_len=int(n), engine_edits=int(e), fp32_edits=int(f),
                             vs_fp32_edits=0, fp32_len=int(n), identical=False)
             for i, (n, e, f) in enumerate(zip(rng.integers(3, 12, 60), rng.integers(0, 3, 60), rng.integers(0, 3, 60)))]
    a = paired.bootstrap_delta(pairs, resamples=1000, seed=7)
    assert a == paired.bootstrap_delta(pairs, resamples=1000, seed=7)
    assert a != paired.bootstrap_delta(pairs, resamples=1000, seed=8)
    # the same resampling written out clip by clip
    idx = np.random.default_rng(7).integers(0, len(pairs), size=(1000, len(pairs)))
    deltas = [sum(pairs[i].engine_edits - pairs[i].fp32_edits for i in row) / sum(pairs[i].ref_len for i in row)
              for row in idx]
    assert a == pytest.approx((np.percentile(deltas, 2.5), np.percentile(deltas, 97.5)))
    assert paired.bootstrap_delta(pairs[:1]) == (None, None)  # one clip: no interval


def test_identical_engines_have_a_zero_interval_and_a_shift_moves_it():
    fp32 = [r("FP32", f"c{i}", "a b c d") for i in range(30)]
    same = paired.summarize_pairs(paired.pair_clips([r("X", f"c{i}", "a b c d") for i in range(30)], fp32, word_edits))
    assert same["identical"] == 1.0 and same["delta"] == 0 and (same["ci_low"], same["ci_high"]) == (0, 0)
    worse = [r("X", f"c{i}", "a b c x" if i % 3 == 0 else "a b c d") for i in range(30)]
    s = paired.summarize_pairs(paired.pair_clips(worse, fp32, word_edits))
    assert s["delta"] == pytest.approx(10 / 120) and 0 < s["ci_low"] < s["delta"] < s["ci_high"]


def test_a_failed_call_scores_empty_and_is_never_identical():
    fp32 = [r("FP32", "c1", "")]  # FP32 said nothing
    pairs = paired.pair_clips([r("INT8", "c1", "", error="boom")], fp32, word_edits)
    assert pairs[0].identical is False and pairs[0].engine_edits == 4  # all four words deleted


def test_paired_stats_pool_recorded_and_synthetic_rows_apart():
    recs = {"FP32": [r("FP32", "e1", "a b c d"), r("FP32", "z1", "a b c d", row=SYN, language="zh")],
            "INT8": [r("INT8", "e1", "a b c d"), r("INT8", "z1", "a x c d", row=SYN, language="zh")]}
    out = paired.paired_stats(recs, {REC}, word_edits, resamples=100)
    e = out["engines"]["INT8"]
    assert set(out["engines"]) == {"INT8"} and out["resamples"] == 100 and out["seed"] == paired.SEED
    assert e["recorded"]["clips"] == 1 and e["recorded"]["identical"] == 1.0 and e["recorded"]["delta"] == 0
    assert e["synthetic"]["clips"] == 1 and e["synthetic"]["delta"] == pytest.approx(0.25)
    assert set(e["rows"]) == {REC, SYN}


def test_spanish_accents_do_not_count_against_a_reference_without_them():
    """The Asterisk texts drop accents ("numero", "contrasena"): a correct
    "número" / "contraseña" scores as right, in Spanish only."""
    er = metrics.error_rate("Por favor ingrese su contrasena seguida por la tecla de numero",
                            "Por favor, ingrese su contraseña seguida por la tecla de número.", "es")
    assert er.errors == 0 and er.ref_len == 11
    assert metrics.error_rate("Trés para expulsar", "tres para expulsar", "es").errors == 0
    assert metrics.error_rate("el numero", "el nombre", "es").errors == 1  # a wrong word still counts
    assert metrics.error_rate("schon", "schön", "de").errors == 1  # other languages keep their marks
    assert metrics.normalize("が", "ja") == "が"  # never on kana (dakuten is a mark)
    assert [op.op for op in metrics.diff("su número", "su numero", "es")] == ["equal"]


# --- the verdict -------------------------------------------------------------------

def _res(int8_texts: list[str], rows_recorded: bool, n: int = 40) -> dict:
    row = REC if rows_recorded else SYN
    recs = {"FP32": [r("FP32", f"c{i}", "a b c d", row=row) for i in range(n)],
            "INT8": [r("INT8", f"c{i}", t, row=row) for i, t in enumerate(int8_texts)]}
    res = dict(corpus=dict(rows={row: dict(source="prompts" if rows_recorded else "espeak-ng",
                                           recorded=rows_recorded)}),
               records={k: [vars(x) for x in v] for k, v in recs.items()},
               ratios={"INT8": {"latency": {}}}, engines=[{"name": "FP32"}, {"name": "INT8"}])
    res["paired"] = paired.paired_stats(recs, paired.recorded_rows(res), word_edits)
    return res


def _verdict(res):
    return next(t for t in report.targets(res) if t["key"] == "wer_delta")


def test_verdict_uses_the_upper_end_of_the_interval_on_recorded_rows():
    ok = _verdict(_res(["a b c d"] * 40, True))
    assert ok["met"] is True and ok["measured"] == 0 and "40 clips" in ok["shown"]
    # one wrong word in 200 clips: delta +0.125 points, but the interval reaches past the +0.3 point target
    one = _res(["a b c x"] + ["a b c d"] * 199, True, n=200)
    v = _verdict(one)
    pool = one["paired"]["engines"]["INT8"]["recorded"]
    assert pool["delta"] == pytest.approx(1 / 800) and pool["delta"] < 0.003 < pool["ci_high"]
    assert v["met"] is False and v["measured"] == pytest.approx(100 * pool["ci_high"])


def test_synthetic_rows_never_enter_the_verdict():
    v = _verdict(_res(["x y z w"] * 40, False))  # far off FP32, but synthetic
    assert v["met"] is None and v["shown"] == "not judged (no recorded clips in this run)"


def test_results_markdown_shows_the_paired_table_and_which_rows_are_real():
    from test_bench import _fake_results

    res = _fake_results(int8_time=0.8, fw_time=1.0, int8_text="a b c x")
    md = report.results_markdown(res)  # an older results dict: paired figures computed from its records
    assert "Agreement with FP32, clip by clip" in md and "identical to FP32" in md
    assert "en (espeak-ng) — synthetic" in md and "Rows of recorded speech (none in this run)" in md
    line = next(x for x in md.splitlines() if x.startswith("| pooled, synthetic rows | 2 | INT8 |"))
    assert "| 0 % (0/2) | 25.0 |" in line and "+25.00" in line
    assert paired_report.READ_ME in md


def test_recorded_clips_of_one_window_are_pooled_apart_and_shown_only_when_longer_ones_exist():
    """A clip longer than Whisper's 30 s window is decoded window by window,
    which faster-whisper does its own way: the one-window pool leaves such
    clips out, and the report shows that pool only when it differs."""
    long = dict(audio_s=42.0)
    recs = {"FP32": [r("FP32", "s1", "a b c d"), Record(**{**vars(r("FP32", "l1", "a b c d")), **long})],
            "PEER": [r("PEER", "s1", "a b c d"), Record(**{**vars(r("PEER", "l1", "a b", "a b c d")), **long})]}
    e = paired.paired_stats(recs, {REC}, word_edits, resamples=100)["engines"]["PEER"]
    assert e["recorded"]["clips"] == 2 and e["recorded"]["delta"] == pytest.approx(2 / 8)
    assert e["recorded_one_window"]["clips"] == 1 and e["recorded_one_window"]["delta"] == 0
    table = lambda header, rows: "\n".join("| " + " | ".join(str(c) for c in row) + " |" for row in rows)
    md = paired_report.paired_section({"paired": {"engines": {"PEER": e}}, "corpus": {"rows": {REC: {}}},
                                       "recorded_rows": [REC]}, "#", table)
    assert "| pooled, recorded clips of one 30 s window | 1 | PEER |" in md and "seeking by timestamps" in md
    short = {k: v for k, v in e.items()}
    short["recorded_one_window"] = short["recorded"]
    md = paired_report.paired_section({"paired": {"engines": {"PEER": short}}, "corpus": {"rows": {REC: {}}}},
                                      "#", table)
    assert "one 30 s window" not in md
