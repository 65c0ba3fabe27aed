"""Measure the web app: start-up time and the share of a request spent
outside the engines. Prints figures; asserts nothing (the machine is shared).

    python scripts/measure_app.py startup --cache-dir /tmp/asrq-empty   # first start: empty cache
    python scripts/measure_app.py startup --cache-dir /tmp/asrq-empty   # second start: cached
    python scripts/measure_app.py overhead --runs 3                      # ~10 s clip

`startup` runs `python app.py` on a free port and times until the page
answers HTTP 200. `overhead` does two things on a ~10 s clip made of two
example clips: (1) in-process, the same steps the page's handler runs, each
timed (decode, engines, diffs + WER, charts, history + exports); (2) against
a real `python app.py`, whole requests through gradio's API, comparing the
client's wall time with the engine time the app reports in its history JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(extra: list[str], env: dict, log_path: Path, timeout_s: float = 1800):
    """`python app.py` on a free port; returns (process, url, seconds until HTTP 200)."""
    port = _free_port()
    cmd = [sys.executable, "app.py", "--server-name", "127.0.0.1", "--server-port", str(port), *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    while time.perf_counter() - t0 < timeout_s:
        if proc.poll() is not None:
            raise SystemExit(f"app.py exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return proc, url, time.perf_counter() - t0
        except OSError:
            time.sleep(0.25)
    proc.kill()
    raise SystemExit(f"app.py did not answer within {timeout_s} s; see {log_path}")


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def cmd_startup(args) -> None:
    env = dict(os.environ, ASRQ_CACHE_DIR=args.cache_dir, PYTHONUNBUFFERED="1")
    empty = not any(Path(args.cache_dir).rglob("*")) if Path(args.cache_dir).exists() else True
    log = Path(tempfile.gettempdir()) / "asrq-measure-startup.log"
    proc, url, took = start_app(args.app_args, env, log)
    stop(proc)
    print(f"python app.py -> page answering: {took:.1f} s ({'empty' if empty else 'warm'} cache "
          f"{args.cache_dir}; log {log})")


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
    from asr_quant import audio, charts, compare
    from asr_quant.engines import load_engines
    from asr_quant.history import EngineRun, History, RunRecord, now_iso
    from asr_quant.runner import Runner
    from asr_quant.settings import Settings

    p = argparse.ArgumentParser()
    Settings.add_arguments(p)
    settings = Settings.from_args(p.parse_args(app_args))
    es = load_engines(settings)
    runner = Runner(es.engines, settings.inference_timeout_s)
    charts.warm_up()  # as ui.build does at start-up
    hist = History()
    rows = []
    for i in range(runs):
        t = {}
        t0 = time.perf_counter()
        clip = audio.load(clip_path, max_s=settings.max_audio_s, name=clip_path.name)
        t["decode"] = time.perf_counter() - t0
        results, base, eng, cmp_s = [], None, 0.0, 0.0
        for j, tr in enumerate(runner.run(clip, "en")):
            base = tr if j == 0 else base
            eng += tr.latency_s
            c0 = time.perf_counter()
            results.append(compare.compare(tr, base, reference, "en"))
            cmp_s += time.perf_counter() - c0
        t["engines (their own timers)"] = eng
        t["diffs + WER"] = cmp_s
        c0 = time.perf_counter()
        trs = [r.transcript for r in results]
        hist.add(RunRecord(run=0, time=now_iso(), clip=clip.name, duration_s=clip.duration_s, language="en",
                           reference=True, engines=[EngineRun(r.transcript.engine, r.transcript.latency_s)
                                                    for r in results]))
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

    log = Path(tempfile.gettempdir()) / "asrq-measure-api.log"
    proc, url, took = start_app(app_args, dict(os.environ, PYTHONUNBUFFERED="1"), log)
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
        stop(proc)


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
