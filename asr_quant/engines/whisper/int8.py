"""Whisper INT8 in ONNX Runtime: the quantized graphs of quantize.build (cached
by ort_artifacts.py) behind the shared `decoding` loop, so only precision
differs from the ORT-FP32 engine and the runtime too from PyTorch FP32."""
from __future__ import annotations

from .ort_engine import OrtWhisperEngine
from .model import WhisperBundle
from .quant_config import QuantConfig


def describe(manifest: dict) -> str:
    """What runs in which precision, for `EngineInfo.details`."""
    r, q = manifest["report"], manifest["quant"]
    if r["encoder"] == "blockwise":
        from .mixed_plan import measured_sentence

        return (f"Plan 'blockwise': every weight MatMul ({r['dynamic_nodes']} in the encoder, {r['decoder_nodes']} in "
                f"the decoder) as MatMulNBits, 8-bit weights in blocks of {q['block_size']} inputs with one FP32 "
                f"scale each, activations quantized to int8 per row and block at each call (accuracy level 4); "
                f"token table stored once in those blocks (lookup + output projection); no calibration, no "
                f"outlier split; FP32: convolutions, LayerNorm, attention scores/softmax."
                + measured_sentence((r.get("plan") or {}).get("measured") or {}))
    if r["encoder"] == "static":
        langs = ", ".join(manifest.get("calibration_languages") or []) or "?"
        enc = (f"encoder static INT8 on {r['static_nodes']} {'/'.join(q['op_types'])} nodes (QDQ, "
               f"{q['calib_method']} calibration on {q['calib_size']} packaged synthesized clips in {langs}, "
               f"{'per-channel' if q['per_channel'] else 'per-tensor'} weights)")
    else:
        enc = f"encoder dynamic INT8 on {r['dynamic_nodes']} MatMul nodes"
    if r["fc2"] == "split":
        fc2 = (f"MLPs INT8 except their {q['outlier_channels']} outlier hidden channels each (found on "
               f"{r.get('outlier_clips', '?')} synthesized clips), computed apart in FP32")
    else:
        fc2 = f"fc2 layers ({len(r['fp32_nodes'])}, outlier GELU activations) kept in FP32"
    plan = r.get("plan") or {}
    if plan.get("name") == "search":
        from .mixed_plan import describe_plan

        return (f"{enc}; decoder dynamic INT8 on {r['decoder_nodes']} MatMul nodes; FP32: convolutions, LayerNorm, "
                f"attention scores/softmax. " + describe_plan(plan))
    return (f"Plan 'recipe': {enc}; decoder dynamic INT8 on {r['decoder_nodes']} MatMul nodes; token table stored "
            f"once in INT8 (lookup + output projection); {fc2}; FP32: convolutions, LayerNorm, attention "
            f"scores/softmax. Encoder {r['encoder']}: {r['reason']}.")


class WhisperInt8Engine(OrtWhisperEngine):
    """Whisper with INT8 weights in ONNX Runtime."""

    kind = "int8"
    name = "INT8"
    precision = "int8"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        r = self.manifest["report"]
        self.info.quant = {"plan": r.get("plan") or {}, "sensitivity": r.get("sensitivity") or []}

    def describe(self, manifest: dict) -> str:
        return describe(manifest)

    @property
    def encoder_mode(self) -> str:
        return self.manifest["report"]["encoder"]


def build_variant(bundle: WhisperBundle, settings, device_plan, mode: str = "auto", calib_size: int | None = None,
                  **quant) -> WhisperInt8Engine:
    """An INT8 engine with other quantization settings (benchmark studies:
    calibration size, static vs dynamic, another plan: quant plan="search");
    its name says the encoder mode (the caller may name it otherwise)."""
    cfg = QuantConfig(mode=mode, **({"calib_size": calib_size} if calib_size else {}), **quant)
    engine = WhisperInt8Engine(bundle, settings, device_plan, quant=cfg)
    label = engine.encoder_mode + (f"-c{cfg.calib_size}" if engine.encoder_mode == "static" else "")
    engine.info.name = f"INT8-{label}"
    return engine
