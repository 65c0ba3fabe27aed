"""`python -m asr_quant transcribe CLIP [--language xx] [--model ...] [--json]`
and `python -m asr_quant export --precision int8 --out DIR [--zip]`.

Runs every loaded precision on one clip. With --json it prints one JSON object
that other programs read (`error` null on success); otherwise a
table for people. Bad input gives a one-line message on stderr and exit code 2.

The JSON shape and what each memory field means: `asr_quant/engines/results.py`.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .settings import Settings

EXIT_BAD_INPUT = 2
EXIT_ENGINE_FAILED = 1


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (exit 2), as for bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        _fail(f"{self.prog}: {message}")


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m asr_quant", description="asr-quant: one recognizer at FP32, FP16 and INT8.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    t = sub.add_parser("transcribe", help="transcribe one clip with every precision")
    t.add_argument("clip", help="audio file (wav, flac, mp3, ogg/opus, m4a, webm, ...)")
    t.add_argument("--language", default=None, help="language code (e.g. en, zh, ja); detected when omitted")
    t.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    t.add_argument("--measure-memory", action="store_true",
                   help="measure each engine's working memory alone in a fresh process first (cached after)")
    t.add_argument("--explain", action="store_true",
                   help="for each engine whose text differs from FP32's: the first differing token, both top-5 "
                        "there and the per-layer hidden-state error (JSON: an 'explain' entry per engine)")
    Settings.add_arguments(t, only=["model", "precisions", "device", "threads", "cache_dir", "max_audio_s",
                                    "int8_plan", "int8_budget"])
    x = sub.add_parser("export", help="write the INT8 model, its manifest and a standalone script to a folder")
    x.add_argument("--precision", default="int8", choices=["int8"], help="what to export (INT8 only)")
    x.add_argument("--out", required=True, help="folder to create (or, with --zip, the zip file)")
    x.add_argument("--zip", action="store_true", help="write a zip instead of a folder")
    Settings.add_arguments(x, only=["model", "device", "threads", "cache_dir", "int8_plan", "int8_budget"])
    return parser


def export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .export import ExportError, run_cli

    try:
        settings = Settings.from_args(args)
    except ValueError as exc:
        _fail(f"bad setting: {exc}")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.zip:
        _fail(f"{out} exists and is not an empty folder")
    try:
        done = run_cli(settings, out, args.zip)
    except ExportError as exc:
        _fail(str(exc), EXIT_ENGINE_FAILED)
    print(done)
    return 0


def engine_row(engine, transcript) -> dict[str, Any]:
    """One engine's entry of the JSON shape (see engines/results.py)."""
    from .engines.results import engine_row as row

    return row(engine.info, transcript)


