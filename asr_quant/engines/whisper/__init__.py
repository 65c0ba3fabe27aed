"""Offline Whisper (base multilingual or tiny.en from PyPI, or any CTranslate2
Whisper folder) at FP32, FP16 (and optional BF16) in PyTorch, INT8 in ONNX
Runtime and, as the same-runtime reference, FP32 in ONNX Runtime ("ort-fp32"),
all decoded by the same `decoding` module on the same `features`."""
from __future__ import annotations

import time
from types import SimpleNamespace

from ... import memory as _memory
from .. import device as _device
from ..base import NO_LISTENER, EngineSet, LoadListener, ModelInfo, describe_error, unavailable
from ...settings import Settings
from .model import WhisperBundle

PRECISIONS = ("fp32", "fp16", "int8", "bf16", "ort-fp32", "fp16-trt")
ORT_PRECISIONS = ("int8", "ort-fp32", "fp16-trt")  # ONNX Runtime engines: no torch once their artifacts are cached


def load_bundle(model: str, cache_dir: str, fp32: bool = True) -> WhisperBundle:
    """Locate (join + verify) the CT2 weights and read the tokenizer and
    dimensions; with `fp32`, also convert (once) and load the FP32 model now,
    else on first use of `bundle.hf_model`."""
    from . import ct2
    from .tokens import TokenizerInfo

    src = ct2.locate(model, cache_dir)
    dims = ct2.model_dims(src)
    config = SimpleNamespace(**{k: v for k, v in dims.items() if k != "params"})
    tokens = TokenizerInfo.from_ct2_dir(src.ct2_dir, vocab_size=config.vocab_size,
                                        max_positions=config.max_target_positions)

    def load_fp32():
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        hf_model, _, converted = ct2.load_fp32(src)
        return hf_model, converted

    bundle = WhisperBundle(
        tokenizer=tokens.tokenizer, tokens=tokens, config=config, key=src.key, name=src.name, source=src.source,
        ct2_dir=src.ct2_dir, sha256=src.sha256, cache_dir=src.cache_dir, params=int(dims["params"]),
        fp32_dir=ct2.fp32_dir(src), load_fp32=load_fp32,
    )
    if fp32:
        bundle.hf_model  # noqa: B018 - load now
    return bundle


def _engine(bundle: WhisperBundle, precision: str, settings: Settings, plan, listener: LoadListener):
    if precision == "int8" and plan.int8_recipe == "cuda":  # issue 14: INT8 that stays on the GPU
        from .int8_cuda import WhisperInt8CudaEngine

        return WhisperInt8CudaEngine(bundle, settings, plan)
    if precision in ("int8", "ort-fp32"):
        from .int8 import WhisperInt8Engine
        from .ort_engine import OrtWhisperEngine

        cls = WhisperInt8Engine if precision == "int8" else OrtWhisperEngine
        return cls(bundle, settings, plan, progress=lambda message: listener.step(precision, message))
    if precision == "fp16-trt":
        from .trt_engine import WhisperTrtEngine

        return WhisperTrtEngine(bundle, settings, plan)
    from .torch_engine import WhisperTorchEngine

    return WhisperTorchEngine(bundle, precision, plan.torch_device, settings.threads)


def load(settings: Settings, listener: LoadListener = NO_LISTENER) -> EngineSet:
    """Build one engine per requested precision; one that fails to load becomes
    an `UnavailableEngine` with the reason, and the others still run. Each is
    handed to `listener.loaded` as soon as it is ready."""
    precisions = [p for p in settings.precision_list]
    unknown = [p for p in precisions if p not in PRECISIONS]
    torch_needed = any(p not in ORT_PRECISIONS and p not in unknown for p in precisions)
    plan = _device.choose(settings.device, torch_needed=torch_needed)
    listener.step(None, "reading the model (a first start joins and checks the weights)")
    bundle = load_bundle(settings.model, settings.cache_dir, fp32=False)  # FP32 loads with the first engine needing it
    engines = []
    for precision in precisions:
        if precision in unknown:
            engines.append(unavailable(precision, bundle.name,
                                       f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})"))
            listener.loaded(engines[-1])
            continue
        listener.step(precision, "loading")
        t0 = time.perf_counter()
        meter = _memory.LoadMeter("cpu" if precision in ORT_PRECISIONS else plan.torch_device)
        try:
            with meter:
                engine = _engine(bundle, precision, settings, plan, listener)
        except Exception as exc:  # noqa: BLE001 - one precision failing must not stop the others
            ort = precision in ORT_PRECISIONS
            engines.append(unavailable(precision, bundle.name, describe_error(exc),
                                       runtime="ONNX Runtime" if ort else "PyTorch",
                                       device=plan.ort_device if ort else plan.torch_device,
                                       threads=settings.threads, load_s=time.perf_counter() - t0))
            if precision == "fp16-trt":
                engines[-1].info.name = "FP16 (TensorRT)"
            listener.loaded(engines[-1])
            continue
        engine.info.resident_bytes = meter.grown_bytes  # RSS growth while it loaded: depends on load order
        engine.info.load_s = time.perf_counter() - t0
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
    """faster-whisper engines on the same CTranslate2 weights (kinds = its compute
    types), and the other CPU runtimes of cpu_peers (kinds = cpu_peers.KINDS), in the order asked."""
    from . import cpu_peers
    from .peers import faster_whisper_engines

    out = []
    for kind in kinds:
        out += (cpu_peers.engines(settings, [kind], model_name) if kind in cpu_peers.KINDS
                else faster_whisper_engines(settings, [kind], model_name))
    return out


def _bundle_of(engine_set: EngineSet, settings: Settings) -> WhisperBundle:
    """The model bundle a loaded engine holds (no second FP32 copy), or a fresh one."""
    bundle = next((e.bundle for e in engine_set.engines if getattr(e, "bundle", None) is not None), None)
    return bundle if bundle is not None else load_bundle(settings.model, settings.cache_dir)


def int8_variant(engine_set: EngineSet, settings: Settings, mode: str, calib_size: int, **quant):
    """One INT8 engine built with a given quantization (calibration study, or
    another plan: quant plan="search"); reuses the loaded model bundle when an engine holds it."""
    from .int8 import build_variant

    return build_variant(_bundle_of(engine_set, settings), settings, _device.choose(settings.device), mode=mode,
                         calib_size=calib_size or None, **quant)


def rounded_weights_engine(engine_set: EngineSet, settings: Settings):
    """FP32 arithmetic on INT8-rounded weights (rounded.py): what the 8-bit weights alone cost."""
    from .rounded import WhisperRoundedWeightsEngine

    return WhisperRoundedWeightsEngine(_bundle_of(engine_set, settings), _device.choose(settings.device).torch_device,
                                       settings.threads)


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


def export_int8_key(engine) -> str:
    """What `export_int8` of this engine would write, as a key (the page's zip is cached by it)."""
    from .export import identity

    return identity(engine)


def explain_difference(reference, other, clip, language: str | None = None):
    """`base.Divergence` of engine `other` from `reference` on this clip (see explain.py)."""
    from .explain import explain

    bundle = getattr(reference, "bundle", None) or getattr(other, "bundle", None)
    if bundle is None:
        from ..base import EngineError

        raise EngineError("explaining a difference needs two loaded Whisper engines")
    return explain(reference, other, clip, language, bundle.tokens, bundle.n_mels)


__all__ = ["explain_difference", "load", "load_bundle", "WhisperBundle", "PRECISIONS", "peer_engines", "int8_variant", "rounded_weights_engine",
           "calibration_texts",
           "op_profile", "export_int8"]
