"""Where an ONNX Runtime engine spends its time, operator by operator.

The benchmark's per-stage timings say "encoder" or "decoding"; this says which
operators inside them (MatMulInteger, DynamicQuantizeLinear, Conv, Softmax...)
take the time, from ONNX Runtime's own profiler. Used by the benchmark's `--profile`
for engines that run ONNX Runtime sessions (Whisper INT8); kept out of the benchmark
so that the benchmark itself never imports onnxruntime.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path


def supports(engine) -> bool:
    """An engine whose step model holds `encoder`/`decoder` InferenceSessions
    and whose artifact folder holds the matching .onnx files."""
    sm = getattr(engine, "step_model", None)
    folder = getattr(engine, "folder", None)
    return (sm is not None and folder is not None and hasattr(sm, "encoder") and hasattr(sm, "decoder")
            and all((Path(folder) / f"{n}.onnx").exists() for n in ("encoder", "decoder")))


def op_totals(trace_file: str | os.PathLike) -> dict[str, dict]:
    """Sum the kernel time of every node event by operator type (ms)."""
    events = json.loads(Path(trace_file).read_text())
    totals: dict[str, dict] = defaultdict(lambda: {"ms": 0.0, "calls": 0})
    for ev in events:
        if ev.get("cat") != "Node" or not str(ev.get("name", "")).endswith("_kernel_time"):
            continue
        op = (ev.get("args") or {}).get("op_name", "?")
        totals[op]["ms"] += ev.get("dur", 0) / 1000.0
        totals[op]["calls"] += 1
    return dict(totals)


def profile(engine, clips, out_dir: Path, threads: int | None = None) -> dict:
    """Run `engine` on `clips` ((utterance, clip) pairs) with profiling
    sessions swapped in, restore its sessions, and return per-session
    operator totals sorted by time. The profiling sessions copy the engine's
    session options, so they run as the engine does (`threads` is unused,
    kept for callers)."""
    import onnxruntime as ort

    sm, folder = engine.step_model, Path(engine.folder)
    saved = (sm.encoder, sm.decoder)
    providers = sm.encoder.get_providers()
    sessions = {}
    for name, live in (("encoder", saved[0]), ("decoder", saved[1])):
        so = live.get_session_options()  # the engine's own options (threads, spinning, ...) plus profiling
        so.enable_profiling = True
        so.profile_file_prefix = str(out_dir / f"ort-{name}")
        sessions[name] = ort.InferenceSession(str(folder / f"{name}.onnx"), so, providers=providers)
    sm.encoder, sm.decoder = sessions["encoder"], sessions["decoder"]
    try:
        for u, clip in clips:
            engine.transcribe(clip, u.language)
    finally:
        files = {name: s.end_profiling() for name, s in sessions.items()}
        sm.encoder, sm.decoder = saved
    out = {}
    for name, f in files.items():
        totals = op_totals(f)
        total_ms = sum(t["ms"] for t in totals.values()) or 1.0
        out[name] = dict(
            total_ms=total_ms,
            ops=[dict(op=op, ms=t["ms"], share=t["ms"] / total_ms, calls=t["calls"])
                 for op, t in sorted(totals.items(), key=lambda kv: -kv[1]["ms"])],
        )
        try:
            os.remove(f)  # the raw trace is large; the totals are kept
        except OSError:
            pass
    return out
