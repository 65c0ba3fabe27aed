"""Live mode on this machine: a recording streamed in real time through the
page's own live logic (asr_quant.app.stream), then the same audio uploaded as
one clip.

Prints, per engine: its live RTF (compute over audio of the segments it did),
the delay from a segment's end in the stream (0.5 s into the pause after it,
where it is cut) to that engine's text, on the wall clock of the stream (so
the wait for the 0.5 s chunk that holds the end counts), median, worst and how
many within 2 s; the worst from where its speech ended, 0.5 s earlier; and
whether it kept up. Then, for FP32 (or
--compare), the live transcript once stopped against the same audio as one
clip (long-form decoding), prompt by prompt: a prompt matches when its words
come out the same, word for word, in both.

The default recording is Debian's recorded Spanish prompts (2-8 s each,
asterisk-core-sounds-es-wav) played back to back with 0.6 s pauses, as long
as --seconds. Or give --wav (then there is no per-prompt comparison).

    python scripts/measure_live.py --seconds 90 --precisions int8,fp32,fp16
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jiwer  # noqa: E402

from asr_quant import audio, host, metrics  # noqa: E402
from asr_quant.app import stream  # noqa: E402
from asr_quant.bench import prompt_stream, prompts  # noqa: E402
from asr_quant.engines import load_engines  # noqa: E402
from asr_quant.settings import Settings  # noqa: E402

SR = 16000


def words(text: str) -> list[str]:
    return metrics.normalize(text, "es").split()


def stream_in_real_time(sess: stream.LiveSession, samples, chunk_s: float) -> float:
    """Chunks of `chunk_s` handed over no faster than they would be recorded;
    returns the clock at the stream's start (sample 0 was "said" then)."""
    step = int(chunk_s * SR)
    t0 = time.perf_counter()
    for i in range(0, len(samples), step):
        wait = t0 + (i + step) / SR - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        sess.feed(SR, samples[i:i + step])
    return t0


def prompt_of(piece, placed) -> int | None:
    """The prompt a segment overlaps most."""
    best, arg = 0.0, None
    for k, p in enumerate(placed):
        overlap = min(piece.end_s, p.end_s) - max(piece.start_s, p.start_s)
        if overlap > best:
            best, arg = overlap, k
    return arg


