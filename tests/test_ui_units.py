"""Fast tests of the page's Gradio-free parts: runner, history, charts, words.
No model is loaded; engines are the tests-only fakes."""
from __future__ import annotations

import json
import re
import threading
import time

import numpy as np

from asr_quant.audio import Clip
from asr_quant.engines.base import Memory, Timings, Transcript
from asr_quant.app import charts, present
from asr_quant.app.history import MAX_RUNS, EngineRun, History, RunRecord
from asr_quant.app.runner import Runner

from fake_engines import FakeEngine, fake_set, unavailable


def _clip(seconds: float = 1.0) -> Clip:
    return Clip(samples=np.zeros(int(16000 * seconds), np.float32), name="c.wav")


# -- runner ---------------------------------------------------------------------

def test_runner_failing_engine_is_its_own_error_and_order_is_sequential():
    spans = {}

    class Timed(FakeEngine):
        def _run(self, clip, language):
            t0 = time.perf_counter()
            try:
                return super()._run(clip, language)
            finally:
                spans[self.info.name] = (t0, time.perf_counter())

    engines = [Timed("FP32", "a b c", delay_s=0.05), Timed("FP16", fail=RuntimeError("kaput")),
               Timed("INT8", "a b d", delay_s=0.05)]
    out = list(Runner(engines, timeout_s=5).run(_clip(), "en"))
    assert [t.engine for t in out] == ["FP32", "FP16", "INT8"]
    assert out[0].ok and out[0].text == "a b c"
    assert not out[1].ok and "kaput" in out[1].error and out[1].text == ""
    assert out[2].ok and out[2].text == "a b d"
    # one after another: no engine starts before the previous one ended
    assert spans["FP32"][1] <= spans["FP16"][0] and spans["FP16"][1] <= spans["INT8"][0]


def test_runner_yields_each_transcript_before_running_the_next():
    a, b = FakeEngine("FP32"), FakeEngine("INT8")
    gen = Runner([a, b], timeout_s=5).run(_clip(), None)
    first = next(gen)
    assert first.engine == "FP32" and a.calls == 1 and b.calls == 0
    assert next(gen).engine == "INT8" and b.calls == 1


def test_runner_engine_breaking_the_no_raise_promise_is_contained():
    class Rude(FakeEngine):
        def transcribe(self, clip, language=None):
            raise ValueError("escaped")

    out = list(Runner([Rude("FP32"), FakeEngine("INT8", "ok")], timeout_s=5).run(_clip(), None))
    assert out[0].error == "ValueError: escaped"
    assert out[1].text == "ok"


def test_runner_timeout_reports_error_then_busy_then_recovers():
    gate = threading.Event()
    hung = FakeEngine("FP16", "late answer", gate=gate)
    runner = Runner([FakeEngine("FP32", "x"), hung, FakeEngine("INT8", "y")], timeout_s=0.3)
    t0 = time.perf_counter()
    out = list(runner.run(_clip(), None))
    assert time.perf_counter() - t0 < 5  # did not wait for the hung call
    assert [t.ok for t in out] == [True, False, True]
    assert "timed out" in out[1].error and "0.3 s" in out[1].error
    assert out[1].timings.total_s >= 0.3
    assert runner.busy() == ["FP16"]
    # while the abandoned call still computes, the engine answers "busy" at once
    again = list(runner.run(_clip(), None))
    assert "still busy" in again[1].error and hung.calls == 1
    assert again[0].ok and again[2].ok
    gate.set()
    for _ in range(100):
        if not runner.busy():
            break
        time.sleep(0.02)
    assert runner.busy() == []
    third = list(runner.run(_clip(), None))
    assert third[1].ok and third[1].text == "late answer" and hung.calls == 2


