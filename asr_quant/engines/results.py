"""The one JSON shape of a transcription run, shared by `python -m asr_quant
transcribe --json` and the page's `/transcribe_json` API, so programs read
both the same way:

    {"model": str, "clip": {"path", "duration_s", "sample_rate_in"},
     "host": {"level", "label", "cpu", "flags"},
     "engines": [{"name", "precision", "runtime", "device", "text", "language",
                  "tokens", "latency_s", "rtf", "disk_bytes", "weights_bytes",
                  "peak_rss_alone_bytes", "working_bytes", "working_clip",
                  "working_measured_at", "process_bytes",
                  "process_kind", "load_growth_bytes", "rss_bytes",
                  "peak_bytes", "error"[, "explain"]}]}

(`host`: the CPU and its instruction-set level, asr_quant.host; INT8's
figures depend on it.)

(`explain`, with `transcribe --explain` only, for an engine whose text differs
from FP32's: engines/divergence.py `Divergence` as a dict, or null.)

Memory fields (bytes; docs/memory.md has the definitions, engines/base.py
`Memory` the same in code): `peak_rss_alone_bytes` peak RSS of a fresh process
holding this engine alone, what a machine must provision (null until
measured); `weights_bytes` the weights as stored (tensor bytes at their stored
types; the field keeps its old name, the label reads "weights as stored");
`working_bytes` what a call on `working_clip` ({"name", "duration_s"}) needs
on top, measured in that same process (null until measured: `--measure-memory`,
the app or the benchmark measure it once and cache it, `working_measured_at`
says when);
`process_bytes` the whole process after the call (`process_kind`: process RSS,
or device memory via NVML on CUDA); `load_growth_bytes` RSS growth while this
engine loaded in this process (depends on load order; `rss_bytes` is the same
figure under its old name); `peak_bytes` the process RSS high-water mark
during the call.
"""
from __future__ import annotations

from typing import Any, Sequence

from .. import host
from .base import EngineInfo, Transcript

BASELINE = "FP32"


def baseline_name(names: Sequence[str]) -> str | None:
    """FP32 when it is loaded, else the first engine: the one place that decides
    what the others are compared with (page, CLI, API)."""
    if not names:
        return None
    return BASELINE if BASELINE in names else names[0]


def engine_row(info: EngineInfo, transcript: Transcript) -> dict[str, Any]:
    """One engine's entry (`error` is None on success)."""
    failed = transcript.error is not None
    return {
        "name": info.name,
        "precision": info.precision,
        "runtime": info.runtime,
        "device": info.device,
        "text": transcript.text,
        "language": transcript.language,
        "tokens": transcript.tokens,
        "latency_s": None if failed else round(transcript.latency_s, 4),
        "rtf": None if failed or transcript.rtf is None else round(transcript.rtf, 4),
        "disk_bytes": transcript.memory.disk_bytes,
        "weights_bytes": transcript.memory.weights_bytes,
        "peak_rss_alone_bytes": transcript.memory.peak_rss_alone,
        "working_bytes": transcript.memory.working_bytes,
        "working_clip": ({"name": transcript.memory.alone_clip, "duration_s": transcript.memory.alone_clip_s}
                         if transcript.memory.alone_clip else None),
        "working_measured_at": (info.alone or {}).get("measured_at"),
        "process_bytes": transcript.memory.process_bytes,
        "process_kind": transcript.memory.process_kind,
        "load_growth_bytes": transcript.memory.resident_bytes,
        "rss_bytes": transcript.memory.resident_bytes,
        "peak_bytes": transcript.memory.peak_bytes,
        "error": transcript.error,
    }


def run_result(model: str, clip_path: str, duration_s: float, sample_rate_in: int,
               rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole object for one clip."""
    return {"model": model,
            "clip": {"path": str(clip_path), "duration_s": round(duration_s, 3), "sample_rate_in": sample_rate_in},
            "host": host.detect().as_dict(), "engines": rows}