def matching_prompts(worker: stream.EngineWorker, upload_text: str, placed) -> tuple[int, int, list[str]]:
    """(prompts whose live words equal the upload's, prompts, those that differ)."""
    live, owner = [], []
    for d in worker.done:
        k = prompt_of(d.piece, placed)
        for w in words(d.text):
            live.append(w)
            owner.append(k)
    bad = set(range(len(placed))) - set(owner)  # a prompt with no live words at all
    out = jiwer.process_words(" ".join(live), " ".join(words(upload_text)))
    for c in out.alignments[0]:
        if c.type == "equal":
            continue
        span = range(c.ref_start_idx, c.ref_end_idx) if c.type != "insert" else [max(0, c.ref_start_idx - 1)]
        bad |= {owner[i] for i in span if i < len(owner)}
    bad.discard(None)
    return len(placed) - len(bad), len(placed), [placed[k].utt.text for k in sorted(bad)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=90.0, help="length of the prompt stream (default 90)")
    ap.add_argument("--wav", help="stream this file instead of the prompts")
    ap.add_argument("--language", default="es")
    ap.add_argument("--compare", default="FP32", help="engine whose live text is compared with the upload's")
    ap.add_argument("--chunk-s", type=float, default=0.5, help="as the page streams (gradio stream_every)")
    ap.add_argument("--json", help="write the figures here too")
    Settings.add_arguments(ap, only=["model", "precisions", "threads", "cache_dir"])
    args = ap.parse_args(argv)
    settings = Settings.from_args(args)
    settings.device = "cpu"

    placed = []
    if args.wav:
        samples = audio.load(args.wav, max_s=3600).samples
    else:
        utts = [u for u in prompts.builtin_es() if 2.0 <= u.duration_s <= 8.0]
        rec = prompt_stream.build(utts, total_s=args.seconds)
        samples, placed = rec.samples, rec.placed
    engines = load_engines(settings)
    ready = [e for e in engines.engines if e.info.available]
    print(f"host: {host.detect().describe()}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"{settings.threads} threads per engine; "
          f"{len(samples) / SR:.1f} s streamed in {args.chunk_s} s chunks in real time", flush=True)

    sess = stream.LiveSession(ready, args.language)
    t0 = stream_in_real_time(sess, samples, args.chunk_s)
    stopped_at = time.perf_counter()
    recorded = sess.stop()  # what the page runs as one clip once recording stops
    sess.wait(600.0)
    caught_up_s = time.perf_counter() - stopped_at
    print(f"streamed {stopped_at - t0:.1f} s; {len(sess.pieces)} segments; all caught up {caught_up_s:.1f} s "
          "after the stream ended\n")
    same_audio = len(recorded) == len(samples) and float(abs(recorded - samples).max()) == 0.0
    print(f"the recording assembled from the stream is the streamed audio, sample for sample: {same_audio} "
          "(so the one-clip pass after stop reads what an upload of the same audio reads)")
    report = {"host": host.detect().as_dict(), "audio_s": len(samples) / SR, "segments": len(sess.pieces),
              "caught_up_after_stop_s": caught_up_s, "recording_identical": same_audio,
              "load_average": os.getloadavg(), "engines": {}}
    print("| engine | live RTF | segments done | delay after segment end, median | worst | within 2 s | "
          "worst after speech end | kept up |")
    print("|---|---|---|---|---|---|---|---|")
    for w in sess.workers:
        s = w.state()
        delays = [d.shown_at - (t0 + d.piece.end_s) for d in w.done]  # the stream's clock, not the cut's
        after_speech = [d.shown_at - (t0 + d.piece.speech_end_s) for d in w.done]
        med = statistics.median(delays) if delays else None
        worst = max(delays) if delays else None
        within = sum(d <= 2.0 for d in delays)
        report["engines"][w.name] = {
            "rtf": s.rtf, "done": s.done, "segments": len(sess.pieces), "delay_median_s": med, "delay_max_s": worst,
            "within_2_s": within, "delay_after_speech_max_s": max(after_speech) if after_speech else None,
            "kept_up": s.keeps_up, "dropped": s.dropped, "delays_s": delays,
            "after_cut_s": [d.delay_s for d in w.done], "compute_s": [d.compute_s for d in w.done],
            "segment_s": [d.piece.duration_s for d in w.done]}
        fmt = (lambda v: f"{v:.2f} s" if v is not None else "-")
        print(f"| {w.name} | {s.rtf:.2f} | {s.done}/{len(sess.pieces)} | {fmt(med)} | {fmt(worst)} | "
              f"{within} of {s.done} | {fmt(max(after_speech))} | {'yes' if s.keeps_up else 'no: ' + s.line()} |"
              if s.rtf is not None else f"| {w.name} | - |")
    note = ", ".join(f"{w.name} (RTF {w.state().rtf:.2f})" for w in sess.workers
                     if w.state().keeps_up and w.state().rtf is not None)
    behind = ", ".join(f"{w.name} ({w.state().line()})" for w in sess.workers if not w.state().keeps_up)
    print(f"\nkeep up here: {note or 'none'}" + (f"; fall behind: {behind}" if behind else ""))

    if placed:
        worker = next((w for w in sess.workers if w.name == args.compare), None)
        if worker is not None and not worker.dropped:
            from asr_quant.audio import Clip

            upload = worker.engine.transcribe(Clip(samples=samples, name="stream"), args.language)
            same, total, differ = matching_prompts(worker, upload.text, placed)
            ref = " ".join(p.utt.text for p in placed)
            wer_live, wer_upload = (metrics.error_rate(ref, t, "es").rate for t in (worker.text(), upload.text))
            report["compare"] = {"engine": args.compare, "prompts_matching": same, "prompts": total,
                                 "wer_live": wer_live, "wer_upload": wer_upload,
                                 "differ": differ, "live_text": worker.text(), "upload_text": upload.text}
            print(f"\n{args.compare}: live transcript once stopped vs the same audio uploaded as one clip: "
                  f"{same} of {total} prompts word for word ({100 * same / total:.0f} %); WER against the prompts' "
                  f"texts: live {wer_live:.3f}, one clip {wer_upload:.3f}")
            for t in differ:
                print(f"  differs: {t}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
