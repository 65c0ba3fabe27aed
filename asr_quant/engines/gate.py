"""Cooperative priority between engines that share the cores.

Why: on a 2-core CPU, live mode's INT8 text is late by as much as it shares
the cores with FP32 or FP16 working on an earlier segment, and a running
forward pass cannot be interrupted from outside. So the decoding loop and the
PyTorch encoder's layers call `pause_point()`; in a thread that entered a
`Gate`, it waits there while the gate's `hold()` is true (live mode: while an
engine ranked before this one has work). Anywhere else it costs one lookup.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

_local = threading.local()
POLL_S = 0.005


class Gate:
    """`with Gate(hold):` the calls to `pause_point()` in this thread wait
    while `hold()`; `waited_s` sums the time they waited."""

    def __init__(self, hold: Callable[[], bool]):
        self.hold = hold
        self.waited_s = 0.0

    def __enter__(self) -> "Gate":
        self._outer = getattr(_local, "gate", None)
        _local.gate = self
        return self

    def __exit__(self, *exc) -> None:
        _local.gate = self._outer

    def wait(self) -> None:
        if not self.hold():
            return
        t = time.perf_counter()
        while self.hold():
            time.sleep(POLL_S)
        self.waited_s += time.perf_counter() - t


def pause_point() -> None:
    """Wait here while this thread's gate holds (no gate: return at once)."""
    gate = getattr(_local, "gate", None)
    if gate is not None:
        gate.wait()
