"""Paired accuracy statistics: each engine against FP32 on the same clips.

Three figures per engine and row, and pooled over the recorded rows:
- `identical`: share of clips whose transcript equals FP32's after the
  metric's normalization (zero edits between the two);
- `vs_fp32`: the engine's error rate with FP32's own transcript as the
  reference: how far the precision moves the output, whatever the truth;
- `delta`: the engine's error rate minus FP32's (both against the reference
  text, edits pooled over clips), with a 95 % interval from a paired
  bootstrap over clips: each resample draws clips with replacement and takes
  both engines' edits on the drawn clips, so the clip-to-clip spread that both
  share cancels. Seeded; the resample count and clip count are reported.

Pure functions on `stats.Record`s, the first timed run of each clip (as
`stats.error_tallies`); a failed call scores as an empty transcript and is
never identical. Rows pool words and characters when they mix (e.g. zh + es).

Recorded clips are also pooled over those that fit one 30 s window
(`recorded_one_window`): a longer clip is cut at pauses by this project's
engines and decoded long-form (seeking by timestamps) by faster-whisper in its
own implementation, so on those clips a peer's text can move for a reason that
has nothing to do with its precision.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stats import ErrorFn, Record, default_error_fn

REFERENCE = "FP32"
SEED = 20260212
RESAMPLES = 2000
LEVEL = 0.95
WINDOW_S = 30.0  # Whisper's encoder window: clips up to this long are one decode for every engine


@dataclass
class ClipPair:
    """One clip: edits of the engine and of FP32 against the reference text,
    and of the engine against FP32's transcript."""

    clip: str
    row: str
    ref_len: int  # reference units (words or characters)
    engine_edits: int
    fp32_edits: int
    vs_fp32_edits: int
    fp32_len: int  # units in FP32's transcript
    identical: bool
    audio_s: float = 0.0


def _first(records: list[Record]) -> dict[str, Record]:
    out: dict[str, Record] = {}
    for r in sorted(records, key=lambda r: r.run):
        out.setdefault(r.clip, r)
    return out


def _text(r: Record) -> str:
    return "" if r.error else r.text


def pair_clips(records: list[Record], fp32: list[Record], error_fn: ErrorFn | None = None) -> list[ClipPair]:
    """One ClipPair per clip both engines ran, in FP32's clip order."""
    error_fn = error_fn or default_error_fn()
    mine, base = _first(records), _first(fp32)
    out = []
    for clip, f in base.items():
        e = mine.get(clip)
        if e is None:
            continue
        er_e = error_fn(f.reference, _text(e), f.language)
        er_f = error_fn(f.reference, _text(f), f.language)
        er_x = error_fn(_text(f), _text(e), f.language)
        edits_x = er_x.substitutions + er_x.deletions + er_x.insertions
        out.append(ClipPair(clip=clip, row=f.row, ref_len=er_e.ref_len,
                            engine_edits=er_e.substitutions + er_e.deletions + er_e.insertions,
                            fp32_edits=er_f.substitutions + er_f.deletions + er_f.insertions,
                            vs_fp32_edits=edits_x, fp32_len=er_x.ref_len,
                            identical=e.error is None and f.error is None and edits_x == 0,
                            audio_s=f.audio_s))
    return out


def bootstrap_delta(pairs: list[ClipPair], resamples: int = RESAMPLES, seed: int = SEED,
                    level: float = LEVEL) -> tuple[float | None, float | None]:
    """(low, high) percentile interval of the pooled error-rate delta over
    clip resamples; (None, None) with fewer than 2 clips."""
    if len(pairs) < 2:
        return None, None
    e = np.array([p.engine_edits for p in pairs], dtype=np.float64)
    f = np.array([p.fp32_edits for p in pairs], dtype=np.float64)
    n = np.array([p.ref_len for p in pairs], dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, len(pairs), size=(resamples, len(pairs)))
    units = n[idx].sum(axis=1)
    ok = units > 0
    deltas = (e[idx].sum(axis=1) - f[idx].sum(axis=1))[ok] / units[ok]
    if not len(deltas):
        return None, None
    tail = 100 * (1 - level) / 2
    return float(np.percentile(deltas, tail)), float(np.percentile(deltas, 100 - tail))


def summarize_pairs(pairs: list[ClipPair], resamples: int = RESAMPLES, seed: int = SEED) -> dict:
    """The three figures over a set of clips (one row, or a pool)."""
    units = sum(p.ref_len for p in pairs)
    fp32_units = sum(p.fp32_len for p in pairs)
    low, high = bootstrap_delta(pairs, resamples, seed)
    delta = None if units == 0 else (sum(p.engine_edits for p in pairs) - sum(p.fp32_edits for p in pairs)) / units
    return dict(
        clips=len(pairs),
        identical=sum(p.identical for p in pairs) / len(pairs) if pairs else None,
        identical_clips=sum(p.identical for p in pairs),
        vs_fp32=(sum(p.vs_fp32_edits for p in pairs) / fp32_units) if fp32_units else None,
        rate=(sum(p.engine_edits for p in pairs) / units) if units else None,
        fp32_rate=(sum(p.fp32_edits for p in pairs) / units) if units else None,
        delta=delta, ci_low=low, ci_high=high, level=LEVEL,
        resamples=resamples if low is not None else 0, seed=seed,
    )


def paired_stats(records: dict[str, list[Record]], recorded_rows: set[str], error_fn: ErrorFn | None = None,
                 reference: str = REFERENCE, resamples: int = RESAMPLES, seed: int = SEED) -> dict:
    """Per engine (all but the reference): per row, pooled over the recorded
    rows, and pooled over the synthetic rows."""
    base = records.get(reference) or []
    out: dict = dict(reference=reference, seed=seed, resamples=resamples, level=LEVEL, engines={})
    if not base:
        return out
    for name, recs in records.items():
        if name == reference or not recs:
            continue
        pairs = pair_clips(recs, base, error_fn)
        rows = sorted({p.row for p in pairs})
        out["engines"][name] = dict(
            rows={row: summarize_pairs([p for p in pairs if p.row == row], resamples, seed) for row in rows},
            recorded=summarize_pairs([p for p in pairs if p.row in recorded_rows], resamples, seed),
            recorded_one_window=summarize_pairs([p for p in pairs if p.row in recorded_rows
                                                 and p.audio_s <= WINDOW_S], resamples, seed),
            synthetic=summarize_pairs([p for p in pairs if p.row not in recorded_rows], resamples, seed),
        )
    return out


def from_results(res: dict, error_fn: ErrorFn | None = None) -> dict:
    """`paired_stats` from a results dict (a fresh run or a saved results.json)."""
    fields = Record.__dataclass_fields__
    records = {k: [Record(**{f: v for f, v in r.items() if f in fields}) for r in recs]
               for k, recs in (res.get("records") or {}).items()}
    return paired_stats(records, recorded_rows(res), error_fn)


def recorded_rows(res: dict) -> set[str]:
    """Rows of recorded speech: marked so by the corpus, or (older results)
    any source but espeak-ng."""
    return {row for row, d in res["corpus"]["rows"].items()
            if d.get("recorded", d.get("source", "espeak-ng") != "espeak-ng")}
