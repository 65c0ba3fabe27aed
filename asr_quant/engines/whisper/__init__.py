"""Offline Whisper (base multilingual or tiny.en from PyPI, or any CTranslate2
Whisper folder) at FP32, FP16 (and optional BF16) in PyTorch and INT8 in ONNX
Runtime, all decoded by the same `decoding` module on the same `features`."""
from __future__ import annotations

import time

from ... import memory as _memory
from .. import device as _device
from ..base import NO_LISTENER, EngineSet, LoadListener, ModelInfo, describe_error, unavailable
from ...settings import Settings
from .model import WhisperBundle

PRECISIONS = ("fp32", "fp16", "int8", "bf16")


def load_bundle(model: str, cache_dir: str) -> WhisperBundle:
    """Locate (join + verify) the CT2 weights, convert them once, load FP32."""
    from transformers.utils import logging as hf_logging

    from . import ct2
    from .tokens import TokenizerInfo

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    src = ct2.locate(model, cache_dir)
    hf_model, fp32_file, converted = ct2.load_fp32(src)
    config = hf_model.config
    tokens = TokenizerInfo.from_ct2_dir(src.ct2_dir, vocab_size=config.vocab_size,
                                        max_positions=config.max_target_positions)
    return WhisperBundle(
        hf_model=hf_model, tokenizer=tokens.tokenizer, tokens=tokens, config=config,
        key=src.key, name=src.name, source=src.source, ct2_dir=src.ct2_dir, sha256=src.sha256,
        cache_dir=src.cache_dir, params=sum(p.numel() for p in hf_model.parameters()),
        fp32_file=fp32_file, converted_now=converted,
    )


def _engine(bundle: WhisperBundle, precision: str, settings: Settings, plan, listener: LoadListener):
    if precision == "int8":
        from .int8 import WhisperInt8Engine

        return WhisperInt8Engine(bundle, settings, plan, progress=lambda message: listener.step("int8", message))
    from .torch_engine import WhisperTorchEngine

    return WhisperTorchEngine(bundle, precision, plan.torch_device, settings.threads)


def load(settings: Settings, listener: LoadListener = NO_LISTENER) -> EngineSet:
    """Build one engine per requested precision; one that fails to load becomes
    an `UnavailableEngine` with the reason, and the others still run. Each is
    handed to `listener.loaded` as soon as it is ready."""
    plan = _device.choose(settings.device)
    precisions = [p for p in settings.precision_list]
    unknown = [p for p in precisions if p not in PRECISIONS]
    meter = _memory.LoadMeter(plan.torch_device)
    t0 = time.perf_counter()
    listener.step(None, "loading the model weights (a first start converts them to PyTorch)")
    with meter:
        bundle = load_bundle(settings.model, settings.cache_dir)
    bundle_bytes, bundle_s = meter.grown_bytes, time.perf_counter() - t0
    engines = []
    for precision in precisions:
        if precision in unknown:
            engines.append(unavailable(precision, bundle.name,
                                       f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})"))
            listener.loaded(engines[-1])
            continue
        listener.step(precision, "loading")
        t0 = time.perf_counter()
        meter = _memory.LoadMeter(plan.torch_device)
        try:
            with meter:
                engine = _engine(bundle, precision, settings, plan, listener)
        except Exception as exc:  # noqa: BLE001 - one precision failing must not stop the others
            runtime = "ONNX Runtime" if precision == "int8" else "PyTorch"
            dev = plan.ort_device if precision == "int8" else plan.torch_device
            engines.append(unavailable(precision, bundle.name, describe_error(exc), runtime=runtime, device=dev,
                                       threads=settings.threads, load_s=time.perf_counter() - t0))
            listener.loaded(engines[-1])
            continue
        # The FP32 engine is the bundle's own model: its load is the bundle's.
        if precision == "fp32":
            engine.info.resident_bytes = meter.grown_bytes + bundle_bytes
            engine.info.load_s += bundle_s
        else:
            engine.info.resident_bytes = meter.grown_bytes
        engines.append(engine)
        listener.loaded(engine)
    info = ModelInfo(
        name=bundle.name, family="whisper", source=bundle.source, params=bundle.params,
        languages=", ".join(bundle.languages),
        notes=(f"sha256 {bundle.sha256[:12]}; greedy decoding, same log-mel features and decoding loop "
               f"for every precision; {settings.threads} threads"),
    )
    return EngineSet(model=info, engines=engines)


# --- optional functions the benchmark looks for (engines.family_hook) --------------------

def peer_engines(settings: Settings, kinds: list[str], model_name: str) -> list:
    """faster-whisper engines on the same CTranslate2 weights."""
    from .peers import faster_whisper_engines

    return faster_whisper_engines(settings, kinds, model_name) if kinds else []


def int8_variant(engine_set: EngineSet, settings: Settings, mode: str, calib_size: int):
    """One INT8 engine built with a given quantization (calibration study);
    reuses the loaded model bundle when an engine holds it."""
    from .int8 import build_variant

    bundle = next((e.bundle for e in engine_set.engines if getattr(e, "bundle", None) is not None), None)
    if bundle is None:
        bundle = load_bundle(settings.model, settings.cache_dir)
    return build_variant(bundle, settings, _device.choose(settings.device), mode=mode,
                         calib_size=calib_size or None)


def calibration_texts(settings: Settings) -> set[str]:
    """Texts the INT8 quantizer calibrates on, so a benchmark can prove its test clips are disjoint."""
    from . import calibration

    return {u.text for u in calibration.CALIBRATION}


def op_profile(engine, clips, out_dir, threads: int) -> dict | None:
    """ONNX Runtime's per-operator times for an INT8 engine (None for others)."""
    from . import ort_profile

    if not ort_profile.supports(engine):
        return None
    return ort_profile.profile(engine, clips, out_dir, threads)


def export_int8(engine, out_dir):
    """The loaded INT8 engine's model as a folder to take away (see export.py)."""
    from .export import export

    return export(engine, out_dir)


__all__ = ["load", "load_bundle", "WhisperBundle", "PRECISIONS", "peer_engines", "int8_variant", "calibration_texts",
           "op_profile", "export_int8"]
