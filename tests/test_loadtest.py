"""The load-test driver's own bookkeeping, against an in-process page on fake
engines (seconds, no model): good clips and bad inputs are classified right,
a full queue counts as busy, a request with no answer by the deadline counts
as lost, a good clip missing a transcript counts as wrong, and the verdict
fails on each of those. The real run is tests/test_load.py."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf

from asr_quant import loadtest
from asr_quant.settings import Settings

from fake_engines import FakeEngine, fake_set, unavailable

CAP_MB = 1.0





@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("load-inputs")
    t = np.arange(32000) / 16000
    sf.write(d / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    good = loadtest.Input("tone.wav", d / "tone.wav", "good", "en")
    return [good] + loadtest.bad_inputs(d / "bad", max_audio_s=60.0, max_file_mb=CAP_MB)


def _no_other_problems(summary):
    memory = {"pass": True}
    temp = {"after_shutdown": 0}
    return loadtest.verdict(summary, memory, {}, temp, [])


def test_bad_inputs_cover_the_mix(inputs):
    bad = {i.name: i.error for i in inputs if i.kind == "bad"}
    assert bad == {"notes.wav": "NotAudioError", "empty.wav": "EmptyAudioError", "photo.png": "NotAudioError",
                   "silence.wav": "SilentAudioError", "blip.wav": "TooShortError", "too_long.wav": "TooLongError",
                   "too_big.wav": "TooLargeError"}
    assert all(i.message for i in inputs if i.kind == "bad")


def test_good_and_bad_requests_are_all_answered(inputs, serve_page):
    engines = [FakeEngine("FP32", "a b c"), FakeEngine("FP16", "a b c"), FakeEngine("INT8", "a b d")]
    demo, url = serve_page(fake_set(*engines), Settings(max_file_mb=CAP_MB, max_audio_s=60.0, inference_timeout_s=60))
    try:
        driver = loadtest.Driver(url, inputs, clients=3, duration_s=4.0, drain_s=30.0, bad_share=0.6,
                                 cap_bytes=int(CAP_MB * 2**20), seed=1)
        reqs = driver.run()
        # and a client sending only the file over the cap: refused before upload, every time
        big = [i for i in inputs if i.name == "too_big.wav"]
        over = loadtest.Driver(url, big, clients=1, duration_s=1.0, drain_s=30.0, bad_share=1.0,
                               cap_bytes=int(CAP_MB * 2**20)).run()
    finally:
        demo.close()
    assert not driver.errors and len(driver.connect_s) == 3, driver.errors
    assert over and all(r.outcome == "clear_error" and "maximum file size" in r.detail for r in over), over
    s = loadtest.summarize(reqs, clients=3, max_queue=32)
    assert s["sent"] > 6 and s["good_sent"] > 0 and s["bad_sent"] > 0, s
    assert s["answered"] == s["sent"] and s["lost"] == s["failed"] == s["wrong"] == 0, reqs
    assert all(r.outcome == ("ok" if r.kind == "good" else "clear_error") for r in reqs)
    assert all(r.texts == {"FP32": "a b c", "FP16": "a b c", "INT8": "a b d"} for r in reqs if r.kind == "good")
    # over the cap: refused before upload (the client reads the page's max_file_size), as the page does
    assert all("maximum file size" in r.detail for r in reqs if r.input == "too_big.wav")
    assert all(r.detail == "" for r in reqs if r.kind == "good")  # answered by the page itself
    # every other bad input is turned away by the page's validator, before the queue
    assert all("failed validation" in r.detail for r in reqs if r.kind == "bad" and r.input != "too_big.wav")
    assert s["latency_s"]["all"]["n"] == s["sent"]
    assert s["queue_wait_s"]["n"] == s["good_sent"]  # only good clips ever wait in the queue
    assert _no_other_problems(s) == []
    # only the transcribing requests reach the engines
    assert engines[0].calls == s["good_sent"]


def test_full_queue_is_busy_and_no_answer_is_lost(inputs, serve_page):
    gate = threading.Event()
    engines = [FakeEngine("FP32", "a", gate=gate), FakeEngine("FP16", "a"), FakeEngine("INT8", "a")]
    demo, url = serve_page(fake_set(*engines), Settings(max_file_mb=CAP_MB, inference_timeout_s=60, max_queue=1))
    good = [i for i in inputs if i.kind == "good"]
    try:
        # 10 s of sending: on a busy machine the clients take seconds just to connect, and the queue
        # must see at least three of them at once to turn one away
        driver = loadtest.Driver(url, good, clients=4, duration_s=10.0, drain_s=4.0, bad_share=0.0,
                                 cap_bytes=int(CAP_MB * 2**20))
        reqs = driver.run()  # the gate stays shut: the running one and the queued one never finish in time
    finally:
        gate.set()
        demo.close()
    assert not driver.errors and len(driver.connect_s) == 4, driver.errors  # all four sent
    s = loadtest.summarize(reqs, clients=4, max_queue=1)
    assert s["busy"] >= 1 and s["lost"] >= 1, [(r.outcome, r.detail) for r in reqs]
    assert s["busy_expected"]
    problems = _no_other_problems(s)
    assert any("lost" in p for p in problems)
    assert not any("busy" in p for p in problems)  # 4 clients, room for 1: busy is the right answer
    s["busy_expected"] = False
    assert any("busy" in p for p in _no_other_problems(s))


def test_good_clip_missing_a_transcript_is_wrong(inputs, serve_page):
    engines = [FakeEngine("FP32", "a b"), FakeEngine("FP16", fail=RuntimeError("broken")),
               FakeEngine("INT8", "a b"), unavailable("BF16", "not on this CPU")]
    demo, url = serve_page(fake_set(*engines), Settings(max_file_mb=CAP_MB, max_audio_s=60.0, inference_timeout_s=60))
    good = [i for i in inputs if i.kind == "good"]
    try:
        driver = loadtest.Driver(url, good, clients=1, duration_s=3.0, drain_s=30.0)
        reqs = driver.run()
    finally:
        demo.close()
    assert reqs and all(r.outcome == "wrong" for r in reqs)
    assert set(reqs[0].texts) == {"FP32", "FP16", "INT8"}  # the unavailable one is not expected to answer
    assert any("wrongly" in p for p in _no_other_problems(loadtest.summarize(reqs, 1, 32)))


def test_inconsistent_transcripts_fail_the_run():
    a = loadtest.Request(0, "x.flac", "good", 0.0, 0.1, 1.0, "ok", texts={"FP32": "hello"})
    b = loadtest.Request(1, "x.flac", "good", 0.0, 0.1, 1.0, "ok", texts={"FP32": "yellow"})
    s = loadtest.summarize([a, b], 2, 32)
    assert s["inconsistent_transcripts"]
    assert any("different transcripts" in p for p in _no_other_problems(s))


def test_percentiles_and_memory_rule():
    p = loadtest.percentiles([5.0, 1.0, 3.0, 2.0, 4.0, None])
    assert (p["n"], p["p50"], p["p95"], p["max"], p["mean"]) == (5, 3.0, 5.0, 5.0, 3.0)
    assert loadtest.memory_report(900, 1000, 1100, [])["pass"] is True  # +10 % is the limit
    m = loadtest.memory_report(900, 1000, 1101, [(0.0, 1500)])
    assert m["pass"] is False and m["max_mib"] == round(1500 / 2**20, 1)
