"""The benchmark CLI: the seed article's table, measured on this machine.

    python -m asr_quant.bench --model base --out bench_out
    python -m asr_quant.bench --quick            # 2 clips per row, 1 run
    python -m asr_quant.bench --corpus builtin --corpus ../shared/speech --calib-sizes 2,8,32

Every engine (FP32, FP16, INT8, and faster-whisper peers for Whisper models)
runs in this one process on the same decoded clips, interleaved clip by clip
(FP32, FP16, INT8, peers, FP32, ...), so that the drift of a shared machine
hits all of them alike; ratios to FP32 are taken within the run. Outputs:
results.json (every figure and every call), results.md (the article's layout
with its claims beside the measured figures), and plotly charts.

Talks only to the Engine interface; the model-family specifics (peers, INT8
variants for the calibration study) sit in `_family_*` functions below.
"""
from __future__ import annotations

import argparse
import cProfile
import datetime as _dt
import importlib.metadata
import io
import json
import os
import platform
import pstats
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import psutil

from . import __version__, corpus as _corpus, memory as _memory
from . import bench_report as report
from .audio import AudioError
from .bench_stats import Record, ratio, ratios_to, summarize
from .engines import EngineError, family_of
from .engines.base import Engine
from .settings import Settings

REFERENCE = "FP32"
DEFAULT_PEERS = "float32,int8"


class BenchError(RuntimeError):
    """A benchmark that cannot run as asked; the message is for people."""


# --- the environment ---------------------------------------------------------------

def machine() -> dict:
    """CPU model, cores, RAM, GPU (or None), OS."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = None
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout.strip()
            gpu = "; ".join(out.splitlines()) or None
        except (OSError, subprocess.SubprocessError):
            gpu = None
    return dict(cpu=cpu, logical_cores=os.cpu_count(), physical_cores=psutil.cpu_count(logical=False),
                ram_gb=psutil.virtual_memory().total / 1e9, gpu=gpu, os=platform.platform(),
                python=platform.python_version())


def versions() -> dict:
    """Installed versions, read from package metadata (no heavy imports)."""
    out = {"asr-quant": __version__}
    for dist in ("torch", "onnxruntime-gpu", "onnxruntime", "onnx", "transformers", "ctranslate2",
                 "faster-whisper", "funasr", "numpy", "jiwer", "librosa"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        out["espeak-ng"] = _corpus.espeak_version()
    except _corpus.CorpusError:
        pass
    return out


def _threads(engines: list[Engine], requested: int) -> dict:
    per = {e.info.name: e.info.threads for e in engines}
    runtimes = {}
    for e in engines:
        words = (e.info.runtime or "?").split(" ")
        rt = " ".join(words[:-1]) if len(words) > 1 and any(c.isdigit() for c in words[-1]) else " ".join(words)
        if e.info.runtime.startswith("faster-whisper"):
            rt = "CTranslate2"
        runtimes.setdefault(rt, set()).add(e.info.threads)
    summary = ", ".join(f"{rt} {'/'.join(str(t) for t in sorted(ts))}" for rt, ts in runtimes.items())
    return dict(requested=requested, per_engine=per, summary=f"{summary} (requested {requested})")


# --- family hooks --------------------------------------------------------------------

def _family_peers(settings: Settings, family: str, kinds: list[str], model_name: str) -> list[Engine]:
    """faster-whisper rows; only Whisper models have a CTranslate2 peer."""
    if family != "whisper" or not kinds:
        return []
    from .peers import faster_whisper_engines

    return faster_whisper_engines(settings, kinds, model_name)


def _family_int8_variant(engine_set, settings: Settings, mode: str, calib_size: int) -> Engine:
    """One INT8 engine built with a given quantization (calibration study);
    reuses the loaded model bundle when an engine holds it."""
    if family_of(settings.model) != "whisper":
        raise BenchError("the calibration study is implemented for the Whisper models only")
    from .device import choose
    from .engines.whisper import load_bundle
    from .engines.whisper.int8 import build_variant

    bundle = next((e.bundle for e in engine_set.engines if getattr(e, "bundle", None) is not None), None)
    if bundle is None:
        bundle = load_bundle(settings.model, settings.cache_dir)
    return build_variant(bundle, settings, choose(settings.device), mode=mode, calib_size=calib_size or None)


def _family_calibration_texts(settings: Settings) -> set[str]:
    """Texts the INT8 quantizer calibrates on, to prove the test clips are disjoint."""
    if family_of(settings.model) != "whisper":
        return set()
    from .engines.whisper import calibration

    return {u.text for u in calibration.CALIBRATION}


def _family_op_profile(engine: Engine, clips, out_dir: Path, threads: int) -> dict | None:
    """ONNX Runtime's per-operator times for engines built on ORT sessions."""
    from . import ort_profile

    if not ort_profile.supports(engine):
        return None
    try:
        return ort_profile.profile(engine, clips, out_dir, threads)
    except Exception as exc:  # noqa: BLE001 - a profile is a bonus, never a failure of the run
        return {"error": f"{type(exc).__name__}: {exc}"}


