"""Each engine alone in a fresh process: its memory (always) and, with
`--isolated`, its timing, so that neither owes anything to what else was
loaded or ran before it in the shared benchmark process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

from ..engines import alone
from ..engines.base import Engine
from ..settings import Settings
from .stats import Record


def _spec(e: Engine, role: str, settings: Settings, clip: str, language: str | None) -> dict:
    kind = "peer" if role == "peer" else "engine"
    if role == "variant":  # an INT8 engine of another plan (bench --int8-plans): built alone with that plan
        plan = e.info.quant.get("plan") or {}
        settings = replace(settings, int8_plan=plan.get("name") or settings.int8_plan,
                           int8_budget=plan.get("budget") or settings.int8_budget)
        return alone.spec_for(settings, e.info.precision, clip, language, kind)
    name = e.info.name.lower() if kind == "engine" else (getattr(e, "peer_kind", None)  # cpu_peers' kind
                                                         or e.info.name.split(" ", 1)[1])  # "faster-whisper int8"
    return alone.spec_for(settings, name, clip, language, kind)


def memory_probe(engines: list[Engine], roles: dict[str, str], settings: Settings, clips, log) -> dict:
    """Each engine alone in its own process (`engines.alone`), measured in this
    run (the cache is refreshed, not read), on the run's first clip."""
    out = {}
    u = clips[0][0]
    for e in engines:
        if not e.info.available or roles.get(e.info.name) == "study":  # a study row is no deployable engine
            continue
        log(f"memory probe: {e.info.name} alone in a fresh process ...")
        out[e.info.name] = alone.measure(_spec(e, roles.get(e.info.name, "engine"), settings, u.path, u.language),
                                         use_cache=False)
    return out


def isolated_timing(engines: list[Engine], roles: dict[str, str], settings: Settings, clips, args, log) -> dict:
    """Each engine timed alone in its own process on the same clips (warm-up,
    then every clip `runs` times), to check that sharing one process does not
    move the ratios. The processes run one after another, so the machine's
    drift between them is not cancelled as interleaving cancels it."""
    out = {}
    items = [(str(u.path), u.language, u.id, u.row, u.text) for u, _ in clips]
    for e in engines:
        if not e.info.available or roles.get(e.info.name) == "study":
            continue
        log(f"isolated timing: {e.info.name} alone in a fresh process ...")
        spec = dict(_spec(e, roles.get(e.info.name, "engine"), settings, items[0][0], items[0][1]),
                    items=items, runs=args.runs, warmup=args.warmup)
        try:
            proc = subprocess.run([sys.executable, "-m", __name__, json.dumps(spec)], capture_output=True,
                                  text=True, timeout=7200, env=dict(os.environ))
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            out[e.info.name] = json.loads(lines[-1]) if lines else dict(
                error=f"exit {proc.returncode}: {(proc.stderr.strip().splitlines() or [''])[-1][:300]}")
        except (subprocess.SubprocessError, OSError, ValueError) as exc:
            out[e.info.name] = dict(error=f"{type(exc).__name__}: {exc}")
    return out


def _timing_child(spec: dict) -> dict:
    from dataclasses import asdict

    from .. import audio

    engine = alone.load_one(spec)
    if engine is None or not engine.info.available:
        return dict(error=engine.info.error if engine is not None else "no such engine")
    clips = [(audio.load(path), lang, cid, row, text) for path, lang, cid, row, text in spec["items"]]
    for _ in range(spec["warmup"]):
        engine.transcribe(clips[0][0], clips[0][1])
    records = []
    for clip, lang, cid, row, text in clips:
        for run in range(spec["runs"]):
            t = engine.transcribe(clip, lang)
            records.append(asdict(Record.from_transcript(t, clip=cid, row=row, language=lang, run=run,
                                                         reference=text)))
    return dict(engine=engine.info.name, records=records)


if __name__ == "__main__":
    from ..engines.runtime_policy import prepare

    prepare()
    print(json.dumps(_timing_child(json.loads(sys.argv[1]))))
