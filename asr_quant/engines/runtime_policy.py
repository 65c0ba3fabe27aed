"""The same threads and the same wait policy for every runtime, stated.

A latency ratio between PyTorch and ONNX Runtime means something only if both
get the same cores and behave the same while idle. Both get `threads` intra-op
threads. Neither spins: ONNX Runtime's idle threads sleep
(`session.intra_op.allow_spinning = 0`), and PyTorch's OpenMP pool is asked to
do the same with OMP_WAIT_POLICY=PASSIVE, which OpenMP reads once, when torch
is first imported. `prepare()` sets it before that; `describe()` says what
actually holds (an embedding program that imported torch first keeps its own).
"""
from __future__ import annotations

import os
import sys
import threading

WAIT_POLICY = "PASSIVE"
_torch_policy: str | None = None  # what OpenMP saw when torch was first imported by us


def prepare() -> None:
    """Call before anything imports torch (the app, the CLIs and the benchmark do)."""
    global _torch_policy
    if "torch" in sys.modules:
        if _torch_policy is None:
            _torch_policy = "unknown (torch was imported before the policy was set)"
        return
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)
    _torch_policy = os.environ["OMP_WAIT_POLICY"].upper()


def torch_policy() -> str:
    if _torch_policy is None:
        prepare()
    return _torch_policy or "default"


def ort_session_options(threads: int):
    """SessionOptions every ONNX Runtime engine uses: `threads` intra-op
    threads, one inter-op, sequential, full graph optimization, no spinning."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    # No memory pattern: with it, a session's second call allocates one block for
    # the whole planned run beside the arena's chunks from the first, so the INT8
    # engine's peak resident memory grew by ~45 MB from its first call to its
    # second (base, plan rows, AVX512-VNNI EPYC: 360 MB alone before, 326 MB with
    # this and plans/probe.py's shipped graph, docs/memory.md); the decoder's shapes
    # change every step, so a plan is rarely reused anyway. Measured time: the same
    # (0.98x over 8 interleaved encoder + 30-step rounds).
    so.enable_mem_pattern = False
    # Idle threads sleep instead of spinning: with other engines and processes
    # on few cores, spinning stole the CPU the working thread needed (measured
    # here: 17 -> 8 ms per decoder step on a busy 2-core machine).
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


def describe(threads: int, runtime: str = "ort") -> str:
    """One sentence for `EngineInfo.details`."""
    if runtime == "torch":
        return f"{threads} threads; OpenMP wait policy {torch_policy()} (idle threads sleep, as in ONNX Runtime)."
    return f"{threads} intra-op threads; idle threads sleep (no spinning), as PyTorch's OpenMP is told to."


def lower_thread_priority(increment: int) -> int | None:
    """Raise this thread's nice value by `increment` (Linux: nice is per
    thread, and the threads and processes it starts inherit it), so that a web
    server's own threads get the CPU first while it computes. Returns the new
    value, or None where it was not changed (increment <= 0, no support)."""
    if increment <= 0 or not hasattr(os, "setpriority"):
        return None
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + int(increment)))
        return os.getpriority(os.PRIO_PROCESS, tid)
    except OSError:
        return None
