"""The targets of the default INT8 (issue 22), as one table that is both
printed and judged: each row names its figure, how it is compared, the
threshold and against what, so the report can't cite one threshold and judge
another. A target whose row is missing from the run is shown as "not judged
(no <row> in this run)", never as met."""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable

from ..units import MB, fmt_bytes
from .paired_report import interval, paired_of

ENGINE = "INT8"  # the run's own INT8 row: the one the page and the CLI load
FP32, ORT_FP32, PEER = "FP32", "ORT-FP32", "faster-whisper int8"
_OPS = {"<=": operator.le, ">=": operator.ge}


@dataclass(frozen=True)
class Target:
    """One row of the table: `figure` `comparator` `threshold` [`unit`] `against`."""

    key: str
    figure: str  # what is measured, e.g. "latency, median of per-clip ratios"
    comparator: str  # "<=" or ">="
    threshold: float
    unit: str  # "x", "%", "points", "MB", "" (a ratio to `against`'s own figure)
    against: str  # what it is compared with, e.g. "faster-whisper int8"
    needs: tuple[str, ...]  # rows the run must have for it to be judged

    @property
    def text(self) -> str:
        """The target as printed, e.g. 'INT8 latency, median of per-clip ratios <= 0.65x faster-whisper int8'."""
        if self.unit == "x":
            limit = f"{self.threshold:g}x {self.against}"
        elif self.unit == "":
            limit = f"{self.against}'s"
        elif self.unit == "points":
            limit = f"{self.threshold:+g} points ({self.against})"
        elif self.unit == "MB":
            limit = f"{self.threshold:g} MB"
        else:
            limit = f"{self.threshold:g} {self.unit} ({self.against})"
        return f"{ENGINE} {self.figure} {self.comparator} {limit}"

    def met(self, measured: float) -> bool:
        return _OPS[self.comparator](measured, self.threshold)


INT8_TARGETS: tuple[Target, ...] = (
    Target("identical", "identical to FP32", ">=", 92, "%", "share of recorded clips", (FP32, ENGINE)),
    Target("wer_delta", "error-rate (WER/CER) delta to FP32, upper end of the 95 % interval", "<=", 0.3, "points",
           "recorded clips, paired bootstrap", (FP32, ENGINE)),
    Target("vs_peer", "latency, median of per-clip ratios", "<=", 0.65, "x", PEER, (ENGINE, PEER)),
    Target("vs_ort", "latency, median of per-clip ratios", "<=", 0.6, "x", ORT_FP32, (ENGINE, ORT_FP32)),
    Target("vs_fp32", "latency, median of per-clip ratios", "<=", 0.40, "x", "PyTorch FP32", (ENGINE, FP32)),
    Target("disk", "size on disk", "<=", 100, "MB", "", (ENGINE,)),
    Target("peak_alone", "peak RSS alone (fresh process each)", "<=", 1.0, "", PEER, (ENGINE, PEER)),
)


def _alone_peak(res: dict, name: str):
    return (((_by(res).get(name) or {}).get("memory") or {}).get("alone") or {}).get("peak_rss")


def _by(res: dict) -> dict:
    return {e["name"]: e for e in res.get("engines", []) if e.get("available", True)}


def _pair(res: dict, a: str, b: str):
    p = (res.get("pairs") or {}).get(f"{a} / {b}") or {}
    return p.get("median_paired"), p


def _measure(t: Target, res: dict) -> tuple[float | None, str, str | None]:
    """(value in the target's unit, text shown, row missing or None)."""
    from .report import ratio_cell  # report imports this module at its top

    if t.key in ("identical", "wer_delta"):
        pool = (((paired_of(res).get("engines") or {}).get(ENGINE) or {}).get("recorded") or {})
        if not pool.get("clips"):
            return None, "", "recorded clips"
        if t.key == "identical":
            if pool.get("identical") is None:
                return None, "", "recorded clips"
            return (100 * pool["identical"], f"{100 * pool['identical']:.1f} % "
                    f"({pool['identical_clips']}/{pool['clips']} clips)", None)
        hi = pool.get("ci_high")
        if hi is None:
            return None, "", "recorded clips"
        return 100 * hi, f"{100 * pool['delta']:+.2f} points, interval {interval(pool)}, {pool['clips']} clips", None
    if t.key in ("vs_peer", "vs_ort", "vs_fp32"):
        other = {"vs_peer": PEER, "vs_ort": ORT_FP32, "vs_fp32": FP32}[t.key]
        value, p = _pair(res, ENGINE, other)
        return value, ratio_cell(p), None
    if t.key == "disk":
        n = ((_by(res).get(ENGINE) or {}).get("memory") or {}).get("disk_bytes")
        return (None, "", None) if not n else (n / MB, fmt_bytes(n), None)
    if t.key == "peak_alone":
        mine, theirs = _alone_peak(res, ENGINE), _alone_peak(res, PEER)
        if not (mine and theirs):
            return None, "", f"peak RSS alone of {ENGINE if not mine else PEER}"
        return mine / theirs, f"{fmt_bytes(mine)} vs {fmt_bytes(theirs)} ({mine / theirs:.2f}x)", None
    raise ValueError(f"no measurement for target {t.key!r}")


def judge(res: dict, table: tuple[Target, ...] | None = None,
          measure: Callable[[Target, dict], tuple] = _measure) -> list[dict]:
    """Every target of `table` (default INT8_TARGETS), with its measured value
    and verdict: met True/False, or None with "not judged (...)" shown."""
    table = INT8_TARGETS if table is None else table
    have = set(_by(res))
    out = []
    for t in table:
        lacking = [n for n in t.needs if n not in have]
        row = dict(key=t.key, target=t.text, figure=t.figure, comparator=t.comparator, threshold=t.threshold,
                   unit=t.unit, against=t.against)
        if lacking:
            out.append({**row, "measured": None, "shown": f"not judged (no {lacking[0]} in this run)", "met": None})
            continue
        value, shown, missing = measure(t, res)
        if value is None:
            what = missing or f"{t.figure} of {ENGINE}"
            out.append({**row, "measured": None, "shown": f"not judged (no {what} in this run)", "met": None})
            continue
        out.append({**row, "measured": value, "shown": shown, "met": t.met(value)})
    return out


VERDICT = {True: "met", False: "**missed**", None: "—"}


def markdown_rows(judged: list[dict]) -> list[list[str]]:
    """[target, measured, verdict] per target, for a markdown table."""
    return [[t["target"], t["shown"], VERDICT[t["met"]]] for t in judged]
