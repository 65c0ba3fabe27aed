"""The engines as the page sees them while they load: one slot per precision
that is waiting, loading (with what it is doing), ready or failed.

Why: the page opens at once and each engine comes online when it is ready
(a fresh INT8 build takes minutes). Loading runs in a thread and reports
through the engines' `LoadListener`; the page reads `snapshot()` and runs a
request on the engines that are ready. Thread-safe.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from ..engines import runtime_policy
from ..engines.base import Engine, EngineInfo, EngineSet, LoadListener, ModelInfo, describe_error, unavailable

log = logging.getLogger(__name__)


@dataclass
class Slot:
    """One precision's place on the page."""

    precision: str
    name: str
    state: str = "waiting"  # waiting | loading | ready | failed
    message: str = "waiting for the engines before it"
    engine: Engine | None = None
    since: float = field(default_factory=time.perf_counter)  # when `message` began

    @property
    def settled(self) -> bool:
        return self.state in ("ready", "failed")

    @property
    def info(self) -> EngineInfo:
        """The engine's own info once there is one, else a stand-in saying what it is doing."""
        if self.engine is not None:
            return self.engine.info
        return EngineInfo(name=self.name, precision=self.precision, runtime="-", device="-", model="",
                          available=False, error=None)

    def elapsed_s(self) -> float:
        return time.perf_counter() - self.since


class LiveEngines(LoadListener):
    """The engine slots, filled in by a loading thread."""

    def __init__(self, model: str, precisions: list[str]):
        self.model = ModelInfo(name=model, family="?", source="loading…")
        self.slots = [Slot(p, p.upper()) for p in precisions]
        self.started = time.perf_counter()
        self.version = 0  # bumped on every change, so a poller can skip unchanged ticks
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.done = False

    @classmethod
    def loaded_set(cls, engine_set: EngineSet) -> "LiveEngines":
        """An engine set that is already loaded (tests, the benchmark's engines)."""
        live = cls(engine_set.model.name, [e.info.precision for e in engine_set.engines])
        live.finish(engine_set)
        return live

    # --- the listener (called from the loading thread) ---

    def step(self, precision: str | None, message: str) -> None:
        with self._lock:
            for s in self.slots:
                if not s.settled and (precision is None or s.precision == precision):
                    s.state, s.message, s.since = "loading", message, time.perf_counter()
            self.version += 1
        log.info("loading %s: %s", precision or "engines", message)

    def loaded(self, engine: Engine) -> None:
        with self._lock:
            slot = self._slot_for(engine)
            if slot is not None:
                slot.engine = engine
                slot.name = engine.info.name
                slot.state = "ready" if engine.info.available else "failed"
                slot.message = "" if engine.info.available else (engine.info.error or "unavailable")
            self.version += 1

    def finish(self, engine_set: EngineSet) -> None:
        """The load is over: every slot gets its engine from the final set."""
        with self._lock:
            self.model = engine_set.model
        for e in engine_set.engines:
            self.loaded(e)
        with self._lock:
            for s in self.slots:
                if not s.settled:
                    s.engine = unavailable(s.precision, self.model.name, "the loader returned no engine for it")
                    s.state, s.message = "failed", s.engine.info.error
            self.done = True
            self.version += 1

    def _slot_for(self, engine: Engine) -> Slot | None:
        p = engine.info.precision
        return next((s for s in self.slots if s.precision == p and s.engine is None), None) or \
            next((s for s in self.slots if s.precision == p), None)

    # --- loading ---

    def start(self, load: Callable[[LoadListener], EngineSet], nice: int = 0) -> threading.Thread:
        """Run `load(self)` in a thread (`nice`: that much nicer, with the
        threads and build processes it starts, so the page answers while it
        works); a loader that raises fails every slot still open."""

        def work():
            runtime_policy.lower_thread_priority(nice)
            try:
                engine_set = load(self)
            except Exception as exc:  # noqa: BLE001 - shown on the page as each engine's error
                log.exception("loading the engines failed")
                reason = describe_error(exc)
                engine_set = EngineSet(self.model, [unavailable(s.precision, self.model.name, reason)
                                                    for s in self.slots if not s.settled])
            self.finish(engine_set)
            log.info("engines loaded after %.1f s: %s", time.perf_counter() - self.started,
                     ", ".join(f"{s.name} {s.state}" for s in self.slots))

        self._thread = threading.Thread(target=work, name="asrq-load", daemon=True)
        self._thread.start()
        return self._thread

    def wait(self, timeout_s: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout_s)
        return self.done

    # --- what the page reads ---

    def snapshot(self) -> list[Slot]:
        """A copy of the slots as they are now."""
        with self._lock:
            return [Slot(s.precision, s.name, s.state, s.message, s.engine, s.since) for s in self.slots]

    def engine_set(self) -> EngineSet:
        """The model and the engines loaded so far (failed ones included)."""
        with self._lock:
            return EngineSet(self.model, [s.engine for s in self.slots if s.engine is not None])

    def status(self) -> dict:
        """For programs (the app's `/engine_status` endpoint, the load test's readiness check)."""
        return {"done": self.done, "model": self.model.name,
                "engines": [{"name": s.name, "precision": s.precision, "state": s.state, "message": s.message}
                            for s in self.snapshot()]}
