"""Which engine runs when, and what each column says while a request runs.

Why: the comparison a demo is about is the baseline against the fastest
engine (FP32 against INT8 on a CPU), so those two run first and their
columns fill soonest; the others follow. "Fastest" is what this host has
measured: the median real-time factor of each engine's recent answers in
this process (every browser session's runs count, the API's too). An engine
with no answer yet is ranked by a prior, the quantized engine first, since
INT8 is the fast one on CPUs; one run later the measurements decide.
Gradio-free, so that the rule is tested without a page.
"""
from __future__ import annotations

import statistics
import threading
from collections import defaultdict, deque
from typing import Callable, Sequence, TypeVar

from ..engines.base import Transcript

T = TypeVar("T")

WAITING, RUNNING, DONE = "waiting", "running", "done"
# Engines without a measurement yet, fastest expected first; any other after these, in the given order.
PRIOR = ("int8", "fp16-trt", "bf16", "fp16", "ort-fp32")
RECENT = 5  # answers per engine that the median is taken over


class Speeds:
    """The real-time factors this process measured, per engine name; thread-safe."""

    def __init__(self, keep: int = RECENT):
        self._rtf: dict[str, deque] = defaultdict(lambda: deque(maxlen=keep))
        self._lock = threading.Lock()

    def record(self, t: Transcript) -> Transcript:
        """Keeps an answer's RTF (failed answers and empty clips say nothing
        about speed); returns the answer, so that it can sit in a loop."""
        if t.ok and t.rtf is not None and t.rtf > 0:
            with self._lock:
                self._rtf[t.engine].append(t.rtf)
        return t

    def rtf(self, name: str) -> float | None:
        """The median RTF of the engine's recent answers; None before its first."""
        with self._lock:
            seen = list(self._rtf.get(name, ()))
        return statistics.median(seen) if seen else None


def _name_precision(item) -> tuple[str, str]:
    """Engines and loading slots alike (a slot's info is a stand-in until its engine is there)."""
    return item.info.name, item.info.precision


def run_order(items: Sequence[T], baseline: str | None, speeds: Speeds | None = None,
              key: Callable[[T], tuple[str, str]] = _name_precision) -> list[T]:
    """`items` (engines or slots) in demo order: the baseline, then the measured
    ones fastest first, then the unmeasured ones by `PRIOR`, ties in the given
    order. `key` gives an item's (name, precision)."""
    def rank(pair):
        index, item = pair
        name, precision = key(item)
        if name == baseline:
            return (0, 0.0, index)
        rtf = speeds.rtf(name) if speeds is not None else None
        if rtf is not None:
            return (1, rtf, index)
        prior = PRIOR.index(precision) if precision in PRIOR else len(PRIOR)
        return (2, float(prior), index)

    return [item for _, item in sorted(enumerate(items), key=rank)]


def names(engines: Sequence) -> list[str]:
    """The names of the engines that will really run (not the unavailable ones)."""
    return [e.info.name for e in engines if e.info.available]

