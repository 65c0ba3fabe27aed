"""`python -m asr_quant.loadtest`: many people at once against the real app.

Starts `python app.py` on 127.0.0.1 (a free port, its own gradio temp folder),
waits until it answers, then N clients (`gradio_client`, one session each)
send requests back to back for T seconds, mixing the good example clips with
bad inputs (a text file named .wav, zero bytes, a PNG, silence, 0.1 s, over
the length limit, over the upload cap). It stops by itself: no new request
after T, every request still out gets `--drain-s` to come back, then the app
is stopped (Ctrl-C, so gradio sweeps its temp folder) and the report written.

Nothing sent may be lost. A good clip counts as answered when every loaded
engine gave a transcript; a bad input when the page shows the decoder's own
message for that file (computed here with `audio.load`) and no transcript.
"Queue is full" is a clear busy answer, counted apart. Resident memory of the
app (psutil, every second) is compared idle after warm-up and idle at the
end; more than 10 % growth fails the run. The exit code is 0 when nothing was
lost or wrong, memory held and the security probes passed, else 1.

Only 127.0.0.1 is ever contacted. Needs gradio_client and psutil; never
imports gradio, torch or onnxruntime (the app does, in its own process).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import soundfile as sf

from . import audio
from .examples import read_examples
from .settings import Settings

HOST = "127.0.0.1"  # the only address this module talks to
REPO = Path(__file__).resolve().parents[1]
MEMORY_GROWTH_LIMIT = 0.10
BUSY_TEXT = "queue is full"


# --- what the clients send ------------------------------------------------------------

@dataclass
class Input:
    """One file a person might send, and what the page must answer."""

    name: str
    path: Path
    kind: str  # "good" | "bad"
    language: str = "auto"
    reference: str = ""
    message: str = ""  # for a bad input: the decoder's message the page must show
    error: str = ""  # ... and its AudioError class


def _png() -> bytes:
    """A valid 8x8 grey PNG, built by hand (no image library needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + bytes([128] * 8) for _ in range(8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _tone(seconds: float, rate: int, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def bad_inputs(folder: Path, max_audio_s: float, max_file_mb: float) -> list[Input]:
    """The bad inputs of the mix, written to `folder`, each with the message
    the decoder gives for it under the app's limits."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes | None] = {
        "notes.wav": b"Meeting notes\nThis is plain text, not audio.\n" * 20,
        "empty.wav": b"",
        "photo.png": _png(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    sf.write(folder / "silence.wav", np.zeros(32000, np.float32), 16000, subtype="PCM_16")
    sf.write(folder / "blip.wav", _tone(0.1, 16000), 16000, subtype="PCM_16")
    # 8-bit 8 kHz keeps it small: refused for its length, not its size
    sf.write(folder / "too_long.wav", _tone(max_audio_s + 10, 8000), 8000, subtype="PCM_U8")
    big = folder / "too_big.wav"  # a real WAV header, then sparse zeros past the cap (no disk used)
    sf.write(big, _tone(1.0, 16000), 16000, subtype="PCM_16")
    with open(big, "r+b") as f:
        f.truncate(int(max_file_mb * 1024 * 1024) + 1024 * 1024)
    cap = int(max_file_mb * 1024 * 1024)
    out = []
    for p in sorted(folder.iterdir()):
        try:
            audio.load(p, max_s=max_audio_s, max_bytes=cap, name=p.name)
        except audio.AudioError as exc:
            out.append(Input(p.name, p, "bad", "en", message=str(exc), error=type(exc).__name__))
            continue
        raise RuntimeError(f"{p.name} was meant to be rejected by the decoder but was accepted")
    return out


def good_inputs(folder: Path = REPO / "examples") -> list[Input]:
    return [Input(e.path.name, e.path, "good", e.language, e.reference) for e in read_examples(folder)]


# --- one request ----------------------------------------------------------------------

@dataclass
class Request:
    client: int
    input: str
    kind: str
    sent: float  # seconds since the run started
    started: float | None = None  # first seen processing (polled every 0.1 s)
    ended: float | None = None
    outcome: str = "lost"  # ok | clear_error | busy | wrong | failed | lost
    detail: str = ""
    texts: dict[str, str] = field(default_factory=dict)

    @property
    def latency_s(self) -> float | None:
        return None if self.ended is None else self.ended - self.sent

    @property
    def queue_wait_s(self) -> float | None:
        return None if self.started is None else self.started - self.sent


class Page:
    """Where each widget's value sits in the API's answer, read from the app's
    own config (elem_ids), so a layout change does not break the reading."""

    def __init__(self, config: dict, api_name: str = "transcribe"):
        dep = next(d for d in config["dependencies"] if d.get("api_name") == api_name)
        comps = {c["id"]: c for c in config["components"]}
        shown = [comps[i] for i in dep["outputs"] if comps[i].get("type") != "state"]
        self.index = {c.get("props", {}).get("elem_id"): k for k, c in enumerate(shown)}
        self.engines = [c["props"]["elem_id"][5:].upper() for c in shown
                        if str(c.get("props", {}).get("elem_id", "")).startswith("text-")
                        and c["props"].get("visible", True) is not False]

    def read(self, result: Sequence[Any]) -> tuple[str, dict[str, str]]:
        status = str(result[self.index["status"]] or "")
        texts = {n: str(result[self.index[f"text-{n.lower()}"]] or "") for n in self.engines}
        return status, texts


def classify(req: Request, inp: Input, page: Page, status: str, texts: dict[str, str]) -> None:
    req.texts = texts
    plain = status.replace("\\", "")
    if inp.kind == "good":
        n = len(page.engines)
        if all(texts.values()) and f"{n}/{n} engines answered" in plain:
            req.outcome = "ok"
        else:
            req.outcome = "wrong"
            req.detail = f"good clip without {n} transcripts: {plain[:200]}"
    elif inp.message in plain and not any(texts.values()):
        req.outcome = "clear_error"
    else:
        req.outcome = "wrong"
        req.detail = f"bad input not answered with its message ({inp.message!r}): {plain[:200]}"


def classify_exception(req: Request, inp: Input, exc: BaseException, cap_bytes: int) -> None:
    text = str(exc)
    if BUSY_TEXT in text.lower():
        req.outcome, req.detail = "busy", text[:200]
    elif inp.kind == "bad" and inp.path.stat().st_size > cap_bytes and "maximum file size" in text:
        req.outcome, req.detail = "clear_error", text[:200]  # refused before upload, as the page does
    else:
        req.outcome, req.detail = "failed", f"{type(exc).__name__}: {text[:300]}"


# --- the clients ----------------------------------------------------------------------

class Driver:
    """N clients sending back to back until `duration_s`, then waiting for
    everything still out until `drain_s` more have passed."""

    STARTED = {"PROCESSING", "PROGRESS", "ITERATING", "FINISHED"}

    def __init__(self, url: str, inputs: Sequence[Input], clients: int, duration_s: float, drain_s: float,
                 bad_share: float = 0.4, max_requests: int = 5000, seed: int = 0, cap_bytes: int = 0,
                 t0: float | None = None):
        self.url, self.inputs, self.clients = url, list(inputs), clients
        self.duration_s, self.drain_s = duration_s, drain_s
        self.bad_share, self.max_requests, self.seed, self.cap_bytes = bad_share, max_requests, seed, cap_bytes
        self.t0 = t0 if t0 is not None else time.perf_counter()
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self.errors: list[str] = []

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def _budget(self) -> bool:
        with self._lock:
            return len(self.requests) < self.max_requests

    def _pick(self, rng: random.Random, client_id: int, first: bool) -> Input:
        """Random by `bad_share`; a client's first request is fixed (odd
        clients start with a bad input) so even a short run has both kinds."""
        good = [i for i in self.inputs if i.kind == "good"]
        bad = [i for i in self.inputs if i.kind == "bad"]
        if first and good and bad and 0 < self.bad_share < 1:
            want_bad = client_id % 2 == 1
        else:
            want_bad = rng.random() < self.bad_share
        pool = bad if (bad and (want_bad or not good)) else good
        return rng.choice(pool)

    def one(self, client, page: Page, inp: Input, client_id: int, hard_deadline: float) -> Request:
        from gradio_client import handle_file

        req = Request(client=client_id, input=inp.name, kind=inp.kind, sent=self.now())
        with self._lock:
            self.requests.append(req)
        try:
            job = client.submit(handle_file(str(inp.path)), inp.language, inp.reference, api_name="/transcribe")
            while not job.done():
                if req.started is None and job.status().code.value in self.STARTED:
                    req.started = self.now()
                if self.now() > hard_deadline:  # left as is: cancelling would wait on the stuck call too
                    req.outcome, req.detail = "lost", "no answer before the drain deadline"
                    return req
                time.sleep(0.1)
            result = job.result()
            req.ended = self.now()
            if req.started is None:
                req.started = req.ended
            status, texts = page.read(result)
            classify(req, inp, page, status, texts)
        except Exception as exc:  # noqa: BLE001 - every way a request can fail is counted, not raised
            req.ended = self.now()
            classify_exception(req, inp, exc, self.cap_bytes)
        return req

    def _client_loop(self, client_id: int, hard_deadline: float) -> None:
        from gradio_client import Client

        rng = random.Random(self.seed * 1000 + client_id)
        try:
            client = Client(self.url, verbose=False, download_files=False, analytics_enabled=False)
            page = Page(client.config)
        except Exception as exc:  # noqa: BLE001
            with self._lock:
                self.errors.append(f"client {client_id} could not connect: {type(exc).__name__}: {exc}")
            return
        time.sleep(rng.random() * 0.5)  # don't all fire in the same millisecond
        first = True
        while self.now() < self.duration_s and self._budget():
            self.one(client, page, self._pick(rng, client_id, first), client_id, hard_deadline)
            first = False
        try:
            client.close()
        except Exception:  # noqa: BLE001
            pass

    def run(self) -> list[Request]:
        hard_deadline = self.now() + self.duration_s + self.drain_s
        threads = [threading.Thread(target=self._client_loop, args=(i, hard_deadline), name=f"client-{i}",
                                    daemon=True) for i in range(self.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, hard_deadline - self.now()) + 30)
        return list(self.requests)


# --- the app process -------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class AppProcess:
    """`python app.py` on 127.0.0.1 in its own process, with its own gradio
    temp folder and log file."""

    def __init__(self, workdir: Path, port: int, app_args: Sequence[str], python: str = sys.executable):
        self.port = port
        self.url = f"http://{HOST}:{port}/"
        self.temp_dir = workdir / "gradio-temp"
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "app.log"
        env = dict(os.environ)
        for var in ("GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "ASRQ_SERVER_NAME", "ASRQ_SERVER_PORT"):
            env.pop(var, None)
        env.update(GRADIO_TEMP_DIR=str(self.temp_dir), GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
        cmd = [python, str(REPO / "app.py"), "--server-name", HOST, "--server-port", str(port), *app_args]
        self.cmd = cmd
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.started = time.perf_counter()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout_s: float) -> float:
        """Seconds until the page answered; raises if the app died or never answered."""
        import httpx

        while time.perf_counter() - self.started < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited with code {self.proc.returncode}; see {self.log_path}:\n"
                                   + self.log_tail())
            try:
                if httpx.get(self.url + "config", timeout=5).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        raise RuntimeError(f"the app did not answer within {timeout_s:.0f} s; see {self.log_path}")

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """Ctrl-C first (gradio then closes and sweeps its temp folder), then terminate, then kill."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(15)
        self._log.close()
        return self.proc.returncode


class Sampler:
    """Resident memory of a process (and its children) and the number of
    files in a folder, once a second, in a thread."""

    def __init__(self, pid: int, folder: Path | None, period_s: float = 1.0, t0: float | None = None):
        import psutil

        self.proc = psutil.Process(pid)
        self.folder, self.period_s = folder, period_s
        self.t0 = t0 if t0 is not None else time.perf_counter()
        self.rss: list[tuple[float, int]] = []
        self.files: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)

    def rss_now(self) -> int:
        import psutil

        total = 0
        for p in [self.proc] + self.proc.children(recursive=True):
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def idle_rss(self, samples: int = 3, gap_s: float = 1.0) -> int:
        """Median of a few readings while nothing runs."""
        values = []
        for i in range(samples):
            if i:
                time.sleep(gap_s)
            values.append(self.rss_now())
        return int(sorted(values)[len(values) // 2])

    def _loop(self) -> None:
        import psutil

        while not self._stop.is_set():
            t = time.perf_counter() - self.t0
            try:
                self.rss.append((t, self.rss_now()))
            except psutil.Error:
                break
            if self.folder is not None:
                self.files.append((t, count_files(self.folder)))
            self._stop.wait(self.period_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


def count_files(folder: Path) -> int:
    try:
        return sum(1 for p in folder.rglob("*") if p.is_file())
    except OSError:
        return -1


# --- security probes ---------------------------------------------------------------------

def probe_security(url: str, fn_index: int, cap_bytes: int, workdir: Path) -> dict:
    """What an attacker would try first, against the running app: read files
    through the file route, make the app read a path it was not sent, and
    upload more than the cap. Each probe says what it expected and got."""
    import httpx

    results = {}
    secret = workdir / "not-uploaded.wav"
    sf.write(secret, _tone(1.0, 16000), 16000)
    for name, target in {"file route /etc/passwd": "/etc/passwd",
                         "file route app.py": str(REPO / "app.py"),
                         "file route traversal": "../../../../../../etc/passwd",
                         "file route not-uploaded audio": str(secret)}.items():
        try:
            r = httpx.get(f"{url}gradio_api/file={target}", timeout=15)
            ok = r.status_code in (403, 404) and b"root:" not in r.content
            results[name] = {"expected": "403/404", "got": r.status_code, "pass": ok}
        except httpx.HTTPError as exc:
            results[name] = {"expected": "403/404", "got": f"{type(exc).__name__}", "pass": False}
    for name, path in {"request naming /etc/passwd": "/etc/passwd",
                       "request naming a file not uploaded": str(secret)}.items():
        results[name] = _probe_path(url, fn_index, path)
    big = workdir / "upload-over-cap.bin"
    with open(big, "wb") as f:
        f.truncate(cap_bytes + 1024 * 1024)
    try:
        with open(big, "rb") as f:
            r = httpx.post(f"{url}gradio_api/upload", files={"files": (big.name, f, "audio/wav")}, timeout=120)
        results["upload over the cap"] = {"expected": 413, "got": r.status_code, "pass": r.status_code == 413}
    except httpx.HTTPError as exc:
        results["upload over the cap"] = {"expected": 413, "got": type(exc).__name__, "pass": False}
    finally:
        big.unlink(missing_ok=True)
    return results


def _probe_path(url: str, fn_index: int, path: str) -> dict:
    """Join the queue with a hand-made payload naming a server path."""
    import httpx

    session = os.urandom(8).hex()
    expected = "refused (success false), nothing transcribed"
    try:
        httpx.post(f"{url}gradio_api/queue/join", timeout=30, json={
            "data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, "en", "", None],
            "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None,
        }).raise_for_status()
        with httpx.stream("GET", f"{url}gradio_api/queue/data?session_hash={session}", timeout=300) as s:
            for line in s.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    refused = msg.get("success") is False
                    got = "refused" if refused else f"answered: {json.dumps(msg.get('output'))[:200]}"
                    return {"expected": expected, "got": got, "pass": refused}
    except (httpx.HTTPError, ValueError) as exc:
        return {"expected": expected, "got": f"{type(exc).__name__}: {exc}", "pass": False}
    return {"expected": expected, "got": "no answer", "pass": False}


# --- the report ------------------------------------------------------------------------------

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
                      "bad": percentiles([r.latency_s for r in answered if r.kind == "bad"])},
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
        f"latency all:  {ps(lat['all'])}",
        f"latency good: {ps(lat['good'])}",
        f"latency bad:  {ps(lat['bad'])}",
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


# --- the run -------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> dict:
    t_begin = time.perf_counter()
    defaults = Settings.from_env()
    max_audio_s = args.max_audio_s if args.max_audio_s is not None else defaults.max_audio_s
    max_file_mb = args.max_file_mb if args.max_file_mb is not None else defaults.max_file_mb
    cap = int(max_file_mb * 1024 * 1024)
    workdir = Path(tempfile.mkdtemp(prefix="asrq-loadtest-"))
    goods = good_inputs()
    if args.good_clips:
        goods = goods[:args.good_clips]
    inputs = goods + bad_inputs(workdir / "inputs", max_audio_s, max_file_mb)
    if not any(i.kind == "good" for i in inputs):
        raise SystemExit("error: no good clip found in examples/")
    app_args = ["--max-audio-s", str(max_audio_s), "--max-file-mb", str(max_file_mb),
                "--max-queue", str(args.max_queue)]
    for flag, value in (("--cache-dir", args.cache_dir), ("--model", args.model), ("--threads", args.threads),
                        ("--precisions", args.precisions), ("--inference-timeout-s", args.inference_timeout_s)):
        if value is not None:
            app_args += [flag, str(value)]
    port = args.port or free_port()
    app = AppProcess(workdir, port, app_args)
    print(f"starting: {' '.join(app.cmd)}", file=sys.stderr)
    errors: list[str] = []
    requests: list[Request] = []
    security: dict = {}
    startup_s = 0.0
    try:
        startup_s = app.wait_ready(args.startup_timeout_s)
        print(f"app answering after {startup_s:.1f} s (pid {app.pid})", file=sys.stderr)
        t0 = time.perf_counter()
        with Sampler(app.pid, app.temp_dir, t0=t0) as sampler:
            rss_start = sampler.idle_rss()
            warm = Driver(app.url, inputs, 1, 0, args.drain_s, cap_bytes=cap, t0=t0)
            from gradio_client import Client

            client = Client(app.url, verbose=False, download_files=False, analytics_enabled=False)
            page = Page(client.config)
            fn_index = next(i for i, d in enumerate(client.config["dependencies"])
                            if d.get("api_name") == "transcribe")
            # Every good clip once (decoding buffers grow to the longest seen), then a bad input.
            n_warm = len(goods) if args.warmup is None else args.warmup
            warm_inputs = [goods[k % len(goods)] for k in range(n_warm)] + \
                          [next(i for i in inputs if i.kind == "bad")]
            for inp in warm_inputs:
                r = warm.one(client, page, inp, -1, warm.now() + args.drain_s)
                print(f"warm-up {inp.name}: {r.outcome} in {r.latency_s or 0:.1f} s", file=sys.stderr)
                if r.outcome not in ("ok", "clear_error"):
                    errors.append(f"warm-up request {inp.name} was {r.outcome}: {r.detail}")
            client.close()
            rss_warm = sampler.idle_rss()
            security = probe_security(app.url, fn_index, cap, workdir)
            print(f"load: {args.clients} clients for {args.duration:g} s", file=sys.stderr)
            driver = Driver(app.url, inputs, args.clients, args.duration, args.drain_s, bad_share=args.bad_share,
                            max_requests=args.max_requests, seed=args.seed, cap_bytes=cap)
            load_window = (time.perf_counter() - t0, time.perf_counter() - t0 + args.duration)
            requests = driver.run()
            errors.extend(driver.errors)
            time.sleep(2.0)
            rss_end = sampler.idle_rss()
        files_during = max([n for _, n in sampler.files] + [0])
        files_before_stop = count_files(app.temp_dir)
    finally:
        code = app.stop()
    files_after = count_files(app.temp_dir)
    summary = summarize(requests, args.clients, args.max_queue)
    memory = memory_report(rss_start, rss_warm, rss_end, sampler.rss, load_window)
    temp = {"folder": str(app.temp_dir), "max_during_run": files_during, "before_shutdown": files_before_stop,
            "after_shutdown": files_after}
    problems = verdict(summary, memory, security, temp, errors)
    report = {
        "config": {"clients": args.clients, "duration_s": args.duration, "drain_s": args.drain_s,
                   "bad_share": args.bad_share, "seed": args.seed, "max_requests": args.max_requests,
                   "warmup": args.warmup, "good_clips": [i.name for i in goods], "url": app.url,
                   "app_cmd": app.cmd, "model": args.model or defaults.model,
                   "max_queue": args.max_queue, "max_file_mb": max_file_mb, "max_audio_s": max_audio_s,
                   "inputs": [{"name": i.name, "kind": i.kind, "error": i.error, "message": i.message}
                              for i in inputs]},
        "startup_s": round(startup_s, 2),
        "requests": summary,
        "memory": memory,
        "memory_timeline_mib": _timeline(sampler.rss),
        "temp_files": temp,
        "security": security,
        "failures": [asdict(r) for r in requests if r.outcome in ("wrong", "failed", "lost")][:20],
        "app_exit_code": code,
        "app_log": str(app.log_path),
        "wall_s": round(time.perf_counter() - t_begin, 1),
        "problems": problems,
        "pass": not problems,
    }
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asr_quant.loadtest",
                                description="Start the app on 127.0.0.1 and drive it with concurrent clients.")
    p.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    p.add_argument("--duration", type=float, default=300.0, help="seconds of sending (default 300)")
    p.add_argument("--drain-s", type=float, default=900.0,
                   help="after the last send, seconds to wait for answers before counting a request lost")
    p.add_argument("--bad-share", type=float, default=0.4, help="share of requests that send a bad input")
    p.add_argument("--max-requests", type=int, default=5000, help="stop sending after this many requests")
    p.add_argument("--warmup", type=int, default=None,
                   help="good clips sent one by one before the load (default: each good clip once)")
    p.add_argument("--good-clips", type=int, default=0, help="use only the first N example clips (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    p.add_argument("--port", type=int, default=0, help="port for the app (default: a free one)")
    p.add_argument("--startup-timeout-s", type=float, default=1200.0)
    p.add_argument("--max-queue", type=int, default=Settings().max_queue, help="the app's queue size")
    p.add_argument("--cache-dir", default=None, help="the app's artifact cache (default: its own default)")
    p.add_argument("--model", default=None)
    p.add_argument("--precisions", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--inference-timeout-s", type=float, default=None)
    p.add_argument("--max-audio-s", type=float, default=None)
    p.add_argument("--max-file-mb", type=float, default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.clients < 1 or args.duration <= 0 or not 0 <= args.bad_share <= 1:
        print("error: --clients >= 1, --duration > 0 and 0 <= --bad-share <= 1", file=sys.stderr)
        return 2
    try:
        report = run(args)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = format_report(report)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(args.out.suffix + ".tmp")
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(args.out)
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
