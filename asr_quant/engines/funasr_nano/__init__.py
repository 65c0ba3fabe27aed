"""Fun-ASR-MLT-Nano-2512 (funasr's FunASRNano) at FP32, FP16 (and BF16) in
PyTorch and INT8 in ONNX Runtime.

`load(settings)` is what `asr_quant.engines.load_engines` calls for this
family. A precision that fails to load becomes an `UnavailableEngine` with the
reason; the others still load.
"""
from __future__ import annotations

import logging

from .. import device as _device
from ..base import NO_LISTENER, EngineError, EngineSet, ModelInfo, describe_error, unavailable, unavailable_set
from . import loading

log = logging.getLogger(__name__)

SUPPORTED = ("fp32", "fp16", "bf16", "int8")


def load(settings, listener=NO_LISTENER):
    precisions = [p for p in settings.precision_list if p]
    label = "Fun-ASR-Nano"
    try:
        folder = loading.resolve(settings.model)
        label = folder.name
        params = loading.count_params(folder)
    except Exception as exc:  # noqa: BLE001 - the whole model failed: every engine says why
        return unavailable_set(settings.model, precisions, describe_error(exc), family="funasr-nano",
                               source=settings.model)

    model_info = ModelInfo(
        name=label, family="funasr-nano", source=folder.source, params=params,
        languages="31 languages (MLT); zh/en/ja + Chinese dialects (Nano)",
        notes=("SenseVoice encoder + Transformer adaptor + Qwen3-0.6B decoder; "
               "CTC timestamps off (needs torchaudio)"),
    )
    try:
        plan = _device.choose(settings.device)
    except Exception as exc:  # noqa: BLE001
        return unavailable_set(label, precisions, describe_error(exc), info=model_info)

    engines = []
    fp32_engine = None
    for p in precisions:
        if p not in SUPPORTED:
            engines.append(unavailable(p, label, f"unknown precision {p!r}; use {', '.join(SUPPORTED)}"))
            continue
        listener.step(p, "loading" + (" (the first start exports and quantizes ONNX: minutes)" if p == "int8" else ""))
        try:
            if p == "int8":
                from .int8_engine import Int8Engine

                source = fp32_engine.model if fp32_engine is not None else None
                eng = Int8Engine(folder, plan.ort_providers, settings.threads, label, settings.cache_dir,
                                 source_model=source, log=log.info)
            else:
                from .artifacts import model_digest
                from .torch_engine import TorchEngine

                eng = TorchEngine(folder, p, plan.torch_device, settings.threads, label)
                eng.info.artifact = f"{folder.name}-{model_digest(folder, settings.cache_dir)}"  # model by content
                if p == "fp32":
                    fp32_engine = eng
        except MemoryError:
            eng = unavailable(p, label, "ran out of memory while loading")
        except Exception as exc:  # noqa: BLE001 - one precision failing must not stop the others
            log.warning("Fun-ASR-Nano %s failed to load: %s", p, exc, exc_info=True)
            eng = unavailable(p, label, describe_error(exc))
        engines.append(eng)
        listener.loaded(eng)
    return EngineSet(model_info, engines)


__all__ = ["load", "EngineError"]
