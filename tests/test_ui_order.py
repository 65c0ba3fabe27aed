"""The page's order follows the demo: the baseline (FP32) runs first, then the
fastest engine as this host measured it (INT8 until there are measurements),
and every column says "waiting", "running" or "done" as the request goes on.
The rule is tested without gradio; the page's own handler with fake engines."""
from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf

from asr_quant import host
from asr_quant.app import order, present
from asr_quant.engines.base import Timings, Transcript

from fake_engines import FakeEngine, unavailable


def _names(items):
    return [e.info.name for e in items]


def _answer(name: str, latency_s: float, audio_s: float = 2.0, error: str | None = None) -> Transcript:
    return Transcript(engine=name, text="x", audio_s=audio_s, timings=Timings(total_s=latency_s), error=error)


def test_baseline_first_then_int8_before_anything_is_measured():
    engines = [FakeEngine("FP16"), FakeEngine("FP32"), FakeEngine("BF16"), FakeEngine("INT8")]
    assert _names(order.run_order(engines, "FP32")) == ["FP32", "INT8", "BF16", "FP16"]
    assert _names(order.run_order(engines, "FP32", order.Speeds())) == ["FP32", "INT8", "BF16", "FP16"]
    # no FP32 loaded: the baseline is whichever the page compares with; INT8 still comes next
    assert _names(order.run_order(engines[2:] + engines[:1], "BF16")) == ["BF16", "INT8", "FP16"]


def test_measured_speed_decides_after_the_first_answers():
    engines = [FakeEngine("FP32"), FakeEngine("FP16"), FakeEngine("INT8")]
    speeds = order.Speeds()
    for t in (_answer("FP32", 2.0), _answer("FP16", 0.4), _answer("INT8", 1.0)):  # e.g. a GPU: FP16 is fastest
        assert speeds.record(t) is t
    assert speeds.rtf("FP16") == pytest.approx(0.2) and speeds.rtf("BF16") is None
    assert _names(order.run_order(engines, "FP32", speeds)) == ["FP32", "FP16", "INT8"]
    # the median of recent answers, not the last one alone; failed answers don't count
    speeds.record(_answer("INT8", 0.2))
    speeds.record(_answer("INT8", 0.1))
    speeds.record(_answer("FP16", 0.01, error="boom"))
    assert speeds.rtf("INT8") == pytest.approx(0.1) and speeds.rtf("FP16") == pytest.approx(0.2)
    assert _names(order.run_order(engines, "FP32", speeds)) == ["FP32", "INT8", "FP16"]
    # the baseline stays first however slow it is; an engine without answers comes after the measured ones
    engines.append(FakeEngine("BF16"))
    assert _names(order.run_order(engines, "FP32", speeds)) == ["FP32", "INT8", "FP16", "BF16"]


def test_column_state_words():
    info = FakeEngine("INT8").info
    assert "waiting" in present.column_state(order.WAITING, info)
    assert "running" in present.column_state(order.RUNNING, info)
    assert "done in 1.25 s" in present.column_state(order.DONE, info, _answer("INT8", 1.25))
    assert "done: no transcript" in present.column_state(order.DONE, info, _answer("INT8", 1.0, error="x"))
    assert "unavailable" in present.column_state(order.RUNNING, unavailable("INT8", "no disk").info)
    assert present.column_state("", info) == ""


def _states(update: dict) -> dict[str, str]:
    """The column states an update of the page sets, by engine (from state-<engine> widgets)."""
    out = {}
    for component, value in update.items():
        key = getattr(component, "elem_id", "") or ""
        if key.startswith("state-"):
            for word in (order.WAITING, order.RUNNING, order.DONE):
                if word in str(value):
                    out[key[len("state-"):]] = word
    return out


def test_page_columns_go_waiting_running_done_in_demo_order(tmp_path):
    pytest.importorskip("gradio")
    from asr_quant.app import ui
    from asr_quant.app.history import History
    from asr_quant.settings import Settings

    from fake_engines import fake_set
    from page_driver import handler

    t = np.arange(16000 * 2) / 16000
    sf.write(tmp_path / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    # configured FP32, FP16, INT8; FP16 answers in ~0 s and INT8 in 0.3 s, so once measured FP16 is the faster
    engines = [FakeEngine("FP32", "a b c"), FakeEngine("FP16", "a b c"), FakeEngine("INT8", "a b", delay_s=0.3)]
    demo = ui.build(fake_set(*engines), Settings(inference_timeout_s=0), examples=[])
    run = handler(demo)

    def states_per_step():
        seen = {}
        steps = []
        for update in run(str(tmp_path / "tone.wav"), "en", "", History()):
            seen.update(_states(update))
            steps.append(dict(seen))
        return steps

    first = states_per_step()
    assert first[0] == {"fp32": "running", "int8": "waiting", "fp16": "waiting"}  # nothing measured: INT8 second
    assert first[1] == {"fp32": "done", "int8": "running", "fp16": "waiting"}
    assert first[2] == {"fp32": "done", "int8": "done", "fp16": "running"}
    assert first[-1] == {"fp32": "done", "int8": "done", "fp16": "done"}
    assert [e.calls for e in engines] == [1, 1, 1]

    second = states_per_step()  # now this host's measurements: FP16 ran faster than INT8
    assert second[1] == {"fp32": "done", "fp16": "running", "int8": "waiting"}
    assert second[2] == {"fp32": "done", "fp16": "done", "int8": "running"}
    assert second[-1] == {"fp32": "done", "fp16": "done", "int8": "done"}
    # every column's sequence is waiting (maybe none) -> running -> done, never backwards
    for steps in (first, second):
        for e in ("fp32", "fp16", "int8"):
            seq = [s[e] for s in steps]
            rank = [("waiting", "running", "done").index(w) for w in seq]
            assert rank == sorted(rank) and seq[-1] == "done" and "running" in seq, (e, seq)


def test_model_card_folds_what_runs_how_under_a_table_of_figures():
    from fake_engines import fake_set

    e = FakeEngine("INT8")
    e.info.details, e.info.load_s = "encoder <dynamic> INT8; fc2 kept FP32", 102.6
    e.info.alone = {"working_bytes": 60 * 2**20, "peak_rss": 331 * 2**20, "measured_at": "2026-12-01T17:30",
                    "clip": "weather_en.flac", "clip_s": 6.1}
    card = present.model_card(fake_set(FakeEngine("FP32"), e))
    table = [re.sub(r'<span style="white-space:nowrap">(.*?)</span>', r"\1", ln) for ln in card.splitlines()
             if ln.startswith("| **INT8**")]
    # figures only (peak alone, working memory with its clip and date, weights as stored), in decimal MB
    assert table == [f"| **INT8** | INT8 - Fake 1.0, cpu, 1 threads · for {host.detect().label} | 10 MB | 347 MB | "
                     "63 MB (on weather\\_en.flac, 6.1 s, 2026-12-01) | 0 MB | 102.6 s |"]
    folded = [ln for ln in card.splitlines() if ln.startswith("<details")]
    assert len(folded) == 2 and "<summary>INT8: what runs how</summary>" in folded[1]
    assert "encoder &lt;dynamic&gt; INT8; fc2 kept FP32" in folded[1]  # escaped: HTML is not read as markup there
