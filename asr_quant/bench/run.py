"""One model's benchmark run: engines interleaved clip by clip in a rotated
order, summaries and ratios to FP32, the calibration study, and the outputs."""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import time
from dataclasses import asdict, replace
from pathlib import Path

from .. import memory as _memory
from ..audio import AudioError
from ..engines.base import Engine, EngineInfo, UnavailableEngine
from ..settings import Settings
from . import charts, quant_report
from . import corpus as _corpus
from . import divergences, family, paired, report, shards
from .env import machine, threads_summary, versions
from .memprobe import isolated_timing, memory_probe
from .stats import Record, paired_latency_ratio, ratio, ratios_to, spread, summarize
from ..latin import rotated, williams_order  # noqa: F401 - the run order, re-exported for its users

REFERENCE = "FP32"  # PyTorch FP32: what the seed article compares against
ORT_REFERENCE = "ORT-FP32"  # the same exported graph in the same runtime as INT8: precision alone
# Head-to-head latency ratios the report and the targets read (A / B, clip by clip in one run).
PAIRS = [("INT8", ORT_REFERENCE), ("INT8", REFERENCE), (ORT_REFERENCE, REFERENCE), ("INT8", "faster-whisper int8"),
         ("faster-whisper float32", REFERENCE), ("faster-whisper int8", REFERENCE), ("FP16", REFERENCE)]


class BenchError(RuntimeError):
    """A benchmark that cannot run as asked; the message is for people."""


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


def interleave(engines: list[Engine], clips, runs: int, warmup: int, progress=None,
               positions: dict[str, int] | None = None) -> dict[str, list[Record]]:
    """Warm-up calls (discarded), then clip by clip, run by run, each engine in
    turn, the order the next row of a balanced Latin square at every (clip,
    run) (`rotated`) so no engine always runs first or after the same
    neighbour. `positions` (clip id -> its index in the whole corpus) makes a
    shard order each clip as the whole run would. Returns the timed records per engine."""
    records: dict[str, list[Record]] = {e.info.name: [] for e in engines}
    live = [e for e in engines if e.info.available]
    first_u, first_clip = clips[0]
    for e in live:
        for _ in range(warmup):
            e.transcribe(first_clip, first_u.language)
            if progress:
                progress.update(1)
    for ci, (u, clip) in enumerate(clips):
        ci = positions.get(u.id, ci) if positions else ci
        for run in range(runs):
            for e in rotated(engines, ci * runs + run):
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


