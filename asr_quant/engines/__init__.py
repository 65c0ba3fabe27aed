"""The one place that picks a model family and builds its engines.

Family modules are imported lazily so the UI and CLI start fast and a missing
optional dependency only breaks the family that needs it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from .base import Engine, EngineError, EngineInfo, Memory, RawResult, Timings, Transcript, UnavailableEngine
from ..settings import Settings

FUNASR_NANO_HUB_ID = "FunAudioLLM/Fun-ASR-MLT-Nano-2512"


@dataclass
class ModelInfo:
    """What the page and the reports say about the loaded model."""

    name: str  # e.g. "Whisper base (multilingual)"
    family: str  # "whisper" | "funasr-nano"
    source: str  # where the weights came from, in words
    params: int = 0
    languages: str = ""
    notes: str = ""


@dataclass
class EngineSet:
    model: ModelInfo
    engines: list[Engine] = field(default_factory=list)

    def by_name(self, name: str) -> Engine:
        for e in self.engines:
            if e.info.name == name:
                return e
        raise KeyError(name)


def family_of(model: str) -> str:
    """"whisper" for the offline names and CT2 folders, "funasr-nano" otherwise."""
    if model in ("base", "tiny.en") or model.startswith("whisper-"):
        return "whisper"
    if os.path.isdir(model):
        if os.path.exists(os.path.join(model, "model.bin")):
            return "whisper"
        return "funasr-nano"
    if "fun-asr" in model.lower() or "funasr" in model.lower():
        return "funasr-nano"
    raise EngineError(
        f"unknown model {model!r}: use 'base', 'tiny.en', a CTranslate2 Whisper folder, "
        f"{FUNASR_NANO_HUB_ID!r} or a Fun-ASR-Nano folder"
    )


def load_engines(settings: Settings) -> EngineSet:
    """Build every requested precision once; a precision that fails to load
    becomes an `UnavailableEngine` carrying the reason."""
    family = family_of(settings.model)
    if family == "whisper":
        from .whisper import load as load_family
    else:
        from .funasr_nano import load as load_family
    return load_family(settings)


__all__ = [
    "Engine", "EngineError", "EngineInfo", "EngineSet", "Memory", "ModelInfo", "RawResult",
    "Timings", "Transcript", "UnavailableEngine", "family_of", "load_engines", "FUNASR_NANO_HUB_ID",
]
