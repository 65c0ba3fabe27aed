"""The `plans/default.py` evidence of one benchmark run, read from its results.json.

Why: the rule that names the `auto` INT8 plan (default.pick) reads, per
instruction-set level, each plan's share of recorded clips identical to FP32
and its median per-clip latency ratio to faster-whisper int8 in one run. This
prints those figures as an `Evidence(...)` entry, with a searched plan's levels
as the run built them, so the evidence is copied from a run, not typed, and
says what the rule would pick from it.

    python scripts/plan_evidence.py bench_out/vnni-all/results.json --level avx512-vnni
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr_quant.engines.whisper.plans import default  # noqa: E402

PEER = "faster-whisper int8"


def plan_name(engine: dict) -> str | None:
    """The plan of an INT8 row as `--int8-plans` names it ("rows", "costed:kl=0.004"), or None."""
    plan = ((engine.get("quant") or {}).get("plan") or {})
    name = plan.get("name") if isinstance(plan, dict) else plan
    if not name or not engine["name"].startswith("INT8"):
        return None
    budget = plan.get("budget") if isinstance(plan, dict) else None
    return f"{name}:{budget}" if budget and name == "costed" else name


def scores(res: dict) -> tuple[dict[str, default.Score], dict[str, dict[str, str]], dict[str, str]]:
    """(plan -> Score, plan -> levels of a searched plan, plan -> row name)."""
    out, levels, rows = {}, {}, {}
    for e in res["engines"]:
        name = plan_name(e)
        if name is None or not e.get("available", True):
            continue
        rec = ((res.get("paired") or {}).get("engines", {}).get(e["name"]) or {}).get("recorded") or {}
        pair = (res.get("pairs") or {}).get(f"{e['name']} / {PEER}") or {}
        if rec.get("identical") is None or pair.get("median_paired") is None:
            continue
        out[name] = default.Score(rec["identical_clips"] / rec["clips"], round(pair["median_paired"], 2))
        rows[name] = e["name"]
        plan = (e.get("quant") or {}).get("plan") or {}
        if name.startswith("costed") and isinstance(plan, dict) and plan.get("levels"):
            levels[name] = dict(sorted(plan["levels"].items()))
    return out, levels, rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", help="a benchmark's results.json")
    p.add_argument("--level", required=True, help="the instruction-set level the run was on (host.LEVELS)")
    a = p.parse_args(argv)
    res = json.loads(Path(a.results).read_text(encoding="utf-8"))
    s, levels, rows = scores(res)
    if not s:
        print("no INT8 row with recorded clips and a faster-whisper int8 pair in this run", file=sys.stderr)
        return 1
    clips = max(((res.get("paired") or {}).get("engines", {}).get(rows[k]) or {}).get("recorded", {}).get("clips", 0)
                for k in s)
    print(f'    "{a.level}": Evidence(')
    m = res.get("machine") or {}
    isa = m.get("isa") or {}
    print(f'        host={(str(m.get("cpu", "")) + ", " + str(isa.get("label", ""))).strip(", ")!r},')
    if isa.get("level") and isa["level"] != a.level:
        print(f"# note: the run was on level {isa['level']}, not {a.level}", file=sys.stderr)
    print(f'        command={res.get("command", "")!r},')
    print(f"        clips={clips},")
    print("        scores={" + ", ".join(f'"{k}": Score({round(v.identical * clips)} / {clips}, {v.vs_peer})'
                                        for k, v in sorted(s.items())) + "},")
    if levels:
        print(f"        levels={json.dumps(levels)}),")
    plan, why = default.pick(s)
    print(f"# the rule picks {plan}: {why}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