def _english_only(model_info, settings: Settings) -> bool:
    langs = (getattr(model_info, "languages", "") or "").strip().lower()
    return settings.model.endswith(".en") or langs in ("en", "english")


# --- the run ---------------------------------------------------------------------------

def load_clips(utts: list[_corpus.Utterance], log) -> list[tuple[_corpus.Utterance, object]]:
    """Decode every clip once; all engines get the same samples. A clip that
    cannot be decoded is left out with its reason printed."""
    out = []
    for u in utts:
        try:
            clip = u.clip()
        except AudioError as exc:
            log(f"skipping {u.id}: {exc}")
            continue
        out.append((replace(u, duration_s=round(clip.duration_s, 3)), clip))
    if not out:
        raise BenchError("no clip could be decoded")
    return out


def interleave(engines: list[Engine], clips, runs: int, warmup: int, progress=None) -> dict[str, list[Record]]:
    """Warm-up calls (discarded), then clip by clip, run by run, each engine in
    turn. Returns the timed records per engine."""
    records: dict[str, list[Record]] = {e.info.name: [] for e in engines}
    live = [e for e in engines if e.info.available]
    first_u, first_clip = clips[0]
    for e in live:
        for _ in range(warmup):
            e.transcribe(first_clip, first_u.language)
            if progress:
                progress.update(1)
    for u, clip in clips:
        for run in range(runs):
            for e in engines:
                t = e.transcribe(clip, u.language)
                r = Record.from_transcript(t, clip=u.id, row=u.row, language=u.language, run=run, reference=u.text)
                if e.info.device.startswith("cuda") or e.info.device == "CUDAExecutionProvider":
                    # the allocator's peak (in the Transcript) and what nvidia-smi sees differ: keep both
                    r.nvml_used_bytes = _memory.nvml_used_bytes()
                records[e.info.name].append(r)
                if progress:
                    progress.set_postfix_str(f"{u.id} {e.info.name}", refresh=False)
                    progress.update(1)
    return records


def profile_engines(engines: list[Engine], clips, n: int, out_dir: Path, threads: int,
                    top: int = 30) -> tuple[dict[str, str], dict[str, dict]]:
    """cProfile of each engine on the first n clips (top functions by
    cumulative time, in profile-<engine>.txt), and for engines running ONNX
    Runtime sessions, ONNX Runtime's operator profile (ort-profile-<engine>.txt)."""
    out, ops = {}, {}
    for e in engines:
        if not e.info.available:
            continue
        prof = cProfile.Profile()
        prof.enable()
        for u, clip in clips[:n]:
            e.transcribe(clip, u.language)
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(top)
        name = f"profile-{report.slug(e.info.name)}.txt"
        (out_dir / name).write_text(f"# {e.info.label}, {n} clip(s)\n" + buf.getvalue(), encoding="utf-8")
        out[e.info.name] = name
        op = _family_op_profile(e, clips[:n], out_dir, threads)
        if op:
            ops[e.info.name] = op
            (out_dir / f"ort-profile-{report.slug(e.info.name)}.txt").write_text(
                report.op_profile_text(e.info.label, op, n), encoding="utf-8")
    return out, ops


def summaries(engines: list[Engine], records: dict[str, list[Record]], roles: dict[str, str]) -> tuple[list, dict]:
    sums = [summarize(e.info, records[e.info.name], roles.get(e.info.name, "engine")) for e in engines]
    by = {s["name"]: s for s in sums}
    ratios = {}
    ref = by.get(REFERENCE)
    if ref and ref["available"] and records.get(REFERENCE):
        for s in sums:
            if s["name"] != REFERENCE:
                ratios[s["name"]] = ratios_to(s, ref, records[s["name"]], records[REFERENCE])
    return sums, ratios


