"""Plotly figures for the page: latency and memory per engine, and the session.

Built from `Transcript`s and the session `History` only, so they are the same
whichever model or runtime produced the numbers. Engines without an answer
appear with no bar and "error" written where the bar would be, so a missing
bar never reads as "zero seconds".
"""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go

from .. import units
from ..engines.base import Transcript
from .history import History

BASELINE = "FP32"
# One colour per engine, the same in every chart.
ENGINE_COLORS = {"FP32": "#4C78A8", "FP16": "#F58518", "INT8": "#54A24B", "BF16": "#B279A2"}
_FALLBACK = ["#E45756", "#72B7B2", "#EECA3B", "#9D755D"]
# Styled by hand: a named template costs ~50 ms per figure to apply.
_AXIS = dict(gridcolor="#e8e8e8", linecolor="#cccccc", zeroline=False, automargin=True)
_LAYOUT = dict(height=320, margin=dict(l=50, r=20, t=50, b=40), plot_bgcolor="white", paper_bgcolor="white",
               font=dict(family="Arial, sans-serif", size=12, color="#333333"), xaxis=_AXIS, yaxis=_AXIS,
               # below the plot, in the figure's own frame: it pushes the plot up instead of covering
               # the title when a phone's width folds it into several rows
               legend=dict(orientation="h", xref="container", yref="container", yanchor="bottom", y=0.0,
                           xanchor="left", x=0.0))


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


def _figure(traces: list[dict], title: str, **layout) -> go.Figure:
    """One figure from plain dicts: validated once, not property by property
    (plotly's per-call validation was most of a request's time outside the engines)."""
    lay = {**_LAYOUT, "title": {"text": title, "font": {"size": 14}}, **layout}  # 14 px: fits a phone
    for axis in ("xaxis", "yaxis"):
        lay[axis] = {**_AXIS, **layout.get(axis, {})}
    return go.Figure({"data": traces, "layout": lay})


def latency_figure(transcripts: Sequence[Transcript], baseline: str = BASELINE) -> go.Figure:
    """Seconds per engine on this clip, each bar labelled with its ratio to FP32."""
    names = [t.engine for t in transcripts]
    top = max([t.latency_s for t in transcripts if t.ok] or [1.0])
    bar = dict(
        type="bar", x=names, y=[t.latency_s if t.ok else 0.0 for t in transcripts],
        text=ratio_labels(transcripts, baseline), textposition="outside",
        marker={"color": [color(n, i) for i, n in enumerate(names)]},
        customdata=[[t.rtf if t.rtf is not None else float("nan")] for t in transcripts],
        hovertemplate="%{x}: %{y:.3f} s (RTF %{customdata[0]:.3f})<extra></extra>",
    )
    return _figure([bar], "Latency on this clip (lower is faster)", showlegend=False,
                   yaxis={"title": {"text": "seconds"}, "range": [0, top * 1.25]})


def memory_figure(transcripts: Sequence[Transcript]) -> go.Figure:
    """Per engine (MB = 10^6 bytes, as everywhere): peak RSS of the engine
    alone (what to provision), the working memory of a call on the probe's
    clip, weights as stored and size on disk (the alone figures absent until
    measured; docs/memory.md). None of them depends on load order."""
    names = [t.engine for t in transcripts]
    clips = sorted({(t.memory.alone_clip, t.memory.alone_clip_s) for t in transcripts if t.memory.alone_clip})
    on = "; ".join(c + ("" if s is None else f", {s:.1f} s") for c, s in clips)
    series = [
        ("peak RSS alone (to provision)", [t.memory.peak_rss_alone or 0 for t in transcripts], "#54a24b"),
        ("working memory of a call (alone" + (f", on {on})" if on else ")"),
         [t.memory.working_bytes or 0 for t in transcripts], "#f58518"),
        ("weights as stored", [t.memory.weights_bytes for t in transcripts], "#4c78a8"),
        ("on disk", [t.memory.disk_bytes for t in transcripts], "#9ecae9"),
    ]
    traces = [dict(type="bar", name=label, x=names, y=[v / units.MB for v in values], marker={"color": col},
                   text=[units.fmt_bytes(v) if v else "" for v in values], textposition="outside",
                   textfont={"size": 10},  # three bars side by side stay legible on a phone
                   hovertemplate="%{x}: %{y:.1f} MB<extra>" + label + "</extra>")
              for label, values, col in series]
    top = max([v for _, values, _ in series for v in values] or [1]) / units.MB
    return _figure(traces, "Memory per engine", barmode="group",
                   yaxis={"title": {"text": "MB"}, "range": [0, max(top, 1.0) * 1.2]})


def history_figure(history: History) -> go.Figure:
    """Latency per engine per run (solid, left axis) and WER/CER per engine
    per run when a reference was given (dotted, right axis)."""
    runs = history.runs
    xs = [r.run for r in runs]
    traces = []
    for i, name in enumerate(history.engine_names()):
        lat, rate = [], []
        for r in runs:
            e = r.engine(name)
            ok = e is not None and e.error is None
            lat.append(e.latency_s if ok else None)
            rate.append(e.error_rate if ok and e.error_rate is not None else None)
        traces.append(dict(type="scatter", x=xs, y=lat, name=f"{name} latency", mode="lines+markers",
                           line={"color": color(name, i)}, connectgaps=False))
        if any(v is not None for v in rate):
            traces.append(dict(type="scatter", x=xs, y=rate, name=f"{name} error", mode="lines+markers",
                               yaxis="y2", line={"color": color(name, i), "dash": "dot"},
                               marker={"symbol": "x"}))
    any_rate = any(t.get("yaxis") == "y2" for t in traces)
    return _figure(
        traces, "This session: latency and error per run", height=360,  # room for a legend of 2 rows per engine
        xaxis={"title": {"text": "run"}, "dtick": 1,
               "range": [min(xs, default=1) - 0.5, max(xs, default=1) + 0.5]},
        yaxis={"title": {"text": "latency (s)"}, "rangemode": "tozero"},
        yaxis2={"title": {"text": "WER / CER" if any_rate else ""}, "tickformat": ".0%",
                "rangemode": "tozero", "overlaying": "y", "side": "right", "showgrid": False,
                "visible": any_rate})


def warm_up() -> None:
    """Build and serialize one figure of each kind, so that plotly's one-off
    imports and validator set-up (~0.4 s) happen at start-up, not in the
    first request."""
    t = Transcript(engine=BASELINE, text="x", audio_s=1.0)
    for fig in (latency_figure([t]), memory_figure([t]), history_figure(History())):
        fig.to_json()
