"""Tests-only stand-ins for real engines: the page, runner and charts are
exercised without loading a model. Never used by the app itself."""
from __future__ import annotations

import threading
import time

from asr_quant.engines import Engine, EngineInfo, EngineSet, ModelInfo, RawResult, UnavailableEngine


class FakeEngine(Engine):
    """Answers `text` after `delay_s`; raises `fail` if given; blocks on
    `gate` (a threading.Event) when given, to simulate a hung inference."""

    def __init__(self, name: str, text: str = "hello world", delay_s: float = 0.0,
                 fail: BaseException | None = None, gate: threading.Event | None = None,
                 language: str = "en", warnings: list[str] | None = None):
        self.info = EngineInfo(name=name, precision=name.lower(), runtime="Fake 1.0", device="cpu",
                               model="fake model", details="tests only", threads=1,
                               disk_bytes=10 * 2**20, resident_bytes=20 * 2**20, load_s=0.01)
        self.text, self.delay_s, self.fail, self.gate = text, delay_s, fail, gate
        self.language, self.warnings = language, warnings or []
        self.calls = 0

    def _run(self, clip, language):
        self.calls += 1
        if self.gate is not None:
            self.gate.wait()
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail is not None:
            raise self.fail
        words = self.text.split()
        return RawResult(text=self.text, language=language or self.language,
                         token_ids=list(range(len(words))), warnings=list(self.warnings))


def fake_set(*engines: Engine) -> EngineSet:
    return EngineSet(model=ModelInfo(name="Fake model", family="whisper", source="tests", params=1000),
                     engines=list(engines))


def unavailable(name: str, reason: str) -> UnavailableEngine:
    return UnavailableEngine(EngineInfo(name=name, precision=name.lower(), runtime="Fake", device="cpu",
                                        model="fake model", error=reason))
