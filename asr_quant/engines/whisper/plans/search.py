"""The mixed-precision plan: from all-INT8, which groups to keep FP32 (or with
their MLP outlier channels FP32) to meet a budget on hold-out speech, at the
smallest size; and what such a plan means for the ONNX graphs.

Scores come from sensitivity.Scorer (simulated INT8, teacher-forced on FP32's
tokens); plans.recipe then builds the plan in ONNX Runtime and measures it.
"""
from __future__ import annotations

from .common import FIXED, Plan, measured_sentence
from .config import Budget
from .sensitivity import Group, Sample, Scorer, groups, sensitivity


def onnx_patterns(g: Group) -> dict[str, list[str]]:
    """Node-name patterns (recipe._matches) of a group kept in FP32, per graph.
    The token table is matched by its initializer (recipe.py), not by name."""
    i = g.layer
    if g.kind == "attn":
        return {"encoder": [f"layers.{i}/{p}" for p in ("q_proj", "k_proj", "v_proj", "out_proj")]}
    if g.kind == "mlp":
        return {g.side: [f"layers.{i}/mlp"]}
    if g.kind == "self":
        return {"decoder": [f"layers.{i}/{p}" for p in ("self_q", "self_k", "self_v", "self_out")]}
    if g.kind == "cross":
        return {"decoder": [f"layers.{i}/cross_q", f"layers.{i}/cross_out"],
                "encoder": [f"cross.{i}/k_proj", f"cross.{i}/v_proj"]}
    return {}


def extra_bytes(g: Group, level: str, outlier_k: int) -> int:
    """Bytes on disk above all-INT8 for this group at this level (FP32: 4 instead of 1 byte a weight)."""
    if level == "fp32":
        return 3 * g.params
    if level == "split":
        return 3 * outlier_k * 2 * g.width
    if level == "fc2-fp32":  # the recipe without outlier channels: fc2 (half the MLP's weights) FP32
        return 3 * g.params // 2
    return 0


def better(budget: Budget, a: dict, b: dict) -> bool:
    """Is score `a` closer to FP32 than `b`, by the budget's own measure (KL: lower;
    top-1: higher, then lower KL)?"""
    if budget.kind == "kl":
        return a["kl"] < b["kl"]
    return (a["top1"], -a["kl"]) > (b["top1"], -b["kl"])


def search(scorer: Scorer, gs: list[Group], table: list[dict], budget: Budget, outliers=None,
           outlier_k: int = 16, fixed: dict[str, str] | None = None, max_extra_bytes: int | None = None,
           max_steps: int = 24) -> Plan:
    """Greedy by measured gain. From all-INT8, take the most sensitive group
    (by the table, at its current level) and raise it one level (int8 ->
    split -> fp32); keep the raise only if the whole plan then scores closer to
    FP32, else undo it and leave that group alone. Stop when the budget is
    met, nothing is left to try within `max_extra_bytes`, or after `max_steps`
    scorings. Then lower again, largest first, every raise the result does not
    need: the budget stays met (or, if it never was, the score is no worse).
    So the plan returned is the best one scored, at the smallest size this path
    found. Sensitivities alone do not add up (two groups' errors can cancel or
    compound), hence a scoring per step rather than a sum of the table.
    `fixed`: groups whose level is decided beforehand (the convolutions)."""
    fixed = fixed or {}
    levels = {g.name: "int8" for g in gs}
    levels.update(fixed)
    sens = {(r["group"], r["level"]): r["kl"] for r in table}
    by_name = {g.name: g for g in gs}
    steps: list[dict] = []
    stuck: set[str] = set()  # groups whose last raise did not help

    def size(lv):  # bytes above all-INT8, everything counted (the fixed groups too)
        return sum(extra_bytes(by_name[k], v, outlier_k) for k, v in lv.items() if k in by_name)

    def spent(lv):  # what the cap limits: the groups the search may move
        return sum(extra_bytes(by_name[k], v, outlier_k) for k, v in lv.items() if k in by_name and k not in fixed)

    def raised(g):
        lv = g.levels[g.levels.index(levels[g.name]) + 1]
        return "fp32" if lv == "split" and not outliers else lv

    m = scorer.score(levels, outliers)
    steps.append({"action": "start (all INT8)", "kept": True, **m, "extra_bytes": size(levels)})
    while not budget.met(m) and len(steps) < max_steps:
        movable = [g for g in gs if g.name not in fixed and g.name not in stuck and levels[g.name] != "fp32"
                   and (max_extra_bytes is None or spent({**levels, g.name: raised(g)}) <= max_extra_bytes)]
        if not movable:
            break
        g = max(movable, key=lambda g: sens.get((g.name, levels[g.name]), 0.0))
        trial = {**levels, g.name: raised(g)}
        mt = scorer.score(trial, outliers)
        kept = better(budget, mt, m)
        steps.append({"action": f"{g.name} -> {trial[g.name]}", "kept": kept, **mt, "extra_bytes": size(trial)})
        if kept:
            levels, m = trial, mt
        else:
            stuck.add(g.name)
    met = budget.met(m)
    for name in sorted((k for k, v in levels.items() if v != "int8" and k not in fixed),
                       key=lambda k: -extra_bytes(by_name[k], levels[k], outlier_k)):
        g = by_name[name]
        lower = g.levels[g.levels.index(levels[name]) - 1]
        if lower == "split" and not outliers:
            lower = "int8"
        trial = {**levels, name: lower}
        mt = scorer.score(trial, outliers)
        if budget.met(mt) if met else not better(budget, m, mt):
            levels, m = trial, mt
            steps.append({"action": f"{name} back to {lower} ({'budget still met' if met else 'no worse'})",
                          "kept": True, **m, "extra_bytes": size(levels)})
    return Plan("search", levels, str(budget), m, size(levels), steps)


