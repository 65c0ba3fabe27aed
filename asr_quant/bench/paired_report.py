"""The paired statistics (bench.paired) in results.md; the accuracy targets
that judge them are in bench.targets (recorded speech only, upper end of the
interval)."""
from __future__ import annotations

from .paired import from_results, recorded_rows

READ_ME = ("Recorded rows are real people's speech (a recorded corpus or a folder of recordings); synthetic rows "
           "are espeak-ng speech, which Whisper base mishears even at FP32, so they show how far a precision "
           "moves the output, not how well anything hears, and stay out of the accuracy verdict.")


def paired_of(res: dict) -> dict:
    """The run's paired statistics, computed from its records when an older
    results.json lacks them."""
    if not res.get("paired"):
        res["paired"] = from_results(res) if res.get("records") else {"engines": {}}
    return res["paired"]


def _pts(x) -> str:
    return "—" if x is None else f"{100 * x:+.2f}"


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def interval(s: dict) -> str:
    if s.get("ci_low") is None:
        return "—"
    return f"[{100 * s['ci_low']:+.2f}, {100 * s['ci_high']:+.2f}]"


def _cells(name: str, s: dict) -> list[str]:
    ident = "—" if s["identical"] is None else f"{100 * s['identical']:.0f} % ({s['identical_clips']}/{s['clips']})"
    return [name, ident, _pct(s["vs_fp32"]), _pct(s["rate"]), _pct(s["fp32_rate"]), _pts(s["delta"]), interval(s)]


def paired_section(res: dict, h: str, table) -> str:
    """Per row and pooled: identical share, error against FP32's text, and
    the delta with its paired-bootstrap interval, for every engine and peer."""
    p = paired_of(res)
    eng = p.get("engines") or {}
    if not eng:
        return f"{h}# Agreement with FP32, clip by clip\n\nNo FP32 records in this run.\n"
    rows_meta = res["corpus"]["rows"]
    real = recorded_rows(res)
    out = []
    pools = (("recorded", "**pooled, recorded rows**"),
             ("recorded_one_window", "pooled, recorded clips of one 30 s window"),
             ("synthetic", "pooled, synthetic rows"))
    longer = False
    for pool, label in pools:
        for name, e in eng.items():
            s = e.get(pool)
            if pool == "recorded_one_window" and (not s or s["clips"] == e["recorded"]["clips"]):
                continue  # no longer clips in this run: the same pool again
            if s and s["clips"]:
                longer |= pool == "recorded_one_window"
                out.append([label, s["clips"]] + _cells(name, s))
    for row in sorted(rows_meta, key=lambda r: (r not in real, r)):
        kind = "recorded" if row in real else "synthetic"
        for name, e in eng.items():
            s = e["rows"].get(row)
            if s:
                out.append([f"{row} — {kind}", s["clips"]] + _cells(name, s))
    header = ["rows", "clips", "engine", "identical to FP32", "error vs FP32's text %", "error %", "FP32 error %",
              "delta (points)", f"{100 * p.get('level', 0.95):.0f} % interval"]
    return (f"{h}# Agreement with FP32, clip by clip\n\n" + table(header, out)
            + f"\n\n{READ_ME} *Identical*: the transcript equals FP32's after normalization. *Error vs FP32's "
              "text*: the error rate with FP32's transcript as the reference. *Delta*: error rate minus FP32's, "
              "edits pooled over the clips; the interval is a paired bootstrap over clips "
              f"({p.get('resamples')} resamples, seed {p.get('seed')}). WER or CER as in the table above; pools "
              "of several languages mix words and characters."
            + (" *One 30 s window*: the recorded clips that fit Whisper's window; longer ones are cut at pauses "
               "by this project's engines (each piece after the text before it), and decoded long-form by "
               "faster-whisper in its own implementation (seeking by timestamps, no loop guard, its own token "
               "limit), so there a peer's text can move for a reason that is not its precision. The verdict is "
               "judged on all recorded clips."
               if longer else "") + "\n")

