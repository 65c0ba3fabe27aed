"""Plotly figures for the page: latency and memory per engine, and the session.

Built from `Transcript`s and the session `History` only, so they are the same
whichever model or runtime produced the numbers. Engines without an answer
appear with no bar and "error" written where the bar would be, so a missing
bar never reads as "zero seconds".
"""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .engines.base import Transcript
from .history import History

BASELINE = "FP32"
_MB = 1024 * 1024
# One colour per engine, the same in every chart.
ENGINE_COLORS = {"FP32": "#4C78A8", "FP16": "#F58518", "INT8": "#54A24B", "BF16": "#B279A2"}
_FALLBACK = ["#E45756", "#72B7B2", "#EECA3B", "#9D755D"]
_LAYOUT = dict(template="plotly_white", height=320, margin=dict(l=50, r=20, t=50, b=40),
               legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0))


def color(name: str, index: int = 0) -> str:
    return ENGINE_COLORS.get(name, _FALLBACK[index % len(_FALLBACK)])


def ratio_labels(transcripts: Sequence[Transcript], baseline: str = BASELINE) -> list[str]:
    """"1.00× FP32", "0.62× FP32", ... on each answered bar; "error" otherwise."""
    base = next((t for t in transcripts if t.engine == baseline and t.ok and t.latency_s > 0), None)
    labels = []
    for t in transcripts:
        if not t.ok:
            labels.append("error")
        elif base is None:
            labels.append(f"{t.latency_s:.2f} s")
        else:
            labels.append(f"{t.latency_s / base.latency_s:.2f}× {baseline}")
    return labels


def latency_figure(transcripts: Sequence[Transcript], baseline: str = BASELINE) -> go.Figure:
    """Seconds per engine on this clip, each bar labelled with its ratio to FP32."""
    names = [t.engine for t in transcripts]
    fig = go.Figure(go.Bar(
        x=names,
        y=[t.latency_s if t.ok else 0.0 for t in transcripts],
        text=ratio_labels(transcripts, baseline),
        textposition="outside",
        marker_color=[color(n, i) for i, n in enumerate(names)],
        customdata=[[t.rtf if t.rtf is not None else float("nan")] for t in transcripts],
        hovertemplate="%{x}: %{y:.3f} s (RTF %{customdata[0]:.3f})<extra></extra>",
    ))
    top = max([t.latency_s for t in transcripts if t.ok] or [1.0])
    fig.update_layout(title="Latency on this clip (lower is faster)", yaxis_title="seconds",
                      yaxis_range=[0, top * 1.25], showlegend=False, **_LAYOUT)
    return fig


def memory_figure(transcripts: Sequence[Transcript]) -> go.Figure:
    """Weights on disk, resident memory the engine's load added, and the extra
    memory the call needed at its peak, per engine (MiB)."""
    names = [t.engine for t in transcripts]
    series = [
        ("weights on disk", [t.memory.disk_bytes for t in transcripts], "#9ecae9"),
        ("resident (added by load)", [t.memory.resident_bytes for t in transcripts], "#4c78a8"),
        ("peak during call (above start)", [t.memory.peak_delta_bytes for t in transcripts], "#f58518"),
    ]
    fig = go.Figure()
    for label, values, col in series:
        fig.add_bar(name=label, x=names, y=[v / _MB for v in values], marker_color=col,
                    text=[f"{v / _MB:.0f}" if v else "" for v in values], textposition="outside",
                    hovertemplate="%{x}: %{y:.1f} MiB<extra>" + label + "</extra>")
    top = max([v for _, values, _ in series for v in values] or [1]) / _MB
    fig.update_yaxes(range=[0, max(top, 1.0) * 1.2])
    kind = {t.memory.kind for t in transcripts}
    note = " (GPU allocator)" if kind == {"cuda-allocator"} else " (process RSS)"
    fig.update_layout(title="Memory per engine" + note, yaxis_title="MiB", barmode="group", **_LAYOUT)
    return fig


def history_figure(history: History) -> go.Figure:
    """Latency per engine per run (solid, left axis) and WER/CER per engine
    per run when a reference was given (dotted, right axis)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    runs = history.runs
    xs = [r.run for r in runs]
    any_rate = False
    for i, name in enumerate(history.engine_names()):
        lat, rate = [], []
        for r in runs:
            e = r.engine(name)
            ok = e is not None and e.error is None
            lat.append(e.latency_s if ok else None)
            rate.append(e.error_rate if ok and e.error_rate is not None else None)
        fig.add_trace(go.Scatter(x=xs, y=lat, name=f"{name} latency", mode="lines+markers",
                                 line=dict(color=color(name, i)), connectgaps=False), secondary_y=False)
        if any(v is not None for v in rate):
            any_rate = True
            fig.add_trace(go.Scatter(x=xs, y=rate, name=f"{name} error", mode="lines+markers",
                                     line=dict(color=color(name, i), dash="dot"),
                                     marker=dict(symbol="x")), secondary_y=True)
    fig.update_layout(title="This session: latency and error per run", **_LAYOUT)
    fig.update_xaxes(title_text="run", dtick=1, range=[min(xs, default=1) - 0.5, max(xs, default=1) + 0.5])
    fig.update_yaxes(title_text="latency (s)", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="WER / CER" if any_rate else "", tickformat=".0%", rangemode="tozero",
                     secondary_y=True, showgrid=False, visible=any_rate)
    return fig
