"""What the web app serves, reads and keeps (issue 7, security).

Checked on a launched app (counting fake engines, 127.0.0.1, a free port, its
own GRADIO_TEMP_DIR): upload size cap, no allowed_paths, no share link,
loopback by default; the file route refuses everything outside gradio's own
folder; a request naming a file that was not uploaded is refused before any
engine runs; the example picker takes an index into the fixed list only;
temporary files of requests are gone once the app closes; and no module
passes a string to a shell.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import tempfile
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import httpx
from gradio_client import Client, handle_file

from asr_quant.app import ui
from asr_quant.examples import read_examples
from asr_quant.settings import Settings

from fake_engines import FakeEngine, fake_set

REPO = Path(__file__).resolve().parents[1]
MAX_FILE_MB = 1.0



def _wav(path: Path, seconds: float = 2.0) -> Path:
    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, subtype="PCM_16")
    return path


class App:
    """A launched page on fakes, with its own gradio temp folder."""

    def __init__(self, serve_page, temp_dir: Path, examples=None):
        self.engines = [FakeEngine("FP32", "one two three"), FakeEngine("FP16", "one two three"),
                        FakeEngine("INT8", "one two tree")]
        self.settings = Settings(max_file_mb=MAX_FILE_MB, inference_timeout_s=30)
        self.temp_dir = temp_dir
        self.demo, url = serve_page(fake_set(*self.engines), self.settings, examples)
        self.url = url.rstrip("/")

    def calls(self) -> list[int]:
        return [e.calls for e in self.engines]

    def fn_index(self, api_name: str) -> int:
        return next(i for i, f in self.demo.fns.items() if f.api_name == api_name)

    def raw_call(self, api_name: str, data: list) -> dict:
        """Join the queue with a hand-made payload (no client-side upload) and
        return the final message."""
        session = os.urandom(8).hex()
        r = httpx.post(f"{self.url}/gradio_api/queue/join", timeout=30, json={
            "data": data, "fn_index": self.fn_index(api_name), "session_hash": session,
            "event_data": None, "trigger_id": None})
        if r.status_code in (400, 422):  # refused at the door (the validator, before the queue)
            return {"msg": "refused", "success": False, "status": r.status_code, "detail": r.json().get("detail")}
        r.raise_for_status()
        with httpx.stream("GET", f"{self.url}/gradio_api/queue/data?session_hash={session}", timeout=60) as s:
            for line in s.iter_lines():
                if line.startswith("data:"):
                    msg = json.loads(line[5:])
                    if msg.get("msg") == "process_completed":
                        return msg
        raise AssertionError("the queue closed without an answer")

    def close(self):
        self.demo.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory, serve_page):
    temp = tmp_path_factory.mktemp("gradio-temp")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(temp))
        a = App(serve_page, temp)
        try:
            yield a
        finally:
            a.close()


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """A real audio file that was never uploaded (in the system temp folder)."""
    return _wav(tmp_path_factory.mktemp("not-uploaded") / "private.wav")


# --- settings of the launched app -------------------------------------------------

def test_launch_settings(app):
    demo = app.demo
    assert demo.max_file_size == int(MAX_FILE_MB * 1024 * 1024)
    assert demo.allowed_paths == []
    assert demo.share is False and demo.share_url is None
    assert demo.server_name == "127.0.0.1"
    freq, age = demo.delete_cache
    assert 0 < freq <= age <= 24 * 3600  # uploads and downloads are swept, not kept forever
    # sessions' state is bounded (gradio's default keeps 10000 sessions, gigabytes on a public demo)
    assert demo.state_session_capacity == ui.SESSIONS_KEPT <= 1000
    assert demo.app.state_holder.capacity == ui.SESSIONS_KEPT


def test_loopback_unless_told(monkeypatch):
    spec = importlib.util.spec_from_file_location("asrq_app_main", REPO / "app.py")
    app_main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app_main)
    seen = []
    monkeypatch.setattr(app_main, "load_engines_or_reasons", lambda s, listener=None: fake_set(FakeEngine("FP32")))
    monkeypatch.setattr(app_main.ui, "build", lambda engines, s: object())
    monkeypatch.setenv("ASRQ_MEMORY_PROBE", "off")  # no child process measuring the fake engine
    monkeypatch.setattr(app_main.ui, "launch", lambda demo, s: seen.append(s))
    monkeypatch.setattr(app_main.ui, "close", lambda demo: None)
    monkeypatch.setattr(app_main.signal, "signal", lambda *a: None)  # keep pytest's own handlers
    monkeypatch.setattr(app_main.memory, "limit_malloc_arenas", lambda n=2: False)  # not in pytest
    for var in ("ASRQ_SERVER_NAME", "GRADIO_SERVER_NAME", "ASRQ_SERVER_PORT", "GRADIO_SERVER_PORT"):
        monkeypatch.delenv(var, raising=False)
    app_main.main([])
    assert seen[-1].server_name == "127.0.0.1" and seen[-1].server_port == 7860
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")  # what a Hugging Face Space sets
    app_main.main([])
    assert seen[-1].server_name == "0.0.0.0"
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "ASRQ_SERVER_NAME=0.0.0.0" in dockerfile  # the only place that opens up by default


# --- what is served -----------------------------------------------------------------

def test_file_route_serves_nothing_outside_gradio_folder(app, outside):
    targets = ["/etc/passwd", str(REPO / "app.py"), str(REPO / "examples" / "examples.tsv"),
               str(outside), "../../../../../../etc/passwd", urllib.parse.quote("/etc/passwd", safe="")]
    for t in targets:
        r = httpx.get(f"{app.url}/gradio_api/file={t}", timeout=10)
        assert r.status_code in (403, 404), (t, r.status_code)
        assert b"root:" not in r.content


def test_request_naming_a_file_not_uploaded_is_refused(app, outside):
    before = app.calls()
    for path in (str(outside), "/etc/passwd"):
        msg = app.raw_call("transcribe", [{"path": path, "meta": {"_type": "gradio.FileData"}}, "en", "", None])
        assert msg["success"] is False, msg
    assert app.calls() == before  # never decoded, never transcribed


def test_example_picker_takes_an_index_into_the_fixed_list(tmp_path_factory, serve_page):
    examples = read_examples(REPO / "examples")
    assert examples, "examples/examples.tsv lists no clip"
    temp = tmp_path_factory.mktemp("gradio-temp-examples")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(temp))
        a = App(serve_page, temp, examples=examples)
        try:
            loaders = [f for f in a.demo.fns.values() if f.api_name == "load_example"]
            assert len(loaders) == 1 and [type(i).__name__ for i in loaders[0].inputs] == ["Dataset"]
            for i, e in enumerate(examples):
                msg = a.raw_call("load_example", [i])
                assert msg["success"] is True, msg
                clip = msg["output"]["data"][0]["value"]  # the Audio widget's new value
                got = Path(clip["path"])
                assert got.name == e.path.name and got.is_relative_to(temp)  # a copy in gradio's folder
            for bad in (len(examples), 99, "/etc/passwd", str(REPO / "app.py")):
                msg = a.raw_call("load_example", [bad])
                assert msg["success"] is False, (bad, msg)
            assert a.calls() == [0, 0, 0]
        finally:
            a.close()


def test_upload_size_cap(app, tmp_path):
    big = _wav(tmp_path / "big.wav", seconds=40.0)  # 1.28 MB > 1 MiB
    assert big.stat().st_size > MAX_FILE_MB * 1024 * 1024
    with open(big, "rb") as f:
        r = httpx.post(f"{app.url}/gradio_api/upload", files={"files": ("big.wav", f, "audio/wav")}, timeout=30)
    assert r.status_code == 413, (r.status_code, r.text[:200])
    assert not list(app.temp_dir.rglob("big.wav"))  # not kept
    with pytest.raises(ValueError, match="maximum file size"):
        Client(app.url + "/", verbose=False).predict(handle_file(str(big)), "en", "", api_name="/transcribe")
    small = _wav(tmp_path / "small.wav")
    with open(small, "rb") as f:
        r = httpx.post(f"{app.url}/gradio_api/upload", files={"files": ("small.wav", f, "audio/wav")}, timeout=30)
    assert r.status_code == 200  # the cap, not uploads as such, refused the big one


def test_sessions_kept_are_bounded(tmp_path, monkeypatch, serve_page):
    """Gradio evicts the oldest session's state once more than SESSIONS_KEPT
    sessions exist (here 3 of 6), so memory does not grow with every visitor."""
    monkeypatch.setattr(ui, "SESSIONS_KEPT", 3)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-temp"))
    a = App(serve_page, tmp_path / "gradio-temp")
    try:
        clip = _wav(tmp_path / "hi.wav")
        for _ in range(6):
            c = Client(a.url + "/", verbose=False, download_files=False)
            assert c.predict(handle_file(str(clip)), "en", "", api_name="/transcribe")[1] == "one two three"
            c.close()
        assert len(a.demo.app.state_holder.session_data) == 3
    finally:
        a.close()


# --- what is kept -----------------------------------------------------------------

def test_request_temp_files_are_removed(tmp_path_factory, serve_page):
    temp = tmp_path_factory.mktemp("gradio-temp-cleanup")
    clip = _wav(tmp_path_factory.mktemp("clips") / "hello.wav")
    system_tmp = Path(tempfile.gettempdir())
    ours_before = set(system_tmp.glob("asrq-*"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(temp))
        a = App(serve_page, temp)
        try:
            out = Client(a.url + "/", verbose=False).predict(handle_file(str(clip)), "en", "",
                                                               api_name="/transcribe")
            assert out[1] == "one two three"
            kept = [p for p in temp.rglob("*") if p.is_file()]
            assert any(p.name == "hello.wav" for p in kept)  # the upload, still shown on the page
            assert any(p.name.startswith("asr-quant-history") for p in kept)  # the downloads
            assert set(system_tmp.glob("asrq-*")) == ours_before  # the request's own scratch is gone
        finally:
            a.close()
    assert [p for p in temp.rglob("*") if p.is_file()] == []  # gradio sweeps its folder on close


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_stopped_app_leaves_no_temp_files(tmp_path, sig, app_process):
    """The real `python app.py` (a model that cannot load, so every engine
    is unavailable and it starts in seconds): after an upload, Ctrl-C or
    `docker stop` (SIGTERM) ends it cleanly and its temp folder is empty."""
    import signal

    app = app_process(tmp_path, ["--model", str(tmp_path / "no-such-model")], timeout_s=120)
    temp, proc, url = app.temp_dir, app.proc, app.url
    try:
        clip = _wav(tmp_path / "upload-me.wav")
        client = Client(url, verbose=False, download_files=False)
        out = client.predict(handle_file(str(clip)), "en", "", api_name="/transcribe")
        assert "0/3 engines answered" in out[0]
        assert "upload-me.wav" in [p.name for p in temp.rglob("*.wav")]  # beside the examples gradio keeps
        proc.send_signal(getattr(signal, sig))  # the client is still connected
        assert proc.wait(60) == 0 if sig == "SIGTERM" else proc.wait(60) in (0, 130)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert [p for p in temp.rglob("*") if p.is_file()] == []


# --- no shell -------------------------------------------------------------------------

def test_no_module_hands_a_string_to_a_shell():
    """Processes are started with argument lists only: no shell=True, no
    os.system/os.popen, no string command line."""
    found = []
    for path in sorted((REPO / "asr_quant").rglob("*.py")) + [REPO / "app.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name in ("os.system", "os.popen", "eval", "exec") or name.startswith("os.exec"):
                found.append(f"{path.name}:{node.lineno} {name}")
            if name.startswith("subprocess."):
                if any(k.arg == "shell" for k in node.keywords):
                    found.append(f"{path.name}:{node.lineno} {name}(shell=...)")
                if node.args and isinstance(node.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp)):
                    found.append(f"{path.name}:{node.lineno} {name} with a string command")
    assert found == []
