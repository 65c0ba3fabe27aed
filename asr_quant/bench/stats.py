"""The benchmark's arithmetic: per-call records in, per-engine figures out.

Pure functions on plain data, so the figures can be checked by hand on made-up
transcripts. Conventions: latency statistics are over every timed call
(warm-up excluded); RTF is total compute time over total audio time; the
text scored is the first timed run's (runs that disagree are counted); an
engine that failed on a clip is scored as if it had returned nothing there
(all deletions), and the failure is counted; ratios to FP32 pair each clip
with FP32's on the same clip in the same run.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import numpy as np

from ..engines.base import EngineInfo, Transcript


@dataclass
class Record:
    """One engine on one clip in one timed run."""

    engine: str
    clip: str
    row: str  # results row, e.g. "zh-noisy (espeak-ng)"
    language: str
    run: int
    reference: str
    audio_s: float
    text: str = ""
    tokens: int = 0
    total_s: float = 0.0
    features_s: float = 0.0
    encoder_s: float = 0.0
    decoding_s: float = 0.0
    peak_bytes: int = 0
    peak_delta_bytes: int = 0
    memory_kind: str = "cpu-rss"
    nvml_used_bytes: int | None = None  # CUDA only: device memory in use after the call (all processes)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_transcript(cls, t: Transcript, *, clip: str, row: str, language: str, run: int,
                        reference: str) -> "Record":
        return cls(engine=t.engine, clip=clip, row=row, language=language, run=run, reference=reference,
                   audio_s=t.audio_s, text=t.text, tokens=t.tokens, total_s=t.timings.total_s,
                   features_s=t.timings.features_s, encoder_s=t.timings.encoder_s,
                   decoding_s=t.timings.decoding_s, peak_bytes=t.memory.peak_bytes,
                   peak_delta_bytes=t.memory.peak_delta_bytes, memory_kind=t.memory.kind,
                   error=t.error, warnings=list(t.warnings))


# --- small statistics ------------------------------------------------------------

def percentile(values: Iterable[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), q in [0, 100]."""
    xs = sorted(values)
    if not xs:
        return None
    if len(xs) == 1:
        return float(xs[0])
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))


def spread(values: Iterable[float]) -> dict[str, float | None]:
    xs = list(values)
    if not xs:
        return dict(n=0, median=None, p90=None, min=None, max=None, mean=None)
    return dict(n=len(xs), median=float(statistics.median(xs)), p90=percentile(xs, 90),
                min=float(min(xs)), max=float(max(xs)), mean=float(statistics.fmean(xs)))


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


# --- error rates -----------------------------------------------------------------

@dataclass
class Tally:
    """Summed edit operations of one row (or of everything)."""

    kind: str  # "WER" | "CER" | "mixed"
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    hits: int = 0
    ref_len: int = 0
    clips: int = 0
    failed: int = 0

    @property
    def rate(self) -> float | None:
        if self.ref_len == 0:
            return None
        return (self.substitutions + self.deletions + self.insertions) / self.ref_len

    def add(self, er, failed: bool = False) -> None:
        if self.kind != er.kind.upper():
            self.kind = "mixed"
        self.substitutions += er.substitutions
        self.deletions += er.deletions
        self.insertions += er.insertions
        self.hits += er.hits
        self.ref_len += er.ref_len
        self.clips += 1
        self.failed += int(failed)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rate"] = self.rate
        return d


ErrorFn = Callable[[str, str, str], object]  # (reference, hypothesis, language) -> ErrorRate


def default_error_fn() -> ErrorFn:
    from ..metrics import error_rate

    return error_rate


