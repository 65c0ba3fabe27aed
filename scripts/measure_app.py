"""Measure the web app: start-up time and the share of a request spent
outside the engines. Prints figures; asserts nothing (the machine is shared).

    python scripts/measure_app.py startup --cache-dir /tmp/asrq-empty   # first start: empty cache
    python scripts/measure_app.py startup --cache-dir /tmp/asrq-empty   # second start: cached
    python scripts/measure_app.py overhead --runs 3                      # ~10 s clip

`startup` runs `python app.py` on a free port and times until the page
answers HTTP 200 and until every engine has loaded (its `/engine_status`). `overhead` does two things on a ~10 s clip made of two
example clips: (1) in-process, the same steps the page's handler runs, each
timed (decode, engines, diffs + WER, charts, history + exports); (2) against
a real `python app.py`, whole requests through gradio's API, comparing the
client's wall time with the engine time the app reports in its history JSON.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def start_app(extra: list[str], workdir: Path, timeout_s: float = 1800):
    """`python app.py` on a free port, as the load test starts it; returns (app, seconds until it answered)."""
    from asr_quant.loadtest import AppProcess, free_port

    app = AppProcess(workdir, free_port(), extra)
    try:
        return app, app.wait_ready(timeout_s)
    except RuntimeError as exc:
        app.stop()
        raise SystemExit(str(exc)) from None


def cmd_startup(args) -> None:
    empty = not any(Path(args.cache_dir).rglob("*")) if Path(args.cache_dir).exists() else True
    workdir = Path(tempfile.mkdtemp(prefix="asrq-measure-startup-"))
    app, took = start_app(["--cache-dir", args.cache_dir, *args.app_args], workdir)
    status = app.engine_status()
    app.stop()
    print(f"python app.py -> page answering: {app.page_s:.1f} s, every engine loaded: {took:.1f} s "
          f"({', '.join(e['name'] + ' ' + e['state'] for e in status['engines'])}; "
          f"{'empty' if empty else 'warm'} cache {args.cache_dir}; log {app.log_path})")


def ten_second_clip(folder: Path) -> tuple[Path, str]:
    """weather + 0.3 s pause + meeting from examples/: ~10.5 s, with both references."""
    from asr_quant.examples import read_examples

    ex = {e.path.name: e for e in read_examples(REPO / "examples")}
    parts, refs = [], []
    for name in ("weather_en.flac", "meeting_en.flac"):
        x, sr = sf.read(ex[name].path, dtype="float32")
        assert sr == 16000, sr
        parts += [x, np.zeros(int(0.3 * sr), np.float32)]
        refs.append(ex[name].reference)
    path = folder / "ten_seconds_en.wav"
    sf.write(path, np.concatenate(parts[:-1]), 16000)
    return path, " ".join(refs)


def in_process(clip_path: Path, reference: str, runs: int, app_args: list[str]) -> None:
    """The handler's steps, timed one by one, with the real engines."""
    from asr_quant import audio
    from asr_quant.app import charts, compare
    from asr_quant.engines import load_engines
    from asr_quant.app.history import History, run_record
    from asr_quant.app.runner import Runner
    from asr_quant.settings import Settings

    p = argparse.ArgumentParser()
    Settings.add_arguments(p)
    settings = Settings.from_args(p.parse_args(app_args))
    es = load_engines(settings)
    runner = Runner(compare.baseline_first(es.engines), settings.inference_timeout_s)
    baseline = compare.baseline_name(runner.names)
    loaded = [e.info.name for e in es.engines if e.info.available]
    charts.warm_up()  # as ui.build does at start-up
    hist = History()
    rows = []
    for i in range(runs):
        t = {}
        t0 = time.perf_counter()
        clip = audio.load(clip_path, max_s=settings.max_audio_s, name=clip_path.name)
        t["decode"] = time.perf_counter() - t0
        request, eng, cmp_s = compare.Request(baseline, "en", reference), 0.0, 0.0
        for tr in runner.run(clip, "en"):
            eng += tr.latency_s
            c0 = time.perf_counter()
            request.add(tr)
            cmp_s += time.perf_counter() - c0
        t["engines (their own timers)"] = eng
        t["diffs + WER"] = cmp_s
        c0 = time.perf_counter()
        trs = [r.transcript for r in request.results if r.transcript.engine in loaded]
        hist.add(run_record(clip.name, clip.duration_s, request, loaded))
        figs = [charts.latency_figure(trs), charts.memory_figure(trs), charts.history_figure(hist)]
        t["charts (build + JSON)"] = time.perf_counter() - c0
        for f in figs:
            f.to_json()
        t["charts (build + JSON)"] = time.perf_counter() - c0
        c0 = time.perf_counter()
        hist.table(), hist.to_csv(), hist.to_json()
        t["history table + exports"] = time.perf_counter() - c0
        t["whole"] = time.perf_counter() - t0
        rows.append(t)
        print(f"  run {i + 1}: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in t.items()))
    print(f"in-process, median of {runs} runs on a {clip.duration_s:.1f} s clip "
          f"({', '.join(e.info.name for e in es.engines)}):")
    whole = statistics.median(r["whole"] for r in rows)
    for k in rows[0]:
        v = statistics.median(r[k] for r in rows)
        print(f"  {k:28s} {v * 1000:9.1f} ms  {100 * v / whole:5.1f} %")
    outside = statistics.median(r["whole"] - r["engines (their own timers)"] for r in rows)
    print(f"  outside the engines: {outside * 1000:.1f} ms = {100 * outside / whole:.2f} % of the request")


def via_api(clip_path: Path, reference: str, runs: int, app_args: list[str]) -> None:
    """Whole requests through gradio's HTTP API, as a browser would send them."""
    from gradio_client import Client, handle_file

    app, _ = start_app(app_args, Path(tempfile.mkdtemp(prefix="asrq-measure-api-")))
    url = app.url
    try:
        client = Client(url, verbose=False, download_files=False)  # read the server's files in place
        client.predict(handle_file(str(clip_path)), "en", reference, api_name="/transcribe")  # warm-up
        totals = []
        for i in range(runs):
            t0 = time.perf_counter()
            out = client.predict(handle_file(str(clip_path)), "en", reference, api_name="/transcribe")
            wall = time.perf_counter() - t0
            download = out[-1]  # the JSON download button: an update carrying the file
            while isinstance(download, dict):
                download = download.get("value") or download.get("path")
            history = json.loads(Path(download).read_text())
            run = history["runs"][-1]
            totals.append((wall, run["wall_s"], run["engines_s"]))
            print(f"  request {i + 1}: client {wall:.3f} s, handler {run['wall_s']:.3f} s, "
                  f"engines {run['engines_s']:.3f} s")
        wall, handler, engines = (statistics.median(x) for x in zip(*totals))
        print(f"through the API, median of {runs}: client wall {wall:.3f} s, engines {engines:.3f} s, "
              f"outside the engines {wall - engines:.3f} s = {100 * (wall - engines) / wall:.2f} % "
              f"(inside the handler: {handler - engines:.3f} s = {100 * (handler - engines) / wall:.2f} %)")
    finally:
        app.stop()


def cmd_overhead(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clip, reference = ten_second_clip(Path(tmp))
        in_process(clip, reference, args.runs, args.app_args)
        via_api(clip, reference, args.runs, args.app_args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("startup")
    s.add_argument("--cache-dir", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--runs", type=int, default=3)
    for p in (s, o):
        p.add_argument("app_args", nargs="*", help="flags passed on to app.py (after --)")
    args = ap.parse_args()
    {"startup": cmd_startup, "overhead": cmd_overhead}[args.cmd](args)


if __name__ == "__main__":
    main()