def test_runner_warns_when_an_abandoned_call_disturbs_the_others_timings():
    """The module's promise: engines that run while an abandoned call still
    computes say in their result that their timing is disturbed."""
    gate = threading.Event()
    hung = FakeEngine("FP16", "late", gate=gate)
    runner = Runner([FakeEngine("FP32", "x"), hung, FakeEngine("INT8", "y")], timeout_s=0.3)
    first = list(runner.run(_clip(), None))
    assert first[0].warnings == []  # it ran before anything was abandoned
    assert [w for w in first[2].warnings if w.startswith("timing disturbed")] == [
        "timing disturbed: FP16 was still computing a call abandoned at the 0.3 s limit while this one ran, "
        "so its latency here is not comparable"]
    again = list(runner.run(_clip(), None))
    assert any("FP16 was still computing" in w for w in again[0].warnings + again[2].warnings)
    assert "still busy" in again[1].error
    gate.set()
    for _ in range(100):
        if not runner.busy():
            break
        time.sleep(0.02)
    calm = list(runner.run(_clip(), None))
    assert all(t.ok and not t.warnings for t in calm)


def test_activity_counts_abandoned_calls_until_they_end():
    from asr_quant.app.runner import Activity

    activity, gate = Activity(), threading.Event()
    runner = Runner([FakeEngine("FP16", gate=gate)], timeout_s=0.2, activity=activity)
    assert activity.idle_for() == float("inf")  # nothing ran yet: idle
    list(runner.run(_clip(), None))  # abandoned after 0.2 s, still computing
    assert activity.idle_for() == 0.0
    waiter = threading.Thread(target=activity.wait_idle, args=(0.3, 0.05))
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive()  # the app is not idle while the abandoned call computes
    gate.set()
    waiter.join(5)
    assert not waiter.is_alive() and activity.idle_for() >= 0.3


def test_runner_unavailable_engine_answers_with_reason():
    out = list(Runner([FakeEngine("FP32"), unavailable("INT8", "no onnx file")], 5).run(_clip(), None))
    assert out[0].ok
    assert "unavailable" in out[1].error and "no onnx file" in out[1].error


# -- history ----------------------------------------------------------------------

def _history() -> History:
    h = History()
    h.add(RunRecord(run=0, time="2025-01-02T03:04:05", clip='tricky, "name"\n.wav', duration_s=9.87654321,
                    language="auto (zh)", reference=True, wall_s=3.3, engines_s=3.0, engines=[
                        EngineRun("FP32", 1.25, 0.126, "cer", 0.1, 12),
                        EngineRun("FP16", None, None, None, None, 0, "timed out: no answer, within 5 s"),
                        EngineRun("INT8", 0.5, 0.0506, "cer", 1 / 3, 11)]))
    h.add(RunRecord(run=0, time="2025-01-02T03:05:00", clip="日本語.wav", duration_s=2.0, language="ja",
                    reference=False, engines=[EngineRun("FP32", 0.3, 0.15), EngineRun("BF16", 0.4, 0.2)]))
    return h


def test_history_csv_round_trip():
    h = _history()
    back = History.from_csv(h.to_csv())
    assert back.runs == h.runs
    assert back.next_run == 3


def test_history_json_round_trip():
    h = _history()
    text = h.to_json()
    assert json.loads(text)["runs"][1]["clip"] == "日本語.wav"
    back = History.from_json(text)
    assert back.runs == h.runs and back.next_run == h.next_run


def test_history_csv_is_long_form_one_row_per_engine():
    lines = _history().to_csv().strip().split("\n")
    rows = list(__import__("csv").DictReader(lines[:1] + [l for l in lines[1:]]))
    assert [(r["run"], r["engine"]) for r in rows] == [("1", "FP32"), ("1", "FP16"), ("1", "INT8"),
                                                      ("2", "FP32"), ("2", "BF16")]
    assert rows[1]["latency_s"] == "" and rows[1]["error"].startswith("timed out")


def test_history_table_newest_first_with_engine_columns():
    headers, rows = _history().table()
    assert headers[:5] == ["#", "time", "clip", "duration s", "language"]
    assert "BF16 s" in headers and "INT8 WER/CER" in headers
    assert [r[0] for r in rows] == [2, 1]
    old = dict(zip(headers, rows[1]))
    assert old["FP16 s"] == "error"
    assert old["INT8 WER/CER"] == "CER 33.3%"
    assert old["FP32 s"] == "1.250"
    assert dict(zip(headers, rows[0]))["INT8 s"] == ""  # INT8 not in run 2


