"""The page opens before the engines are loaded: with fake engines loaded by a
gated loader, a request made while INT8 is still loading runs on the ready
engines and says which are still coming; each column's header shows its
loading step; a failed load becomes that engine's error; the JSON API and the
engine status answer as documented."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile as sf

gr = pytest.importorskip("gradio")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import ValidationError  # noqa: E402

from asr_quant.app.live import LiveEngines  # noqa: E402
from asr_quant.engines import EngineSet  # noqa: E402
from asr_quant.settings import Settings  # noqa: E402

from fake_engines import FakeEngine, fake_set, unavailable  # noqa: E402

JSON_KEYS = {"name", "precision", "runtime", "device", "text", "language", "tokens", "latency_s", "rtf",
             "disk_bytes", "weights_bytes", "peak_rss_alone_bytes", "working_bytes", "working_clip",
             "working_measured_at", "process_bytes", "process_kind",
             "load_growth_bytes", "rss_bytes", "peak_bytes", "error"}  # the CLI's --json shape (engines/results.py)


@pytest.fixture()
def tone(tmp_path):
    t = np.arange(16000 * 2) / 16000
    sf.write(tmp_path / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    (tmp_path / "notes.wav").write_text("this is a text file, not audio\n" * 20)
    return tmp_path


def _wait(predicate, timeout_s=20.0):
    end = time.time() + timeout_s
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_live_engines_come_online_one_by_one():
    gate = threading.Event()
    fp32, int8 = FakeEngine("FP32", "hello"), FakeEngine("INT8", "hello")

    def load(listener) -> EngineSet:
        listener.step(None, "loading the model weights")
        listener.loaded(fp32)
        listener.step("int8", "calibrating 3/8")
        gate.wait(10)
        listener.loaded(int8)
        return fake_set(fp32, int8)

    live = LiveEngines("fake", ["fp32", "int8"])
    assert [s.state for s in live.snapshot()] == ["waiting", "waiting"]
    live.start(load)
    assert _wait(lambda: live.snapshot()[1].message == "calibrating 3/8")
    slots = live.snapshot()
    assert (slots[0].state, slots[0].engine) == ("ready", fp32)
    assert slots[1].state == "loading" and slots[1].engine is None and not live.done
    gate.set()
    assert live.wait(10)
    assert [s.state for s in live.snapshot()] == ["ready", "ready"]
    assert live.status()["done"] is True and live.model.name == "Fake model"


def test_a_loader_that_raises_fails_the_engines_still_loading():
    fp32 = FakeEngine("FP32", "hello")

    def load(listener):
        listener.loaded(fp32)
        raise RuntimeError("the INT8 build crashed")

    live = LiveEngines("fake", ["fp32", "int8"])
    live.start(load)
    assert live.wait(10)
    fp32_slot, int8_slot = live.snapshot()
    assert fp32_slot.state == "ready"
    assert int8_slot.state == "failed" and "the INT8 build crashed" in int8_slot.engine.info.error


def test_page_runs_on_ready_engines_while_int8_loads(serve_page, tone):
    gate = threading.Event()
    fp32, fp16 = FakeEngine("FP32", "the quick brown fox"), FakeEngine("FP16", "the quick brown fox")

    def load(listener):
        listener.loaded(fp32)
        listener.loaded(fp16)
        listener.step("int8", "exporting ONNX")
        gate.wait(30)
        broken = unavailable("INT8", "building the INT8 model failed: out of disk")
        listener.loaded(broken)
        return fake_set(fp32, fp16, broken)

    live = LiveEngines("fake", ["fp32", "fp16", "int8"])
    live.start(load)
    assert _wait(lambda: live.snapshot()[2].message == "exporting ONNX")
    demo, url = serve_page(live, Settings(inference_timeout_s=10))
    try:
        client = Client(url, verbose=False, download_files=False)  # the JSON's clip "path" is not a file to fetch
        labels = [r["label"] for r in client.view_api(print_info=False, return_format="dict")
                  ["named_endpoints"]["/transcribe"]["returns"]]
        out = dict(zip(labels, client.predict(handle_file(str(tone / "tone.wav")), "en", "", api_name="/transcribe")))
        status = out["status"].replace("\\", "")
        assert "2/2 engines answered" in status and "INT8 is still loading" in status
        assert out["FP32 transcript"] == "the quick brown fox" and out["FP16 transcript"] == "the quick brown fox"
        assert "still loading (exporting ONNX)" in out["INT8 figures"]  # what the loading engine does
        state = client.predict(api_name="/engine_status")
        assert [e["state"] for e in state["engines"]] == ["ready", "ready", "loading"] and not state["done"]

        result = client.predict(handle_file(str(tone / "tone.wav")), "en", api_name="/transcribe_json")
        assert [e["name"] for e in result["engines"]] == ["FP32", "FP16", "INT8"]
        assert all(set(e) == JSON_KEYS for e in result["engines"])
        assert result["engines"][0]["text"] == "the quick brown fox" and result["engines"][0]["error"] is None
        assert "INT8 is still loading (exporting ONNX)" == result["engines"][2]["error"]
        assert result["clip"]["duration_s"] == 2.0 and result["clip"]["sample_rate_in"] == 16000

        gate.set()
        assert live.wait(10)
        state = client.predict(api_name="/engine_status")
        assert state["done"] and state["engines"][2]["state"] == "failed"
        assert "out of disk" in state["engines"][2]["message"]
        out = client.predict(handle_file(str(tone / "tone.wav")), "en", "", api_name="/transcribe")
        assert "2/3 engines answered" in out[0].replace("\\", "") and "still loading" not in out[0]

        with pytest.raises(ValidationError, match="not audio"):
            client.predict(handle_file(str(tone / "notes.wav")), "auto", api_name="/transcribe_json")
    finally:
        gate.set()
        demo.close()


def test_outputs_have_names(serve_page):
    demo, url = serve_page(fake_set(FakeEngine("FP32", "a"), FakeEngine("INT8", "a")), Settings())
    try:
        api = Client(url, verbose=False).view_api(print_info=False, return_format="dict")
        names = [r["label"] for r in api["named_endpoints"]["/transcribe"]["returns"]]
        assert not [n for n in names if n.startswith("value_")], names
        assert {"status", "FP32 transcript", "INT8 transcript", "INT8 figures"} <= set(names)
        assert "/transcribe_json" in api["named_endpoints"]
    finally:
        demo.close()


def test_a_request_before_any_engine_is_ready_says_so(tone):
    from asr_quant.app import ui
    from page_driver import run_page

    live = LiveEngines("fake", ["fp32", "int8"])  # never started: nothing has loaded
    demo = ui.build(live, Settings(), examples=[])
    shown = run_page(demo, str(tone / "tone.wav"), "en")
    assert "No engine is ready yet" in shown.status and "FP32, INT8 are still loading" in shown.status
    assert shown.text("FP32") == "" and "still loading" in shown.figures("INT8")
