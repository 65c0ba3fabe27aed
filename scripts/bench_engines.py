"""Latency, size and memory of the loaded engines, measured in one run.

    python scripts/bench_engines.py [--model base] [--reps 3] [--threads 2]

Loads every precision once through `load_engines`, warms each up on one clip
(not counted), then runs all engines interleaved on the same clips (the
English examples and, when present, ../shared/speech), rotating the engine
order each round so none always runs first on a busy machine. Reports medians
and ratios against FP32: latency, per-stage time (features, encoder, decoding
per token), size on disk, resident memory after load and peak during a call.
Nothing here is asserted: the machine is shared and timings are noisy, so
read the ratios (measured side by side), not the absolute seconds.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from asr_quant import audio, metrics  # noqa: E402
from asr_quant.bench.run import rotated  # noqa: E402
from asr_quant.engines import load_engines  # noqa: E402
from asr_quant.examples import read_examples  # noqa: E402
from asr_quant.settings import Settings  # noqa: E402

SPEECH = REPO.parent / "shared" / "speech"


def clips() -> list[tuple[str, audio.Clip, str, str]]:
    """(name, clip, language, reference) for the examples and ../shared/speech."""
    out = []
    for ex in read_examples(REPO / "examples"):
        out.append((ex.path.name, audio.load(ex.path), ex.language, ex.reference))
    manifest = SPEECH / "manifest.tsv"
    if manifest.is_file():
        for line in manifest.read_text(encoding="utf-8").splitlines()[1:]:
            name, lang, text = line.split("\t")
            out.append((name, audio.load(SPEECH / name), lang, text))
    return out


def mb(n: float) -> str:
    return f"{n / 1e6:7.1f} MB"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="base")
    p.add_argument("--precisions", default="fp32,fp16,int8")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3, help="timed runs per engine and clip (median)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--peers", default="int8",
                   help="faster-whisper compute types to run beside ours on the same weights ('' for none)")
    args = p.parse_args(argv)

    s = Settings.from_env()
    s.model, s.precisions, s.threads, s.device = args.model, args.precisions, args.threads, args.device
    if args.cache_dir:
        s.cache_dir = args.cache_dir
    t0 = time.perf_counter()
    es = load_engines(s)
    print(f"model: {es.model.name}; {s.threads} threads; loaded in {time.perf_counter() - t0:.1f} s")
    everything = list(es.engines)
    if args.peers:
        from asr_quant.engines.whisper.peers import faster_whisper_engines

        everything += faster_whisper_engines(s, [c.strip() for c in args.peers.split(",") if c.strip()], es.model.name)
    engines = [e for e in everything if e.info.available]
    for e in everything:
        state = "" if e.info.available else f"  UNAVAILABLE: {e.info.error}"
        print(f"  {e.info.name:5s} {e.info.runtime}, {e.info.device}, load {e.info.load_s:.1f} s{state}")
        if e.info.details:
            print(f"        {e.info.details}")
    data = clips()
    print(f"clips: {len(data)} ({sum(c.duration_s for _, c, _, _ in data):.1f} s of audio); "
          f"warm-up 1 call per engine, then {args.reps} interleaved rounds")

    for e in engines:  # warm-up, not counted
        e.transcribe(data[0][1], data[0][2])

    runs: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for rep in range(args.reps):
        for name, clip, lang, _ in data:
            for e in rotated(engines, rep):
                runs[e.info.name][name].append(e.transcribe(clip, lang))

    base = "FP32" if "FP32" in runs else engines[0].info.name
    print()
    print("per clip: median latency (s) and tokens; text of the last round")
    for name, clip, lang, ref in data:
        cells = []
        for e in engines:
            ts = runs[e.info.name][name]
            cells.append(f"{e.info.name} {statistics.median(t.latency_s for t in ts):6.2f}s/{ts[-1].tokens:3d}t")
        print(f"  {name:34s} {clip.duration_s:5.1f}s  " + "  ".join(cells))
    print()
    header = (f"{'engine':20s} {'latency':>8s} {'x'+base:>8s} {'RTF':>6s} {'features':>9s} {'encoder':>8s} "
              f"{'x'+base:>7s} {'ms/token':>9s} {'x'+base:>7s} {'WER en':>7s} {'CER cjk':>7s}")
    print(header)
    print("-" * len(header))
    summary = {}
    for e in engines:
        n = e.info.name
        per_clip = {c: runs[n][c] for c, *_ in data}
        med = {c: statistics.median(t.latency_s for t in ts) for c, ts in per_clip.items()}
        enc = {c: statistics.median(t.timings.encoder_s for t in ts) for c, ts in per_clip.items()}
        feat = statistics.median(t.timings.features_s for ts in per_clip.values() for t in ts)
        tok = {c: statistics.median(t.timings.decoding_s / max(t.tokens, 1) for t in ts) for c, ts in per_clip.items()}
        rtf = statistics.median(t.rtf for ts in per_clip.values() for t in ts if t.rtf)
        errs = [(lang, metrics.error_rate(ref, runs[n][c][-1].text, lang)) for c, _, lang, ref in data]
        failures = sum(1 for ts in per_clip.values() for t in ts if t.error)
        summary[n] = dict(lat=sum(med.values()), enc=sum(enc.values()), tok=statistics.median(tok.values()),
                          med=med, enc_d=enc, tok_d=tok, feat=feat, rtf=rtf, errs=errs, failures=failures)
    b = summary[base]
    for e in engines:
        r = summary[e.info.name]
        lat_ratio = statistics.median(r["med"][c] / b["med"][c] for c in r["med"])
        enc_ratio = statistics.median(r["enc_d"][c] / max(b["enc_d"][c], 1e-9) for c in r["enc_d"])
        tok_ratio = statistics.median(r["tok_d"][c] / max(b["tok_d"][c], 1e-9) for c in r["tok_d"])
        wer = [x for lang, x in r["errs"] if lang == "en"]
        cer = [x for lang, x in r["errs"] if lang != "en"]
        fmt = lambda rates: f"{metrics.aggregate(rates).rate:7.3f}" if rates else f"{'-':>7s}"  # noqa: E731
        staged = r["enc"] > 0  # peers don't report stages
        stages = (f"{r['feat'] * 1e3:7.1f}ms {r['enc'] / len(data):7.2f}s {enc_ratio:6.2f}x "
                  f"{r['tok'] * 1e3:8.1f} {tok_ratio:6.2f}x") if staged else f"{'(not reported)':>44s}"
        print(f"{e.info.name:20s} {r['lat'] / len(data):7.2f}s {lat_ratio:7.2f}x {r['rtf']:6.3f} {stages} "
              f"{fmt(wer)} {fmt(cer)}" + (f"  ({r['failures']} failed calls)" if r["failures"] else ""))
    print("(latency/encoder: mean over clips of the per-clip medians; x: median over clips of the per-clip ratio; "
          "ms/token: decoding time incl. the prompt step / generated tokens; WER en / CER cjk: corpus rates vs the references "
          "(English examples; zh/ja/ko/yue recordings, Chinese script-normalized))")
    print()
    print(f"{'engine':20s} {'on disk':>10s} {'x'+base:>7s} {'resident':>10s} {'peak RSS':>10s} {'peak-before':>11s}")
    bd = next(e.info.disk_bytes for e in engines if e.info.name == base) or 1
    for e in engines:
        ts = [t for c in runs[e.info.name].values() for t in c]
        print(f"{e.info.name:20s} {mb(e.info.disk_bytes):>10s} {e.info.disk_bytes / bd:6.2f}x {mb(e.info.resident_bytes):>10s} "
              f"{mb(max(t.memory.peak_bytes for t in ts)):>10s} {mb(max(t.memory.peak_delta_bytes for t in ts)):>11s}")
    print("(resident: RSS growth while this engine loaded, all engines in one process; peak RSS: process high-water "
          "during its calls; peak-before: that peak above the RSS just before the call)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
