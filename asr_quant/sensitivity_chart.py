"""The per-group INT8 sensitivity chart (a plan "search" INT8 engine's table,
`EngineInfo.quant`), one figure for the page's model card and the benchmark's
report alike; plotly only, so either application may use it."""
from __future__ import annotations

import plotly.graph_objects as go

LEVEL_LABELS = {"int8": "INT8", "split": "outlier channels FP32", "fp32": "kept FP32", "fc2-fp32": "fc2 FP32"}
LEVEL_COLORS = {"int8": "#54A24B", "split": "#EECA3B", "fp32": "#E45756", "fc2-fp32": "#F58518"}


def sensitivity_figure(name: str, quant: dict) -> go.Figure | None:
    """One bar per group (mean KL with that group alone INT8, log scale), coloured
    by the plan's level for it; None without a sensitivity table."""
    rows = [r for r in (quant or {}).get("sensitivity", []) if r.get("level") == "int8"]
    if not rows:
        return None
    levels = ((quant or {}).get("plan") or {}).get("levels", {})
    fig = go.Figure()
    for level in ("int8", "split", "fp32"):
        pick = [r for r in rows if levels.get(r["group"], "int8") == level]
        if pick:
            fig.add_bar(x=[r["group"] for r in pick], y=[max(r["kl"], 1e-6) for r in pick], name=LEVEL_LABELS[level],
                        marker_color=LEVEL_COLORS[level],
                        customdata=[r["top1"] for r in pick],
                        hovertemplate="%{x}: mean KL %{y:.4f}, top-1 %{customdata:.1%}<extra></extra>")
    fig.update_layout(plot_bgcolor="white", paper_bgcolor="white", height=420, yaxis_type="log",
                      yaxis_title="mean KL to FP32",
                      xaxis=dict(categoryorder="array", categoryarray=[r["group"] for r in rows]),
                      legend_title_text="in the plan",
                      title=f"{name}: each group alone INT8 (the rest FP32), on hold-out speech")
    return fig


def engines_sensitivity(engines) -> go.Figure | None:
    """The chart of the first loaded engine whose plan has a table (INT8 built
    with --int8-plan search), else None."""
    for e in engines:
        fig = sensitivity_figure(e.info.name, e.info.quant) if e.info.available else None
        if fig is not None:
            return fig
    return None