def test_history_is_bounded():
    h = History()
    for _ in range(MAX_RUNS + 5):
        h.add(RunRecord(run=0, time="t", clip="c", duration_s=1, language="en", reference=False))
    assert len(h.runs) == MAX_RUNS and h.runs[-1].run == MAX_RUNS + 5 and h.runs[0].run == 6


# -- charts -------------------------------------------------------------------------

def _t(name, total, ok=True, disk=0, weights=0, working=None, audio_s=10.0, peak_alone=None):
    return Transcript(engine=name, text="x" if ok else "", audio_s=audio_s, timings=Timings(total_s=total),
                      memory=Memory(disk_bytes=disk, weights_bytes=weights, working_bytes=working,
                                    peak_rss_alone=peak_alone),
                      error=None if ok else "boom")


def test_latency_chart_writes_ratio_to_fp32_on_each_bar():
    ts = [_t("FP32", 2.0), _t("FP16", 3.0), _t("INT8", 0.5), _t("BF16", 9.9, ok=False)]
    fig = charts.latency_figure(ts)
    bar = fig.data[0]
    assert list(bar.x) == ["FP32", "FP16", "INT8", "BF16"]
    assert list(bar.y) == [2.0, 3.0, 0.5, 0.0]
    assert list(bar.text) == ["1.00× FP32", "1.50× FP32", "0.25× FP32", "error"]


def test_latency_chart_without_fp32_answer_shows_seconds():
    assert charts.ratio_labels([_t("FP32", 1.0, ok=False), _t("INT8", 0.75)]) == ["error", "0.75 s"]


def test_memory_chart_leads_with_peak_alone_in_decimal_mb():
    ts = [_t("FP32", 1, disk=290e6, weights=290e6, working=40e6, peak_alone=856e6),
          _t("INT8", 1, disk=80e6, weights=76e6, working=None)]  # not measured yet: no bar
    fig = charts.memory_figure(ts)
    assert [tr.name for tr in fig.data] == ["peak RSS alone (to provision)", "working memory of a call (alone)",
                                            "weights as stored", "on disk"]
    assert [list(tr.y) for tr in fig.data] == [[856, 0], [40, 0], [290, 76], [290, 80]]
    assert list(fig.data[2].text) == ["290 MB", "76 MB"]  # the page's formatter, MB = 10^6 bytes
    ts[0].memory.alone_clip, ts[0].memory.alone_clip_s = "weather_en.flac", 6.14
    assert charts.memory_figure(ts).data[1].name == "working memory of a call (alone, on weather_en.flac, 6.1 s)"


def test_history_chart_has_latency_per_engine_and_error_only_with_reference():
    fig = charts.history_figure(_history())
    names = [tr.name for tr in fig.data]
    assert names == ["FP32 latency", "FP32 error", "FP16 latency", "INT8 latency", "INT8 error", "BF16 latency"]
    fp16 = fig.data[2]
    assert list(fp16.x) == [1, 2] and list(fp16.y) == [None, None]  # failed, then absent
    assert list(fig.data[1].y) == [0.1, None]


def test_charts_accept_an_empty_session():
    assert len(charts.history_figure(History()).data) == 0


# -- words ------------------------------------------------------------------------

def test_model_card_names_model_and_marks_unavailable_engine():
    es = fake_set(FakeEngine("FP32"), unavailable("INT8", "onnx export failed: disk full"))
    card = present.model_card(es)
    assert "Fake model" in card and "tests" in card and "1000 parameters" in card
    assert "FP32 - Fake 1.0, cpu" in card
    assert "unavailable: onnx export failed: disk full" in card


def _measured_int8():
    """An INT8 engine whose figures in bytes are FP32 Whisper base's (277 MiB =
    290.5 MB), with its alone probe on a named clip."""
    e = FakeEngine("INT8")
    e.info.disk_bytes = e.info.weights_bytes = 277 * 2**20
    e.info.alone = dict(working_bytes=58_000_000, peak_rss=670_000_000, clip="weather_en.flac", clip_s=6.14,
                        measured_at="2026-12-01T00:00:00+00:00")
    return e


