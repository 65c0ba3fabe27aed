"""A browser session's runs, kept as dataclasses and exported to CSV and JSON.

The page keeps one `History` per session (gradio's State); the downloads are
written from it. CSV is long-form (one row per run and engine) so a fourth
engine or an unavailable one never changes the columns; JSON nests engines in
runs. Both read back into equal records, which the tests check.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from ..engines.base import Transcript
    from .compare import EngineResult, Request

MAX_RUNS = 200  # per session: bounds the memory a long-lived tab can hold


@dataclass
class EngineRun:
    """One engine's figures in one run; `error` set when it gave no transcript."""

    engine: str
    latency_s: float | None = None
    rtf: float | None = None
    metric: str | None = None  # "wer" | "cer" when a reference was given
    error_rate: float | None = None
    tokens: int = 0
    error: str | None = None


@dataclass
class RunRecord:
    """One request: the clip, the language used, and every engine's figures.

    `wall_s` is the whole request as the app saw it (decode, engines, diffs,
    metrics); `engines_s` the part spent inside engine calls.
    """

    run: int
    time: str  # local time, ISO 8601, seconds
    clip: str
    duration_s: float
    language: str  # the one asked for, or "auto (xx)" with what FP32 detected
    reference: bool
    engines: list[EngineRun] = field(default_factory=list)
    wall_s: float = 0.0
    engines_s: float = 0.0

    @property
    def outside_engines_s(self) -> float:
        return max(0.0, self.wall_s - self.engines_s)

    def engine(self, name: str) -> EngineRun | None:
        for e in self.engines:
            if e.engine == name:
                return e
        return None


_RUN_FIELDS = [f.name for f in fields(RunRecord) if f.name != "engines"]
_ENGINE_FIELDS = [f.name for f in fields(EngineRun)]
CSV_COLUMNS = _RUN_FIELDS + _ENGINE_FIELDS
_FLOATS = {"duration_s", "wall_s", "engines_s", "latency_s", "rtf", "error_rate"}
_INTS = {"run", "tokens"}


def now_iso() -> str:
    return datetime.now().replace(microsecond=0).isoformat()


def language_label(chosen: str | None, baseline: "Transcript | None") -> str:
    """The language a run used: the one asked for, or "auto (xx)" with what the baseline detected."""
    if chosen:
        return chosen
    return f"auto ({baseline.language if baseline is not None and baseline.language else '?'})"


def engine_run(r: "EngineResult") -> EngineRun:
    """An engine's figures in a run; a failed engine keeps its error, not its timing."""
    t = r.transcript
    return EngineRun(engine=t.engine, latency_s=t.latency_s if t.ok else None, rtf=t.rtf if t.ok else None,
                     metric=r.score.kind if r.score else None, error_rate=r.score.rate if r.score else None,
                     tokens=t.tokens, error=t.error)


def run_record(clip: str, duration_s: float, request: "Request", loaded: Sequence[str]) -> RunRecord:
    """The record of one request, for the engines in `loaded` (an engine that
    never loaded stays out of the history; its column says why)."""
    results = [r for r in request.results if r.transcript.engine in loaded]
    return RunRecord(run=0, time=now_iso(), clip=clip, duration_s=duration_s,
                     language=language_label(request.language, request.base),
                     reference=bool((request.reference or "").strip()),
                     engines=[engine_run(r) for r in results],
                     engines_s=sum(r.transcript.latency_s for r in results))


@dataclass
class History:
    """The runs of one browser session, oldest first, at most `MAX_RUNS`."""

    runs: list[RunRecord] = field(default_factory=list)
    next_run: int = 1

    def add(self, record: RunRecord) -> RunRecord:
        record.run = self.next_run
        self.next_run += 1
        self.runs.append(record)
        del self.runs[:-MAX_RUNS]
        return record

    def engine_names(self) -> list[str]:
        names: list[str] = []
        for r in self.runs:
            for e in r.engines:
                if e.engine not in names:
                    names.append(e.engine)
        return names

    # -- the table on the page ------------------------------------------------
    def table(self) -> tuple[list[str], list[list[Any]]]:
        """Headers and rows, newest run first, one column group per engine."""
        names = self.engine_names()
        headers = ["#", "time", "clip", "duration s", "language"]
        for n in names:
            headers += [f"{n} s", f"{n} RTF", f"{n} WER/CER"]
        rows = []
        for r in reversed(self.runs):
            row: list[Any] = [r.run, r.time[11:] if len(r.time) > 11 else r.time, r.clip,
                              f"{r.duration_s:.2f}", r.language]
            for n in names:
                e = r.engine(n)
                if e is None or e.error is not None:
                    row += ["error" if e is not None else "", "", ""]
                    continue
                rate = "" if e.error_rate is None else f"{(e.metric or '').upper()} {e.error_rate:.1%}"
                row += [_fmt(e.latency_s, "{:.3f}"), _fmt(e.rtf, "{:.3f}"), rate]
            rows.append(row)
        return headers, rows

    # -- exports ---------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({"runs": [asdict(r) for r in self.runs]}, ensure_ascii=False, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "History":
        data = json.loads(text)
        runs = []
        for r in data.get("runs", []):
            engines = [EngineRun(**e) for e in r.get("engines", [])]
            runs.append(RunRecord(**{**r, "engines": engines}))
        return cls(runs=runs, next_run=max((r.run for r in runs), default=0) + 1)

    def to_csv(self) -> str:
        out = io.StringIO()
        w = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in self.runs:
            base = {k: getattr(r, k) for k in _RUN_FIELDS}
            for e in r.engines or [EngineRun(engine="")]:
                w.writerow({**base, **{k: _csv_value(getattr(e, k)) for k in _ENGINE_FIELDS}})
        return out.getvalue()

    @classmethod
    def from_csv(cls, text: str) -> "History":
        runs: dict[int, RunRecord] = {}
        for row in csv.DictReader(io.StringIO(text)):
            run_id = int(row["run"])
            if run_id not in runs:
                values = {k: _parse(k, row[k]) for k in _RUN_FIELDS}
                values["reference"] = row["reference"] == "True"
                runs[run_id] = RunRecord(**values)
            if row["engine"]:
                runs[run_id].engines.append(EngineRun(**{k: _parse(k, row[k]) for k in _ENGINE_FIELDS}))
        ordered = list(runs.values())
        return cls(runs=ordered, next_run=max(runs, default=0) + 1)


def _fmt(v: float | None, pattern: str) -> str:
    return "" if v is None else pattern.format(v)


def _csv_value(v):
    return "" if v is None else v


def _parse(key: str, text: str):
    """CSV cells are strings; empty means None for optional fields."""
    if key in _FLOATS:
        return None if text == "" else float(text)
    if key in _INTS:
        return int(text)
    if key in ("engine", "clip", "time", "language"):
        return text
    return None if text == "" else text