def error_tallies(records: list[Record], error_fn: ErrorFn | None = None) -> dict:
    """Per row and overall, from each clip's first timed run.

    `overall_pooled` sums edits over all rows (words and characters mixed, as
    the only single figure that weighs every clip); `overall_mean` is the mean
    of the row rates, the way the article averages its languages."""
    error_fn = error_fn or default_error_fn()
    first: dict[str, Record] = {}
    texts: dict[str, set[str]] = {}
    for r in sorted(records, key=lambda r: r.run):
        first.setdefault(r.clip, r)
        if r.error is None:
            texts.setdefault(r.clip, set()).add(r.text)
    rows: dict[str, Tally] = {}
    pooled: Tally | None = None
    for clip, r in first.items():
        er = error_fn(r.reference, "" if r.error else r.text, r.language)
        tally = rows.setdefault(r.row, Tally(kind=er.kind.upper()))
        tally.add(er, failed=r.error is not None)
        if pooled is None:
            pooled = Tally(kind=er.kind.upper())
        pooled.add(er, failed=r.error is not None)
    rates = [t.rate for t in rows.values() if t.rate is not None]
    return dict(
        rows={k: v.to_dict() for k, v in rows.items()},
        overall_pooled=pooled.to_dict() if pooled else None,
        overall_mean=statistics.fmean(rates) if rates else None,
        unstable_clips=sorted(c for c, s in texts.items() if len(s) > 1),
    )


# --- one engine's figures --------------------------------------------------------

def summarize(info: EngineInfo, records: list[Record], role: str = "engine",
              error_fn: ErrorFn | None = None) -> dict:
    """Every figure of one engine over its records (warm-up already excluded)."""
    ok = [r for r in records if r.error is None]
    total = sum(r.total_s for r in ok)
    audio = sum(r.audio_s for r in ok)
    tokens = sum(r.tokens for r in ok)
    decoding = sum(r.decoding_s for r in ok)
    staged = [r for r in ok if r.features_s or r.encoder_s or r.decoding_s]
    stages = None
    if staged:
        stages = dict(
            features_ms=spread(1000 * r.features_s for r in staged),
            encoder_ms=spread(1000 * r.encoder_s for r in staged),
            decoding_ms=spread(1000 * r.decoding_s for r in staged),
            other_ms=spread(1000 * max(0.0, r.total_s - r.features_s - r.encoder_s - r.decoding_s) for r in staged),
            decoding_per_token_ms=(1000 * sum(r.decoding_s for r in staged) / sum(r.tokens for r in staged)
                                   if sum(r.tokens for r in staged) else None),
            share=dict(
                features=_share(staged, "features_s"), encoder=_share(staged, "encoder_s"),
                decoding=_share(staged, "decoding_s"),
            ),
        )
    peaks = [r.peak_bytes for r in records if r.peak_bytes]
    deltas = [r.peak_delta_bytes for r in records if r.peak_bytes]
    errors = sorted({r.error for r in records if r.error})
    return dict(
        name=info.name, role=role, precision=info.precision, runtime=info.runtime, device=info.device,
        model=info.model, details=info.details, threads=info.threads, available=info.available,
        load_error=info.error, load_s=info.load_s,
        calls=len(records), failed_calls=len(records) - len(ok), errors=errors,
        warnings=sorted({w for r in records for w in r.warnings}),
        latency_ms=spread(1000 * r.total_s for r in ok),
        stages=stages,
        rtf=(total / audio) if audio > 0 else None,
        rtf_per_call=spread(r.total_s / r.audio_s for r in ok if r.audio_s > 0),
        throughput_clips_per_s=(len(ok) / total) if total > 0 else None,
        compute_s=total, audio_s=audio, tokens=tokens,
        decoding_per_token_ms=(1000 * decoding / tokens) if tokens and decoding else None,
        memory=dict(
            disk_bytes=info.disk_bytes, weights_bytes=info.weights_bytes, resident_bytes=info.resident_bytes,
            peak_bytes=max(peaks) if peaks else None,
            peak_delta_bytes=max(deltas) if deltas else None,
            kind=records[0].memory_kind if records else None,
            nvml_used_bytes_max=max((r.nvml_used_bytes for r in records if r.nvml_used_bytes), default=None),
        ),
        errors_by_row=error_tallies(records, error_fn) if records else None,
        quant=info.quant,  # INT8: the plan and its sensitivity table, from the artifact manifest
    )


def _share(records: list[Record], attr: str) -> float | None:
    total = sum(r.total_s for r in records)
    return sum(getattr(r, attr) for r in records) / total if total > 0 else None


# --- ratios to a reference engine ------------------------------------------------

LATENCY_RESAMPLES = 1000
LATENCY_SEED = 20260213
LATENCY_LEVEL = 0.95


