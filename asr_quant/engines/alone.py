"""Each engine alone in a fresh process: the memory figures load order can't move.

In the app's shared process, whatever loads first pays for imports and
conversion copies, later engines reuse freed heap, and ONNX Runtime's arena
keeps earlier allocations, so "what this engine needs" can't be read there.
Here a child process loads one engine (nothing else), runs it on a clip, and
reports:

- `rss_start`, `rss_after_load`, `load_growth`: RSS before and after the load;
- `working_bytes`: the largest rise of RSS during a call above RSS just
  before it (the working memory of a call), over a first and a second call;
- `peak_rss`: the kernel's high-water mark of the process's RSS (VmHWM) over its life
  (load and calls): what the machine must have for this engine alone;
- `weights_bytes`: the engine's weights as stored, for comparison;
- `clip`, `clip_s`: the clip the call figures are for and its length.

Results are cached under `<cache>/memory-alone/` keyed by model, engine,
threads, device, the clip, runtime versions, the engine's artifact
(`EngineInfo.artifact`: a rebuilt INT8 is another engine) and the source of
every engine module, with the date they were measured. A child measuring
another artifact than the one asked for is not cached under its key.
`python -m asr_quant.engines.alone SPEC` is the child; it dies with the
process that started it (`children`), and the app's background probe waits
until no request has run for a few seconds before each engine.
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
import threading
from functools import lru_cache
from pathlib import Path
from typing import Callable

from .. import __version__, children
from .. import audio as _audio
from .. import memory as _memory
from ..cache import key_of, sha256_file, source_hash
from ..settings import Settings

log = logging.getLogger(__name__)
_RUNTIMES = ("torch", "onnxruntime-gpu", "onnxruntime", "ctranslate2", "funasr")


def spec_for(settings: Settings, name: str, clip: str | os.PathLike, language: str | None,
             kind: str = "engine", artifact: str = "") -> dict:
    """What the child needs: `name` is a precision (kind "engine") or a peer's
    kind, e.g. "int8" of faster-whisper (kind "peer"). The INT8 plan travels
    with it: the engine measured alone is the one the caller built, and
    `artifact` (its `EngineInfo.artifact`) says which files that engine runs."""
    spec = dict(kind=kind, name=name, model=settings.model, threads=int(settings.threads),
                cache_dir=str(settings.cache_dir), device=settings.device, clip=str(clip), language=language,
                artifact=artifact)
    if kind == "engine" and name == "int8":
        spec.update(int8_plan=settings.int8_plan,
                    **({"int8_budget": settings.int8_budget} if settings.int8_plan in ("search", "costed") else {}))
    return spec


def _versions() -> dict:
    out = {"asr_quant": __version__}
    for dist in _RUNTIMES:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


@lru_cache(maxsize=1)
def code_hash() -> str:
    """Every engine module (any of them can change what a call holds), the memory
    sampler and the audio decoder."""
    here = Path(__file__).parent
    return source_hash(*sorted(here.rglob("*.py")), _memory.__file__, _audio.__file__)


def cache_path(spec: dict) -> Path:
    key = key_of({**{k: v for k, v in spec.items() if k not in ("cache_dir", "clip")},
                  "clip": sha256_file(spec["clip"]), "versions": _versions(), "code": code_hash()})
    safe = "".join(c if c.isalnum() or c in "-." else "-" for c in f"{spec['model']}-{spec['kind']}-{spec['name']}")
    return Path(spec["cache_dir"]) / "memory-alone" / f"{safe[-60:]}-{key}.json"


def cached(spec: dict) -> dict | None:
    try:
        return json.loads(cache_path(spec).read_text())
    except (OSError, ValueError):
        return None


def measure(spec: dict, timeout_s: float = 1800, nice: int = 0, use_cache: bool = True) -> dict:
    """The figures for one engine alone (from the cache when it has them)."""
    if use_cache and (hit := cached(spec)) is not None:
        return hit
    cmd = [sys.executable, "-m", __name__, json.dumps(spec)]
    try:
        proc = children.run(cmd, timeout_s, nice=nice)
    except (subprocess.SubprocessError, OSError) as exc:
        return dict(error=f"{type(exc).__name__}: {exc}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (proc.stderr or "").strip().splitlines()[-1:] or [""]
        return dict(error=f"exit {proc.returncode}: {tail[0][:300]}")
    result = json.loads(lines[-1])
    if spec.get("artifact") and "error" not in result and result.get("artifact") != spec["artifact"]:
        return dict(error=f"the fresh process loaded artifact {result.get('artifact')!r}, "
                          f"not the {spec['artifact']!r} asked for; not measured")
    if "error" not in result:
        path = cache_path(spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, path)
    return result


def attach_cached(engine_set, settings: Settings, clip, language: str | None = None) -> list:
    """Fill `info.alone` from the cache where it has the figures; returns the
    (engine, spec) pairs still to measure."""
    todo = []
    for e in engine_set.engines:
        if not e.info.available:
            continue
        spec = spec_for(settings, e.info.name.lower(), clip, language,  # the name is the precision token
                        artifact=e.info.artifact)
        hit = cached(spec)
        if hit is not None:
            e.info.alone = hit
        else:
            todo.append((e, spec))
    return todo


def attach(engine_set, settings: Settings, clip, language: str | None = None, background: bool = False,
           nice: int = 10, wait_idle: Callable[[], None] | None = None) -> threading.Thread | None:
    """Fill `info.alone` of every available engine: from the cache now, and
    for the rest by measuring, in a daemon thread when `background` (the app:
    the page opens first) or right here. `wait_idle` is called before each
    engine's probe (the app's: until no request has run for a few seconds).
    Returns the thread, if one started."""
    todo = attach_cached(engine_set, settings, clip, language)

    def work() -> None:
        for e, spec in todo:
            if wait_idle is not None:
                wait_idle()
            result = measure(spec, nice=nice)
            if "error" in result:
                log.warning("memory of %s alone could not be measured: %s", e.info.name, result["error"])
            e.info.alone = result

    if not todo:
        return None
    if not background:
        work()
        return None
    t = threading.Thread(target=work, name="memory-alone", daemon=True)
    t.start()
    return t


def load_one(spec: dict):
    """Only the engine (or peer) `spec` names, loaded in this process; None if there is none."""
    settings = Settings.from_env()
    settings.model, settings.threads, settings.cache_dir = spec["model"], spec["threads"], spec["cache_dir"]
    settings.device = spec.get("device") or settings.device
    settings.int8_plan = spec.get("int8_plan") or settings.int8_plan
    settings.int8_budget = spec.get("int8_budget") or settings.int8_budget
    if spec["kind"] == "peer":
        from . import family_hook

        peers = family_hook(settings.model, "peer_engines")
        engines = peers(settings, [spec["name"]], settings.model) if peers else []
    else:
        from . import load_engines

        settings.precisions = spec["name"]
        engines = load_engines(settings).engines
    return engines[0] if engines else None


def _child(spec: dict) -> dict:
    """In this fresh process: load only one engine, run it twice on the clip."""
    from .. import audio

    start = _memory.rss_bytes()
    engine = load_one(spec)
    if engine is None:
        return dict(error=f"no {spec['kind']} {spec['name']!r} for {spec['model']}")
    loaded = _memory.rss_bytes()
    if not engine.info.available:
        return dict(error=engine.info.error)
    clip = audio.load(spec["clip"])
    working = 0
    for _ in range(2):
        t = engine.transcribe(clip, spec.get("language"))
        if t.error:
            return dict(error=t.error)
        working = max(working, t.memory.peak_delta_bytes)
    return dict(engine=engine.info.name, artifact=engine.info.artifact, rss_start=start, rss_after_load=loaded,
                load_growth=loaded - start, working_bytes=working, peak_rss=_memory.peak_rss_bytes(),
                weights_bytes=engine.info.weights_bytes, clip=Path(spec["clip"]).name, clip_s=round(clip.duration_s, 2),
                threads=spec["threads"],
                measured_at=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat())


if __name__ == "__main__":
    from .runtime_policy import prepare

    prepare()
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(_child(json.loads(sys.argv[1]))))
