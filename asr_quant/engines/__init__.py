"""The one place that picks a model family and builds its engines.

Family modules are imported lazily so the UI and CLI start fast and a missing
optional dependency only breaks the family that needs it.
"""
from __future__ import annotations

import logging
import os
from types import ModuleType
from typing import Callable

from .base import (NO_LISTENER, Engine, EngineError, EngineInfo, EngineSet, LoadListener, Memory, ModelInfo,
                   RawResult, Timings, Transcript, UnavailableEngine, describe_error, unavailable_set)
from ..settings import Settings

FUNASR_NANO_HUB_ID = "FunAudioLLM/Fun-ASR-MLT-Nano-2512"


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


def family_module(model: str) -> ModuleType:
    """The package of the model's family (imported now, lazily)."""
    if family_of(model) == "whisper":
        from . import whisper as module
    else:
        from . import funasr_nano as module
    return module


def family_hook(model: str, name: str) -> Callable | None:
    """An optional function a family package may offer to the benchmark
    (`peer_engines`, `int8_variant`, `calibration_texts`, `op_profile`,
    `explain_difference`, `export_int8`), or None
    when that family has none. Keeps the applications out of family internals."""
    fn = getattr(family_module(model), name, None)
    return fn if callable(fn) and not isinstance(fn, ModuleType) else None


def load_engines(settings: Settings, listener: LoadListener = NO_LISTENER) -> EngineSet:
    """Build every requested precision once; a precision that fails to load
    becomes an `UnavailableEngine` carrying the reason. `listener` hears each
    step and each engine as soon as it is ready."""
    return family_module(settings.model).load(settings, listener)


def load_engines_or_reasons(settings: Settings, listener: LoadListener = NO_LISTENER) -> EngineSet:
    """`load_engines`, but a model that cannot load at all gives one unavailable
    engine per precision carrying the reason, so a page still opens and says why."""
    try:
        return load_engines(settings, listener)
    except Exception as exc:  # noqa: BLE001 - the caller shows people what went wrong
        logging.getLogger(__name__).exception("could not load model %r", settings.model)
        reason = f"the model {settings.model!r} could not be loaded: {describe_error(exc)}"
        return unavailable_set(settings.model, settings.precision_list, reason)


__all__ = [
    "Engine", "EngineError", "EngineInfo", "EngineSet", "LoadListener", "Memory", "ModelInfo", "RawResult",
    "Timings", "Transcript", "UnavailableEngine", "describe_error", "family_hook", "family_module", "family_of",
    "load_engines", "load_engines_or_reasons", "unavailable_set", "FUNASR_NANO_HUB_ID",
]
