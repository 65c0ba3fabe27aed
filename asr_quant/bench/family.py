"""What a model family may offer the benchmark (peers on the same weights,
INT8 variants, calibration texts, an operator profile), looked up through
`engines.family_hook` so the benchmark never reaches into a family's internals."""

from __future__ import annotations

from pathlib import Path

from ..engines import EngineError, family_hook
from ..engines.base import Engine
from ..settings import Settings


def _hook(settings: Settings, name: str):
    return family_hook(settings.model, name)


def family_peers(settings: Settings, kinds: list[str], model_name: str) -> list[Engine]:
    """Peer engines on the same weights (faster-whisper for Whisper models), or none."""
    peers = _hook(settings, "peer_engines")
    return peers(settings, kinds, model_name) if peers and kinds else []


def family_int8_variant(engine_set, settings: Settings, mode: str, calib_size: int, **quant) -> Engine:
    """One INT8 engine built with a given quantization (calibration study, another plan)."""
    variant = _hook(settings, "int8_variant")
    if variant is None:
        raise EngineError(f"INT8 variants are not implemented for {settings.model!r}")
    return variant(engine_set, settings, mode, calib_size, **quant)


def family_rounded_weights(engine_set, settings: Settings) -> Engine:
    """FP32 arithmetic on INT8-rounded weights, the study row of `--rounded-weights`."""
    make = _hook(settings, "rounded_weights_engine")
    if make is None:
        raise EngineError(f"the rounded-weights study is not implemented for {settings.model!r}")
    return make(engine_set, settings)


def family_calibration_texts(settings: Settings) -> set[str]:
    """Texts the INT8 quantizer calibrates on, to prove the test clips are disjoint."""
    texts = _hook(settings, "calibration_texts")
    return texts(settings) if texts else set()


def family_op_profile(settings: Settings, engine: Engine, clips, out_dir: Path, threads: int) -> dict | None:
    """ONNX Runtime's per-operator times for engines built on ORT sessions."""
    profile = _hook(settings, "op_profile")
    if profile is None:
        return None
    try:
        return profile(engine, clips, out_dir, threads)
    except Exception as exc:  # noqa: BLE001 - a profile is a bonus, never a failure of the run
        return {"error": f"{type(exc).__name__}: {exc}"}


def english_only(model_info, settings: Settings) -> bool:
    langs = (getattr(model_info, "languages", "") or "").strip().lower()
    return settings.model.endswith(".en") or langs in ("en", "english")
