"""Which INT8 plan `--int8-plan auto` (the default) builds on a host, and why.

The rule (issue 22): the plan with the best agreement with FP32 among those no
slower than faster-whisper int8 (what a user would pick instead) on this kind
of host; ties go to the faster. `pick` is the rule, pure. EVIDENCE holds, per
instruction-set level (host.LEVELS), the benchmark figures the rule was
applied to and the command that measured them; a level with no run of its
own takes the nearest measured level's figures and says so. Torch-free: the
engine and the cache key read it.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Score:
    """One plan in one benchmark run: share of recorded clips identical to FP32
    and median per-clip latency ratio to the peer (faster-whisper int8). Keyed
    by plan name, or "plan:budget" for a plan built for a budget."""

    identical: float
    vs_peer: float


@dataclass(frozen=True)
class Evidence:
    host: str  # the CPU and its label (host.Isa.describe) the run was on
    command: str  # the benchmark command that measured it
    clips: int
    scores: dict[str, Score] = field(default_factory=dict)
    # a searched plan's levels as the benchmark built and measured them (its manifest's plan.levels), so
    # `auto` builds that very plan, not a new search on another cost table
    levels: dict[str, dict[str, str]] = field(default_factory=dict)
    # plans the rule may not pick yet, and why (a check outside the benchmark that they fail)
    held: dict[str, str] = field(default_factory=dict)


def pick(scores: dict[str, Score]) -> tuple[str, str]:
    """(plan, why): the best agreement among plans no slower than the peer
    (vs_peer <= 1), ties to the faster; if none is, the fastest, and it says so."""
    if not scores:
        raise ValueError("no plan scores to choose from")
    fast = {k: s for k, s in scores.items() if s.vs_peer <= 1.0}
    if fast:
        best = max(fast, key=lambda k: (fast[k].identical, -fast[k].vs_peer, k))
        why = "the best agreement with FP32 among the plans no slower than faster-whisper int8"
    else:
        best = min(scores, key=lambda k: (scores[k].vs_peer, k))
        why = "no plan was as fast as faster-whisper int8, so the fastest"
    table = ", ".join(f"{k} {s.identical:.0%} identical at {s.vs_peer:.2f}x" for k, s in sorted(scores.items()))
    return best, f"{why} ({table} faster-whisper int8's time)"


# Filled from the benchmark runs in docs/int8-plans.md (see there for the full table).
EVIDENCE: dict[str, Evidence] = {
    "amx": Evidence(
        host="Intel(R) Xeon(R) Processor, AVX512-VNNI + AVX-VNNI + AMX",
        command=("python -m asr_quant.bench --model base --corpus prompts-es --corpus ../shared/speech --every 3 "
                 "--engines fp32,int8,ort-fp32 --int8-plans recipe,blockwise --peers int8 --runs 1 --warmup 1 "
                 "--threads 2 --out bench_out/plans --docs docs/benchmark.md"),
        clips=93,
        scores={"rows": Score(77 / 93, 0.66), "recipe": Score(68 / 93, 0.59), "blockwise": Score(85 / 93, 1.06)}),
    # u8s8 sums saturate here (probe.py): every u8s8 product has 7-bit weights (rows, recipe, costed).
    # costed and rows from the second run (costed searched on a quiet cost table; the first run's costed
    # engines came from a table measured beside other jobs), recipe and blockwise from the first; each
    # ratio is to faster-whisper int8 in its own run, over the same 93 clips.
    "avx2": Evidence(
        host="AMD EPYC, AVX2 + FMA (no VNNI)",
        command=("python -m asr_quant.bench --model base --corpus prompts-es --corpus ../shared/speech --every 3 "
                 "--engines fp32,int8,ort-fp32 --int8-plans rows --peers int8 --runs 1 --warmup 1 --threads 2 "
                 "--out bench_out/avx2-default --docs docs/benchmark-avx2.md (recipe and blockwise: the same with "
                 "--int8-plans recipe,blockwise,costed:kl=0.004,costed:kl=0.002 --out bench_out/avx2 --docs "
                 "docs/benchmark.md)"),
        clips=93,
        scores={"costed:kl=0.004": Score(81 / 93, 0.75), "rows": Score(74 / 93, 0.73),
                "recipe": Score(64 / 93, 0.68), "blockwise": Score(87 / 93, 1.22)},
        # bench_out/avx2-default/results.json, engine INT8: searched on cost table 2ac35fe998803254
        levels={"costed:kl=0.004": {
            "enc.0.attn": "fp32", "enc.0.mlp": "fp32", "enc.1.attn": "tensor", "enc.1.mlp": "row-split",
            "enc.2.attn": "tensor", "enc.2.mlp": "tensor", "enc.3.attn": "tensor", "enc.3.mlp": "fp32",
            "enc.4.attn": "tensor", "enc.4.mlp": "row-split", "enc.5.attn": "tensor", "enc.5.mlp": "tensor",
            "dec.0.self": "b32", "dec.0.cross": "tensor", "dec.0.mlp": "b128", "dec.1.self": "b128",
            "dec.1.cross": "tensor", "dec.1.mlp": "b128", "dec.2.self": "b32", "dec.2.cross": "tensor",
            "dec.2.mlp": "b128", "dec.3.self": "b32", "dec.3.cross": "tensor", "dec.3.mlp": "b128",
            "dec.4.self": "b128", "dec.4.cross": "fp32", "dec.4.mlp": "b32", "dec.5.self": "b128",
            "dec.5.cross": "tensor", "dec.5.mlp": "b16", "dec.tokens": "b32"}}),
    # The AMD EPYC with AVX512-VNNI + AVX512-BF16 (no AMX): every plan and every CPU peer in one run over all 267
    # recorded clips; printed by `python scripts/plan_evidence.py bench_out/vnni-all/results.json --level avx512-vnni`.
    "avx512-vnni": Evidence(
        host="AMD EPYC, AVX512-VNNI + AVX512-BF16 (no AMX)",
        command=('python -m asr_quant.bench --model base --corpus prompts-es --corpus ../shared/speech --engines '
                 'fp32,int8,ort-fp32 --int8-plans blockwise,costed:kl=0.004,costed:kl=0.002 --peers '
                 'int8,float32,torch-int8,openai-whisper,whispercpp-q8_0,whispercpp-f16,openvino-fp32,openvino-int8 '
                 '--runs 1 --warmup 1 --threads 2 --out bench_out/vnni-all --docs docs/benchmark.md'),
        clips=267,
        scores={"blockwise": Score(251 / 267, 0.79), "rows": Score(216 / 267, 0.59),
                "costed:kl=0.002": Score(218 / 267, 0.65), "costed:kl=0.004": Score(208 / 267, 0.56)},
        # bench_out/vnni-all/results.json: the costed engines' levels as built and measured
        levels={"costed:kl=0.004": {
            "dec.0.cross": "tensor", "dec.0.mlp": "b128", "dec.0.self": "b128", "dec.1.cross": "tensor",
            "dec.1.mlp": "b128", "dec.1.self": "b128", "dec.2.cross": "tensor", "dec.2.mlp": "b128",
            "dec.2.self": "b128", "dec.3.cross": "tensor", "dec.3.mlp": "b128", "dec.3.self": "b128",
            "dec.4.cross": "tensor", "dec.4.mlp": "b16", "dec.4.self": "b32", "dec.5.cross": "b128",
            "dec.5.mlp": "fp32", "dec.5.self": "b128", "dec.tokens": "b128", "enc.0.attn": "b128",
            "enc.0.mlp": "row-split", "enc.1.attn": "tensor", "enc.1.mlp": "tensor", "enc.2.attn": "row",
            "enc.2.mlp": "tensor", "enc.3.attn": "tensor", "enc.3.mlp": "row-split", "enc.4.attn": "tensor",
            "enc.4.mlp": "tensor", "enc.5.attn": "tensor", "enc.5.mlp": "tensor"},
                "costed:kl=0.002": {
            "dec.0.cross": "b32", "dec.0.mlp": "b16", "dec.0.self": "b32", "dec.1.cross": "b128",
            "dec.1.mlp": "b128", "dec.1.self": "fp32", "dec.2.cross": "b32", "dec.2.mlp": "b16",
            "dec.2.self": "fp32", "dec.3.cross": "b32", "dec.3.mlp": "b32", "dec.3.self": "b32",
            "dec.4.cross": "b128", "dec.4.mlp": "b16", "dec.4.self": "b32", "dec.5.cross": "b128",
            "dec.5.mlp": "fp32", "dec.5.self": "fp32", "dec.tokens": "b32", "enc.0.attn": "b128",
            "enc.0.mlp": "b16", "enc.1.attn": "tensor", "enc.1.mlp": "b128", "enc.2.attn": "row",
            "enc.2.mlp": "row", "enc.3.attn": "tensor", "enc.3.mlp": "row-split", "enc.4.attn": "b128",
            "enc.4.mlp": "tensor", "enc.5.attn": "tensor", "enc.5.mlp": "b128"}}),
    # costed:kl=0.004 was held back for a while (the long-form check read 0.111 against 0.096, a Ray run's
    # text differed); both came from numpy's BLAS thread count moving the log-mel's last bits (Ray sets
    # OMP_NUM_THREADS=1), fixed in features.py: the long-form check then read 0.096 against 0.096.
}
# Levels with no run of their own: the nearest measured level (VNNI hosts share MLAS's u8s8 kernels;
# x86 hosts without VNNI share AVX2's saturating u8s8 sums and its 7-bit weights, see probe.py).
NEAREST = {"amx": ("amx", "avx512-vnni"), "avx512-vnni": ("avx512-vnni", "amx"), "avx-vnni": ("avx512-vnni", "amx"),
           "avx512": ("avx512", "avx2"), "avx2": ("avx2",), "x86": ("avx2",),
           "arm-i8mm": ("avx512-vnni", "amx"), "arm-dotprod": ("avx512-vnni", "amx"), "arm": ("avx512-vnni", "amx"),
           "other": ("avx512-vnni", "amx")}
FALLBACK = "rows"  # when no level has evidence at all (a fresh checkout before any run)


def evidence_for(isa: str) -> tuple[str | None, Evidence | None]:
    """(level whose run applies, its evidence) for a host level."""
    for level in NEAREST.get(isa, ()):
        if level in EVIDENCE:
            return level, EVIDENCE[level]
    return None, None


def choose(isa: str) -> tuple[str, str]:
    """(plan, why) for a host's instruction-set level."""
    level, ev = evidence_for(isa)
    if ev is None:
        return FALLBACK, f"no benchmark run applies to instruction set {isa}; plan '{FALLBACK}' by default"
    plan, why = pick({k: s for k, s in ev.scores.items() if k not in ev.held})
    where = "on this instruction set" if level == isa else f"on {level} (no run on {isa} yet)"
    held = "".join(f"; {k} {r}" for k, r in sorted(ev.held.items()))
    return plan, f"{why}, measured {where} over {ev.clips} recorded clips: {ev.command}{held}"


def fixed_levels(name: str, isa: str) -> tuple:
    """The levels the evidence for `isa` measured for plan `name` ("costed:kl=0.004"),
    as QuantConfig.levels; () when it has none (the plan is then searched)."""
    _, ev = evidence_for(isa)
    return tuple(sorted(((ev.levels.get(name) if ev else None) or {}).items()))


def resolve(plan: str, isa: str) -> str:
    """The concrete plan for a Settings.int8_plan value ("auto" or a plan name):
    a plan name, or "plan:budget" when the evidence measured a budgeted plan
    (e.g. "costed:kl=0.004"), as the benchmark's --int8-plans names it."""
    return choose(isa)[0] if plan == "auto" else plan
