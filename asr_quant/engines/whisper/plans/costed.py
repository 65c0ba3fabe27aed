"""INT8 plan "costed": a granularity per layer group, searched with time as a cost.

The space: each group (sensitivity.groups) takes one option of
granular.options_for (FP32, one scale per call, per row, per row with the
MLP's outlier channels FP32, 8-bit blocks of 16/32/128), each with its product
time on this host from the cost table (costs.py). The search either
maximizes agreement under a time budget ("time=0.35": at most 0.35x the
all-FP32 plan's product time by the table) or minimizes time under an
agreement budget ("kl=0.004", "top1=0.99"):

1. each group's sensitivity at each option alone (the rest FP32), scored
   teacher-forced on FP32's tokens over hold-out speech (sensitivity.Scorer
   with granular.simulated): this table is also the per-group ablation;
2. start from every group at its cheapest option;
3. upgrade greedily: the move with the most sensitivity saved per
   millisecond added (a move that saves time too goes first), within the time
   budget; keep it if the whole plan scores closer to FP32, else undo it;
   until an agreement budget is met or no move is left;
4. under an agreement budget, then take back the upgrades the result does not
   need, largest time first.

Every plan scored is a point (time by the table, KL and top-1); the Pareto
front of those points goes to the manifest, the docs and the benchmark. The
same table and scores give the same plan: nothing here is timed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .config import Budget
from .sensitivity import Group


@dataclass(frozen=True)
class TimeBudget:
    """At most `value` x the all-FP32 plan's product time (by the cost table)."""

    value: float
    kind: str = "time"

    def met(self, m: dict) -> bool:
        return m["ms_ratio"] <= self.value + 1e-12

    def __str__(self) -> str:
        return f"time={self.value!r}"


def parse_budget(text: str):
    """'time=<ratio to FP32>' or an agreement budget (config.Budget: kl=, top1=)."""
    kind, _, value = str(text).partition("=")
    if kind != "time":
        return Budget.parse(text)
    try:
        v = float(value)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"a time budget is time=<ratio to the FP32 plan's product time, > 0>, not {text!r}")
    return TimeBudget(v)


def plan_ms(levels: dict[str, str], cost: dict[tuple[str, str], float]) -> float:
    return sum(cost[(g, o)] for g, o in levels.items())


def closer(a: dict, b: dict) -> bool:
    """Is score `a` closer to FP32 than `b`: lower KL, then higher top-1."""
    return (a["kl"], -a["top1"]) < (b["kl"], -b["top1"])


def named_levels(sp_groups, options: dict[str, tuple[str, ...]]) -> dict[str, dict[str, str]]:
    """The fixed plans written in this space, to score on the same front:
    rows (encoder per row, MLP outliers FP32; decoder and token table in blocks
    of 16) and blockwise (blocks of 16 everywhere)."""
    rows = {g.name: ("row-split" if "row-split" in options[g.name] else "row") if g.side == "encoder" else "b16"
            for g in sp_groups}
    return {"rows": rows, "blockwise": {g.name: "b16" for g in sp_groups}}


def front(points: list[dict]) -> list[dict]:
    """The Pareto front of scored plans: none faster with KL as low, sorted by time."""
    pts = sorted(points, key=lambda p: (p["ms"], p["kl"]))
    out, best = [], math.inf
    for p in pts:
        if p["kl"] < best:
            out.append(p)
            best = p["kl"]
    return out


def sensitivities(scorer, gs: list[Group], options: dict[str, tuple[str, ...]], outliers=None) -> list[dict]:
    """One row per group and option: that group alone at that option, the rest FP32."""
    rows = []
    for g in gs:
        for o in options[g.name]:
            if o == "fp32":
                continue
            m = scorer.score({g.name: o}, outliers)
            rows.append({"group": g.name, "side": g.side, "kind": g.kind, "layer": g.layer, "option": o, **m})
    return rows


