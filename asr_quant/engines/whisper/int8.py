"""Whisper INT8 in ONNX Runtime: the exported, quantized graphs behind the
shared `decoding` loop, so only precision differs from FP32/FP16.

Artifacts (encoder.onnx, decoder.onnx, manifest.json) are built once per model
sha256 + quantization settings under `bundle.cache_dir / "int8-<key>"`, in a
temp folder renamed into place, and checked against the manifest's sizes and
sha256 on every load: a truncated or altered file is rebuilt, not trusted.
The build runs in a child Python process (`python -m
asr_quant.engines.whisper.int8 ...`): export and calibration leave ~0.5 GB of
allocator garbage behind that would otherwise count as this engine's resident
memory, and a crash there must not take the app down.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...cache import build_dir, sha256_file
from ..base import Engine, EngineError, EngineInfo, RawResult
from ... import memory as _memory
from ...audio import Clip
from . import decoding, features, onnx_export
from .model import WhisperBundle
from .quantize import QuantConfig

log = logging.getLogger(__name__)
FILES = ("encoder.onnx", "decoder.onnx")
BUILDS = 0  # artifacts built in this process (tests check the cache is reused)


# --------------------------------------------------------------------------- artifacts

def artifact_dir(bundle: WhisperBundle, quant: QuantConfig) -> Path:
    return Path(bundle.cache_dir) / f"int8-{quant.key(bundle.sha256)}"


def validate(folder: Path) -> dict | None:
    """The manifest if every file is present with its recorded size and sha256, else None."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        for name in FILES:
            want = manifest["files"][name]
            p = folder / name
            if p.stat().st_size != want["bytes"] or sha256_file(p) != want["sha256"]:
                return None
        return manifest
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _prompt_fn(info):
    """(text, language) -> (start sequence + text tokens, first scored position)."""

    def prompt(text: str, language: str) -> tuple[list[int], int]:
        lang, _ = info.resolve_language(language if info.multilingual else "en")
        p = info.prompt(lang)
        return p + info.tokenizer.encode(" " + text, add_special_tokens=False).ids, len(p) - 1

    return prompt


def ensure_artifacts(bundle: WhisperBundle, quant: QuantConfig, threads: int, cache_root: str | os.PathLike,
                     rebuild: bool = False, progress: Callable[[str], None] | None = None) -> tuple[Path, dict]:
    """The artifact folder and its manifest, building it if missing or invalid
    (`progress` hears the build's steps)."""
    final = artifact_dir(bundle, quant)
    if not rebuild and (manifest := validate(final)) is not None:
        return final, manifest
    if final.exists() and not rebuild:
        log.warning("INT8 artifacts in %s are incomplete or corrupt; rebuilding", final)

    def fill(tmp: Path) -> None:
        global BUILDS
        report = _build_in_child(bundle, quant, threads, cache_root, tmp, progress)
        manifest = {
            "model": bundle.name, "model_sha256": bundle.sha256, "quant": asdict(quant),
            "report": report, "ort_quantization": _ort_version(),
            "files": {n: {"bytes": (tmp / n).stat().st_size, "sha256": sha256_file(tmp / n)} for n in FILES},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        BUILDS += 1

    build_dir(final, fill, valid=lambda f: validate(f) is not None, rebuild=rebuild)
    manifest = validate(final)
    if manifest is None:
        raise EngineError(f"the INT8 artifacts in {final} failed their check right after the build")
    return final, manifest


def _build_in_child(bundle: WhisperBundle, quant: QuantConfig, threads: int, cache_root, out: Path,
                    progress: Callable[[str], None] | None = None) -> dict:
    """quantize.build in a fresh Python process; returns its report. The
    child's progress lines (`PROGRESS_MARK message`) go to `progress`."""
    cmd = [sys.executable, "-m", __name__, "--fp32-dir", str(Path(bundle.fp32_file).parent),
           "--ct2-dir", str(bundle.ct2_dir), "--quant", json.dumps(asdict(quant)), "--threads", str(threads),
           "--cache-dir", str(cache_root), "--out", str(out)]
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[3])  # the folder holding the asr_quant package
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    log.info("building INT8 artifacts: %s", " ".join(cmd))
    returncode, stderr = _run_reporting(cmd, env, progress or (lambda message: None))
    if returncode != 0:
        tail = [line for line in stderr.strip().splitlines() if line.strip()][-3:]
        raise EngineError("building the INT8 model failed: " + (" | ".join(tail) or f"exit code {returncode}"))
    report = json.loads((out / "report.json").read_text())
    (out / "report.json").unlink()
    return report


