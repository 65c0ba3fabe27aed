"""Run every engine on the same clip, one after another, with a time limit.

Engines run strictly in sequence so that one's timing is not disturbed by
another's threads; each `Transcript` is yielded as soon as its engine is done,
so the page can fill that column while the next engine works.

The time limit: each call runs in a worker thread and the runner stops waiting
after `timeout_s`. Python cannot kill a thread, so a call that ran past the
limit keeps computing in the background until it ends by itself; meanwhile
that engine answers "still busy" at once instead of piling up more threads,
and the other engines keep answering. Timings of engines that run while an
abandoned call is still computing are disturbed by it; their results carry a
warning that says so (`disturbed_warning`).

`ACTIVITY` counts the calls computing in this process (abandoned ones
included), so background work such as the memory probe can wait until the
app is idle instead of competing with a visitor's request.
"""
from __future__ import annotations

import contextvars
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from .. import memory as _memory
from ..audio import Clip
from ..engines import runtime_policy
from ..engines.base import Engine, Memory, Timings, Transcript

log = logging.getLogger(__name__)


class Activity:
    """Engine calls computing now, and when the last one ended."""

    def __init__(self):
        self._running = 0
        self._last_end = float("-inf")
        self._lock = threading.Lock()

    def __enter__(self) -> "Activity":
        with self._lock:
            self._running += 1
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._running -= 1
            self._last_end = time.monotonic()

    def idle_for(self) -> float:
        """Seconds since the last call ended; 0 while one computes."""
        with self._lock:
            return 0.0 if self._running else time.monotonic() - self._last_end

    def wait_idle(self, quiet_s: float = 5.0, poll_s: float = 0.5) -> None:
        """Return once no call has computed for `quiet_s` seconds."""
        while self.idle_for() < quiet_s:
            time.sleep(poll_s)


ACTIVITY = Activity()  # the app's one: every Runner reports to it unless given another


@dataclass
class _Call:
    """One engine call in a worker thread, and its answer once there is one."""

    engine: Engine
    thread: threading.Thread | None = None
    result: Transcript | None = None
    started: float = field(default_factory=time.perf_counter)

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


class Runner:
    """Holds the engines and remembers which of them still compute a call
    that ran past the time limit. One per app; thread-safe."""

    def __init__(self, engines: Sequence[Engine], timeout_s: float = 300.0, nice: int = 0,
                 activity: Activity = ACTIVITY):
        """`nice`: each call's worker thread (and the threads it starts) runs
        that much nicer, so the web server answers first; only with a time limit
        (without one the call runs in the caller's thread, left as it is)."""
        self.engines = list(engines)
        self.timeout_s = float(timeout_s)
        self.nice = int(nice)
        self.activity = activity
        self._abandoned: dict[str, _Call] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return [e.info.name for e in self.engines]

    def run(self, clip: Clip, language: str | None = None, engines: Sequence[Engine] | None = None,
            progress: Callable[[str, float, float], None] | None = None) -> Iterator[Transcript]:
        """Every engine in order (`engines`: those ready now, default all);
        never raises for an engine's failure. `progress(engine name, done_s,
        total_s)` hears each window of a long clip (its failures are logged,
        never the engine's). Freed memory goes back to the OS after the last
        one, so that a long-running app's resident memory stays flat (see
        `memory.trim_heap`)."""
        for engine in self.engines if engines is None else engines:
            yield self.run_one(engine, clip, language, progress)
        _memory.trim_heap()

    def run_one(self, engine: Engine, clip: Clip, language: str | None = None,
                progress: Callable[[str, float, float], None] | None = None) -> Transcript:
        """One engine's call, with the time limit; a call that ran while another engine's
        abandoned call was computing carries a warning that its timing is disturbed."""
        before = set(self.busy())
        t = self._run_one(engine, clip, language, progress)
        others = sorted((before | set(self.busy())) - {engine.info.name})
        if others and t.ok:
            t.warnings.append(disturbed_warning(others, self.timeout_s))
        return t

    def _run_one(self, engine: Engine, clip: Clip, language: str | None,
                 progress: Callable[[str, float, float], None] | None = None) -> Transcript:
        name = engine.info.name
        with self._lock:
            stuck = self._abandoned.get(name)
            if stuck is not None and not stuck.alive():
                del self._abandoned[name]
                stuck = None
        if stuck is not None:
            waited = time.perf_counter() - stuck.started
            return _error(engine, clip, f"still busy with an earlier clip that ran past the "
                                        f"{self.timeout_s:g} s limit ({waited:.0f} s ago); try again later")
        call = _Call(engine)
        told = _told(name, progress)
        if self.timeout_s <= 0:  # no limit: run here, no thread
            with self.activity:
                call.result = _safe_transcribe(engine, clip, language, told)
            return call.result
        # the caller's context goes along, so a page's progress reporter still finds its request
        call.thread = threading.Thread(target=contextvars.copy_context().run,
                                       args=(_work, call, clip, language, self.nice, told, self.activity),
                                       name=f"asrq-{name}", daemon=True)
        call.thread.start()
        call.thread.join(self.timeout_s)
        if call.thread.is_alive():
            with self._lock:
                self._abandoned[name] = call
            log.warning("%s: no answer within %.1f s; abandoned (the thread keeps running)",
                        name, self.timeout_s)
            t = _error(engine, clip, f"timed out: no answer within the {self.timeout_s:g} s limit "
                                     f"(it may still be computing in the background)")
            t.timings = Timings(total_s=time.perf_counter() - call.started)
            return t
        return call.result or _error(engine, clip, "the engine ended without an answer")

    def busy(self) -> list[str]:
        """Names of engines still computing an abandoned call."""
        with self._lock:
            return [n for n, c in self._abandoned.items() if c.alive()]


def disturbed_warning(others: Sequence[str], timeout_s: float) -> str:
    who = ", ".join(others)
    verb = "was" if len(others) == 1 else "were"
    return (f"timing disturbed: {who} {verb} still computing a call abandoned at the {timeout_s:g} s limit "
            f"while this one ran, so its latency here is not comparable")


def _told(name: str, progress) -> Callable[[float, float], None] | None:
    """`progress` for one engine, made safe: a reporter that fails is logged once and then left alone."""
    if progress is None:
        return None
    broken = []

    def tell(done_s: float, total_s: float) -> None:
        if broken:
            return
        try:
            progress(name, done_s, total_s)
        except Exception:  # noqa: BLE001 - the reporter's fault must not become the engine's
            broken.append(True)
            log.exception("progress reporter failed for %s", name)

    return tell


def _work(call: _Call, clip: Clip, language: str | None, nice: int = 0, progress=None,
          activity: Activity = ACTIVITY) -> None:
    runtime_policy.lower_thread_priority(nice)
    with activity:  # an abandoned call counts until it really ends
        call.result = _safe_transcribe(call.engine, clip, language, progress)


def _safe_transcribe(engine: Engine, clip: Clip, language: str | None, progress=None) -> Transcript:
    """`Engine.transcribe` promises not to raise; this keeps that promise for
    engines that break it (BaseExceptions other than exit included)."""
    try:
        return engine.transcribe(clip, language, progress=progress) if progress else engine.transcribe(clip, language)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - one engine must not take the others down
        log.exception("%s.transcribe raised", engine.info.name)
        return _error(engine, clip, f"{type(exc).__name__}: {exc}"[:500])


def _error(engine: Engine, clip: Clip, message: str) -> Transcript:
    info = engine.info
    return Transcript(engine=info.name, audio_s=clip.duration_s, error=message,
                      memory=Memory(disk_bytes=info.disk_bytes, resident_bytes=info.resident_bytes))
