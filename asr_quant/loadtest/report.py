"""The load test's report: latency percentiles per kind of input, memory
growth against its limit, the verdict, and the text printed at the end."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from .driver import Request


MEMORY_GROWTH_LIMIT = 0.10
BAD_P95_LIMIT_S = 1.0  # a bad upload is told within this (95th percentile), however long the queue


def percentiles(values: Sequence[float]) -> dict:
    v = sorted(x for x in values if x is not None)
    if not v:
        return {"n": 0, "p50": None, "p95": None, "max": None, "mean": None}

    def q(p: float) -> float:  # nearest-rank
        return v[min(len(v) - 1, max(0, math.ceil(p * len(v)) - 1))]
    return {"n": len(v), "p50": round(q(0.50), 3), "p95": round(q(0.95), 3), "max": round(v[-1], 3),
            "mean": round(sum(v) / len(v), 3)}


def summarize(requests: Sequence[Request], clients: int, max_queue: int) -> dict:
    counts = {k: sum(1 for r in requests if r.outcome == k)
              for k in ("ok", "clear_error", "busy", "wrong", "failed", "lost")}
    by_input: dict[str, dict] = {}
    for r in requests:
        d = by_input.setdefault(r.input, {"kind": r.kind, "sent": 0})
        d["sent"] += 1
        d[r.outcome] = d.get(r.outcome, 0) + 1
    # Same clip, same engine: greedy decoding gives the same words every time;
    # a different transcript under load would mean answers got mixed up.
    seen: dict[tuple[str, str], str] = {}
    mixed = []
    for r in requests:
        if r.outcome != "ok":
            continue
        for engine, text in r.texts.items():
            first = seen.setdefault((r.input, engine), text)
            if text != first:
                mixed.append(f"{r.input} {engine}: {text!r} != {first!r}")
    answered = [r for r in requests if r.outcome in ("ok", "clear_error")]
    for name, d in by_input.items():
        d["latency_s"] = percentiles([r.latency_s for r in answered if r.input == name])
    # An upload over the cap is refused by gradio's upload route once the cap is passed (the client sends
    # it first; a browser checks the size before sending): its time is the transfer, apart from the check.
    at_upload = [r for r in answered if r.kind == "bad" and "maximum file size" in r.detail]
    return {
        "sent": len(requests),
        "answered": len(answered),
        "good_with_transcripts": counts["ok"],
        "bad_with_clear_error": counts["clear_error"],
        "busy": counts["busy"],
        "wrong": counts["wrong"],
        "failed": counts["failed"],
        "lost": counts["lost"],
        "good_sent": sum(1 for r in requests if r.kind == "good"),
        "bad_sent": sum(1 for r in requests if r.kind == "bad"),
        "inconsistent_transcripts": mixed[:20],
        "busy_expected": clients > max_queue,
        "by_input": by_input,
        "latency_s": {"all": percentiles([r.latency_s for r in answered]),
                      "good": percentiles([r.latency_s for r in answered if r.kind == "good"]),
                      "bad": percentiles([r.latency_s for r in answered if r.kind == "bad"]),
                      "bad_checked": percentiles([r.latency_s for r in answered
                                                  if r.kind == "bad" and r not in at_upload]),
                      "bad_at_upload": percentiles([r.latency_s for r in at_upload])},
        "queue_wait_s": percentiles([r.queue_wait_s for r in answered]),
        "processing_s_good": percentiles([r.ended - r.started for r in answered
                                          if r.kind == "good" and r.started is not None]),
    }


def verdict(summary: dict, memory: dict, security: dict, temp: dict, errors: Sequence[str]) -> list[str]:
    problems = []
    if summary["lost"]:
        problems.append(f"{summary['lost']} request(s) lost (no answer)")
    if summary["wrong"]:
        problems.append(f"{summary['wrong']} request(s) answered wrongly")
    if summary["failed"]:
        problems.append(f"{summary['failed']} request(s) failed")
    if summary["busy"] and not summary["busy_expected"]:
        problems.append(f"{summary['busy']} request(s) turned away as busy with fewer clients than the queue holds")
    if summary["inconsistent_transcripts"]:
        problems.append("the same clip got different transcripts from the same engine")
    if summary["good_with_transcripts"] == 0:
        problems.append("no good clip was answered")
    bad_p95 = summary["latency_s"].get("bad_checked", summary["latency_s"]["bad"])["p95"]
    if bad_p95 is not None and bad_p95 > BAD_P95_LIMIT_S:
        problems.append(f"bad input waited: p95 {bad_p95:.2f} s (limit {BAD_P95_LIMIT_S:g} s; it is checked "
                        "before the queue)")
    if memory.get("pass") is False:
        problems.append(f"resident memory grew {memory['growth_pct']:.1f} % after warm-up "
                        f"(limit {MEMORY_GROWTH_LIMIT:.0%})")
    for name, r in security.items():
        if not r["pass"]:
            problems.append(f"security probe failed: {name}: expected {r['expected']}, got {r['got']}")
    if temp.get("after_shutdown", 0) > 0:
        problems.append(f"{temp['after_shutdown']} temporary file(s) left after the app stopped")
    problems.extend(errors)
    return problems


def memory_report(start: int, warm: int, end: int, samples: Sequence[tuple[float, int]],
                  load: tuple[float, float] | None = None) -> dict:
    """The pass rule compares idle readings; `load` (start and end of sending,
    in sampler seconds) adds the median while busy in the first and the last
    minute of the load, for information: those include the running call."""
    growth = (end - warm) / warm if warm else 0.0
    mib = 1024 * 1024
    out = {
        "start_mib": round(start / mib, 1), "after_warmup_mib": round(warm / mib, 1),
        "end_mib": round(end / mib, 1), "max_mib": round(max([v for _, v in samples] + [start, warm, end]) / mib, 1),
        "growth_pct": round(100 * growth, 2), "limit_pct": 100 * MEMORY_GROWTH_LIMIT,
        "pass": growth <= MEMORY_GROWTH_LIMIT,
        "rule": "idle resident memory at the end vs idle after warm-up (median of 3 readings each)",
    }
    if load is not None:
        a, b = load
        for key, lo, hi in (("busy_first_minute_median_mib", a, min(b, a + 60)),
                            ("busy_last_minute_median_mib", max(a, b - 60), b)):
            vals = sorted(v for t, v in samples if lo <= t <= hi)
            out[key] = round(vals[len(vals) // 2] / mib, 1) if vals else None
    return out


def _timeline(samples: Sequence[tuple[float, int]], every_s: float = 5.0) -> list[list[float]]:
    out, next_t = [], -1.0
    for t, v in samples:
        if t >= next_t:
            out.append([round(t, 1), round(v / 1024 / 1024, 1)])
            next_t = t + every_s
    return out


def format_report(r: dict) -> str:
    s, m, c = r["requests"], r["memory"], r["config"]
    lat, qw = s["latency_s"], s["queue_wait_s"]

    def ps(d):
        return "-" if not d["n"] else f"p50 {d['p50']:.2f} s · p95 {d['p95']:.2f} s · max {d['max']:.2f} s"
    lines = [
        f"load test: {c['clients']} clients × {c['duration_s']:g} s against {c['url']} "
        f"(model {c['model']}, app up in {r['startup_s']:.1f} s)",
        f"requests: sent {s['sent']} ({s['good_sent']} good, {s['bad_sent']} bad) · answered {s['answered']} "
        f"({s['good_with_transcripts']} with transcripts, {s['bad_with_clear_error']} with a clear error) · "
        f"busy {s['busy']} · wrong {s['wrong']} · failed {s['failed']} · lost {s['lost']}",
        f"connecting (each client opens the API before all send together): {ps(r['connect_s'])}"
        if r.get("connect_s") else "connecting: -",
        f"latency all:  {ps(lat['all'])}",
        f"latency good: {ps(lat['good'])}",
        f"latency bad:  {ps(lat['bad'])}",
        f"  checked by the page (before the queue): {ps(lat['bad_checked'])}",
        f"  over the upload cap (refused by the client before sending, as the browser does): "
        f"{ps(lat['bad_at_upload'])}",
        f"queue wait:   {ps(qw)}",
        f"memory (RSS): start {m['start_mib']} MiB · after warm-up {m['after_warmup_mib']} MiB · "
        f"end {m['end_mib']} MiB · max {m['max_mib']} MiB · growth {m['growth_pct']:+.1f} % "
        f"({'pass' if m['pass'] else 'FAIL'}, limit {m['limit_pct']:g} %; idle readings)",
        f"memory while busy: median {m.get('busy_first_minute_median_mib')} MiB in the first minute of load, "
        f"{m.get('busy_last_minute_median_mib')} MiB in the last",
        f"temp files: max {r['temp_files']['max_during_run']} during the run, "
        f"{r['temp_files']['after_shutdown']} after shutdown",
        "security: " + ", ".join(f"{k}: {'pass' if v['pass'] else 'FAIL'}" for k, v in r["security"].items()),
        f"total wall time {r['wall_s']:.0f} s",
        "PASS" if r["pass"] else "FAIL: " + "; ".join(r["problems"]),
    ]
    return "\n".join(lines)
