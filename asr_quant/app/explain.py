"""'Explain the difference' for the page, without gradio.

`engines.divergence.explain` does the work; this module turns its result (or
the reason there is none) into Markdown and draws the per-layer chart.
Computed on request only: it decodes the clip twice more and traces both
engines once.
"""
from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go

from ..engines import EngineSet
from ..engines.base import EngineError
from ..engines.divergence import Divergence, worst_layer
from ..engines.divergence import explain as divergence_of
from .charts import _figure
from .present import escape


@dataclass
class Explained:
    divergence: Divergence | None
    message: str  # Markdown for the page
    figure: go.Figure | None


def explain(engine_set: EngineSet, model: str, baseline: str, other: str, clip, language: str | None) -> Explained:
    """Why `other`'s text differs from `baseline`'s on this clip; errors become a message."""
    try:
        d = divergence_of(engine_set, model, baseline, other, clip, language)
    except EngineError as exc:
        return Explained(None, escape(str(exc)), None)
    return Explained(d, markdown(d), None if d.same else layer_figure(d))


def _tops(d: Divergence) -> list[str]:
    rows = ["| rank | " + f"{d.reference} token | p | {d.other} token | p |", "|---|---|---|---|---|"]
    for i, (a, b) in enumerate(zip(d.reference_top, d.other_top)):
        rows.append(f"| {i + 1} | `{escape(repr(a.token))}` | {a.prob:.3f} | `{escape(repr(b.token))}` | {b.prob:.3f} |")
    return rows


def markdown(d: Divergence) -> str:
    if d.same:
        return escape(d.note)
    a, b = d.reference_top[0], d.other_top[0]
    lines = [f"**First differing token**: step {d.step} of window {d.window + 1}, after "
             f"“{escape(d.prefix[-80:])}”: {d.reference} chooses `{escape(repr(a.token))}` "
             f"(p = {a.prob:.3f}), {d.other} chooses `{escape(repr(b.token))}` (p = {b.prob:.3f}); "
             f"a {d.token_kind} token. The largest growth of the hidden-state error is at {worst_layer(d)}.", ""]
    if d.note:
        lines += [f"_{escape(d.note)}_", ""]
    lines += _tops(d)
    return "\n".join(lines)


def layer_figure(d: Divergence) -> go.Figure:
    """Relative error of the other engine's hidden state per layer (encoder: all
    frames; decoder: the diverging step)."""
    x = [f"{g.part[:3]} {g.layer}" for g in d.layers]
    traces = [{"type": "bar", "x": x, "y": [g.rel_error for g in d.layers], "name": "relative error",
               "marker": {"color": ["#4C78A8" if g.part == "encoder" else "#54A24B" for g in d.layers]},
               "text": [f"cos {g.cosine:.4f}" for g in d.layers], "textposition": "outside"}]
    return _figure(traces, f"{d.other} vs {d.reference}: hidden-state error per layer at the first differing token",
                   yaxis={"title": {"text": "||other − ref|| / ||ref||"}, "gridcolor": "#e8e8e8"}, showlegend=False)