def calibration_study(engine_set, settings: Settings, clips, sizes: list[int], runs: int,
                      reference: Engine | None, log, progress_factory) -> dict:
    """INT8 rebuilt static with each calibration size, and dynamic; each run
    interleaved with FP32 on the same clips so the latency ratios share a run."""
    calib_texts = _family_calibration_texts(settings)
    overlap = calib_texts & {u.text for u, _ in clips}
    if overlap:
        raise BenchError(f"calibration clips overlap the test clips: {sorted(overlap)[:3]}")
    plan = [("static", n) for n in sizes] + [("dynamic", 0)]
    variants: list[tuple[str, str, int, Engine]] = []
    notes = [f"calibration clips come from the quantizer's own pool ({len(calib_texts)} sentences), "
             "none of them a test sentence (checked)"]
    for mode, n in plan:
        label = f"INT8 static, {n} clips" if mode == "static" else "INT8 dynamic"
        log(f"building {label} ...")
        t0 = time.perf_counter()
        try:
            eng = _family_int8_variant(engine_set, settings, mode, n)
        except Exception as exc:  # noqa: BLE001 - one variant's failure is reported, not raised
            notes.append(f"{label}: could not be built: {type(exc).__name__}: {exc}")
            continue
        eng.info = replace(eng.info, name=label)
        notes.append(f"{label}: built/loaded in {time.perf_counter() - t0:.0f} s. {eng.info.details}")
        variants.append((label, mode, n, eng))
    engines = ([reference] if reference is not None else []) + [v[3] for v in variants]
    bar = progress_factory(total=len(clips) * runs * len(engines) + len(engines), desc="calibration study")
    records = interleave(engines, clips, runs, 1, bar)
    bar.close()
    out = []
    ref_summary = summarize(reference.info, records[reference.info.name]) if reference is not None else None
    for label, mode, n, eng in variants:
        s = summarize(eng.info, records[label], role="calibration")
        r = ratios_to(s, ref_summary, records[label], records[reference.info.name]) if ref_summary else {}
        out.append(dict(label=label, mode=mode, calib_size=n, summary=s, ratio=r))
        eng.close()
    return dict(runs=runs, sizes=sizes, clips=len(clips), variants=out, notes=notes,
                records={k: [asdict(r) for r in v] for k, v in records.items() if k != REFERENCE})


def run_model(model: str, args, utts: list[_corpus.Utterance], corpus_notes: list[str], out_dir: Path,
              command: str, date: str, log, progress_factory, engine_set=None) -> dict:
    """Load, run, summarize and write the outputs for one model. An already
    loaded `engine_set` (e.g. a test session's) is used as is and left open."""
    from .engines import load_engines

    settings = Settings.from_env()
    settings.model = model
    settings.precisions = args.engines
    if args.threads:
        settings.threads = int(args.threads)
    if args.cache_dir:
        settings.cache_dir = args.cache_dir
    if args.device:
        settings.device = args.device
    family = family_of(model)

    own = engine_set is None
    if own:
        log(f"loading {model} ({settings.precisions}) with {settings.threads} threads ...")
        engine_set = load_engines(settings)
    engines = list(engine_set.engines)
    roles = {e.info.name: "engine" for e in engines}
    peer_kinds = [] if args.peers in ("", "none") else [p.strip() for p in args.peers.split(",") if p.strip()]
    peers = _family_peers(settings, family, peer_kinds, engine_set.model.name)
    for p in peers:
        roles[p.info.name] = "peer"
    engines += peers
    for e in engines:
        state = "ok" if e.info.available else f"UNAVAILABLE: {e.info.error}"
        log(f"  {e.info.name:<24} {e.info.runtime}, {e.info.device}, threads={e.info.threads}, "
            f"disk={report.mb(e.info.disk_bytes)}, resident={report.mb(e.info.resident_bytes)} [{state}]")

    keep = utts
    notes = list(corpus_notes)
    if _english_only(engine_set.model, settings):
        keep = [u for u in utts if u.language == "en"]
        notes.append(f"{engine_set.model.name} is English-only: only the English clips were run")
    if not keep:
        raise BenchError(f"no clip in the selected corpus is in a language {model} handles")
    clips = load_clips(keep, log)

    runs, warmup = args.runs, args.warmup
    bar = progress_factory(total=len(clips) * runs * len(engines) + warmup * len(
        [e for e in engines if e.info.available]), desc=model)
    t0 = time.perf_counter()
    records = interleave(engines, clips, runs, warmup, bar)
    bar.close()
    wall = time.perf_counter() - t0

    sums, ratios = summaries(engines, records, roles)
    out_dir.mkdir(parents=True, exist_ok=True)
    profiles, op_profiles = (profile_engines(engines, clips, args.profile, out_dir, settings.threads)
                             if args.profile else ({}, {}))
    ref = next((e for e in engine_set.engines if e.info.name == REFERENCE and e.info.available), None)
    alone = {} if args.no_memory_probe else memory_probe(engines, roles, settings, clips, log)
    for s_ in sums:
        s_["memory"]["alone"] = alone.get(s_["name"])
    ref_alone = (alone.get(REFERENCE) or {}).get("peak_rss")
    for name, r in ratios.items():
        r["peak_alone"] = ratio((alone.get(name) or {}).get("peak_rss"), ref_alone)
    calibration = None
    if args.calib_sizes and not getattr(args, "_calib_done", False):
        args._calib_done = True  # the study runs for the first model of --model only
        sizes = [int(x) for x in args.calib_sizes.split(",") if x.strip()]
        sub = clips
        if args.calib_max_per_row:
            keep = {u.id for u in _corpus.select([u for u, _ in clips], None, args.calib_max_per_row)}
            sub = [(u, c) for u, c in clips if u.id in keep]
        calibration = calibration_study(engine_set, settings, sub, sizes, args.calib_runs, ref, log,
                                        progress_factory)
    used = [u for u, _ in clips]
    res = dict(
        schema=1, date=date, command=command, wall_s=wall,
        model=dict(key=model, **asdict(engine_set.model)),
        machine=machine(), versions=versions(), threads=_threads(engines, settings.threads),
        settings=dict(precisions=settings.precisions, device=settings.device, cache_dir=settings.cache_dir,
                      peers=peer_kinds),
        runs=runs, warmup=warmup,
        corpus=dict(clips=len(used), audio_s=sum(u.duration_s for u in used), rows=_corpus.describe(used),
                    notes=notes, utterances=[_corpus.to_dict(u) for u in used]),
        engines=sums, ratios=ratios, profiles=profiles, op_profiles=op_profiles, calibration=calibration,
        targets=None,
        records={k: [asdict(r) for r in v] for k, v in records.items()},
    )
    res["targets"] = report.targets(res)
    write_outputs(res, out_dir)
    for e in (engines if own else peers):
        e.close()
    return res


