"""The one JSON shape of a transcription run, shared by `python -m asr_quant
transcribe --json` and the page's `/transcribe_json` API, so programs read
both the same way:

    {"model": str, "clip": {"path", "duration_s", "sample_rate_in"},
     "engines": [{"name", "precision", "runtime", "device", "text", "language",
                  "tokens", "latency_s", "rtf", "disk_bytes", "rss_bytes",
                  "peak_bytes", "error"}]}
"""
from __future__ import annotations

from typing import Any

from .base import EngineInfo, Transcript


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
        "rss_bytes": transcript.memory.resident_bytes,
        "peak_bytes": transcript.memory.peak_bytes,
        "error": transcript.error,
    }


def run_result(model: str, clip_path: str, duration_s: float, sample_rate_in: int,
               rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole object for one clip."""
    return {"model": model,
            "clip": {"path": str(clip_path), "duration_s": round(duration_s, 3), "sample_rate_in": sample_rate_in},
            "engines": rows}