def profile_engines(engines: list[Engine], clips, n: int, out_dir: Path, settings: Settings,
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
        op = family.family_op_profile(settings, e, clips[:n], out_dir, settings.threads)
        if op:
            ops[e.info.name] = op
            (out_dir / f"ort-profile-{report.slug(e.info.name)}.txt").write_text(
                report.op_profile_text(e.info.label, op, n), encoding="utf-8")
    return out, ops


def summaries(engines: list[Engine], records: dict[str, list[Record]], roles: dict[str, str],
              reference: str = REFERENCE) -> tuple[list, dict]:
    sums = [summarize(e.info, records[e.info.name], roles.get(e.info.name, "engine")) for e in engines]
    return sums, ratios_against(sums, records, reference)


def ratios_against(sums: list[dict], records: dict[str, list[Record]], reference: str) -> dict:
    """Every engine's ratios to one reference engine of the same run (none if it is missing)."""
    by = {s["name"]: s for s in sums}
    ref = by.get(reference)
    if not (ref and ref["available"] and records.get(reference)):
        return {}
    return {s["name"]: ratios_to(s, ref, records[s["name"]], records[reference])
            for s in sums if s["name"] != reference}


def head_to_head(records: dict[str, list[Record]], pairs: list[tuple[str, str]]) -> dict:
    """Latency of A over B, clip by clip in the same run, for the pairs the
    targets name (e.g. INT8 / ORT-FP32: precision alone)."""
    return {f"{a} / {b}": paired_latency_ratio(records[a], records[b])
            for a, b in pairs if records.get(a) and records.get(b)}


def calibration_study(engine_set, settings: Settings, clips, sizes: list[int], runs: int,
                      reference: Engine | None, log, progress_factory) -> dict:
    """INT8 rebuilt static with each calibration size, and dynamic; each run
    interleaved with FP32 on the same clips so the latency ratios share a run."""
    calib_texts = family.family_calibration_texts(settings)
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
            eng = family.family_int8_variant(engine_set, settings, mode, n)
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


def _unavailable_row(name: str, precision: str, runtime: str, engine_set, exc: Exception) -> Engine:
    """A benchmark row that could not be built: it says why, and the run goes on."""
    return UnavailableEngine(EngineInfo(name=name, precision=precision, runtime=runtime, device="cpu",
                                        model=engine_set.model.name, available=False,
                                        error=f"{type(exc).__name__}: {exc}"))


def int8_plan_variants(engine_set, settings: Settings, plans: str | None, log) -> list[Engine]:
    """INT8 engines of other named plans beside the set's own (`--int8-plans
    search` or `search:kl=0.002,recipe`), on the same clips in the same run.
    One that cannot be built is an unavailable row, not a failed run."""

    out = []
    items = [x.strip() for x in (plans or "").split(",") if x.strip()]
    if len(set(items)) < len(items):
        raise BenchError(f"--int8-plans names a plan twice: {plans}")
    for item in items:
        name, _, budget = item.partition(":")
        label = f"INT8-{name}" + (f"({budget})" if budget else "")  # the row's name, built or not
        quant = {"plan": name, **({"budget": budget} if budget else {})}
        log(f"building INT8 plan {item} ...")
        t0 = time.perf_counter()
        try:
            eng = family.family_int8_variant(engine_set, settings, "auto", 0, **quant)
            eng.info.name = label
        except Exception as exc:  # noqa: BLE001 - reported as that row's error
            eng = _unavailable_row(label, "int8", "ONNX Runtime", engine_set, exc)
        log(f"  {label}: {time.perf_counter() - t0:.0f} s")
        out.append(eng)
    return out


ROUNDED_WEIGHTS = "FP32, INT8-rounded weights"  # --rounded-weights' study row


def rounded_weights_study(engine_set, settings: Settings, log) -> list[Engine]:
    """`--rounded-weights`: the study row of FP32 arithmetic on INT8-rounded
    weights (engines/whisper/rounded.py), or an unavailable row saying why."""
    log("building the rounded-weights study (an FP32 copy with INT8-rounded weights) ...")
    try:
        eng = family.family_rounded_weights(engine_set, settings)
        eng.info.name = ROUNDED_WEIGHTS  # the row's name, built or not
        return [eng]
    except Exception as exc:  # noqa: BLE001 - reported as that row's error
        return [_unavailable_row(ROUNDED_WEIGHTS, "fp32", "PyTorch", engine_set, exc)]


def settings_for(model: str, args) -> Settings:
    """The engines' settings for one model of a benchmark run (flags over ASRQ_* variables)."""
    settings = Settings.from_env()
    settings.model = model
    settings.precisions = args.engines
    if args.threads:
        settings.threads = int(args.threads)
    if args.cache_dir:
        settings.cache_dir = args.cache_dir
    if args.device:
        settings.device = args.device
    if getattr(args, "int8_plan", None):
        settings.int8_plan = args.int8_plan
    return settings


def run_model(model: str, args, utts: list[_corpus.Utterance], corpus_notes: list[str], out_dir: Path,
              command: str, date: str, log, progress_factory, engine_set=None) -> dict:
    """Load, run, summarize and write the outputs for one model. An already
    loaded `engine_set` (e.g. a test session's) is used as is and left open."""
    from ..engines import load_engines

    settings = settings_for(model, args)
    own = engine_set is None
    if own:
        log(f"loading {model} ({settings.precisions}) with {settings.threads} threads ...")
        engine_set = load_engines(settings)
    engines = list(engine_set.engines)
    roles = {e.info.name: "engine" for e in engines}
    peer_kinds = [] if args.peers in ("", "none") else [p.strip() for p in args.peers.split(",") if p.strip()]
    peers = family.family_peers(settings, peer_kinds, engine_set.model.name)
    for p in peers:
        roles[p.info.name] = "peer"
    variants = int8_plan_variants(engine_set, settings, getattr(args, "int8_plans", None), log)
    for v in variants:
        roles[v.info.name] = "variant"
    studies = rounded_weights_study(engine_set, settings, log) if getattr(args, "rounded_weights", False) else []
    for v in studies:
        roles[v.info.name] = "study"
    engines += variants + studies + peers
    for e in engines:
        state = "ok" if e.info.available else f"UNAVAILABLE: {e.info.error}"
        log(f"  {e.info.name:<24} {e.info.runtime}, {e.info.device}, threads={e.info.threads}, "
            f"disk={report.mb(e.info.disk_bytes)}, resident={report.mb(e.info.resident_bytes)} [{state}]")

    keep = utts
    notes = list(corpus_notes)
    if family.english_only(engine_set.model, settings):
        keep = [u for u in utts if u.language == "en"]
        notes.append(f"{engine_set.model.name} is English-only: only the English clips were run")
    if not keep:
        raise BenchError(f"no clip in the selected corpus is in a language {model} handles")
    positions = {u.id: i for i, u in enumerate(keep)}  # the whole run's rotation, in a shard too
    shard = getattr(args, "shard", None)
    if shard:
        keep = shards.take(keep, *shards.parse(shard))
        notes.append(f"shard {shard} of the corpus: {len(keep)} of its {len(positions)} clips")
        if not keep:
            raise BenchError(f"shard {shard} holds none of the {len(positions)} clips: use fewer shards")
    clips = load_clips(keep, log)

    runs, warmup = args.runs, args.warmup
    bar = progress_factory(total=len(clips) * runs * len(engines) + warmup * len(
        [e for e in engines if e.info.available]), desc=model)
    t0 = time.perf_counter()
    records = interleave(engines, clips, runs, warmup, bar, positions)
    bar.close()
    wall = time.perf_counter() - t0

    sums, ratios = summaries(engines, records, roles)
    ratios_ort = ratios_against(sums, records, ORT_REFERENCE)
    pairs = head_to_head(records, PAIRS + [(v.info.name, other) for v in variants
                                           for other in (REFERENCE, "INT8", "faster-whisper int8")])
    out_dir.mkdir(parents=True, exist_ok=True)
    profiles, op_profiles = (profile_engines(engines, clips, args.profile, out_dir, settings)
                             if args.profile else ({}, {}))
    ref = next((e for e in engine_set.engines if e.info.name == REFERENCE and e.info.available), None)
    alone = {} if args.no_memory_probe else memory_probe(engines, roles, settings, clips, log)
    for s_ in sums:
        s_["memory"]["alone"] = alone.get(s_["name"])
    for reference, table in ((REFERENCE, ratios), (ORT_REFERENCE, ratios_ort)):
        ref_alone = (alone.get(reference) or {}).get("peak_rss")
        for name, r in table.items():
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
    explained = divergences.summary(model, engine_set, clips, records, log) if getattr(args, "explain", False) else None
    used = [u for u, _ in clips]
    res = dict(
        schema=1, date=date, command=command, wall_s=wall,
        model=dict(key=model, **asdict(engine_set.model)),
        machine=machine(), versions=versions(), threads=threads_summary(engines, settings.threads),
        settings=dict(precisions=settings.precisions, device=settings.device, cache_dir=settings.cache_dir,
                      peers=peer_kinds),
        runs=runs, warmup=warmup,
        corpus=dict(clips=len(used), audio_s=sum(u.duration_s for u in used), rows=_corpus.describe(used),
                    notes=notes, utterances=[_corpus.to_dict(u) for u in used]),
        engines=sums, ratios=ratios, ratios_ort=ratios_ort, pairs=pairs, order="rotated per clip and run",
        isolated=_isolated(engines, roles, settings, clips, args, log) if getattr(args, "isolated", False) else None,
        profiles=profiles, op_profiles=op_profiles, calibration=calibration,
        paired=None, targets=None, explain=explained,
        shard=dict(spec=shard, positions={u.id: positions[u.id] for u in used}, clips_total=len(positions),
                   roles=roles),
        records={k: [asdict(r) for r in v] for k, v in records.items()},
    )
    res["paired"] = paired.from_results(res)  # before the targets, which judge recorded rows by it
    res["targets"] = report.targets(res)
    write_outputs(res, out_dir)
    for e in (engines if own else peers + variants + studies):
        e.close()
    return res


def summarize_latency(records: list[Record]) -> dict:
    return spread([1000 * r.total_s for r in records if r.error is None])


def _isolated(engines, roles, settings, clips, args, log) -> dict:
    """`--isolated`: each engine's records from its own process, and the same head-to-head ratios."""
    runs = isolated_timing(engines, roles, settings, clips, args, log)
    records = {name: [Record(**r) for r in out.get("records", [])] for name, out in runs.items()}
    return dict(errors={n: o["error"] for n, o in runs.items() if "error" in o},
                pairs=head_to_head(records, PAIRS),
                latency_ms={n: summarize_latency(v) for n, v in records.items() if v})


def write_outputs(res: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "results.json.tmp"
    tmp.write_text(json.dumps(res, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, out_dir / "results.json")
    (out_dir / "results.md").write_text(report.results_markdown(res), encoding="utf-8")
    charts.charts(res, out_dir)
    quant_report.chart(res, out_dir)
