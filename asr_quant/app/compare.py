"""What each engine's transcript means next to FP32's and the reference.

The page (and anything else that shows runs) gets one `EngineResult` per
engine: the transcript, its diff against the baseline engine's transcript
(FP32 when loaded), and WER/CER against the reference when one was given.
The language picks word or character level: the one asked for, else the one
the baseline detected, else the text itself decides (see metrics).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from .. import metrics
from ..engines.base import Transcript
from ..engines.results import BASELINE, baseline_name  # noqa: F401 - the page reads them here


@dataclass
class EngineResult:
    transcript: Transcript
    diff: list | None = None  # list[metrics.DiffOp] against the baseline transcript
    diff_note: str = ""  # why there is no diff
    score: "metrics.ErrorRate | None" = None  # vs the reference, when given
    is_baseline: bool = False
    notes: list[str] = field(default_factory=list)


def baseline_first(engines: Sequence) -> list:
    """The engines in run order: the baseline first, so every other column can
    be diffed against it as soon as it is done."""
    base = baseline_name([e.info.name for e in engines])
    return sorted(engines, key=lambda e: e.info.name != base)


@dataclass
class Request:
    """One clip's transcripts as they arrive, each paired with the baseline's
    (the engine `baseline_name` chose, not whichever answered first)."""

    baseline: str | None
    language: str | None  # the one asked for; None = detect
    reference: str | None = None
    base: Transcript | None = None
    results: list[EngineResult] = field(default_factory=list)

    def add(self, t: Transcript) -> EngineResult:
        if t.engine == self.baseline:
            self.base = t
        r = compare(t, self.base, self.reference, text_language(self.language, self.base))
        self.results.append(r)
        return r


def text_language(chosen: str | None, baseline: Transcript | None) -> str | None:
    """The language to normalize and diff in: asked for, else detected by the baseline."""
    if chosen:
        return chosen
    if baseline is not None and baseline.ok and baseline.language:
        return baseline.language
    return None


def compare(t: Transcript, baseline: Transcript | None, reference: str | None,
            language: str | None) -> EngineResult:
    """Diff against the baseline and score against the reference; never raises
    for a failed engine (it simply gets neither)."""
    is_base = baseline is not None and t.engine == baseline.engine
    r = EngineResult(transcript=t, is_baseline=is_base)
    if not t.ok:
        return r
    if is_base:
        r.diff_note = "this is the baseline the others are compared with"
    elif baseline is None:
        r.diff_note = f"no {BASELINE} engine to compare with"
    elif not baseline.ok:
        r.diff_note = f"{baseline.engine} gave no transcript to compare with"
    else:
        r.diff = metrics.diff(baseline.text, t.text, language)
    ref = (reference or "").strip()
    if ref:
        r.score = metrics.error_rate(ref, t.text, language)
    return r