def write_outputs(res: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "results.json.tmp"
    tmp.write_text(json.dumps(res, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, out_dir / "results.json")
    (out_dir / "results.md").write_text(report.results_markdown(res), encoding="utf-8")
    report.charts(res, out_dir)


# --- memory, one engine per process -------------------------------------------------------

def probe_child(spec: dict) -> dict:
    """In a fresh process: load only one engine, run it on the given clips,
    and report the process's RSS at start, after the load, and at its peak."""
    from . import memory as _memory

    start = _memory.rss_bytes()
    settings = Settings.from_env()
    settings.model, settings.threads, settings.cache_dir = spec["model"], spec["threads"], spec["cache_dir"]
    settings.device = spec.get("device") or settings.device
    if spec["kind"] == "peer":
        engines = _family_peers(settings, family_of(settings.model), [spec["name"]], settings.model)
    else:
        from .engines import load_engines

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


# --- the command line ------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m asr_quant.bench",
        description="Measure FP32/FP16/INT8 (and faster-whisper peers) on the same clips, interleaved, "
                    "and print the seed article's table beside the measured one.")
    p.add_argument("--model", default=None,
                   help="base | tiny.en | CT2 Whisper folder | Fun-ASR-Nano id/folder; comma-separate to run "
                        "several in turn (default: ASRQ_MODEL or base)")
    p.add_argument("--corpus", action="append", default=None,
                   help="'builtin' (espeak-ng, made once and cached) or a folder of audio + same-named .txt "
                        "(or manifest.tsv); repeat to combine (default: builtin)")
    p.add_argument("--language", default=None, help="language of folder clips whose name/folder doesn't say it")
    p.add_argument("--languages", default=None, help="only these languages, e.g. zh,en (zh includes zh-noisy)")
    p.add_argument("--engines", default="fp32,fp16,int8", help="precisions to load (default fp32,fp16,int8)")
    p.add_argument("--peers", default=DEFAULT_PEERS,
                   help="faster-whisper compute types run as extra rows, or 'none' (Whisper only; "
                        f"default {DEFAULT_PEERS})")
    p.add_argument("--runs", type=int, default=3, help="timed runs per clip and engine (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up calls per engine (default 1)")
    p.add_argument("--threads", type=int, default=None, help="threads for torch, ONNX Runtime and CTranslate2")
    p.add_argument("--device", default=None, help="auto | cpu | cuda[:N]")
    p.add_argument("--cache-dir", default=None, help="where converted weights and the corpus are cached")
    p.add_argument("--out", default="bench_out", help="output folder (default bench_out)")
    p.add_argument("--quick", action="store_true", help="2 clips per row, 1 run: a smoke test")
    p.add_argument("--max-per-row", type=int, default=None, help="at most this many clips per row")
    p.add_argument("--calib-sizes", default=None,
                   help="calibration study: rebuild INT8 static with these calibration-set sizes (e.g. 2,8,32) "
                        "and dynamic, and compare (for the first --model only)")
    p.add_argument("--calib-runs", type=int, default=1, help="timed runs per clip in the calibration study")
    p.add_argument("--calib-max-per-row", type=int, default=None,
                   help="at most this many clips per row in the calibration study (default: all of the run's)")
    p.add_argument("--profile", type=int, default=0, help="cProfile each engine on this many clips")
    p.add_argument("--docs", default=None, help="also write this markdown page (e.g. docs/benchmark.md)")
    p.add_argument("--report", default=None, metavar="RESULTS_JSON",
                   help="rebuild results.md and charts from a saved results.json, without running")
    p.add_argument("--no-memory-probe", action="store_true",
                   help="skip re-loading each engine alone in a fresh process to measure its own memory")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--probe-child", default=None, help=argparse.SUPPRESS)
    return p


def _progress_factory(disabled: bool):
    from tqdm import tqdm

    def make(total: int, desc: str):
        return tqdm(total=total, desc=desc, unit="call", disable=disabled, dynamic_ncols=True, file=sys.stderr)

    return make


def gather_corpus(args, cache_dir: str, log) -> tuple[list[_corpus.Utterance], list[str]]:
    sources = args.corpus or ["builtin"]
    utts: list[_corpus.Utterance] = []
    notes: list[str] = []
    for src in sources:
        if src == "builtin":
            c = _corpus.builtin(cache_dir)
            utts += c.test
            notes += c.notes
        else:
            folder = _corpus.read_folder(src, args.language)
            utts += folder
            notes.append(f"{len(folder)} clip(s) from the folder {Path(src).name} (recorded speech as given)")
    langs = [x.strip() for x in args.languages.split(",")] if args.languages else None
    per_row = 2 if args.quick and args.max_per_row is None else args.max_per_row
    utts = _corpus.select(utts, langs, per_row)
    if not utts:
        raise BenchError("no clips left after --languages / --max-per-row")
    seen: dict[str, str] = {}
    for u in utts:
        if u.id in seen and seen[u.id] != u.source:
            raise BenchError(f"two clips are called {u.id!r}; rename one")
        seen[u.id] = u.source
    return utts, notes


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    argv_list = sys.argv[1:] if argv is None else list(argv)
    command = "python -m asr_quant.bench " + shlex.join(argv_list)
    log = (lambda m: print(m, file=sys.stderr, flush=True))
    if args.quick:
        args.runs = 1
    if args.probe_child:
        print(json.dumps(probe_child(json.loads(args.probe_child))))
        return 0
    try:
        if args.report:
            res = json.loads(Path(args.report).read_text(encoding="utf-8"))
            out = Path(args.out) if args.out != "bench_out" else Path(args.report).parent
            write_outputs(res, out)
            if args.docs:
                report.write_docs(Path(args.docs), [res], res["command"], res["date"])
            print(report.results_markdown(res))
            return 0
        if args.runs < 1 or args.warmup < 0:
            raise BenchError("--runs must be >= 1 and --warmup >= 0")
        settings = Settings.from_env()
        models = [m.strip() for m in (args.model or settings.model).split(",") if m.strip()]
        cache_dir = args.cache_dir or settings.cache_dir
        utts, notes = gather_corpus(args, cache_dir, log)
        date = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        results = []
        progress = _progress_factory(args.no_progress)
        for model in models:
            out = Path(args.out) / report.slug(model) if len(models) > 1 else Path(args.out)
            res = run_model(model, args, utts, notes, out, command, date, log, progress)
            results.append(res)
            print(report.results_markdown(res))
            log(f"wrote {out / 'results.json'}, {out / 'results.md'} and charts")
        if args.docs:
            report.write_docs(Path(args.docs), results, command, date)
            log(f"wrote {args.docs}")
        return 0
    except (BenchError, _corpus.CorpusError, EngineError, AudioError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
