"""The clients: one request and how its answer is judged, and the driver that
runs N clients back to back for T seconds."""
from __future__ import annotations

import random
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Sequence


from .inputs import Input

BUSY_TEXT = "queue is full"


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


def engine_status(url: str, timeout_s: float = 30.0) -> dict:
    """The app's `/engine_status` (done, and each engine's state), read over
    gradio's plain HTTP route for unqueued events. Not through
    `gradio_client`, which sends every call through the queue: there the
    queue's `max_size` counts it with the transcriptions waiting, so a
    status read, even a client merely connecting, is turned away as "queue
    is full" exactly when the page is busiest."""
    import httpx

    r = httpx.post(url.rstrip("/") + "/gradio_api/run/engine_status", json={"data": []}, timeout=timeout_s)
    r.raise_for_status()
    return r.json()["data"][0]


class Page:
    """Where each widget's value sits in the API's answer, read from the app's
    own config (elem_ids), so a layout change does not break the reading."""

    def __init__(self, config: dict, api_name: str = "transcribe", ready: Sequence[str] | None = None):
        """`ready`: the engines the app says are loaded (its `/engine_status`);
        without it, those whose transcript box the page config shows."""
        dep = next(d for d in config["dependencies"] if d.get("api_name") == api_name)
        comps = {c["id"]: c for c in config["components"]}
        shown = [comps[i] for i in dep["outputs"] if comps[i].get("type") != "state"]
        self.index = {c.get("props", {}).get("elem_id"): k for k, c in enumerate(shown)}
        self.engines = [c["props"]["elem_id"][5:].upper() for c in shown
                        if str(c.get("props", {}).get("elem_id", "")).startswith("text-")
                        and (c["props"]["elem_id"][5:].upper() in ready if ready is not None
                             else c["props"].get("visible", True) is not False)]

    @classmethod
    def of(cls, client, url: str) -> "Page":
        """The page as a connected `gradio_client.Client` sees it, with the engines ready now."""
        status = engine_status(url)
        return cls(client.config, ready=[e["name"] for e in status["engines"] if e["state"] == "ready"])

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
    elif inp.kind == "bad" and type(exc).__name__ == "ValidationError" and inp.message in text:
        req.outcome, req.detail = "clear_error", text[:200]  # turned away by the validator, before the queue
    elif inp.kind == "bad" and inp.path.stat().st_size > cap_bytes and "maximum file size" in text:
        req.outcome, req.detail = "clear_error", text[:200]  # refused before upload, as the page does
    else:
        req.outcome, req.detail = "failed", f"{type(exc).__name__}: {text[:300]}"


class Driver:
    """N clients sending back to back for `duration_s`, then waiting for
    everything still out until `drain_s` more have passed.

    Every client connects first (opens the page's API: config, API info,
    engine status; timed as `connect_s`), and all start sending together once
    every one is connected: the latencies measured are those of requests
    made while the others' clips queue, not while the page is being opened
    by everyone at once, which is reported apart."""

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
        self.connect_s: list[float] = []  # per client that connected: seconds to open the API
        self.sending_from: float | None = None  # when every client had connected and sending began
        self.deadline = float("inf")  # no answer after this counts as lost (set when sending begins)
        self._connected = threading.Semaphore(0)
        self._go = threading.Event()

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
            # the answer's time is stamped when it arrives, not when the poll below sees it
            job.future.add_done_callback(lambda _f: setattr(req, "ended", self.now()))
            while not job.done():
                if req.started is None and job.status().code.value in self.STARTED:
                    req.started = self.now()  # queue wait: to the poll's 0.25 s
                if self.now() > hard_deadline:  # left as is: cancelling would wait on the stuck call too
                    req.outcome, req.detail = "lost", "no answer before the drain deadline"
                    return req
                futures.wait([job.future], timeout=0.25)
            result = job.result()
            if req.ended is None:
                req.ended = self.now()
            if req.started is None:
                req.started = req.ended
            status, texts = page.read(result)
            classify(req, inp, page, status, texts)
        except Exception as exc:  # noqa: BLE001 - every way a request can fail is counted, not raised
            if req.ended is None:
                req.ended = self.now()
            classify_exception(req, inp, exc, self.cap_bytes)
        return req

    def _client_loop(self, client_id: int) -> None:
        from gradio_client import Client

        rng = random.Random(self.seed * 1000 + client_id)
        began = time.perf_counter()
        try:
            client = Client(self.url, verbose=False, download_files=False, analytics_enabled=False)
            page = Page.of(client, self.url)
        except Exception as exc:  # noqa: BLE001
            with self._lock:
                self.errors.append(f"client {client_id} could not connect: {type(exc).__name__}: {exc}")
            return
        finally:
            self._connected.release()
        with self._lock:
            self.connect_s.append(time.perf_counter() - began)
        self._go.wait()
        time.sleep(rng.random() * 0.5)  # don't all fire in the same millisecond
        first = True
        while self.now() < self.sending_from + self.duration_s and self._budget():
            self.one(client, page, self._pick(rng, client_id, first), client_id, self.deadline)
            first = False
        try:
            client.close()
        except Exception:  # noqa: BLE001
            pass

    def run(self, connect_timeout_s: float = 300.0) -> list[Request]:
        threads = [threading.Thread(target=self._client_loop, args=(i,), name=f"client-{i}",
                                    daemon=True) for i in range(self.clients)]
        for t in threads:
            t.start()
        limit = time.perf_counter() + connect_timeout_s
        for _ in threads:  # every client connected (or failed to)
            if not self._connected.acquire(timeout=max(0.0, limit - time.perf_counter())):
                with self._lock:
                    self.errors.append(f"clients still connecting after {connect_timeout_s:g} s; sending anyway")
                break
        self.sending_from = self.now()
        self.deadline = self.sending_from + self.duration_s + self.drain_s
        self._go.set()
        for t in threads:
            t.join(max(0.0, self.deadline - self.now()) + 30)
        return list(self.requests)