def test_page_and_cli_print_the_same_mb_for_the_same_bytes():
    from asr_quant.__main__ import format_table
    from asr_quant.engines.results import engine_row, run_result

    e = _measured_int8()
    card = present.model_card(fake_set(e))
    t = e.transcribe(Clip(np.zeros(16000, np.float32), 16000, 16000, "x.wav"), "en")
    shown = present.figures(compare_result(t))
    table = format_table(run_result("m", "x.wav", 1.0, 16000, [engine_row(e.info, t)]))
    for text in (card, shown, table):
        assert "290 MB" in text and "277 MB" not in text  # MB = 10^6 bytes on the page as in the CLI
        assert "670 MB" in text and "58 MB" in text


def test_memory_figures_name_the_probe_clip_and_lead_with_peak_alone():
    e = _measured_int8()
    card = present.model_card(fake_set(e))
    assert "peak RSS alone (to provision)" in card and "weights as stored" in card
    assert "weights in memory" not in card
    row = next(line for line in card.splitlines() if line.startswith("| **INT8**"))
    assert row.index("670 MB") < row.index("58 MB") < row.rindex("290 MB")  # the figure to provision first
    assert "on weather\\_en.flac, 6.1 s" in row
    t = e.transcribe(Clip(np.zeros(16000, np.float32), 16000, 16000, "x.wav"), "en")
    shown = present.figures(compare_result(t))
    assert "peak RSS alone 670 MB" in shown and "58 MB (alone, on weather\\_en.flac, 6.1 s)" in shown
    fresh = FakeEngine("FP32")
    assert "peak RSS alone not measured yet" in present.figures(compare_result(fresh.transcribe(
        Clip(np.zeros(16000, np.float32), 16000, 16000, "x.wav"), "en")))
    assert "| not measured yet | not measured yet |" in present.model_card(fake_set(fresh))


def test_model_card_cli_and_json_name_the_cpus_instruction_set(monkeypatch, capsys):
    from asr_quant import host
    from asr_quant.__main__ import format_table
    from asr_quant.engines.results import engine_row, run_result

    isa = host.Isa(level="avx2", cpu="AMD EPYC 7B13", flags=("avx2", "fma"))
    monkeypatch.setattr(host, "detect", lambda: isa)
    e = _measured_int8()
    card = present.model_card(fake_set(e, FakeEngine("FP32")))
    card = re.sub(r'<span style="white-space:nowrap">(.*?)</span>', r"\1", card)  # each ISA name kept whole
    assert "CPU: AMD EPYC 7B13, AVX2 + FMA (no VNNI)" in card
    assert "· for AVX2 + FMA (no VNNI)" in next(ln for ln in card.splitlines() if ln.startswith("| **INT8**"))
    assert "for AVX2" not in next(ln for ln in card.splitlines() if ln.startswith("| **FP32**"))
    assert "for AVX2 + FMA (no VNNI)" in present.engine_header(e.info)
    t = e.transcribe(Clip(np.zeros(16000, np.float32), 16000, 16000, "x.wav"), "en")
    result = run_result("m", "x.wav", 1.0, 16000, [engine_row(e.info, t)])
    assert result["host"] == {"level": "avx2", "label": "AVX2 + FMA (no VNNI)", "cpu": "AMD EPYC 7B13",
                              "flags": ["avx2", "fma"]}
    assert "AMD EPYC 7B13, AVX2 + FMA (no VNNI)" in format_table(result)
    row = result["engines"][0]
    assert row["peak_rss_alone_bytes"] == 670_000_000 and row["weights_bytes"] == 277 * 2**20
    assert row["working_clip"] == {"name": "weather_en.flac", "duration_s": 6.14}


def compare_result(t):
    from asr_quant.app import compare

    return compare.compare(t, None, None, "en")


def test_escape_keeps_user_text_inert():
    assert present.escape("<img src=x onerror=alert(1)> *b* _i_") == \
        "&lt;img src=x onerror=alert(1)&gt; \\*b\\* \\_i\\_"


def test_language_code():
    assert present.language_code("auto") is None and present.language_code("") is None
    assert present.language_code("zh") == "zh"


# -- comparisons and diff display -----------------------------------------------------

