"""`python -m asr_quant.loadtest`: many people at once against the real app.

Starts `python app.py` on 127.0.0.1 (a free port, its own gradio temp folder),
waits until it answers, then N clients (`gradio_client`, one session each)
send requests back to back for T seconds, mixing the good example clips with
bad inputs (a text file named .wav, zero bytes, a PNG, silence, 0.1 s, over
the length limit, over the upload cap). It stops by itself: no new request
after T, every request still out gets `--drain-s` to come back, then the app
is stopped (Ctrl-C, so gradio sweeps its temp folder) and the report written.

Nothing sent may be lost. A good clip counts as answered when every loaded
engine gave a transcript; a bad input when the page shows the decoder's own
message for that file (computed here with `audio.load`) and no transcript.
"Queue is full" is a clear busy answer, counted apart. Resident memory of the
app (psutil, every second) is compared idle after warm-up and idle at the
end; more than 10 % growth fails the run. The exit code is 0 when nothing was
lost or wrong, memory held and the security probes passed, else 1.

Only 127.0.0.1 is ever contacted. Needs gradio_client and psutil; never
imports gradio, torch or onnxruntime (the app does, in its own process).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path


from ..settings import Settings
from .app_process import AppProcess, Sampler, count_files, free_port
from .driver import Driver, Page, Request
from .inputs import bad_inputs, good_inputs
from .probes import probe_security
from .report import _timeline, format_report, memory_report, percentiles, summarize, verdict


def run(args: argparse.Namespace) -> dict:
    t_begin = time.perf_counter()
    defaults = Settings.from_env()
    max_audio_s = args.max_audio_s if args.max_audio_s is not None else defaults.max_audio_s
    max_file_mb = args.max_file_mb if args.max_file_mb is not None else defaults.max_file_mb
    cap = int(max_file_mb * 1024 * 1024)
    workdir = Path(tempfile.mkdtemp(prefix="asrq-loadtest-"))
    goods = good_inputs()
    if args.good_clips:
        goods = goods[:args.good_clips]
    inputs = goods + bad_inputs(workdir / "inputs", max_audio_s, max_file_mb)
    if not any(i.kind == "good" for i in inputs):
        raise SystemExit("error: no good clip found in examples/")
    # --memory-probe off: the probe's child processes would count in the app's RSS measured here
    app_args = ["--max-audio-s", str(max_audio_s), "--max-file-mb", str(max_file_mb),
                "--max-queue", str(args.max_queue), "--memory-probe", "off"]
    for flag, value in (("--cache-dir", args.cache_dir), ("--model", args.model), ("--threads", args.threads),
                        ("--precisions", args.precisions), ("--inference-timeout-s", args.inference_timeout_s)):
        if value is not None:
            app_args += [flag, str(value)]
    port = args.port or free_port()
    app = AppProcess(workdir, port, app_args)
    print(f"starting: {' '.join(app.cmd)}", file=sys.stderr)
    errors: list[str] = []
    requests: list[Request] = []
    security: dict = {}
    startup_s = 0.0
    driver = None
    try:
        startup_s = app.wait_ready(args.startup_timeout_s)
        print(f"app answering after {startup_s:.1f} s (pid {app.pid})", file=sys.stderr)
        t0 = time.perf_counter()
        with Sampler(app.pid, app.temp_dir, t0=t0) as sampler:
            rss_start = sampler.idle_rss()
            warm = Driver(app.url, inputs, 1, 0, args.drain_s, cap_bytes=cap, t0=t0)
            from gradio_client import Client

            client = Client(app.url, verbose=False, download_files=False, analytics_enabled=False)
            page = Page.of(client, app.url)
            fn_index = next(i for i, d in enumerate(client.config["dependencies"])
                            if d.get("api_name") == "transcribe")
            # Every good clip once (decoding buffers grow to the longest seen), then a bad input.
            n_warm = len(goods) if args.warmup is None else args.warmup
            warm_inputs = [goods[k % len(goods)] for k in range(n_warm)] + \
                          [next(i for i in inputs if i.kind == "bad")]
            for inp in warm_inputs:
                r = warm.one(client, page, inp, -1, warm.now() + args.drain_s)
                print(f"warm-up {inp.name}: {r.outcome} in {r.latency_s or 0:.1f} s", file=sys.stderr)
                if r.outcome not in ("ok", "clear_error"):
                    errors.append(f"warm-up request {inp.name} was {r.outcome}: {r.detail}")
            client.close()
            rss_warm = sampler.idle_rss()
            security = probe_security(app.url, fn_index, cap, workdir)
            print(f"load: {args.clients} clients for {args.duration:g} s", file=sys.stderr)
            driver = Driver(app.url, inputs, args.clients, args.duration, args.drain_s, bad_share=args.bad_share,
                            max_requests=args.max_requests, seed=args.seed, cap_bytes=cap)
            load_window = (time.perf_counter() - t0, time.perf_counter() - t0 + args.duration)
            requests = driver.run()
            errors.extend(driver.errors)
            time.sleep(2.0)
            rss_end = sampler.idle_rss()
        files_during = max([n for _, n in sampler.files] + [0])
        files_before_stop = count_files(app.temp_dir)
    finally:
        code = app.stop()
    files_after = count_files(app.temp_dir)
    summary = summarize(requests, args.clients, args.max_queue)
    memory = memory_report(rss_start, rss_warm, rss_end, sampler.rss, load_window)
    temp = {"folder": str(app.temp_dir), "max_during_run": files_during, "before_shutdown": files_before_stop,
            "after_shutdown": files_after}
    problems = verdict(summary, memory, security, temp, errors)
    report = {
        "config": {"clients": args.clients, "duration_s": args.duration, "drain_s": args.drain_s,
                   "bad_share": args.bad_share, "seed": args.seed, "max_requests": args.max_requests,
                   "warmup": args.warmup, "good_clips": [i.name for i in goods], "url": app.url,
                   "app_cmd": app.cmd, "model": args.model or defaults.model,
                   "max_queue": args.max_queue, "max_file_mb": max_file_mb, "max_audio_s": max_audio_s,
                   "inputs": [{"name": i.name, "kind": i.kind, "error": i.error, "message": i.message}
                              for i in inputs]},
        "startup_s": round(startup_s, 2),
        "connect_s": percentiles(driver.connect_s) if driver is not None else None,
        "requests": summary,
        "memory": memory,
        "memory_timeline_mib": _timeline(sampler.rss),
        "temp_files": temp,
        "security": security,
        "failures": [asdict(r) for r in requests if r.outcome in ("wrong", "failed", "lost")][:20],
        "app_exit_code": code,
        "app_log": str(app.log_path),
        "wall_s": round(time.perf_counter() - t_begin, 1),
        "problems": problems,
        "pass": not problems,
    }
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asr_quant.loadtest",
                                description="Start the app on 127.0.0.1 and drive it with concurrent clients.")
    p.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    p.add_argument("--duration", type=float, default=300.0, help="seconds of sending (default 300)")
    p.add_argument("--drain-s", type=float, default=900.0,
                   help="after the last send, seconds to wait for answers before counting a request lost")
    p.add_argument("--bad-share", type=float, default=0.4, help="share of requests that send a bad input")
    p.add_argument("--max-requests", type=int, default=5000, help="stop sending after this many requests")
    p.add_argument("--warmup", type=int, default=None,
                   help="good clips sent one by one before the load (default: each good clip once)")
    p.add_argument("--good-clips", type=int, default=0, help="use only the first N example clips (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    p.add_argument("--port", type=int, default=0, help="port for the app (default: a free one)")
    p.add_argument("--startup-timeout-s", type=float, default=1200.0)
    p.add_argument("--max-queue", type=int, default=Settings().max_queue, help="the app's queue size")
    p.add_argument("--cache-dir", default=None, help="the app's artifact cache (default: its own default)")
    p.add_argument("--model", default=None)
    p.add_argument("--precisions", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--inference-timeout-s", type=float, default=None)
    p.add_argument("--max-audio-s", type=float, default=None)
    p.add_argument("--max-file-mb", type=float, default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.clients < 1 or args.duration <= 0 or not 0 <= args.bad_share <= 1:
        print("error: --clients >= 1, --duration > 0 and 0 <= --bad-share <= 1", file=sys.stderr)
        return 2
    try:
        report = run(args)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = format_report(report)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(args.out.suffix + ".tmp")
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(args.out)
    return 0 if report["pass"] else 1


