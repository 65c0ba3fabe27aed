"""Live mode's gradio-free parts on synthetic audio and fake engines: the cut
at pauses and its cap, one worker per engine (no engine waits on another),
the previous text carried as context, falling behind, and the whole recording
at the end."""
from __future__ import annotations

import time

import numpy as np
import pytest

from asr_quant.app import stream
from asr_quant.app.stream import pages
from asr_quant.engines import Engine, EngineInfo, RawResult

SR = 16000
RNG = np.random.default_rng(0)


def tone(s: float, f: float = 220.0) -> np.ndarray:
    t = np.arange(int(s * SR)) / SR
    return (0.2 * np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def hush(s: float) -> np.ndarray:
    return RNG.normal(0, 0.0005, int(s * SR)).astype(np.float32)


def cut(x: np.ndarray, chunk_s: float = 0.1, **kw) -> list[stream.Piece]:
    seg = stream.Segmenter(**kw)
    out = []
    step = int(chunk_s * SR)
    for i in range(0, len(x), step):
        out += seg.push(x[i:i + step])
    return out + seg.flush()


def test_segments_end_at_pauses_and_short_gaps_do_not_cut():
    x = np.concatenate([hush(1.0), tone(2.0), hush(0.2), tone(1.0), hush(1.0), tone(1.5), hush(0.3)])
    pieces = cut(x)
    assert len(pieces) == 2  # the 0.2 s gap is inside a segment, the 1 s one ends it
    a, b = pieces
    assert a.start_s == pytest.approx(0.8, abs=0.05) and a.speech_end_s == pytest.approx(4.2, abs=0.05)
    assert a.end_s == pytest.approx(4.2 + 0.5, abs=0.05)  # cut after 0.5 s of pause
    assert b.start_s == pytest.approx(5.0, abs=0.05) and b.end_s == pytest.approx(len(x) / SR, abs=0.05)
    assert len(a.samples) == pytest.approx(a.duration_s * SR, abs=1)
    # the samples are the recording's own
    i = int(round(a.start_s * SR))
    assert np.array_equal(a.samples, x[i:i + len(a.samples)])


def test_a_long_run_without_pause_is_capped_and_noise_alone_is_no_segment():
    pieces = cut(np.concatenate([hush(0.5), tone(27.0), hush(1.0)]), max_s=10.0)
    assert len(pieces) >= 3 and all(7.0 <= p.duration_s <= 10.0 for p in pieces[:-1])  # cut in the last 3 s
    assert all(a.end_s == b.start_s for a, b in zip(pieces, pieces[1:]))  # nothing lost between capped pieces
    assert pieces[0].start_s < 0.5 and pieces[-1].speech_end_s == pytest.approx(27.5, abs=0.05)
    assert cut(np.concatenate([hush(3.0), tone(0.1), hush(3.0)])) == []  # a click is not speech


class Recorder(Engine):
    """Says `seg<N>` for its Nth segment after `delay_s`; keeps the prompts it got."""

    carries_context = True

    def __init__(self, name: str, delay_s: float):
        self.info = EngineInfo(name=name, precision=name.lower(), runtime="Fake", device="cpu", model="fake")
        self.delay_s, self.prompts, self.n = delay_s, [], 0
        self.finished_at: list[float] = []

    def _run(self, clip, language, prompt=None, progress=None):
        self.prompts.append(prompt)
        time.sleep(self.delay_s)
        self.n += 1
        self.finished_at.append(time.perf_counter())
        return RawResult(text=f"seg{self.n}", language="en", token_ids=[1])


class NoContext(Engine):
    def __init__(self):
        self.info = EngineInfo(name="NANO", precision="int8", runtime="Fake", device="cpu", model="fake")

    def _run(self, clip, language):
        return RawResult(text="x", language="en", token_ids=[1])


def speech(n: int) -> np.ndarray:
    return np.concatenate([part for _ in range(n) for part in (tone(1.0), hush(0.8))])


def test_each_engine_has_its_own_worker_and_carries_the_text_so_far():
    fast, slow = Recorder("INT8", 0.01), Recorder("FP32", 0.6)
    sess = stream.LiveSession([slow, fast], "en")
    assert [w.name for w in sess.workers] == ["INT8", "FP32"]  # INT8 first whatever the order given
    x = speech(3)
    for i in range(0, len(x), 1600):
        sess.feed(SR, (x[i:i + 1600] * 32767).astype(np.int16))  # as the browser streams it
    samples = sess.stop()
    assert sess.wait(10.0)
    assert len(samples) == len(x) and np.abs(samples - x).max() < 1e-4
    assert len(sess.pieces) == 3
    assert fast.prompts == [None, "seg1", "seg1 seg2"] and slow.prompts == fast.prompts
    # INT8 was done with all three before the slow engine finished its second: nobody waited on FP32
    assert fast.finished_at[-1] < slow.finished_at[1]
    states = {s.name: s for s in sess.states()}
    assert states["INT8"].text == "seg1 seg2 seg3" and states["INT8"].keeps_up
    assert states["INT8"].rtf < states["FP32"].rtf and states["FP32"].done == 3


def test_an_engine_that_cannot_keep_up_says_so_and_is_left_out():
    slow = Recorder("FP16", 2.0)
    sess = stream.LiveSession([slow], "en", stream.LiveConfig(max_backlog_s=2.0))
    for i, p in enumerate(cut(speech(5))):
        sess._hand_out([p])
        deadline = time.perf_counter() + 5.0
        while i == 0 and not sess.workers[0].busy and time.perf_counter() < deadline:
            time.sleep(0.01)  # the first segment is under way before the rest arrive
    sess.stop()
    assert sess.wait(10.0)
    s = sess.states()[0]
    assert s.dropped and not s.keeps_up and s.done < 5
    assert s.line().startswith("falls behind: RTF") and "left out of live mode" in s.line()
    assert s.rtf > 1.0


def test_an_engine_fast_alone_but_behind_beside_the_others_is_left_out_once_judged():
    """Each engine alone is faster than real time, but FP16 only starts when INT8 and FP32 are idle,
    so per second of audio it takes 0.3 + 0.2 + 0.8 of wall clock: its queue would only grow. It is
    left out once 3 s of audio are done, long before 30 s of backlog; the two that keep up stay in."""
    pieces = cut(speech(8))
    d = min(p.duration_s for p in pieces)
    int8, fp32, fp16 = Recorder("INT8", 0.3 * d), Recorder("FP32", 0.2 * d), Recorder("FP16", 0.8 * d)
    sess = stream.LiveSession([fp16, fp32, int8], "en", stream.LiveConfig(judge_after_s=3 * d))
    for p in pieces:  # in real time, as a recording streams
        sess._hand_out([p])
        time.sleep(p.duration_s)
    sess.stop()
    assert sess.wait(20.0)
    states = {s.name: s for s in sess.states()}
    behind = states["FP16"]
    assert behind.dropped and behind.rtf < 1.0 < behind.wall_rtf
    assert 3 <= behind.done < len(pieces)
    assert "sharing the CPU" in behind.line() and "left out of live mode" in behind.line()
    for name in ("INT8", "FP32"):
        assert states[name].done == len(pieces) and states[name].keeps_up and states[name].wall_rtf < 1.0


def test_an_engine_without_context_says_so_in_its_column(tmp_path):
    live = pages.LivePages(catch_up_s=5.0)
    live.start("k", [NoContext()], "en")
    x = speech(2)
    shown = None
    for i in range(0, len(x), 8000):
        shown = live.feed("k", (SR, x[i:i + 8000])) or shown
    shown, path = live.stop("k", tmp_path)
    text, line = shown.columns["NANO"]
    assert text == "x x" and "carries no context" in line
    import soundfile as sf

    data, sr = sf.read(str(path))
    assert sr == SR and len(data) == len(x)
    assert "Recording stopped" in shown.box and "NANO" in shown.box
    assert live.feed("k", (SR, x)) is None  # that recording is over


def test_browser_chunks_are_made_16k_mono_float():
    stereo = np.stack([np.full(4410, 16384, np.int16), np.zeros(4410, np.int16)], axis=1)
    y = stream.to_mono_16k(44100, stereo)
    assert y.dtype == np.float32 and len(y) == 1600 and abs(float(np.median(y)) - 0.25) < 0.01


def test_the_runner_passes_window_progress_on_and_a_failing_reporter_harms_no_engine():
    from asr_quant.app import steps
    from asr_quant.app.runner import Runner
    from asr_quant.audio import Clip

    class Windows(Recorder):
        def _run(self, clip, language, prompt=None, progress=None):
            for done in (30.0, 60.0, clip.duration_s):
                progress(done, clip.duration_s)
            return RawResult(text="ok", language="en", token_ids=[1])

    heard, bar = [], []
    clip = Clip(samples=np.zeros(SR * 75, np.float32))
    out = list(Runner([Windows("INT8", 0.0)], timeout_s=5).run(clip, "en", progress=lambda *a: heard.append(a)))
    assert out[0].ok and heard == [("INT8", 30.0, 75.0), ("INT8", 60.0, 75.0), ("INT8", 75.0, 75.0)]

    def broken(*a):
        raise RuntimeError("no page")

    out = list(Runner([Windows("INT8", 0.0)], timeout_s=5).run(clip, "en", progress=broken))
    assert out[0].ok and out[0].text == "ok"
    tell = steps.window_progress(lambda value, desc: bar.append((value, desc)), 75.0)
    tell("FP32", 30.0, 75.0)
    assert bar == [((30.0, 75.0), "FP32: 30 of 75 s")] and steps.window_progress(bar.append, 12.0) is None


class Stepper(Recorder):
    """Works in `steps` steps of `step_s`, each after `gate.pause_point()`, as
    the decoding loop does; notes when each step ended and each call's span."""

    def __init__(self, name: str, steps: int, step_s: float):
        super().__init__(name, 0.0)
        self.steps, self.step_s, self.ticks, self.spans = steps, step_s, [], []

    def _run(self, clip, language, prompt=None, progress=None):
        from asr_quant.engines import gate

        import os
        import threading

        self.nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        start = time.perf_counter()
        for _ in range(self.steps):
            gate.pause_point()
            time.sleep(self.step_s)
            self.ticks.append(time.perf_counter())
        self.spans.append((start, time.perf_counter()))
        return RawResult(text="ok", language="en", token_ids=[1])


def test_a_lower_ranked_engine_pauses_while_int8_has_a_segment_and_the_pause_is_not_its_compute():
    int8, fp32 = Stepper("INT8", 1, 0.3), Stepper("FP32", 40, 0.02)
    sess = stream.LiveSession([fp32, int8], "en")
    first, second = cut(speech(2))
    sess._hand_out([first])
    deadline = time.perf_counter() + 5.0
    while len(fp32.ticks) < 5 and time.perf_counter() < deadline:
        time.sleep(0.005)  # FP32 is under way on the first segment (INT8 done with it)
    sess._hand_out([second])
    sess.stop()
    assert sess.wait(10.0)
    busy_from, busy_to = int8.spans[1]
    # FP32 finishes at most the step it was in, then nothing while INT8 works (without the gate it
    # would tick 15 times in those 0.3 s)
    assert not [t for t in fp32.ticks if busy_from + 0.03 < t < busy_to], (busy_from, busy_to)
    assert fp32.spans[0][1] > busy_to  # its first segment was under way across INT8's second
    assert fp32.nice == min(19, int8.nice + 5)  # and runs nicer, for what a pause point cannot split
    done = sess.workers[1].done[0]
    assert done.piece is first and done.compute_s < (fp32.spans[0][1] - fp32.spans[0][0]) - 0.2
