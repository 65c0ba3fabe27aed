"""Where ONNX Runtime ran each node: nodes per execution provider.

Why a profiling trace: ORT's profiler writes one event per node it runs,
named "<node>_kernel_time", whose args carry "provider" (the execution
provider whose kernel ran it) and "op_name". That is the placement ORT
actually used after graph optimization and partitioning, including the
Memcpy nodes it inserted, with no log parsing. On CUDA a node on the CPU
means a host round trip; ORT also keeps small shape computations (Shape,
Gather on shapes, Range...) on the CPU on purpose, so the op types are
reported alongside the count.

Profiling is switched on for one warm-up run only: `end_profiling()` writes
the trace and stops profiling for every later run.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

CPU = "CPUExecutionProvider"


@dataclass
class Placement:
    """Nodes per provider (distinct node names), and the op types of those on the CPU."""

    providers: dict[str, int] = field(default_factory=dict)
    cpu_ops: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.providers.values())

    @property
    def cpu_nodes(self) -> int:
        return self.providers.get(CPU, 0)

    def merge(self, other: "Placement") -> "Placement":
        p, o = Counter(self.providers), Counter(self.cpu_ops)
        p.update(other.providers)
        o.update(other.cpu_ops)
        return Placement(dict(p), dict(o))

    def warning(self, main: str) -> str | None:
        """A sentence for people when a session meant for `main` ran nodes on the CPU."""
        if main == CPU or not self.cpu_nodes:
            return None
        ops = ", ".join(f"{op} x{n}" for op, n in sorted(self.cpu_ops.items(), key=lambda kv: (-kv[1], kv[0])))
        return (f"ONNX Runtime placed {self.cpu_nodes} of {self.total} nodes on the CPU instead of "
                f"{main} ({ops}); each one costs a copy between host and device")


def count_events(events: list[dict]) -> Placement:
    """Placement from the events of an ORT profiling trace."""
    seen: dict[str, tuple[str, str]] = {}
    for ev in events:
        name = str(ev.get("name", ""))
        if ev.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        args = ev.get("args") or {}
        seen[name[: -len("_kernel_time")]] = (args.get("provider", "?"), args.get("op_name", "?"))
    providers = Counter(p for p, _ in seen.values())
    cpu_ops = Counter(op for p, op in seen.values() if p == CPU)
    return Placement(dict(providers), dict(cpu_ops))


def count_trace(trace_file: str | os.PathLike) -> Placement:
    return count_events(json.loads(Path(trace_file).read_text()))


def from_sessions(*sessions) -> Placement:
    """End profiling on sessions created with `enable_profiling` (after at
    least one run), count their placement and delete the traces."""
    total = Placement()
    for s in sessions:
        trace = s.end_profiling()
        if not trace:
            continue
        try:
            total = total.merge(count_trace(trace))
        finally:
            try:
                os.remove(trace)
            except OSError:
                pass
    return total
