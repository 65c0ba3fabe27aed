"""The app under test in its own process: a free port on 127.0.0.1, its own
gradio temp folder, readiness, a clean stop, and a sampler of its memory and
temp files."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Sequence


from ..examples import REPO
HOST = "127.0.0.1"  # the only address the load test talks to


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
        self.page_s: float | None = None  # when the page first answered

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_page(self, timeout_s: float) -> float:
        """Seconds until the page answered (the engines may still be loading);
        raises if the app died or never answered."""
        import httpx

        while time.perf_counter() - self.started < timeout_s:
            self._alive()
            try:
                if httpx.get(self.url + "config", timeout=5).status_code == 200:
                    self.page_s = time.perf_counter() - self.started
                    return self.page_s
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"the app did not answer within {timeout_s:.0f} s; see {self.log_path}")

    def engine_status(self) -> dict:
        """The app's own account of its engines (`/engine_status`: done, and each one's state)."""
        from .driver import engine_status

        return engine_status(self.url)

    def wait_ready(self, timeout_s: float) -> float:
        """Seconds until the page answered and every engine finished loading
        (ready or failed); raises if the app died or that never happened."""
        self.wait_page(timeout_s)
        while time.perf_counter() - self.started < timeout_s:
            self._alive()
            if self.engine_status().get("done"):
                return time.perf_counter() - self.started
            time.sleep(1.0)
        raise RuntimeError(f"the app's engines did not finish loading within {timeout_s:.0f} s; see {self.log_path}")

    def _alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the app exited with code {self.proc.returncode}; see {self.log_path}:\n"
                               + self.log_tail())

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
