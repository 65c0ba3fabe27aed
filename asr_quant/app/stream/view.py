"""What the page shows of a live recording, as plain text (gradio-free)."""
from __future__ import annotations

from .worker import WorkerState


def column_line(s: WorkerState) -> str:
    """The line under an engine's live transcript."""
    mark = "🟢" if s.keeps_up else "🔴"
    work = f"{s.done} segment(s) done" + (", working" if s.busy else "")
    return f"{mark} **live**: {s.line()} · {work}"


def summary(states: list[WorkerState], recorded_s: float, segments: int, stopped: bool) -> str:
    """The live box: one row per engine, with its live transcript."""
    if not states:
        return "No engine is ready for live mode yet."
    head = (f"**Recording stopped** after {recorded_s:.1f} s, {segments} segment(s). The whole recording "
            "now runs as one clip below, as an upload does." if stopped else
            f"🎙️ **Live** · {recorded_s:.1f} s recorded, {segments} segment(s) cut at pauses")
    rows = ["| engine | live | transcript so far |", "|---|---|---|"]
    for s in states:
        text = s.text.replace("|", "\\|") or "…"
        rows.append(f"| {s.name} | {s.line()} | {text} |")
    return head + "\n\n" + "\n".join(rows)


def keeps_up(states: list[WorkerState]) -> list[str]:
    return [s.name for s in states if s.keeps_up]
