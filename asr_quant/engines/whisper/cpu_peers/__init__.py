"""Other CPU runtimes a user would pick instead of this project's engines,
each built offline from the same Whisper weights (never downloaded) and run as
a benchmark peer row beside faster-whisper's.

Kinds (`--peers`): `torch-int8` (PyTorch dynamic INT8), `openai-whisper`
(the reference implementation, FP32), `whispercpp-q8_0` / `whispercpp-f16`
(whisper.cpp via pywhispercpp), `openvino-fp32` / `openvino-int8` (NNCF weight
compression) / `openvino-int8-sq` (NNCF full INT8 with SmoothQuant). Timed like every engine: `Engine.transcribe` around
16 kHz samples in, text out (features, encoder, greedy decoding and
detokenization inside). One that cannot be built here becomes an unavailable
row carrying the exact reason, never a missing row.
"""
from __future__ import annotations

from ...base import Engine, EngineInfo, UnavailableEngine
from ....settings import Settings

KINDS = {
    "torch-int8": ("PyTorch dynamic INT8", "int8", "PyTorch"),
    "openai-whisper": ("openai-whisper FP32", "fp32", "openai-whisper"),
    "whispercpp-q8_0": ("whisper.cpp Q8_0", "int8", "whisper.cpp"),
    "whispercpp-f16": ("whisper.cpp F16", "fp16", "whisper.cpp"),
    "openvino-fp32": ("OpenVINO FP32", "fp32", "OpenVINO"),
    "openvino-int8": ("OpenVINO INT8 (NNCF)", "int8", "OpenVINO"),
    "openvino-int8-sq": ("OpenVINO INT8 (NNCF SmoothQuant)", "int8", "OpenVINO"),
}


def _build(kind: str, settings: Settings, model_name: str) -> Engine:
    """Each peer gets its own bundle, its FP32 model loaded only if a conversion needs it, so that
    what the peer holds while it runs is its own runtime's weights, not a second FP32 copy."""
    from .. import load_bundle

    if kind == "torch-int8":
        from .torch_dynamic import TorchDynamicInt8Engine

        return TorchDynamicInt8Engine(load_bundle(settings.model, settings.cache_dir, fp32=False), settings.threads)
    if kind == "openai-whisper":
        from .openai_ref import OpenAIWhisperEngine

        return OpenAIWhisperEngine(load_bundle(settings.model, settings.cache_dir, fp32=False), settings.threads)
    if kind.startswith("whispercpp-"):
        from .whispercpp import WhisperCppEngine

        return WhisperCppEngine(load_bundle(settings.model, settings.cache_dir, fp32=False), kind.split("-", 1)[1],
                                settings.threads)
    from .openvino import OpenVINOEngine

    return OpenVINOEngine(load_bundle(settings.model, settings.cache_dir, fp32=False), kind.split("-", 1)[1],
                          settings.threads, settings.cache_dir)


def engines(settings: Settings, kinds: list[str], model_name: str) -> list[Engine]:
    """The peers of `kinds` (a subset of KINDS); each failure is that row's reason."""
    out: list[Engine] = []
    for kind in kinds:
        name, precision, runtime = KINDS[kind]
        try:
            eng = _build(kind, settings, model_name)
        except Exception as exc:  # noqa: BLE001 - a peer's failure is reported as its row
            eng = UnavailableEngine(EngineInfo(name=name, precision=precision, runtime=runtime, device="cpu",
                                               model=model_name, available=False,
                                               error=f"{type(exc).__name__}: {exc}"))
        eng.peer_kind = kind  # the memory probe rebuilds the peer alone by this kind
        out.append(eng)
    return out