# --- build progress: the child prints one marked line per step, the parent passes them on

PROGRESS_MARK = "ASRQ-PROGRESS "


def _run_reporting(cmd: list[str], env: dict, progress: Callable[[str], None]) -> tuple[int, str]:
    """Run `cmd`; every marked stdout line goes to `progress` as it comes.
    Returns (exit code, stderr). stderr goes to a file, so neither pipe can fill up."""
    import tempfile

    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
        for line in proc.stdout:
            if line.startswith(PROGRESS_MARK):
                progress(line[len(PROGRESS_MARK):].strip())
        proc.stdout.close()
        code = proc.wait()
        err.seek(0)
        return code, err.read()


def _say(message: str) -> None:
    print(PROGRESS_MARK + message, flush=True)


def _child(argv: list[str] | None = None) -> int:
    """Entry point of the build process (see `_build_in_child`)."""
    import argparse

    p = argparse.ArgumentParser(description="Build the Whisper INT8 ONNX artifacts into --out.")
    p.add_argument("--fp32-dir", required=True, help="transformers folder of the FP32 model")
    p.add_argument("--ct2-dir", required=True, help="CTranslate2 folder (tokenizer.json, config.json)")
    p.add_argument("--quant", required=True, help="QuantConfig as JSON")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache-dir", required=True, help="asr-quant cache root (calibration speech)")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)

    import torch
    from transformers import WhisperForConditionalGeneration
    from transformers.utils import logging as hf_logging

    from .quantize import build
    from .tokens import TokenizerInfo

    hf_logging.disable_progress_bar()
    torch.set_num_threads(a.threads)
    _say("loading the FP32 model to export")
    quant = QuantConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(a.quant).items()})
    model = WhisperForConditionalGeneration.from_pretrained(a.fp32_dir, dtype="float32").eval()
    cfg = model.config
    tokens = TokenizerInfo.from_ct2_dir(a.ct2_dir, vocab_size=cfg.vocab_size, max_positions=cfg.max_target_positions)
    n_mels = cfg.num_mel_bins
    report = build(model, Path(a.out), quant, lambda x: features.windows(x, n_mels)[0].mel, _prompt_fn(tokens),
                   a.cache_dir, a.threads, progress=_say)
    (Path(a.out) / "report.json").write_text(json.dumps(asdict(report)))
    return 0


def _ort_version() -> str:
    import onnxruntime as ort

    return ort.__version__


# --------------------------------------------------------------------------- runtime

class OrtStepModel:
    """`decoding.StepModel` over two InferenceSessions. Encoder outputs and the
    self-attention cache stay OrtValues between calls (no numpy round trips)."""

    def __init__(self, encoder: Path, decoder: Path, providers: tuple[str, ...], threads: int, dims: dict):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        # Idle threads sleep instead of spinning: with the other engines, the
        # app and other processes on few cores, spinning stole the CPU the
        # working thread needed (measured here: 17 -> 8 ms per decoder step,
        # encoder 0.72 -> 0.63 s, on a busy 2-core machine).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._ort = ort
        self.encoder = ort.InferenceSession(str(encoder), so, providers=list(providers))
        self.decoder = ort.InferenceSession(str(decoder), so, providers=list(providers))
        n = dims["n_layers"]
        empty = np.zeros((1, dims["n_heads"], 0, dims["head_dim"]), np.float32)
        self._empty = [ort.OrtValue.ortvalue_from_numpy(empty)] * (2 * n)
        self._cross = onnx_export.cross_names(n)
        self._cache = onnx_export.cache_names(n)
        self._outputs = onnx_export.decoder_outputs(n)

    @property
    def provider(self) -> str:
        return self.encoder.get_providers()[0]

    def encode(self, mel: np.ndarray) -> Any:
        x = self._ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(mel, dtype=np.float32))
        return dict(zip(self._cross, self.encoder.run_with_ort_values(self._cross, {"mel": x})))

    def step(self, enc: Any, tokens: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        feed = dict(enc)
        feed.update(zip(self._cache, cache if cache is not None else self._empty))
        feed["tokens"] = self._ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(tokens, dtype=np.int64))
        out = self.decoder.run_with_ort_values(self._outputs, feed)
        return out[0].numpy()[0, -1], out[1:]