def transcribe(args: argparse.Namespace) -> int:
    from . import audio
    from .engines import EngineError, load_engines

    try:
        settings = Settings.from_args(args)
    except ValueError as exc:
        _fail(f"bad setting: {exc}")
    if settings.threads < 1:
        _fail("--threads must be at least 1")
    try:
        clip = audio.load(args.clip, max_s=settings.max_audio_s)
    except audio.AudioError as exc:
        _fail(str(exc))
    try:
        engines = load_engines(settings)
    except (EngineError, ValueError, OSError) as exc:
        _fail(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    from .engines import alone

    if args.measure_memory:
        alone.attach(engines, settings, args.clip, args.language)
    else:
        alone.attach_cached(engines, settings, args.clip, args.language)
    rows = [engine_row(e, e.transcribe(clip, args.language, progress=_progress(e.info.name, clip.duration_s)))
            for e in engines.engines]
    # A bad --language is bad input: every loaded engine rejects it with the same message.
    errors = {r["error"] for e, r in zip(engines.engines, rows) if e.info.available}
    if len(errors) == 1 and None not in errors and "language" in next(iter(errors)):
        _fail(next(iter(errors)))
    from .engines.results import run_result

    explained = _explain(engines, settings.model, clip, args.language, rows) if args.explain else {}
    for r in rows:
        if r["name"] in explained:
            r["explain"] = explained[r["name"]][0]
    result = run_result(engines.model.name, args.clip, clip.duration_s, clip.sample_rate_in, rows)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(format_table(result, engines.model.source))
        for _, txt in explained.values():
            print("\n" + txt)
    return 0 if any(r["error"] is None for r in rows) else EXIT_ENGINE_FAILED


def _progress(name: str, duration_s: float):
    """Long clips: each engine's progress per window, on stderr (stdout stays the result)."""
    if duration_s <= 30.0:
        return None
    return lambda done, total: print(f"{name}: {done:.0f} of {total:.0f} s", file=sys.stderr, flush=True)


def _explain(engines, model: str, clip, language, rows) -> dict[str, tuple[dict | None, str]]:
    """name -> (Divergence as a dict or None, text) for each engine whose text
    differs from the baseline's; a failure is that engine's message, not a traceback."""
    from dataclasses import asdict

    from .engines import EngineError
    from .engines.divergence import as_text, explain
    from .engines.results import baseline_name

    base = baseline_name([r["name"] for r in rows])
    ref = next((r for r in rows if r["name"] == base), None)
    out: dict[str, tuple[dict | None, str]] = {}
    if ref is None or ref["error"]:
        return out
    for r in rows:
        if r["name"] == base or r["error"] or r["text"] == ref["text"]:
            continue
        try:
            d = explain(engines, model, base, r["name"], clip, language)
        except EngineError as exc:
            out[r["name"]] = (None, f"{r['name']}: {exc}")
            continue
        out[r["name"]] = (asdict(d), as_text(d))
    return out


def format_table(result: dict[str, Any], source: str = "") -> str:
    from .units import fmt_bytes

    clip = result["clip"]
    host = result.get("host") or {}
    lines = [f"model: {result['model']}" + (f"  ({source})" if source else ""),
             f"clip:  {clip['path']}  {clip['duration_s']:.2f} s, {clip['sample_rate_in']} Hz in",
             f"CPU:   {host.get('cpu') or '?'}, {host.get('label') or '?'} (INT8's figures depend on it)", ""]
    head = f"{'engine':8} {'runtime':22} {'device':21} {'lang':5} {'tok':>4} {'latency':>8} {'RTF':>6} " \
           f"{'on disk':>8} {'peak alone':>10} {'work':>8} {'weights':>8}"
    lines += [head, "-" * len(head)]
    clips = set()
    for r in result["engines"]:
        if r["error"]:
            lines.append(f"{r['name']:8} {r['runtime'][:22]:22} {r['device'][:21]:21} error: {r['error']}")
            continue
        rtf = f"{r['rtf']:.3f}" if r["rtf"] is not None else "-"
        if r.get("working_clip"):
            c = r["working_clip"]
            clips.add(f"{c['name']}" + (f", {c['duration_s']:.1f} s" if c.get("duration_s") is not None else ""))
        lines.append(f"{r['name']:8} {r['runtime'][:22]:22} {r['device'][:21]:21} {r['language'] or '-':5} "
                     f"{r['tokens']:>4} {r['latency_s']:>7.2f}s {rtf:>6} {fmt_bytes(r['disk_bytes']):>8} "
                     f"{fmt_bytes(r.get('peak_rss_alone_bytes'), '-'):>10} {fmt_bytes(r['working_bytes'], '-'):>8} "
                     f"{fmt_bytes(r['weights_bytes']):>8}")
    lines.append("peak alone: peak RSS of the engine alone in a fresh process, what a machine must provision; work: "
                 "the working memory of a call, in that process" + (f", on {'; '.join(sorted(clips))}" if clips
                                                                    else "")
                 + "; weights: weights as stored (- = not measured yet: --measure-memory; MB = 10^6 bytes; "
                   "docs/memory.md)")
    lines.append("")
    for r in result["engines"]:
        if not r["error"]:
            lines.append(f"{r['name']}: {r['text']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from .engines.runtime_policy import prepare

    prepare()  # before anything imports torch
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "transcribe":
        return transcribe(args)
    if args.command == "export":
        return export(args)
    parser.print_help(sys.stderr)
    return EXIT_BAD_INPUT


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        raise SystemExit(130)
