"""Child processes that die with the process that started them.

The app starts helper processes (each engine's memory probe, an INT8 build);
if the app is killed (SIGKILL, a test's teardown, `docker stop`), a child
left running would spin for a minute at full CPU as an orphan. On Linux the
kernel kills the child when its parent goes (`PR_SET_PDEATHSIG`, set in the
child between fork and exec); everywhere, children still running when the
interpreter exits normally or on SIGTERM are killed by `kill_all` (atexit).
"""
from __future__ import annotations

import atexit
import ctypes
import os
import signal
import subprocess
import sys
import threading
from typing import Callable

_PR_SET_PDEATHSIG = 1
_LIVE: set[subprocess.Popen] = set()
_LOCK = threading.Lock()
_CLOSED = False  # set by kill_all: the process is going, no new child starts


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no C library to call
        return None


_LIBC = _libc() if sys.platform.startswith("linux") else None


def preexec(nice: int = 0) -> Callable[[], None]:
    """The `preexec_fn` of a child that must not outlive this process: the kernel
    sends it SIGKILL when its parent dies; `nice` lowers its priority."""
    prctl = _LIBC.prctl if _LIBC is not None else None  # looked up here: the child only calls it

    parent = os.getpid()

    def setup() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            if os.getppid() != parent:  # the parent died before the line above took effect
                os._exit(1)
        if nice:
            os.nice(nice)

    return setup


def popen(cmd: list[str], nice: int = 0, **kwargs) -> subprocess.Popen:
    """`subprocess.Popen` of a child that dies with this process, in its own
    process group (so that `kill_all` also reaches what it starts)."""
    with _LOCK:
        if _CLOSED:
            raise OSError("this process is shutting down; no new child process is started")
        proc = subprocess.Popen(cmd, preexec_fn=preexec(nice), start_new_session=True, **kwargs)
        _LIVE.add(proc)
    return proc


def run(cmd: list[str], timeout_s: float, nice: int = 0, **kwargs) -> subprocess.CompletedProcess:
    """`subprocess.run(cmd, capture_output=True, text=True)` with a child made by `popen`;
    on a timeout the child's whole group is killed and TimeoutExpired raised."""
    proc = popen(cmd, nice, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except BaseException:
        _kill(proc)
        proc.communicate()
        raise
    finally:
        forget(proc)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def forget(proc: subprocess.Popen) -> None:
    """`proc` has ended (or is waited for elsewhere): `kill_all` leaves it alone."""
    with _LOCK:
        _LIVE.discard(proc)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # its own group: it and whatever it started
    except (OSError, AttributeError):
        proc.kill()


def kill_all(close: bool = True) -> None:
    """Kill every child started by `popen` that is still running; with `close`,
    start no more (at exit, and when a signal tells the app to stop). An app
    that returns in a process that goes on (a test's in-process app) passes
    close=False, so the process can still start children afterwards."""
    global _CLOSED
    with _LOCK:
        _CLOSED = _CLOSED or close
        live = list(_LIVE)
        _LIVE.clear()
    for proc in live:
        _kill(proc)


atexit.register(kill_all)

__all__ = ["forget", "kill_all", "popen", "preexec", "run"]
