"""One live recording: chunks in, segments out to every engine's worker,
the columns' state on request, and the whole recording when it stops.

Gradio-free, so the page, scripts/measure_live.py and the tests drive the same
object. The page feeds what the browser streams (any sample rate, int16 or
float, mono or stereo); when recording stops, `stop()` returns the whole
recording, which the page then runs through the upload path as one clip.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ...engines.base import Engine
from .segmenter import MAX_S, SAMPLE_RATE, SILENCE_S, Piece, Segmenter
from .worker import EngineWorker, WorkerState

FIRST = ("INT8", "FP32")  # the fastest engine, then the baseline: the key comparison gets the CPU first
NICE_PER_RANK = 5  # each worker after the first runs this much nicer than the one before it


def priority(engines: Sequence[Engine]) -> list[Engine]:
    """INT8 and FP32 first, then the rest in their order."""
    rank = {n: i for i, n in enumerate(FIRST)}
    return sorted(engines, key=lambda e: rank.get(e.info.name, len(FIRST)))


@dataclass
class LiveConfig:
    # a pause this long ends a segment; the longest segment. An upload over 30 s is cut
    # with the same defaults (engines/pauses.py), so live and upload texts agree
    silence_s: float = SILENCE_S
    max_s: float = MAX_S
    max_backlog_s: float = 30.0  # audio waiting for an engine before it is left out of live mode
    judge_after_s: float = 8.0  # audio an engine has done before a wall-clock RTF over 1 leaves it out


def to_mono_16k(sample_rate: int, data: np.ndarray) -> np.ndarray:
    """A browser chunk (int16 or float, [n] or [n, channels]) as float32 16 kHz mono."""
    x = np.asarray(data)
    if x.dtype.kind in "iu":
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
    x = x.astype(np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if sample_rate != SAMPLE_RATE and len(x):
        import soxr

        x = soxr.resample(x, sample_rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return x


class LiveSession:
    def __init__(self, engines: Sequence[Engine], language: str | None = None, config: LiveConfig | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.config = config or LiveConfig()
        self.clock = clock
        self.segmenter = Segmenter(silence_s=self.config.silence_s, max_s=self.config.max_s)
        self.pieces: list[Piece] = []
        self._chunks: list[np.ndarray] = []
        self._lock = threading.Lock()
        self.started = clock()
        self.stopped = False
        ordered = priority([e for e in engines if e.info.available])
        self.workers: list[EngineWorker] = []
        for i, e in enumerate(ordered):  # each starts a segment only while those before it are idle
            idle = (lambda before=tuple(self.workers): all(w.idle_now for w in before)) if i else None
            self.workers.append(EngineWorker(e, language, idle=idle, max_backlog_s=self.config.max_backlog_s,
                                             clock=clock, nice=min(19, NICE_PER_RANK * i),
                                             judge_after_s=self.config.judge_after_s))

    @property
    def recorded_s(self) -> float:
        return sum(len(c) for c in self._chunks) / SAMPLE_RATE

    def feed(self, sample_rate: int, data: np.ndarray) -> list[Piece]:
        """One streamed chunk; returns the segments it completed (already handed to the workers)."""
        x = to_mono_16k(sample_rate, data)
        with self._lock:
            if self.stopped:
                return []
            self._chunks.append(x)
            pieces = self.segmenter.push(x)
        self._hand_out(pieces)
        return pieces

    def stop(self) -> np.ndarray:
        """The recording ended: the last segment goes out, and the whole
        recording (16 kHz float32) comes back for the one-clip pass."""
        with self._lock:
            if not self.stopped:
                self.stopped = True
                pieces = self.segmenter.flush()
            else:
                pieces = []
        self._hand_out(pieces)
        for w in self.workers:
            w.stop()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Until every worker has done its queue (after `stop`)."""
        end = None if timeout_s is None else time.perf_counter() + timeout_s
        return all(w.join(None if end is None else max(0.0, end - time.perf_counter())) for w in self.workers)

    def states(self) -> list[WorkerState]:
        return [w.state() for w in self.workers]

    def _hand_out(self, pieces: list[Piece]) -> None:
        now = self.clock()
        for p in pieces:
            self.pieces.append(p)
            for w in self.workers:
                w.submit(p, now)
