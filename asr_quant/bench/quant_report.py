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


def pareto_front(points: dict[str, tuple[float, float]]) -> set[str]:
    """The names no other point beats on both axes: (time, agreement), lower
    time and higher agreement better; a point equal on both is not beaten."""
    def beats(a, b):
        return a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1])

    return {n for n, p in points.items() if not any(beats(q, p) for m, q in points.items() if m != n)}


def front_section(res: dict, h: str) -> str:
    """Markdown: every INT8 row of the run (plans and the INT8 peer), time
    against agreement, with the Pareto front marked; '' with fewer than two."""
    from .paired_report import paired_of

    eng = (paired_of(res).get("engines") or {})
    pairs = res.get("pairs") or {}
    isa = ((res.get("machine") or {}).get("isa") or {}).get("label") or "instruction set not recorded"
    points = {}
    for e in res.get("engines", []):
        name = e["name"]
        if not (name.startswith("INT8") or name == "faster-whisper int8") or not e.get("available", True):
            continue
        t = (pairs.get(f"{name} / FP32") or {}).get("median_paired")
        a = ((eng.get(name) or {}).get("recorded") or {}).get("identical")
        if t is not None and a is not None:
            points[name] = (t, a)
    if len(points) < 2:
        return ""
    front = pareto_front(points)
    rows = sorted(points.items(), key=lambda kv: kv[1][0])
    lines = [f"{h}# INT8: time against agreement ({isa})", "",
             "Every INT8 row of this run: the median of per-clip latency ratios to PyTorch FP32 and the share of "
             "recorded clips whose transcript is identical to FP32's. The Pareto front is the rows no other row "
             "beats on both.", "",
             "| engine | time / PyTorch FP32 (median per clip) | identical to FP32 (recorded clips) | Pareto front |",
             "|---|---|---|---|"]
    lines += [f"| {n} | {t:.2f}x | {100 * a:.0f} % | {'yes' if n in front else ''} |" for n, (t, a) in rows]
    return "\n".join(lines) + "\n"


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
    for e in engines:
        parts += costed_section(e, h)
    return "\n".join(parts)


def costed_section(e: dict, h: str) -> list[str]:
    """Plan "costed": its mix of granularities, its predicted product time and the
    Pareto front of the plans its search scored (host cost table, simulated
    agreement); [] for other plans."""
    plan = (e.get("quant") or {}).get("plan") or {}
    if plan.get("name") != "costed" or not plan.get("front"):
        return []
    c = plan.get("costs") or {}
    mix: dict[str, int] = {}
    for o in (plan.get("levels") or {}).values():
        mix[o] = mix.get(o, 0) + 1
    fp32_ms = plan.get("fp32_ms") or 1.0
    out = [f"{h}## {e['name']}: the costed search", "",
           f"Budget {plan.get('budget')} ({'met' if plan.get('met') else 'not met: the closest plan found'}); "
           f"groups per option: {', '.join(f'{o} {n}' for o, n in sorted(mix.items()))}; predicted product time "
           f"{plan.get('ms', 0) / fp32_ms:.3f}x the all-FP32 plan's ({fp32_ms:.0f} ms a window by the cost table "
           f"measured on {c.get('host', '?')} at {c.get('threads', '?')} threads, {c.get('tokens_per_window', '?')} "
           f"tokens a window; table digest {c.get('digest', '?')}). The Pareto front of the "
           f"{len(plan.get('points') or [])} plans its search scored (simulated, teacher-forced on FP32's tokens; "
           "product time, not latency):", "",
           "| product time vs FP32 | mean KL | top-1 | reached by |", "|---|---|---|---|"]
    out += [f"| {p['ms'] / fp32_ms:.3f}x | {p['kl']:.4f} | {p['top1']:.1%} | {p['action']} |" for p in plan["front"]]
    return out + [""]


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