def test_compare_diffs_against_baseline_and_scores_against_reference():
    from asr_quant.app import compare

    base = Transcript(engine="FP32", text="the cat sat", language="en")
    other = Transcript(engine="INT8", text="the cat sat down", language="en")
    failed = Transcript(engine="FP16", error="boom")
    r_base = compare.compare(base, base, "the cat sat", "en")
    assert r_base.is_baseline and r_base.diff is None and r_base.score.rate == 0.0
    r = compare.compare(other, base, "the cat sat", "en")
    assert [op.op for op in r.diff] == ["equal", "insert"]
    assert r.score.kind == "wer" and r.score.insertions == 1 and r.score.ref_len == 3
    assert compare.compare(other, base, "  ", "en").score is None  # blank reference: no score
    f = compare.compare(failed, base, "the cat sat", "en")
    assert f.diff is None and f.score is None
    failed_base = Transcript(engine="FP32", error="boom")
    no_base = compare.compare(other, failed_base, None, "en")
    assert no_base.diff is None and "FP32 gave no transcript" in no_base.diff_note


def test_compare_language_falls_back_to_what_fp32_detected():
    from asr_quant.app import compare

    base = Transcript(engine="FP32", text="开放时间", language="zh")
    assert compare.text_language(None, base) == "zh"
    assert compare.text_language("ja", base) == "ja"
    assert compare.text_language(None, Transcript(engine="FP32", error="x", language="zh")) is None
    r = compare.compare(Transcript(engine="INT8", text="开放时问"), base, "开放时间", "zh")
    assert r.score.kind == "cer" and r.score.substitutions == 1 and r.score.ref_len == 4


def test_highlight_labels_each_kind_of_change():
    from asr_quant.metrics import DiffOp

    ops = [DiffOp("equal", "a b", "a b"), DiffOp("substitute", "c", "x", lead=" "),
           DiffOp("insert", "", "y", lead=" "), DiffOp("delete", "d", "", lead=" "),
           DiffOp("equal", "开放", "开放")]
    assert present.highlight(ops) == [("a", None), (" ", None), ("b", None), (" ", None), ("c→x", "substituted"),
                                      (" ", None), ("y", "inserted"), (" ", None), ("d", "deleted"),
                                      ("开放", None)]


def test_language_choices_follow_the_model():
    assert present.language_choices([]) == present.LANGUAGES
    only_en = present.language_choices(["en"])
    assert only_en == [("Auto-detect", "auto"), ("English", "en")]
    some = present.language_choices(["en", "zh", "haw"], extra=["yue"])
    assert [c for _, c in some] == ["auto", "en", "zh", "haw", "yue"]


def _nice() -> int:
    import os
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_inference_runs_nicer_than_the_thread_that_serves():
    """The page's engine calls and its loading thread run `inference_nice`
    nicer than the web server (Linux nice is per thread; threads and
    processes they start inherit it), so bad-input checks and page loads get
    the CPU first; the caller's own priority is left alone."""
    import subprocess
    import sys

    from asr_quant.app.live import LiveEngines
    from asr_quant.settings import Settings
    from fake_engines import FakeEngine, fake_set

    seen: dict[str, int] = {}

    class Probe(FakeEngine):
        def _run(self, clip, language):
            seen["call"] = _nice()
            return super()._run(clip, language)

    base = _nice()
    want = min(19, base + 5)
    clip = Clip(samples=np.zeros(16000, np.float32))
    assert [t.text for t in Runner([Probe("FP32")], timeout_s=30, nice=5).run(clip)] == ["hello world"]
    assert seen["call"] == want and _nice() == base

    def load(listener):
        seen["load"] = _nice()
        seen["child"] = int(subprocess.run([sys.executable, "-c", "import os; print(os.nice(0))"],
                                           capture_output=True, text=True, check=True).stdout)
        return fake_set(FakeEngine("FP32"))

    live = LiveEngines("fake", ["fp32"])
    live.start(load, nice=5)
    assert live.wait(30)
    assert seen["load"] == want and seen["child"] == want and _nice() == base
    assert Settings().inference_nice == 10  # the app's default; 0 turns it off
    assert Runner([Probe("FP32")], timeout_s=30).nice == 0