def search(scorer, gs: list[Group], options: dict[str, tuple[str, ...]], cost: dict[tuple[str, str], float],
           budget, table: list[dict], outliers=None, max_steps: int = 60) -> tuple[dict[str, str], dict, list[dict]]:
    """(levels, score of the plan returned, every plan scored as a point). `cost`:
    (group, option) -> ms per window; `table`: `sensitivities`' rows."""
    alone = {(r["group"], r["option"]): r["kl"] for r in table}
    for g in gs:
        alone[(g.name, "fp32")] = 0.0
    fp32_ms = sum(cost[(g.name, "fp32")] for g in gs)
    levels = {g.name: min(options[g.name], key=lambda o, g=g: (cost[(g.name, o)], alone[(g.name, o)], o)) for g in gs}
    points: list[dict] = []
    timed = isinstance(budget, TimeBudget)

    def scored(lv: dict, action: str) -> dict:
        ms = plan_ms(lv, cost)
        m = {**scorer.score(lv, outliers), "ms": round(ms, 4), "ms_ratio": round(ms / fp32_ms, 6)}
        points.append({"action": action, **m, "levels": dict(lv)})
        return m

    m = scored(levels, "start (every group at its cheapest option)")
    tried: set[tuple[str, str]] = set()
    limit = budget.value * fp32_ms if timed else math.inf
    while len(points) < max_steps and (timed or not budget.met(m)):
        now = plan_ms(levels, cost)
        moves = []
        for g in gs:
            cur = levels[g.name]
            for o in options[g.name]:
                if (g.name, o) in tried or o == cur or alone[(g.name, o)] >= alone[(g.name, cur)]:
                    continue
                added = cost[(g.name, o)] - cost[(g.name, cur)]
                if now + added > limit + 1e-9:
                    continue
                gain = alone[(g.name, cur)] - alone[(g.name, o)]
                moves.append((math.inf if added <= 0 else gain / added, gain, g.name, o))
        if not moves:
            break
        _, _, name, o = max(moves)
        tried.add((name, o))
        trial = {**levels, name: o}
        mt = scored(trial, f"{name} -> {o}")
        points[-1]["kept"] = closer(mt, m)
        if points[-1]["kept"]:
            levels, m = trial, mt
    if not timed and budget.met(m):  # take back what the budget does not need, the dearest first
        cheapest = {g.name: min(options[g.name], key=lambda o, g=g: (cost[(g.name, o)], o)) for g in gs}
        for name in sorted((k for k in levels if levels[k] != cheapest[k]),
                           key=lambda k: -(cost[(k, levels[k])] - cost[(k, cheapest[k])])):
            if len(points) >= 2 * max_steps:
                break
            trial = {**levels, name: cheapest[name]}
            mt = scored(trial, f"{name} back to {cheapest[name]}")
            points[-1]["kept"] = budget.met(mt)
            if points[-1]["kept"]:
                levels, m = trial, mt
    return levels, m, points


# --------------------------------------------------------------------------- the plan

@dataclass
class Space:
    """What a search runs on: the groups, their options and costs, the scorer."""

    groups: list
    options: dict
    cost: dict
    table: object  # costs.CostTable
    outliers: dict | None
    qmax: int
    samples: list
    scorer: object | None

    @property
    def fp32_ms(self) -> float:
        return sum(self.cost[(g.name, "fp32")] for g in self.groups) if self.cost else 0.0

    def cheapest(self) -> dict[str, str]:
        return {g.name: min(self.options[g.name], key=lambda o, g=g: (self.cost[(g.name, o)], o)) for g in self.groups}


def space(ctx, report) -> Space:
    """Outlier channels (as plan rows finds them), this host's cost table, the
    options and their costs per group, and the hold-out clips' scorer (None
    without hold-out speech); what was missing is said in `report`."""
    from functools import partial

    from . import costs, granular
    from .common import holdout
    from .outliers import encoder_outliers
    from .sensitivity import Sample, Scorer, groups

    hf_model, cfg, say = ctx.hf_model, ctx.cfg, ctx.say
    outliers = encoder_outliers(ctx, report, "no outlier split among the options")
    dims = costs.dims_of(hf_model.config)
    split = cfg.outlier_channels if outliers else 0
    gs = [g for g in groups(hf_model) if g.kind != "conv"]
    options = {g.name: granular.options_for(g, outliers, dims["d_model"]) for g in gs}
    table, cost = None, {}
    if not cfg.levels:  # a plan fixed beforehand needs no cost table
        table = costs.for_quant(hf_model.config, cfg, ctx.model_cache_dir or ctx.cache_dir, say)
        cost = {(g.name, o): costs.group_ms(table, dims, g.kind, g.side, o, split)
                for g in gs for o in options[g.name]}
    qmax = cfg.weight_qmax
    samples = holdout(cfg, ctx.features, ctx.prompt, ctx.teacher, report, say)
    scorer = (Scorer(hf_model, [Sample(*x) for x in samples], simulate=partial(granular.simulated, qmax=qmax))
              if samples else None)
    return Space(gs, options, cost, table, outliers, qmax, samples, scorer)


def searched(sp: Space, budget, report, say=lambda message: None) -> tuple[dict[str, str], dict, list[dict]]:
    """The sensitivities (into the report) and the search on a Space; with no
    scorer, the cheapest plan, and the reason says so."""
    if sp.scorer is None:
        report.reason += "no hold-out speech to score on: every group at its cheapest option; "
        return sp.cheapest(), {}, []
    if not report.sensitivity:
        say("scoring each group at each granularity")
        report.sensitivity = sensitivities(sp.scorer, sp.groups, sp.options, sp.outliers)
    say("searching the plan")
    return search(sp.scorer, sp.groups, sp.options, sp.cost, budget, report.sensitivity, sp.outliers)