def paired_latency_ratio(records: list[Record], reference: list[Record]) -> dict:
    """Latency relative to the reference engine, clip by clip in the same run.

    `of_totals` is the ratio of summed times over the calls both finished;
    `median_paired` the median of per-call ratios (robust to one slow call);
    `ci_low`/`ci_high` the run's noise on that median: a 95 % percentile
    interval over a seeded bootstrap of clips (a drawn clip brings all its
    runs), None with fewer than 2 clips."""
    ref = {(r.clip, r.run): r.total_s for r in reference if r.error is None}
    pairs = [(r.clip, r.total_s, ref[(r.clip, r.run)]) for r in records
             if r.error is None and (r.clip, r.run) in ref and ref[(r.clip, r.run)] > 0]
    if not pairs:
        return dict(pairs=0, of_totals=None, median_paired=None, p10_paired=None, p90_paired=None,
                    ci_low=None, ci_high=None)
    per = [a / b for _, a, b in pairs]
    low, high = _bootstrap_median([c for c, _, _ in pairs], per)
    return dict(pairs=len(pairs), of_totals=sum(a for _, a, _ in pairs) / sum(b for _, _, b in pairs),
                median_paired=float(statistics.median(per)), p10_paired=percentile(per, 10),
                p90_paired=percentile(per, 90), ci_low=low, ci_high=high, level=LATENCY_LEVEL,
                resamples=LATENCY_RESAMPLES if low is not None else 0)


def _bootstrap_median(clips: list[str], values: list[float]) -> tuple[float | None, float | None]:
    """Percentile interval of the median of `values` over resamples of their clips."""
    by: dict[str, list[float]] = {}
    for c, v in zip(clips, values):
        by.setdefault(c, []).append(v)
    groups = [np.array(v) for v in by.values()]
    if len(groups) < 2:
        return None, None
    rng = np.random.default_rng(LATENCY_SEED)
    meds = [float(np.median(np.concatenate([groups[i] for i in idx])))
            for idx in rng.integers(0, len(groups), size=(LATENCY_RESAMPLES, len(groups)))]
    tail = 100 * (1 - LATENCY_LEVEL) / 2
    return float(np.percentile(meds, tail)), float(np.percentile(meds, 100 - tail))


def ratios_to(summary: dict, reference: dict, records: list[Record], ref_records: list[Record]) -> dict:
    """Latency, size, memory ratios and error-rate differences against the
    reference engine's summary (FP32), all from the same run."""
    mem, rmem = summary["memory"], reference["memory"]
    out = dict(
        reference=reference["name"],
        latency=paired_latency_ratio(records, ref_records),
        latency_median=ratio(summary["latency_ms"]["median"], reference["latency_ms"]["median"]),
        rtf=ratio(summary["rtf"], reference["rtf"]),
        disk=ratio(mem["disk_bytes"] or None, rmem["disk_bytes"] or None),
        resident=ratio(mem["resident_bytes"] or None, rmem["resident_bytes"] or None),
        peak=ratio(mem["peak_bytes"], rmem["peak_bytes"]),
        compression=ratio(rmem["disk_bytes"] or None, mem["disk_bytes"] or None),
    )
    if summary.get("stages") and reference.get("stages"):
        st, rst = summary["stages"], reference["stages"]
        out["stages_median"] = {k: ratio(st[k]["median"], rst[k]["median"])
                                for k in ("features_ms", "encoder_ms", "decoding_ms")}
        out["decoding_per_token"] = ratio(st["decoding_per_token_ms"], rst["decoding_per_token_ms"])
    e, re_ = summary.get("errors_by_row"), reference.get("errors_by_row")
    if e and re_:
        out["error_rate_delta"] = {row: _diff(t["rate"], re_["rows"].get(row, {}).get("rate"))
                                   for row, t in e["rows"].items()}
        out["error_rate_delta"]["overall_mean"] = _diff(e["overall_mean"], re_["overall_mean"])
        out["error_rate_delta"]["overall_pooled"] = _diff(
            (e["overall_pooled"] or {}).get("rate"), (re_["overall_pooled"] or {}).get("rate"))
    return out


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b