def describe(manifest: dict) -> str:
    """What runs in which precision, for `EngineInfo.details`."""
    r, q = manifest["report"], manifest["quant"]
    if r["encoder"] == "static":
        enc = (f"encoder static INT8 on {r['static_nodes']} {'/'.join(q['op_types'])} nodes (QDQ, "
               f"{q['calib_method']} calibration on {q['calib_size']} synthesized clips, "
               f"{'per-channel' if q['per_channel'] else 'per-tensor'} weights)")
    else:
        enc = f"encoder dynamic INT8 on {r['dynamic_nodes']} MatMul nodes"
    if r["fc2"] == "split":
        fc2 = (f"MLPs INT8 except their {q['outlier_channels']} outlier hidden channels each (found on "
               f"{r.get('outlier_clips', '?')} synthesized clips), computed apart in FP32")
    else:
        fc2 = f"fc2 layers ({len(r['fp32_nodes'])}, outlier GELU activations) kept in FP32"
    return (f"{enc}; decoder dynamic INT8 on {r['decoder_nodes']} MatMul nodes; token table stored once in INT8 "
            f"(lookup + output projection); {fc2}; FP32: convolutions, LayerNorm, attention scores/softmax. "
            f"Encoder {r['encoder']}: {r['reason']}.")


class WhisperInt8Engine(Engine):
    """Whisper with INT8 weights in ONNX Runtime."""

    def __init__(self, bundle: WhisperBundle, settings, plan, quant: QuantConfig | None = None,
                 progress: Callable[[str], None] | None = None):
        import onnxruntime as ort

        self.bundle = bundle
        self.quant = quant or QuantConfig()
        threads = int(settings.threads)
        t0 = time.perf_counter()
        folder, manifest = ensure_artifacts(bundle, self.quant, threads, settings.cache_dir, progress=progress)
        dims = onnx_export.dims(bundle.config)
        meter = _memory.LoadMeter("cpu")
        with meter:
            try:
                self.step_model = OrtStepModel(folder / FILES[0], folder / FILES[1], plan.ort_providers, threads, dims)
            except Exception as exc:  # noqa: BLE001 - a file ORT can't read is rebuilt once
                log.warning("ONNX Runtime could not load %s (%s); rebuilding", folder, exc)
                folder, manifest = ensure_artifacts(bundle, self.quant, threads, settings.cache_dir, rebuild=True,
                                                    progress=progress)
                self.step_model = OrtStepModel(folder / FILES[0], folder / FILES[1], plan.ort_providers, threads, dims)
        self.folder = folder
        self.manifest = manifest
        self.info = EngineInfo(
            name="INT8",
            precision="int8",
            runtime=f"ONNX Runtime {ort.__version__}",
            device=self.step_model.provider,
            model=bundle.name,
            details=describe(manifest),
            threads=threads,
            disk_bytes=_memory.disk_bytes(*(folder / n for n in FILES)),
            resident_bytes=meter.grown_bytes,
            load_s=time.perf_counter() - t0,
        )

    @property
    def encoder_mode(self) -> str:
        return self.manifest["report"]["encoder"]

    def _run(self, clip: Clip, language: str | None) -> RawResult:
        if self.step_model is None:
            raise EngineError("the INT8 engine was closed")
        return decoding.transcribe_samples(self.step_model, clip.samples, self.bundle.tokens, language,
                                           n_mels=self.bundle.n_mels)

    def close(self) -> None:
        self.step_model = None


def build_variant(bundle: WhisperBundle, settings, plan, mode: str = "auto", calib_size: int | None = None,
                  **quant) -> WhisperInt8Engine:
    """An INT8 engine with other quantization settings (benchmark studies:
    calibration size, static vs dynamic); its name says which."""
    cfg = QuantConfig(mode=mode, **({"calib_size": calib_size} if calib_size else {}), **quant)
    engine = WhisperInt8Engine(bundle, settings, plan, quant=cfg)
    label = engine.encoder_mode + (f"-c{cfg.calib_size}" if engine.encoder_mode == "static" else "")
    engine.info.name = f"INT8-{label}"
    return engine


if __name__ == "__main__":
    raise SystemExit(_child())