def build(ctx):
    """The space, the search, then the plan exported and written group by
    group (mixed.write) and measured in ONNX Runtime."""
    import time

    from .. import onnx_export
    from . import costs, mixed
    from .common import BuildReport, finished, holdout, measure_built

    out_dir, cfg, say = ctx.out_dir, ctx.cfg, ctx.say
    t0 = time.perf_counter()
    secs: dict[str, float] = {}
    report = BuildReport(encoder="costed", decoder="costed", fc2="fp32")
    work = out_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    sp = space(ctx, report)
    secs["space"] = time.perf_counter() - t0
    budget = parse_budget(cfg.budget)
    t = time.perf_counter()
    if cfg.levels:  # fixed beforehand (a benchmark's plan): built as it is, scored once
        levels = dict(cfg.levels)
        m = sp.scorer.score(levels, sp.outliers) if sp.scorer else {}
        points = [{"action": "fixed beforehand (the evidence's plan)", **m, "levels": dict(levels)}] if m else []
        report.reason += "the plan fixed beforehand (the benchmark's own, default.EVIDENCE), not searched"
    else:
        levels, m, points = searched(sp, budget, report, say)
    secs["search"] = time.perf_counter() - t
    ms = plan_ms(levels, sp.cost) if sp.cost else None
    met = bool(m) and (ms is None or budget.met({**m, "ms_ratio": ms / sp.fp32_ms}))
    report.plan = {"name": "costed", "levels": levels, "budget": str(budget), "met": met, "simulated": m,
                   "fixed": bool(cfg.levels), "ms": None if ms is None else round(ms, 3),
                   "fp32_ms": round(sp.fp32_ms, 3) if sp.cost else None, "points": points,
                   "front": front(points) if sp.cost else [], "extra_bytes": 0, "steps": [],
                   "costs": {} if sp.table is None else {
                       "key": sp.table.key, "digest": sp.table.digest(), "threads": sp.table.threads,
                       "host": sp.table.host, "tokens_per_window": costs.TOKENS_PER_WINDOW}}
    t = time.perf_counter()
    say("exporting ONNX")
    per_layer = None
    if sp.outliers:
        per_layer = {"encoder": [o if levels.get(f"enc.{i}.mlp") == "row-split" else None
                                 for i, o in enumerate(sp.outliers["encoder"])]}
    enc32, dec32 = onnx_export.export(ctx.hf_model, work, outliers=per_layer)
    secs["export"] = time.perf_counter() - t
    t = time.perf_counter()
    say("writing each group at its granularity")
    enc8, dec8 = out_dir / "encoder.onnx", out_dir / "decoder.onnx"
    enc_n = mixed.write(enc32, enc8, "encoder", levels, sp.qmax, work)
    dec_n = mixed.write(dec32, dec8, "decoder", levels, sp.qmax, work)
    report.dynamic_nodes = sum(v for k, v in enc_n.items() if k != "fp32")
    report.decoder_nodes = sum(v for k, v in dec_n.items() if k != "fp32")
    report.plan["nodes"] = {"encoder": enc_n, "decoder": dec_n}
    secs["quantize"] = time.perf_counter() - t
    if ms is not None:
        report.reason += (f"searched for {budget} on instruction set {cfg.isa}"
                          f"{'' if met else ' (not met: the closest plan found)'}: {ms / sp.fp32_ms:.2f}x the FP32 "
                          f"plan's product time by the cost table")
    # measured in ONNX Runtime as every plan is, teacher-forced on the reference text (the manifests compare);
    # the search scored on FP32's own tokens
    measured_on = holdout(cfg, ctx.features, ctx.prompt, None, report, say) if sp.samples else []
    measure_built(report, "costed", (enc32, dec32), (enc8, dec8), measured_on, cfg,
                  onnx_export.dims(ctx.hf_model.config), ctx.threads, say, secs)
    return finished(report, secs, t0, work)


def describe(manifest: dict) -> str:
    """What runs in which precision, for `EngineInfo.details`."""
    from .common import measured_sentence

    r, q = manifest["report"], manifest["quant"]
    p = r.get("plan") or {}
    counts: dict[str, int] = {}
    for o in (p.get("levels") or {}).values():
        counts[o] = counts.get(o, 0) + 1
    mix = ", ".join(f"{n} at {o}" for o, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    sim = p.get("simulated") or {}
    legend = ("(fp32: FP32; tensor: one activation scale per call; row: per frame/token; row-split: per row, MLP "
              "outlier channels FP32; bN: 8-bit blocks of N)")
    if p.get("fixed"):
        text = (f"Plan 'costed' ({p.get('budget')}), as the benchmark that named it the default measured it "
                f"(the plan fixed, not searched again here): each layer group at its own INT8 granularity, "
                f"{mix or 'nothing'} {legend}; built for instruction set {q['isa']}.")
    else:
        text = (f"Plan 'costed': each layer group at its own INT8 granularity, searched for the budget "
                f"{p.get('budget')}{'' if p.get('met') else ' (not met: the closest plan found)'} with each option's "
                f"product time measured on this host (instruction set {q['isa']}, "
                f"{(p.get('costs') or {}).get('threads', '?')} threads): {mix or 'nothing'} {legend}; predicted "
                f"product time {(p.get('ms') or 0) / max(p.get('fp32_ms') or 1, 1e-9):.2f}x FP32's by the cost "
                f"table; {len(p.get('points') or [])} plans scored, {len(p.get('front') or [])} on the Pareto front.")
    if sim:
        text += f" Simulated: mean KL {sim['kl']:.4f}, top-1 {sim['top1']:.1%}."
    return text + measured_sentence(p.get("measured") or {})
