"""`--explain`: where our engines' decodes part from FP32's, over a corpus.

For every engine and clip whose first-run text differs from FP32's, the
family's explanation (engines/divergence.py `Divergence`), tallied: the kind
of token where the decodes first part, and the layer where the hidden-state
error grows most. Peers are not traced (their graphs are not ours)."""
from __future__ import annotations

from collections import Counter

from ..engines import EngineError, family_hook
from ..engines.divergence import explain, worst_layer

REFERENCE = "FP32"


def summary(model: str, engine_set, clips, records: dict, log, limit: int = 40) -> dict:
    """{engine: {differing, explained, cases, token_kinds, worst_layers}}; at most
    `limit` clips explained per engine (each costs two decodes and two traces)."""
    fn = family_hook(model, "explain_difference")
    ref = next((e for e in engine_set.engines if e.info.name == REFERENCE and e.info.available), None)
    if fn is None or ref is None:
        return {}
    by_clip = {u.id: (u, c) for u, c in clips}
    first = {name: {r.clip: r for r in recs if r.run == 0 and r.error is None} for name, recs in records.items()}
    base = first.get(REFERENCE, {})
    out = {}
    for e in engine_set.engines:
        if e is ref or not e.info.available or e.info.name not in first:
            continue
        differing = [cid for cid, r in first[e.info.name].items() if cid in base and r.text != base[cid].text]
        cases = []
        for cid in differing[:limit]:
            u, clip = by_clip[cid]
            try:
                d = explain(engine_set, model, REFERENCE, e.info.name, clip, u.language)
            except EngineError as exc:  # one clip failing leaves the others
                log(f"explain {e.info.name} on {cid}: {exc}")
                continue
            if d.same:
                continue
            cases.append({"clip": cid, "step": d.step, "token_kind": d.token_kind, "worst_layer": worst_layer(d),
                          "reference_token": d.reference_top[0].token, "other_token": d.other_top[0].token,
                          "reference_p": round(d.reference_top[0].prob, 3), "other_p": round(d.other_top[0].prob, 3)})
        out[e.info.name] = {"differing": len(differing), "explained": len(cases), "cases": cases,
                            "token_kinds": dict(Counter(c["token_kind"] for c in cases).most_common()),
                            "worst_layers": dict(Counter(c["worst_layer"] for c in cases).most_common())}
    return out


def section(res: dict, h: str) -> str:
    """Markdown: one paragraph and a table of cases per engine (empty without --explain)."""
    parts: list[str] = []
    for name, s in (res.get("explain") or {}).items():
        parts += [f"{h}# Where {name} parts from FP32", "",
                  f"{s['differing']} clips differ from FP32's text; {s['explained']} explained. "
                  "First differing token, by kind: "
                  + (", ".join(f"{k} {v}" for k, v in s["token_kinds"].items()) or "-")
                  + ". Layer where the hidden-state error grows most: "
                  + (", ".join(f"{k} {v}" for k, v in s["worst_layers"].items()) or "-") + ".", ""]
        if s["cases"]:
            parts += ["| clip | step | FP32 chose (p) | " + name + " chose (p) | token kind | error grows most at |",
                      "|---|---|---|---|---|---|"]
            parts += [f"| {c['clip']} | {c['step']} | `{c['reference_token']!r}` ({c['reference_p']:.2f}) | "
                      f"`{c['other_token']!r}` ({c['other_p']:.2f}) | {c['token_kind']} | {c['worst_layer']} |"
                      for c in s["cases"]]
            parts.append("")
    return "\n".join(parts)
