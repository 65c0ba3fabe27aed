"""Each engine alone in a fresh process, so that its memory figures owe
nothing to what else was loaded or ran before it."""

from __future__ import annotations

import json
import subprocess
import sys

from .. import memory as _memory
from ..engines.base import Engine
from ..settings import Settings
from . import corpus as _corpus
from .family import family_peers


def probe_child(spec: dict) -> dict:
    """In a fresh process: load only one engine, run it on the given clips,
    and report the process's RSS at start, after the load, and at its peak."""

    start = _memory.rss_bytes()
    settings = Settings.from_env()
    settings.model, settings.threads, settings.cache_dir = spec["model"], spec["threads"], spec["cache_dir"]
    settings.device = spec.get("device") or settings.device
    if spec["kind"] == "peer":
        engines = family_peers(settings, [spec["name"]], settings.model)
    else:
        from ..engines import load_engines

        settings.precisions = spec["name"]
        engines = load_engines(settings).engines
    engine = engines[0]
    loaded = _memory.rss_bytes()
    if not engine.info.available:
        return dict(error=engine.info.error)
    peak = loaded
    for path, lang in spec["clips"]:
        t = engine.transcribe(_corpus.Utterance("probe", lang, lang, "", path, "probe").clip(), lang)
        peak = max(peak, t.memory.peak_bytes)
        if t.error:
            return dict(error=t.error)
    return dict(rss_start=start, rss_after_load=loaded, load_growth=loaded - start, peak_rss=peak)


def memory_probe(engines: list[Engine], roles: dict[str, str], settings: Settings, clips, log) -> dict:
    """Each engine alone in its own process (`probe_child`), so that its
    memory is not mixed with the other engines' as it is in the shared run."""
    out = {}
    picks = [(u.path, u.language) for u, _ in clips[:2]]
    for e in engines:
        if not e.info.available:
            continue
        kind = roles.get(e.info.name, "engine")
        name = e.info.precision if kind == "engine" else e.info.name.split(" ", 1)[1]
        spec = dict(kind=kind, name=name, model=settings.model, threads=settings.threads,
                    cache_dir=settings.cache_dir, device=settings.device, clips=picks)
        log(f"memory probe: {e.info.name} alone in a fresh process ...")
        try:
            proc = subprocess.run([sys.executable, "-m", "asr_quant.bench", "--probe-child", json.dumps(spec)],
                                  capture_output=True, text=True, timeout=1800)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            out[e.info.name] = json.loads(line[-1]) if line else dict(
                error=f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:] or ''}")
        except (subprocess.SubprocessError, OSError, ValueError) as exc:
            out[e.info.name] = dict(error=f"{type(exc).__name__}: {exc}")
    return out
