"""Issue 23 (17): the app's helper processes die with it. Killing the app (a
test's teardown, `docker stop`, the OOM killer) must not leave its memory
probe running as an orphan at full CPU."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[1]
PARENT = """
import sys, threading, time
from asr_quant import children
child = [sys.executable, "-c", "import time; time.sleep(120)"]
threading.Thread(target=lambda: children.run(child, 300), daemon=True).start()
time.sleep(300)
"""


def _wait_for(pred, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (found := pred()):
            return found
        time.sleep(0.1)
    pytest.fail(f"{what} did not happen within {timeout_s:.0f} s")


def _kill_and_check(parent: psutil.Process, kids: list[psutil.Process], sig: str) -> None:
    assert kids and all(k.is_running() for k in kids)
    os.kill(parent.pid, getattr(signal, sig))
    gone, alive = psutil.wait_procs(kids, timeout=5)
    for k in alive:
        k.kill()
    assert alive == [], f"alive 5 s after {sig} of the parent: {[k.cmdline() for k in alive]}"


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_a_child_dies_with_its_parent(sig):
    proc = subprocess.Popen([sys.executable, "-c", PARENT], cwd=REPO)
    try:
        parent = psutil.Process(proc.pid)
        kids = _wait_for(lambda: parent.children(recursive=True), 60, "the child start")
        _kill_and_check(parent, kids, sig)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.model
@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_killed_app_leaves_no_memory_probe_behind(sig, tmp_path):
    """The real `python app.py` (Whisper tiny.en, FP32: quick to load) with an
    empty memory-alone cache, so its background probe starts; the app killed
    while the probe runs: within 5 s no process it started is alive."""
    from asr_quant.loadtest import AppProcess, free_port
    from asr_quant.settings import Settings

    cache = tmp_path / "cache"
    cache.mkdir()
    for p in Path(Settings.from_env().cache_dir).iterdir():  # the shared artifacts, not their memory figures
        if p.name != "memory-alone":
            (cache / p.name).symlink_to(p)
    app = AppProcess(tmp_path, free_port(), ["--model", "tiny.en", "--precisions", "fp32", "--threads", "1",
                                             "--cache-dir", str(cache), "--memory-probe", "background"])
    try:
        app.wait_ready(600)
        parent = psutil.Process(app.pid)

        def probing():
            kids = parent.children(recursive=True)
            try:
                return kids if any("asr_quant.engines.alone" in " ".join(k.cmdline()) for k in kids) else None
            except psutil.Error:  # one ended while we looked
                return None

        _kill_and_check(parent, _wait_for(probing, 300, "the memory probe's start"), sig)
    finally:
        app.proc.kill()
        app.stop(5)


def test_an_app_that_returns_leaves_the_process_able_to_start_children():
    """app.main's normal return kills its children but does not close the process for good
    (a test's in-process app did, and every later memory probe in that process was refused)."""
    import sys

    from asr_quant import children

    p = children.popen([sys.executable, "-c", "import time; time.sleep(30)"])
    children.kill_all(close=False)
    assert p.wait(timeout=5) != 0  # killed
    assert children.run([sys.executable, "-c", "print(1)"], timeout_s=30).stdout.strip() == "1"
