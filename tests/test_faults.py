"""Fault isolation on the real Whisper engines (issue 7).

Each engine fails in turn, the way real engines fail: at load (its factory
raises), and on a clip (an exception, MemoryError, CUDA out-of-memory, an
ONNX Runtime session error, an exception escaping `transcribe`, a hang past
the time limit). The failing column shows its error; the other two give
exactly the transcript they give without faults (the real model runs, via
`faulty.FaultyEngine`); and the next request works for all three. Requests go
through the page's own handler, so this is what a person sees.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import httpx

from asr_quant.app import ui
from asr_quant.engines import EngineSet, UnavailableEngine
from asr_quant.settings import Settings

from faulty import FaultyEngine, wrap
from page_driver import run_page

pytestmark = pytest.mark.model

REPO = Path(__file__).resolve().parents[1]
CLIP = str(REPO / "examples" / "directions_en.flac")
NAMES = ["FP32", "FP16", "INT8"]


def _ort_fail(message: str) -> Exception:
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail

    return Fail(message)


def _torch_oom(message: str) -> Exception:
    import torch

    return torch.OutOfMemoryError(message)


# (failing engine, fault, escapes transcribe?, what its column must say)
ON_A_CLIP = [
    ("FP32", lambda: RuntimeError("weights tensor went missing"), False, "RuntimeError: weights tensor went missing"),
    ("FP16", lambda: MemoryError(), False, "ran out of memory on this clip"),
    ("INT8", lambda: RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 3.8 GiB total)"),
     False, "ran out of memory on this clip (RuntimeError)"),
    ("FP32", lambda: _torch_oom("CUDA out of memory. Tried to allocate 20.00 MiB"), False,
     "ran out of memory on this clip (OutOfMemoryError)"),
    ("INT8", lambda: _ort_fail("[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while running "
                               "MatMulInteger node."), False, "Fail: [ONNXRuntimeError] : 1 : FAIL"),
    ("FP16", lambda: RuntimeError("a bug that escaped transcribe"), True, "RuntimeError: a bug that escaped"),
]


class Rig:
    """The real engines behind switches, one page on them, and each engine's
    fault-free transcript of the clip."""

    def __init__(self, whisper_engines):
        for e in whisper_engines.engines:
            assert e.info.available, f"{e.info.name} failed to load: {e.info.error}"
        self.engines = wrap(whisper_engines.engines)
        self.set = EngineSet(model=whisper_engines.model, engines=self.engines)
        self.demo = ui.build(self.set, Settings(inference_timeout_s=600), examples=[])
        first = run_page(self.demo, CLIP, "en")
        self.baseline = {n: first.text(n) for n in NAMES}
        assert all(self.baseline.values()), first.status
        self.last_s = {e.info.name: e.last_s for e in self.engines}

    def by_name(self, name: str) -> FaultyEngine:
        return next(e for e in self.engines if e.info.name == name)

    def assert_answers(self, shown, names) -> None:
        for n in names:
            assert shown.text(n) == self.baseline[n], (n, shown.figures(n), shown.status)


@pytest.fixture(scope="module")
def rig(whisper_engines):
    return Rig(whisper_engines)


@pytest.mark.parametrize("failing,fault,escape,message", ON_A_CLIP,
                         ids=[f"{f}-{m.split(':')[0].split(' (')[0]}" for f, _, _, m in ON_A_CLIP])
def test_fault_on_a_clip(rig, failing, fault, escape, message):
    engine = rig.by_name(failing)
    calls, real = engine.calls, engine.real_calls
    engine.arm(fault(), escape=escape)
    shown = run_page(rig.demo, CLIP, "en")
    assert engine.calls == calls + 1 and engine.real_calls == real  # it was asked, and failed
    assert shown.text(failing) == ""
    assert message in shown.figures(failing), shown.figures(failing)
    assert "Traceback" not in shown.figures(failing)
    assert "2/3 engines answered" in shown.status
    # The others answer as without faults; as consecutive cases fail different
    # engines, this also shows the previous case's engine answering again.
    rig.assert_answers(shown, [n for n in NAMES if n != failing])


def test_every_engine_answers_after_the_faults(rig):
    rig.assert_answers(run_page(rig.demo, CLIP, "en"), NAMES)


def test_time_limit(rig):
    """A hang past `inference_timeout_s` is reported as a time-out, the others
    answer, the page answers the next request at once ("still busy" in that
    column while the abandoned call runs on), and all three once it ends.
    The slowest engine hangs, so the limit only has to clear the other two."""
    name = max(rig.last_s, key=rig.last_s.get)
    others = [n for n in NAMES if n != name]
    # far above any real call of the others on this clip, so only the hang trips it: engines run at
    # nice 10 and yield to anything else on a shared host (4x was once exceeded there)
    limit = max(12.0, 8 * max(rig.last_s[n] for n in others))
    demo = ui.build(rig.set, Settings(inference_timeout_s=limit), examples=[])
    hung = rig.by_name(name)
    gate = threading.Event()
    hung.arm(hang=gate)
    try:
        t0 = time.perf_counter()
        shown = run_page(demo, CLIP, "en")
        waited = time.perf_counter() - t0
        assert f"timed out: no answer within the {limit:g} s limit" in shown.figures(name)
        assert shown.text(name) == "" and hung.busy
        rig.assert_answers(shown, others)
        assert waited >= limit  # it did wait for the limit, then gave up on that engine only

        still = run_page(demo, CLIP, "en")
        assert "still busy with an earlier clip" in still.figures(name)
        rig.assert_answers(still, others)
        assert hung.busy  # the abandoned call is still held: the page did not wait for it
    finally:
        gate.set()
    assert hung.wait_idle(120), "the abandoned call never ended"
    after = run_page(demo, CLIP, "en")
    rig.assert_answers(after, NAMES)


# --- at load --------------------------------------------------------------------------

LOAD_FAULTS = {
    "fp32": OSError("model.safetensors: truncated file"),
    "fp16": RuntimeError("\"addmm_impl_cpu_\" not implemented for 'Half'"),
    "int8": None,  # filled in lazily: onnxruntime's own exception type
}



@pytest.mark.parametrize("failing", ["fp32", "fp16", "int8"])
def test_fault_at_load(rig, whisper_engines, monkeypatch, failing, serve_page):
    """The factory of one precision raises inside the real `load_engines`: it
    becomes an UnavailableEngine with the reason, the page starts and shows
    it, and (FP32, the baseline, failing) the other two still transcribe."""
    from asr_quant.engines import load_engines, whisper

    fault = LOAD_FAULTS[failing] or _ort_fail("[ONNXRuntimeError] : 3 : NO_SUCHFILE : encoder.onnx failed. "
                                              "File doesn't exist")
    bundle = whisper_engines.engines[0].bundle
    real = {e.info.precision: e for e in whisper_engines.engines}

    def factory(b, precision, settings, plan, listener=None):
        if precision == failing:
            raise fault
        return FaultyEngine(real[precision])  # the already loaded engine (info copied, not shared)

    monkeypatch.setattr(whisper, "load_bundle", lambda model, cache_dir, fp32=True: bundle)
    monkeypatch.setattr(whisper, "_engine", factory)
    engine_set = load_engines(Settings(model="base", device="cpu", threads=2))
    by = {e.info.precision: e for e in engine_set.engines}
    assert isinstance(by[failing], UnavailableEngine) and not by[failing].info.available
    reason = by[failing].info.error
    assert str(fault).split(":")[0] in reason, reason
    assert all(isinstance(by[p], FaultyEngine) and by[p].info.available for p in by if p != failing)

    demo, url = serve_page(engine_set, Settings(inference_timeout_s=600))
    try:
        config = httpx.get(f"{url}config", timeout=30)
        assert config.status_code == 200
        props = {c["props"].get("elem_id"): c["props"] for c in config.json()["components"]}
        name = failing.upper()
        header = props[f"head-{name.lower()}"]["value"]  # the column's heading on the page
        assert "**unavailable:**" in header and str(fault).split(":")[0] in header.replace("\\", "")
        assert props[f"text-{name.lower()}"]["visible"] is False  # no transcript box for it
    finally:
        demo.close()
    if failing == "fp32":  # the baseline gone: the other two must still answer
        shown = run_page(demo, CLIP, "en")
        assert shown.text(name) == "" and "2/3 engines answered" in shown.status
        rig.assert_answers(shown, [n for n in NAMES if n != name])
    else:  # what its column gets, without running the others again
        t = by[failing].transcribe(_clip())
        assert t.error == f"{name} is unavailable: {reason}" and not t.text


def _clip():
    from asr_quant import audio

    return audio.load(CLIP)
