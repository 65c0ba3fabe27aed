"""One engine's side of live mode: a thread with its own queue of segments.

Why a thread per engine: engines must not wait on each other. On a small CPU
one of them may be slower than real time, and a shared queue would hold
INT8's text back behind it. Each worker
transcribes its segments in order, with the text of the segments before as
context (Whisper: after <|startofprev|>, as condition_on_previous_text), and
keeps its live real-time factor. Workers are ranked (INT8, FP32, then the
rest): each starts a segment only while those ranked before it are idle, and
one under way pauses (`engines.gate`: between decoder steps and PyTorch
encoder layers) as soon as one ranked before it gets a segment, so on a
2-core CPU INT8 has the cores to itself within milliseconds of its segment's
cut. A pause is not counted in an engine's compute or RTF. What a pause
cannot split (one long matrix product) is left
to the OS: a lower-ranked worker runs 5 nice levels lower per rank.

A worker stops taking segments (it "falls behind", says so, and is left to
the whole-recording pass at the end) when its backlog grows past
`max_backlog_s` of audio, or sooner, once `judge_after_s` of audio is done,
when its wall-clock RTF is over 1: the time from taking each segment to its
text, the waits for those ranked before it included, against the audio. That
is the rate its queue drains at on this host with the others beside it; over
1 the backlog only grows, and every second it stays it takes cores from the
engines that do keep up (on a 2-core CPU, INT8 and FP32).
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from ...audio import Clip
from ...engines.base import Engine
from ...engines import runtime_policy
from ...engines.gate import Gate
from .segmenter import Piece


@dataclass
class Done:
    """One segment as this engine transcribed it."""

    piece: Piece
    text: str
    compute_s: float  # the engine's own time on it, its pauses for engines ranked before it left out
    wall_s: float  # from taking it off the queue to its text: compute plus every wait for those ranked before
    delay_s: float  # from the segment being cut (handed to the engines) to its text
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    shown_at: float = 0.0  # the clock when its text was there to show


@dataclass
class WorkerState:
    """What a column shows while recording."""

    name: str
    text: str
    done: int
    waiting: int
    rtf: float | None
    wall_rtf: float | None  # wall-clock time per second of audio, waits for engines ranked before included
    keeps_up: bool
    dropped: bool
    busy: bool
    last_delay_s: float | None
    note: str

    def line(self) -> str:
        rtf = f"RTF {self.rtf:.2f}" if self.rtf is not None else "RTF -"
        if self.wall_rtf is not None and self.rtf is not None and self.wall_rtf > 1.0 >= self.rtf:
            rtf += f" alone, {self.wall_rtf:.2f} sharing the CPU"  # fast enough alone, not beside the others
        if self.dropped:
            return f"falls behind: {rtf}; left out of live mode, transcribed when the recording stops"
        if not self.keeps_up:
            return f"falls behind: {rtf}, {self.waiting} segment(s) waiting; catches up when the recording stops"
        tail = f", last text {self.last_delay_s:.1f} s after its segment" if self.last_delay_s is not None else ""
        return f"keeps up: {rtf}{tail}" + (f"; {self.note}" if self.note else "")


class EngineWorker:
    def __init__(self, engine: Engine, language: str | None, idle: Callable[[], bool] | None = None,
                 max_backlog_s: float = 30.0, clock: Callable[[], float] = time.perf_counter, nice: int = 0,
                 judge_after_s: float = 8.0):
        """`idle`: True when the workers ranked before this one have nothing to do (None: the first).
        `nice`: added to this worker thread's nice value (and so to the compute threads it starts).
        `judge_after_s`: audio done before its wall-clock RTF can leave it out of live mode."""
        self.engine = engine
        self.nice = nice
        self.name = engine.info.name
        self.language = language
        self.idle = idle
        self.max_backlog_s = max_backlog_s
        self.judge_after_s = judge_after_s
        self.clock = clock
        self.done: list[Done] = []
        self.dropped = False
        self.busy = False
        self._queue: queue.Queue = queue.Queue()
        self._waiting_s = 0.0
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=f"live-{self.name}", daemon=True)
        self._thread.start()

    # --------------------------------------------------------------- feeding
    def submit(self, piece: Piece, cut_at: float) -> None:
        with self._lock:
            if self.dropped:
                return
            self._waiting_s += piece.duration_s
            if self._waiting_s > self.max_backlog_s:
                self.dropped = True  # behind by more than it can catch up live
                self._drain()
                return
        self._queue.put((piece, cut_at))

    def stop(self) -> None:
        """No more segments; the worker ends after those queued."""
        self._stopping = True
        self._queue.put(None)

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def idle_now(self) -> bool:
        return not self._thread.is_alive() or (not self.busy and self._queue.empty())

    def _held(self) -> bool:
        return self.idle is not None and not self.idle()

    # --------------------------------------------------------------- state
    def state(self) -> WorkerState:
        with self._lock:
            done = list(self.done)
            waiting, dropped, busy = self._queue.qsize(), self.dropped, self.busy
        rtf, wall_rtf = _rtfs(done)
        keeps_up = not dropped and (rtf is None or rtf <= 1.0) and waiting <= 1
        notes = sorted({w for d in done for w in d.warnings if "context" in w})
        return WorkerState(self.name, self.text(), len(done), waiting, rtf, wall_rtf, keeps_up, dropped, busy,
                           done[-1].delay_s if done else None, "; ".join(notes))

    def text(self) -> str:
        return " ".join(d.text for d in self.done if d.text)

    # --------------------------------------------------------------- the thread
    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)
                break

    def _loop(self) -> None:
        runtime_policy.lower_thread_priority(self.nice)  # before any compute: OpenMP's team inherits it
        while True:
            item = self._queue.get()
            if item is None:
                return
            piece, cut_at = item
            with self._lock:
                if self.dropped:
                    continue
                self.busy = True
            taken = self.clock()
            gate = Gate(self._held)
            gate.wait()  # start only while those ranked before are idle
            start_wait = gate.waited_s
            with gate:  # and pause whenever one of them gets a segment
                t = self.engine.transcribe(Clip(samples=piece.samples, name=f"segment {piece.index + 1}"),
                                           self.language, prompt=self.text() or None)
            if self.language is None and t.language:
                self.language = t.language  # detected on the first segment and kept, as for an upload
            now = self.clock()
            compute = max(0.0, t.timings.total_s - (gate.waited_s - start_wait))
            with self._lock:
                self._waiting_s = max(0.0, self._waiting_s - piece.duration_s)
                self.done.append(Done(piece, t.text.strip(), compute, now - taken, now - cut_at, t.error,
                                      list(t.warnings), shown_at=now))
                self.busy = False
                if not self.dropped and self._too_slow():
                    self.dropped = True  # its queue would only grow: leave the cores to those that keep up
                    self._drain()

    def _too_slow(self) -> bool:
        audio = sum(d.piece.duration_s for d in self.done)
        _, wall_rtf = _rtfs(self.done)
        return audio >= self.judge_after_s and wall_rtf is not None and wall_rtf > 1.0


def _rtfs(done: list[Done]) -> tuple[float | None, float | None]:
    """(own compute, wall clock) per second of audio over the segments done."""
    audio = sum(d.piece.duration_s for d in done)
    if audio <= 0:
        return None, None
    return sum(d.compute_s for d in done) / audio, sum(d.wall_s for d in done) / audio
