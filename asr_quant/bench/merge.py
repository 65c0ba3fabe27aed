"""`--merge DIR...`: several shards' results.json into one, with every
statistic recomputed by the same pure functions (bench.stats, bench.paired)
on the union of the records, ordered as one run would have written them."""
from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from types import SimpleNamespace

from ..engines.base import EngineInfo
from . import corpus as _corpus
from . import paired, report
from .run import ORT_REFERENCE, PAIRS, REFERENCE, head_to_head, ratios_against, summaries
from .shards import ShardError
from .stats import Record, ratio

_INFO = {f.name for f in fields(EngineInfo)}


def load(paths: list[str]) -> list[dict]:
    out = []
    for p in paths:
        f = Path(p) / "results.json" if Path(p).is_dir() else Path(p)
        try:
            out.append(json.loads(f.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise ShardError(f"cannot read the shard results {f}: {exc}") from None
    return out


def _info(summary: dict) -> EngineInfo:
    mem = summary.get("memory") or {}
    vals = dict(summary, error=summary.get("load_error"), disk_bytes=mem.get("disk_bytes") or 0,
                weights_bytes=mem.get("weights_bytes") or 0, resident_bytes=mem.get("resident_bytes") or 0,
                quant=summary.get("quant") or {})
    return EngineInfo(**{k: v for k, v in vals.items() if k in _INFO and v is not None})


def _check(parts: list[dict]) -> None:
    if not parts:
        raise ShardError("--merge needs at least one results.json")
    first = parts[0]
    for p in parts[1:]:
        for key, what in ((("model", "key"), "model"), (("runs",), "runs per clip"), (("warmup",), "warm-up")):
            a, b = first, p
            for k in key:
                a, b = a.get(k), b.get(k)
            if a != b:
                raise ShardError(f"the shards differ in {what}: {a!r} vs {b!r}")
        if [e["name"] for e in p["engines"]] != [e["name"] for e in first["engines"]]:
            raise ShardError("the shards ran different engines: "
                             f"{[e['name'] for e in first['engines']]} vs {[e['name'] for e in p['engines']]}")
    seen: dict[str, int] = {}
    for i, p in enumerate(parts):
        for u in p["corpus"]["utterances"]:
            if u["id"] in seen:
                raise ShardError(f"clip {u['id']!r} is in two of the merged results (#{seen[u['id']] + 1} and "
                                 f"#{i + 1}): merge each shard once")
            seen[u["id"]] = i


def merge(parts: list[dict], command: str) -> dict:
    """One results dict from shards of one benchmark (same model, engines, runs)."""
    _check(parts)
    first = parts[0]
    pos: dict[str, int] = {}
    for p in parts:
        pos.update((p.get("shard") or {}).get("positions") or {})
    order = lambda clip: pos.get(clip, len(pos))  # noqa: E731 - the whole corpus's order
    names = [e["name"] for e in first["engines"]]
    records = {n: sorted((Record(**{k: v for k, v in r.items() if k in Record.__dataclass_fields__})
                          for p in parts for r in (p["records"].get(n) or [])),
                         key=lambda r: (order(r.clip), r.run)) for n in names}
    roles = {e["name"]: e.get("role", "engine") for e in first["engines"]}
    engines = [SimpleNamespace(info=_info(e)) for e in first["engines"]]
    sums, ratios = summaries(engines, records, roles)
    alone = {e["name"]: (e.get("memory") or {}).get("alone") for e in first["engines"]}
    for s in sums:
        s["memory"]["alone"] = alone.get(s["name"])
    ratios_ort = ratios_against(sums, records, ORT_REFERENCE)
    for reference, table in ((REFERENCE, ratios), (ORT_REFERENCE, ratios_ort)):
        ref_alone = (alone.get(reference) or {}).get("peak_rss")
        for name, r in table.items():
            r["peak_alone"] = ratio((alone.get(name) or {}).get("peak_rss"), ref_alone)
    variants = [n for n, r in roles.items() if r == "variant"]
    pairs = head_to_head(records, PAIRS + [(v, o) for v in variants for o in (REFERENCE, "INT8", "faster-whisper int8")])
    utts = sorted((u for p in parts for u in p["corpus"]["utterances"]), key=lambda u: order(u["id"]))
    used = [_corpus.Utterance(**u) for u in utts]
    notes = [n for n in first["corpus"].get("notes", []) if not n.startswith("shard ")]
    total = (first.get("shard") or {}).get("clips_total")
    notes.append(f"merged from {len(parts)} result file(s): {len(used)} clip(s)"
                 + (f" of the corpus's {total}" if total else "")
                 + f"; memory alone as measured on the first ({first['machine'].get('node') or '?'})")
    nodes = [dict(name=(p.get("shard") or {}).get("node") or p["machine"].get("node") or f"shard {i + 1}",
                  spec=(p.get("shard") or {}).get("spec"), clips=p["corpus"]["clips"], cpu=p["machine"]["cpu"],
                  logical_cores=p["machine"]["logical_cores"], wall_s=p["wall_s"], date=p["date"])
             for i, p in enumerate(parts)]
    res = dict(
        first, command=command, wall_s=max(p["wall_s"] for p in parts), nodes=nodes,
        corpus=dict(clips=len(used), audio_s=sum(u.duration_s for u in used), rows=_corpus.describe(used),
                    notes=notes, utterances=utts),
        engines=sums, ratios=ratios, ratios_ort=ratios_ort, pairs=pairs,
        isolated=None, profiles={}, op_profiles={}, calibration=None, explain=None,
        shard=dict(spec=None, positions=pos, clips_total=total, roles=roles,
                   merged=[n["spec"] for n in nodes]),
        records={k: [asdict(r) for r in v] for k, v in records.items()},
    )
    res["paired"] = paired.from_results(res)
    res["targets"] = report.targets(res)
    return res