# --------------------------------------------------------------------------- the build's entry points



def searched_plan(hf_model, samples: list[tuple], cfg, outliers=None) -> tuple[Plan, list[dict]]:
    """(plan, sensitivity table) on hold-out (mel, tokens, first) samples:
    each group's sensitivity (one scoring per group and level), then the search."""
    gs = groups(hf_model)
    scorer = Scorer(hf_model, [Sample(*s) for s in samples])
    table = sensitivity(scorer, gs, outliers)
    plan = search(scorer, gs, table, Budget.parse(cfg.budget), outliers, cfg.outlier_channels, FIXED,
                  max_extra_bytes=int(cfg.max_extra_mb * 1e6))
    plan.simulated["evaluations"] = scorer.evaluations
    return plan, table


def _group(name: str) -> Group:
    side = "encoder" if name.startswith("enc.") else "decoder"
    parts = name.split(".")
    layer = int(parts[1]) if len(parts) == 3 else None
    return Group(name, side, parts[-1], layer, 0)


def onnx_keep(plan: Plan, outliers: dict | None):
    """What recipe.build needs for a plan: (encoder FP32 patterns, decoder FP32
    patterns, outlier channels per MLP (None where that MLP is not split),
    whether the token table stays FP32)."""
    from ..onnx_export import EMBED_NAME

    keep: dict[str, list[str]] = {"encoder": [], "decoder": []}
    split = {side: [None] * len(layers) for side, layers in (outliers or {}).items()}
    tokens_fp32 = False
    for name, level in plan.levels.items():
        g = _group(name)
        if g.kind == "tokens":
            tokens_fp32 = level == "fp32"
            if tokens_fp32:
                keep["decoder"].append(EMBED_NAME)
        elif g.kind == "mlp" and level == "split" and outliers:
            split[g.side][g.layer] = outliers[g.side][g.layer]
            keep[g.side] += [f"layers.{g.layer}/mlp/fc1_outliers", f"layers.{g.layer}/mlp/fc2_outliers"]
        elif level == "fp32":
            for side, patterns in onnx_patterns(g).items():
                keep[side] += patterns
    return tuple(keep["encoder"]), tuple(keep["decoder"]), (split or None), tokens_fp32


def describe_plan(plan: dict) -> str:
    """One paragraph for EngineInfo.details: which groups stayed FP32, size, error."""
    lv = plan.get("levels", {})
    fp32 = [g for g, v in lv.items() if v == "fp32"]
    split = [g for g, v in lv.items() if v == "split"]
    sim, meas = plan.get("simulated", {}), plan.get("measured", {})
    met = Budget.parse(plan["budget"]).met(sim) if plan.get("budget") and sim else True
    text = (f"Mixed precision searched for the budget {plan.get('budget')}"
            f"{'' if met else ' (not met within the size cap and the scoring limit: the closest plan found)'}: FP32 {', '.join(fp32) or 'nothing'}; "
            f"MLP outlier channels FP32 in {', '.join(split) or 'none'}; every other group INT8 "
            f"(+{plan.get('extra_bytes', 0) / 1e6:.1f} MB over all-INT8).")
    if sim:
        text += f" Simulated: mean KL {sim['kl']:.4f}, top-1 {sim['top1']:.1%}."
    return text + measured_sentence(meas)
