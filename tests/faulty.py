"""Tests-only fault injection around real engines.

`FaultyEngine` wraps a loaded engine and, when armed, fails the next call the
way real engines fail (an exception, MemoryError, a CUDA out-of-memory, an
ONNX Runtime session error, a hang past the time limit); unarmed it hands the
clip to the real engine, so the other precisions (and this one, after the
fault) run the real model. It counts every call, so a test can also assert
that nothing was transcribed from garbage. Never used by the app.
"""
from __future__ import annotations

import dataclasses
import threading
import time

from asr_quant.engines import Engine, RawResult


class FaultyEngine(Engine):
    """A real engine behind a switch. `arm(fault)` fails the next call only;
    `arm(hang=event)` blocks the next call until `event` is set, then
    answers for real (a slow inference, not a broken one); `arm(fault,
    escape=True)` raises out of `transcribe` itself, breaking the Engine
    promise, as a buggy third-party engine would."""

    def __init__(self, inner: Engine):
        self.inner = inner
        self.info = dataclasses.replace(inner.info)  # a copy: the shared engine's info stays untouched
        self.calls = 0  # transcribe calls that reached this engine
        self.real_calls = 0  # calls handed to the real engine
        self._fault: BaseException | None = None
        self._hang: threading.Event | None = None
        self._escape = False
        self._lock = threading.Lock()
        self._local = threading.local()  # the fault of the call running in this thread
        self.last_s = 0.0  # wall time of the last real call
        self._running = 0
        self._idle = threading.Condition(self._lock)

    def arm(self, fault: BaseException | None = None, hang: threading.Event | None = None,
            escape: bool = False) -> "FaultyEngine":
        with self._lock:
            self._fault, self._hang, self._escape = fault, hang, escape
        return self

    def _take(self):
        with self._lock:
            fault, hang, escape = self._fault, self._hang, self._escape
            self._fault, self._hang, self._escape = None, None, False
        return fault, hang, escape

    @property
    def busy(self) -> bool:
        """A call is in progress (an abandoned one included)."""
        with self._lock:
            return self._running > 0

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout)

    def transcribe(self, clip, language=None, **options):
        self.calls += 1
        fault, hang, escape = self._take()
        if fault is not None and escape:
            raise fault
        self._local.pending = (fault, hang)
        with self._lock:
            self._running += 1
        try:
            return super().transcribe(clip, language, **options)
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def _run(self, clip, language) -> RawResult:
        fault, hang = getattr(self._local, "pending", (None, None))
        self._local.pending = (None, None)
        if hang is not None:
            hang.wait()
        if fault is not None:
            raise fault
        self.real_calls += 1
        t0 = time.perf_counter()
        try:
            return self.inner._run(clip, language)
        finally:
            self.last_s = time.perf_counter() - t0


def wrap(engines) -> list[FaultyEngine]:
    return [FaultyEngine(e) for e in engines]


class PerturbedWhisper(Engine):
    """A Whisper engine with a known fault inside: FP32 weights, but one
    decoder layer's fc2 weights get Gaussian noise (`scale` x their std). Its
    transcripts differ from FP32's, and an explanation must place the error
    there: nothing in the encoder or the layers before, growing from that layer
    on. Traced like any torch engine (it has `step_model` and `bundle`)."""

    carries_context = True

    def __init__(self, fp32, layer: int = 3, scale: float = 3.0, name: str = "FAULTY"):
        import copy

        import torch

        from asr_quant.engines.whisper.torch_engine import TorchStepModel

        model = copy.deepcopy(fp32.bundle.hf_model)
        w = model.model.decoder.layers[layer].fc2.weight
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            w += scale * w.std() * torch.randn(w.shape, generator=g)
        self.bundle, self.layer = fp32.bundle, layer
        self.step_model = TorchStepModel(model, "cpu", torch.float32)
        self.info = dataclasses.replace(fp32.info, name=name, precision=name.lower(),
                                        details=f"FP32 with decoder layer {layer}'s fc2 perturbed")

    def _run(self, clip, language, prompt=None, progress=None):
        from asr_quant.engines.whisper import longform

        return longform.transcribe_samples(self.step_model, clip.samples, self.bundle.tokens, language,
                                           n_mels=self.bundle.n_mels, prompt=prompt, progress=progress)
