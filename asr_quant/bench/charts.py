"""The benchmark's plotly charts: latency split by stage and memory per engine,
and speed against error, one point per engine."""
from __future__ import annotations

from pathlib import Path

from .report import _engines



def charts(res: dict, out_dir: Path) -> list[Path]:
    """latency_memory.html and speed_vs_error.html, sharing one plotly.min.js."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    eng = _engines(res)
    names = [e["name"] for e in eng]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Latency per clip, median (ms)", "Memory (MB)"))
    stages = [("features_ms", "features"), ("encoder_ms", "encoder"), ("decoding_ms", "decoding"),
              ("other_ms", "other")]
    for key, label in stages:
        fig.add_bar(x=names, y=[(e["stages"][key]["median"] if e.get("stages") else None) for e in eng],
                    name=label, legendgroup="lat", row=1, col=1)
    fig.add_bar(x=names, y=[None if e.get("stages") else e["latency_ms"]["median"] for e in eng],
                name="total (not split)", legendgroup="lat", row=1, col=1,
                error_y=dict(type="data", symmetric=False,
                             array=[None if e.get("stages") else _up(e) for e in eng]))
    fig.add_scatter(x=names, y=[e["latency_ms"]["p90"] for e in eng], mode="markers", name="p90 (total)",
                    marker=dict(symbol="line-ew-open", size=24, color="black"), row=1, col=1)
    alone = [e["memory"].get("alone") or {} for e in eng]
    if any(a.get("peak_rss") for a in alone):
        mem_series = [("on disk", [e["memory"]["disk_bytes"] for e in eng]),
                      ("RSS after load (alone)", [a.get("rss_after_load") for a in alone]),
                      ("peak RSS alone (to provision)", [a.get("peak_rss") for a in alone])]
    else:  # no per-engine probe: the shared run's figures
        mem_series = [("on disk", [e["memory"]["disk_bytes"] for e in eng]),
                      ("load growth (shared run)", [e["memory"]["resident_bytes"] for e in eng]),
                      ("peak (shared process)", [e["memory"]["peak_bytes"] for e in eng])]
    for label, values in mem_series:
        fig.add_bar(x=names, y=[None if not v else v / 1e6 for v in values], name=label, legendgroup="mem",
                    row=1, col=2)
    fig.update_layout(barmode="relative", template="plotly_white", height=480,
                      title=f"{res['model']['name']}: latency and memory per engine ({res['date']})")
    fig.update_xaxes(row=1, col=2)
    fig.layout.barmode = "relative"
    # memory bars side by side: put them on their own offset groups
    for tr in fig.data:
        if tr.legendgroup == "mem":
            tr.offsetgroup = tr.name
    out_dir.mkdir(parents=True, exist_ok=True)
    p1 = out_dir / "latency_memory.html"
    fig.write_html(p1, include_plotlyjs="directory")

    fig2 = go.Figure()
    for e in eng:
        err = (e.get("errors_by_row") or {}).get("overall_mean")
        fig2.add_scatter(x=[e["latency_ms"]["median"]], y=[None if err is None else 100 * err], mode="markers+text",
                         text=[e["name"]], textposition="top center", name=e["name"], marker=dict(size=14),
                         error_x=dict(type="data", symmetric=False, array=[_up(e)],
                                      arrayminus=[_down(e)]))
    fig2.update_layout(template="plotly_white", height=480, xaxis_title="latency per clip, median (ms); bars: min-p90",
                       yaxis_title="error rate, mean of rows (%)",
                       title=f"{res['model']['name']}: speed against error, one point per engine")
    p2 = out_dir / "speed_vs_error.html"
    fig2.write_html(p2, include_plotlyjs="directory")
    return [p1, p2]


def _up(e):
    lat = e["latency_ms"]
    return None if lat["p90"] is None else lat["p90"] - lat["median"]


def _down(e):
    lat = e["latency_ms"]
    return None if lat["min"] is None else lat["median"] - lat["min"]
