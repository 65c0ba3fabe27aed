"""The benchmark's view of each INT8 engine's plan: which groups stayed FP32,
its size above all-INT8, its error on the hold-out speech, and (plan
"search") the per-group sensitivity table and chart, read from the engine's
artifact manifest (`EngineInfo.quant`, kept in results.json)."""
from __future__ import annotations

from pathlib import Path

from ..sensitivity_chart import LEVEL_LABELS as LABELS
from ..sensitivity_chart import sensitivity_figure


def _planned(res: dict) -> list[dict]:
    return [e for e in res.get("engines", []) if (e.get("quant") or {}).get("plan")]


def _fmt(m: dict) -> str:
    if not m:
        return "-"
    on = f", teacher-forced on {m['teacher']}" if m.get("teacher") else ""
    return f"mean KL {m['kl']:.4f}, top-1 {m['top1']:.1%} over {m.get('positions', '?')} positions{on}"


def section(res: dict, h: str) -> str:
    """Markdown: every INT8 engine's plan, and its most sensitive groups when it has a table."""
    engines = _planned(res)
    if not engines:
        return ""
    parts = [f"{h}# INT8 plans", "",
             "Groups: the encoder's convolutions, each encoder layer's attention and MLP; each decoder layer's "
             "self-attention, cross-attention and MLP; the token table (embedding and output projection). "
             "Error against FP32 on the packaged hold-out speech, teacher-forced: mean KL of the next-token "
             "distributions and top-1 agreement. 'Simulated' is the search's own PyTorch model of ONNX Runtime's "
             "dynamic INT8; 'measured' is the built graphs in ONNX Runtime, teacher-forced on what each row says "
             "(the recipe on the clips' reference texts, the search on FP32's own tokens: the two are not the "
             "same measurement; the clip-by-clip agreement above is). The convolutions stay FP32 in every plan.", "",
             "| engine | plan | FP32 groups | MLPs with outlier channels FP32 | above all-INT8 | simulated | measured |",
             "|---|---|---|---|---|---|---|"]
    for e in engines:
        plan = e["quant"]["plan"]
        levels = plan.get("levels", {})
        fp32 = [g for g, v in levels.items() if v == "fp32"]
        split = [g for g, v in levels.items() if v == "split"]
        name = plan.get("name", "?") + (f" ({plan['budget']})" if plan.get("budget") else "")
        parts.append(f"| {e['name']} | {name} | {', '.join(fp32) or '-'} | {len(split)} | "
                     f"+{plan.get('extra_bytes', 0) / 1e6:.1f} MB | {_fmt(plan.get('simulated') or {})} | "
                     f"{_fmt(plan.get('measured') or {})} |")
    parts.append("")
    for e in engines:
        q = e["quant"]
        rows = [r for r in q.get("sensitivity", []) if r.get("level") == "int8"]
        if not rows:
            continue
        levels = q["plan"].get("levels", {})
        split_kl = {r["group"]: r["kl"] for r in q["sensitivity"] if r.get("level") == "split"}
        parts += [f"{h}## {e['name']}: per-group sensitivity (that group alone INT8, the rest FP32)", "",
                  f"The {min(12, len(rows))} most sensitive of {len(rows)} groups; all of them in "
                  "its `sensitivity-*.html` chart.", "",
                  "| group | mean KL | top-1 | with outlier channels FP32: mean KL | in the plan |",
                  "|---|---|---|---|---|"]
        for r in sorted(rows, key=lambda r: -r["kl"])[:12]:
            s = split_kl.get(r["group"])
            parts.append(f"| {r['group']} | {r['kl']:.4f} | {r['top1']:.1%} | {'-' if s is None else f'{s:.4f}'} | "
                         f"{LABELS.get(levels.get(r['group'], ''), '-')} |")
        steps = q["plan"].get("steps") or []
        if steps:
            parts += ["", f"The search's path ({len(steps)} steps): "
                      + "; ".join(f"{s['action']}: KL {s['kl']:.4f}, +{s['extra_bytes'] / 1e6:.1f} MB"
                                 + ("" if s.get("kept", True) else " (undone: no closer)") for s in steps)
                      + "."]
        parts.append("")
    return "\n".join(parts)


def chart(res: dict, out_dir: Path) -> list[Path]:
    """sensitivity-<engine>.html for every engine with a sensitivity table."""
    paths = []
    for e in _planned(res):
        fig = sensitivity_figure(e["name"], e["quant"])
        if fig is not None:
            safe = "".join(c if c.isalnum() or c in "-." else "-" for c in e["name"].lower())
            p = Path(out_dir) / f"sensitivity-{safe}.html"
            fig.write_html(p, include_plotlyjs="directory")
            paths.append(p)
    return paths
