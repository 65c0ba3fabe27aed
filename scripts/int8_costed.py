"""Plan "costed" on this host, budget by budget: docs/int8-costed.md.

    python scripts/int8_costed.py [--budgets time=0.3,time=0.4,kl=0.004] [--out docs/int8-costed.md]

What it writes, all from the build's own pieces (plans/costed.py):
- this host's kernel cost table per group and option (plans/costs.py: measured
  once and cached; the table's digest is in every costed artifact's key);
- each group's sensitivity at each granularity alone (the per-group
  ablation: one scale per call, per row, per row with the MLP outliers FP32,
  blocks of 16/32/128), teacher-forced on FP32's tokens over the hold-out
  speech, as the build scores it;
- for each budget: the plan the search returns, its predicted product time
  and simulated agreement, and the Pareto front of every plan it scored;
- the front over all budgets together.
Agreement here is simulated and teacher-forced; what the plans do to whole
transcripts is the benchmark's (docs/benchmark.md).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _context(model_key: str, cache_dir: str, threads: int, cfg):
    import torch

    from asr_quant.engines.whisper import ct2, features
    from asr_quant.engines.whisper.ort_artifacts import _prompt_fn, _teacher_fn
    from asr_quant.engines.whisper.plans import BuildContext
    from asr_quant.engines.whisper.tokens import TokenizerInfo

    torch.set_num_threads(threads)
    src = ct2.locate(model_key, cache_dir)
    model, _, _ = ct2.load_fp32(src)
    c = model.config
    tokens = TokenizerInfo.from_ct2_dir(src.ct2_dir, vocab_size=c.vocab_size, max_positions=c.max_target_positions)
    return BuildContext(model, Path(cache_dir), cfg, lambda x: features.windows(x, c.num_mel_bins)[0].mel,
                        _prompt_fn(tokens), cache_dir, threads, say=lambda m: print(" ", m, flush=True),
                        teacher=_teacher_fn(model, tokens), model_cache_dir=src.cache_dir)


def _levels(levels: dict[str, str]) -> str:
    """A plan in one cell: each option and the groups at it."""
    by: dict[str, list[str]] = {}
    for g, o in levels.items():
        by.setdefault(o, []).append(g)
    return "; ".join(f"**{o}**: {', '.join(gs)}" for o, gs in sorted(by.items()))


def main(argv=None) -> int:
    from asr_quant import host
    from asr_quant.engines.whisper.plans import costed, costs
    from asr_quant.engines.whisper.plans.common import BuildReport
    from asr_quant.engines.whisper.plans.config import QuantConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="base")
    ap.add_argument("--budgets", default="time=0.3,time=0.35,time=0.4,time=0.5,kl=0.004,kl=0.002")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "docs" / "int8-costed.md"))
    args = ap.parse_args(argv)
    cache_dir = os.environ.get("ASRQ_CACHE_DIR", os.path.expanduser("~/.cache/asr-quant"))
    budgets = [x.strip() for x in args.budgets.split(",") if x.strip()]
    cfg = QuantConfig(plan="costed", budget=budgets[0], cost_threads=args.threads)
    ctx = _context(args.model, cache_dir, args.threads, cfg)
    report = BuildReport(encoder="costed")
    sp = costed.space(ctx, report)
    if sp.scorer is None:
        print("no hold-out speech: nothing to score", file=sys.stderr)
        return 1
    named = {n: (lv, sp.scorer.score(lv, sp.outliers)) for n, lv in costed.named_levels(sp.groups, sp.options).items()}
    results, every = [], []
    for b in budgets:
        print(f"budget {b}", flush=True)
        levels, m, points = costed.searched(sp, costed.parse_budget(b), report, ctx.say)
        results.append((b, levels, m, points))
        every += points
    isa = host.detect()
    out = [f"# Plan \"costed\": a granularity per layer group, time as a cost ({args.model})", "",
           f"Made by `python scripts/int8_costed.py --budgets {args.budgets}` on {isa.describe()}, "
           f"{args.threads} threads, ONNX Runtime {sp.table.ort}. Agreement is simulated in PyTorch "
           f"(plans/granular.py), teacher-forced on FP32's own tokens over {len(sp.samples)} hold-out clips "
           f"(the build's own scoring); time is the sum of the group's products from this host's kernel cost "
           f"table (plans/costs.py: per window, with {costs.TOKENS_PER_WINDOW} decoded tokens a window), so "
           f"it is product time, not end-to-end latency. Budgets: `time=R` = at most R x the all-FP32 plan's "
           f"product time, best agreement; `kl=K` = mean KL at most K, least time.", "",
           "## What each option costs here (ms per window, one group)", "",
           "| group | " + " | ".join(o for o in costs.OPTIONS) + " |", "|---|" + "---|" * len(costs.OPTIONS)]
    seen = set()
    for g in sp.groups:
        key = (g.side, g.kind)
        if key in seen:
            continue
        seen.add(key)
        cells = [f"{sp.cost[(g.name, o)]:.2f}" if (g.name, o) in sp.cost else "—" for o in costs.OPTIONS]
        out.append(f"| {g.side} {g.kind} (each layer) | " + " | ".join(cells) + " |")
    out += ["", f"All-FP32 plan: {sp.fp32_ms:.1f} ms of products a window; cheapest plan: "
            f"{costed.plan_ms(sp.cheapest(), sp.cost):.1f} ms.", "",
            "## Where agreement is lost: each group alone at each granularity", "",
            "Mean KL(FP32 || plan) of the next-token distributions, that group alone quantized, the rest FP32 "
            "(lower is closer; top-1 agreement in brackets).", "",
            "| group | " + " | ".join(o for o in costs.OPTIONS if o != "fp32") + " |",
            "|---|" + "---|" * (len(costs.OPTIONS) - 1)]
    sens = {(r["group"], r["option"]): r for r in report.sensitivity}
    for g in sp.groups:
        cells = []
        for o in costs.OPTIONS[1:]:
            r = sens.get((g.name, o))
            cells.append(f"{r['kl']:.4f} ({r['top1']:.1%})" if r else "—")
        out.append(f"| {g.name} | " + " | ".join(cells) + " |")
    out += ["", "## The plan each budget gets", "",
            "A time budget below the cheapest plan cannot be met; the search then returns the cheapest plan and "
            "says so.", "",
            "| budget | product time vs FP32 | mean KL | top-1 | plans scored | on its front | plan |",
            "|---|---|---|---|---|---|---|"]
    for b, levels, m, points in results:
        ms = costed.plan_ms(levels, sp.cost) / sp.fp32_ms
        met = costed.parse_budget(b).met({**m, "ms_ratio": ms})
        out.append(f"| `{b}`{'' if met else ' (not met)'} | {ms:.3f}x | {m['kl']:.4f} | "
                   f"{m['top1']:.2%} | {len(points)} | {len(costed.front(points))} | {_levels(levels)} |")
    out += ["", "The fixed plans written in the same space and scored the same way (plan `rows`' encoder per row with "
            "the MLP outliers FP32, its decoder and token table in blocks of 16; `blockwise`: blocks of 16 "
            "everywhere):", "", "| plan | product time vs FP32 | mean KL | top-1 |", "|---|---|---|---|"]
    for n, (lv, m) in named.items():
        out.append(f"| {n} | {costed.plan_ms(lv, sp.cost) / sp.fp32_ms:.3f}x | {m['kl']:.4f} | {m['top1']:.2%} |")
    out += ["", "## Pareto front: every plan scored, all budgets together", "",
            "| product time vs FP32 | ms a window | mean KL | top-1 | reached by |", "|---|---|---|---|---|"]
    for p in costed.front(every):
        out.append(f"| {p['ms_ratio']:.3f}x | {p['ms']:.1f} | {p['kl']:.4f} | {p['top1']:.2%} | {p['action']} |")
    Path(args.out).write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
