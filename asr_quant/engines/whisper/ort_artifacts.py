"""The ONNX Runtime engines' artifacts in the cache: built once, checked on every load.

Two kinds, from the same export (onnx_export.py):
- "int8": the quantized graphs of quantize.build (the INT8 engine);
- "fp32": the exported FP32 graphs untouched (the ORT-FP32 engine, the
  same-runtime reference that isolates what precision alone does).

A folder `<kind>-<key>` holds encoder.onnx, decoder.onnx and manifest.json.
The key covers everything that changes the files: the model's sha256, the
quantization settings, the onnxruntime version (its quantizers write the
INT8 graphs), the packaged calibration speech (its digest, or "none"
when it is missing, so a degraded dynamic-only build never takes the full
recipe's key) and a hash of the builder's own source. The manifest records
what was built and why, each file's size and sha256 (checked on every load: a
truncated or altered file is rebuilt, not trusted), the exact bytes of the
initializers each graph holds, and the model's dimensions, so that a cached
engine loads with neither torch nor transformers.

The build runs in a child Python process (`python -m
asr_quant.engines.whisper.ort_artifacts ...`): conversion, export and
calibration import torch and leave ~0.5 GB of allocator garbage behind that
would otherwise sit in the app's process, and a crash there must not take the
app down.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from ... import host
from ...cache import build_dir, key_of, sha256_file, source_hash
from ...memory import onnx_initializer_bytes
from ..base import EngineError
from . import calibration
from .model import WhisperBundle
from .plans.config import RECIPE_VERSION, QuantConfig

log = logging.getLogger(__name__)
FILES = ("encoder.onnx", "decoder.onnx")
KINDS = ("int8", "fp32")
BUILDS = 0  # artifacts built in this process (tests check the cache is reused)
_HERE = Path(__file__).parent
# The code that decides what the files hold; editing any of it changes the key.
# (every plan module, plans/*.py, is in it too: a new plan changes the key without a list to keep)
BUILDER_SOURCES = ("ort_artifacts.py", "onnx_export.py", "onnx_io.py", "calibration.py", "features.py", "ct2.py",
                   "ct2_format.py", "decoding.py", "torch_engine.py", "tokens.py")


def builder_sources() -> list[Path]:
    """These, every plan module and memory.py (it counts the manifest's weight bytes). Not
    plans/default.py: it names which plan `auto` builds, and the plan is in the key itself."""
    plans = [p for p in sorted((_HERE / "plans").glob("*.py")) if p.name != "default.py"]
    return [_HERE / f for f in BUILDER_SOURCES] + plans + [_HERE.parents[1] / "memory.py"]


def builder_hash() -> str:
    return source_hash(*builder_sources())


def library_versions() -> dict[str, str]:
    """The libraries that write the graphs: torch.onnx.export (with transformers'
    modules) writes the FP32 graphs, onnx serializes them, onnxruntime's
    quantizers rewrite them. Read from package metadata: no import."""
    import importlib.metadata as md

    out = {}
    for dist in ("torch", "transformers", "onnx", "onnxruntime-gpu", "onnxruntime"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def artifact_key(bundle: WhisperBundle, kind: str, quant: QuantConfig | None) -> str:
    """Everything that changes the files: the weights, the builder's source, the
    libraries that write the graphs and, for INT8, the plan's settings, the
    packaged calibration speech as it is on disk and the host's instruction-set
    level (QuantConfig.isa: the plan is built for it, host.py); for plan
    "costed", the digest of the kernel cost table it is searched on (measured
    once on this host and kept, plans/costs.py)."""
    spec = {"sha": bundle.sha256, "kind": kind, "code": builder_hash(), "libraries": library_versions()}
    if kind == "int8":
        quant = quant or QuantConfig()
        spec.update(recipe=RECIPE_VERSION, quant=asdict(quant), calibration=calibration.digest())
        if quant.plan == "costed" and not quant.levels:  # searched on this host's cost table: its measured figures
            from .plans import costs

            spec["costs"] = costs.for_quant(bundle.config, quant, bundle.cache_dir).digest()
    return key_of(spec)


def artifact_dir(bundle: WhisperBundle, kind: str = "int8", quant: QuantConfig | None = None) -> Path:
    return Path(bundle.cache_dir) / f"{kind}-{artifact_key(bundle, kind, quant)}"


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


def ensure(bundle: WhisperBundle, kind: str, quant: QuantConfig | None, threads: int,
           cache_root: str | os.PathLike, rebuild: bool = False,
           progress: Callable[[str], None] | None = None) -> tuple[Path, dict]:
    """The artifact folder and its manifest, building it if missing or invalid
    (`progress` hears the build's steps: "exporting ONNX", "calibrating 3/8", ...)."""
    if kind not in KINDS:
        raise ValueError(f"artifact kind must be one of {KINDS}, not {kind!r}")
    quant = quant or QuantConfig()
    final = artifact_dir(bundle, kind, quant)
    if not rebuild and (manifest := validate(final)) is not None:
        return final, manifest
    if final.exists() and not rebuild:
        log.warning("ONNX artifacts in %s are incomplete or corrupt; rebuilding", final)

    def fill(tmp: Path) -> None:
        global BUILDS
        report = _build_in_child(bundle, kind, quant, threads, cache_root, tmp, progress)
        manifest = {
            "kind": kind, "model": bundle.name, "model_sha256": bundle.sha256, "key": final.name,
            "builder": builder_hash(), "ort_quantization": _ort_version(), "libraries": library_versions(),
            "host": host.detect().as_dict(),
            **({"quant": asdict(quant), "calibration_speech": calibration.digest()} if kind == "int8" else {}),
            **report,
            "files": {n: {"bytes": (tmp / n).stat().st_size, "sha256": sha256_file(tmp / n)} for n in FILES},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        BUILDS += 1

    build_dir(final, fill, valid=lambda f: validate(f) is not None, rebuild=rebuild)
    manifest = validate(final)
    if manifest is None:
        raise EngineError(f"the ONNX artifacts in {final} failed their check right after the build")
    return final, manifest


def _build_in_child(bundle: WhisperBundle, kind: str, quant: QuantConfig, threads: int, cache_root,
                    out: Path, progress: Callable[[str], None] | None = None) -> dict:
    """The build in a fresh Python process; returns its report. The child's
    progress lines (`PROGRESS_MARK message`) go to `progress` as they come."""
    cmd = [sys.executable, "-m", __name__, "--kind", kind, "--ct2-dir", str(bundle.ct2_dir), "--model", bundle.key, "--quant", json.dumps(asdict(quant)),
           "--threads", str(threads), "--cache-dir", str(cache_root), "--out", str(out)]
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[3])  # the folder holding the asr_quant package
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    log.info("building %s ONNX artifacts: %s", kind, " ".join(cmd))
    returncode, stderr = _run_reporting(cmd, env, progress or (lambda message: None))
    if returncode != 0:
        tail = [line for line in stderr.strip().splitlines() if line.strip()][-3:]
        raise EngineError(f"building the {kind.upper()} ONNX model failed: "
                          + (" | ".join(tail) or f"exit code {returncode}"))
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
    import shutil

    p = argparse.ArgumentParser(description="Build Whisper ONNX artifacts into --out.")
    p.add_argument("--kind", choices=KINDS, required=True)
    p.add_argument("--ct2-dir", required=True, help="CTranslate2 folder (model.bin, tokenizer.json, config.json)")
    p.add_argument("--model", required=True, help="the model's key (base, tiny.en, path-...)")
    p.add_argument("--quant", required=True, help="QuantConfig as JSON")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache-dir", required=True, help="asr-quant cache root")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)

    import torch
    from transformers.utils import logging as hf_logging

    from . import ct2, features, onnx_export
    from .tokens import TokenizerInfo

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    src = ct2.locate(a.model if not a.model.startswith("path-") else a.ct2_dir, a.cache_dir)
    _say("loading the FP32 model to export (a first start converts it)")
    model, _, _ = ct2.load_fp32(src)
    cfg = model.config
    report: dict = {"dims": onnx_export.dims(cfg)}
    if a.kind == "fp32":
        _say("exporting ONNX")
        work = out / "work"
        enc, dec = onnx_export.export(model, work, outliers=None)
        for f, name in ((enc, "encoder.onnx"), (dec, "decoder.onnx")):
            f.replace(out / name)
        shutil.rmtree(work, ignore_errors=True)
        report["report"] = {"precision": "fp32", "what": "the exported graphs, not quantized"}
    else:
        from .plans import BuildContext, build

        quant = QuantConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(a.quant).items()})
        tokens = TokenizerInfo.from_ct2_dir(a.ct2_dir, vocab_size=cfg.vocab_size,
                                            max_positions=cfg.max_target_positions)
        n_mels = cfg.num_mel_bins
        built = build(BuildContext(model, out, quant, lambda x: features.windows(x, n_mels)[0].mel, _prompt_fn(tokens),
                                   a.cache_dir, a.threads, say=_say, teacher=_teacher_fn(model, tokens),
                                   model_cache_dir=src.cache_dir))
        report["report"] = asdict(built)
        report["calibration_languages"] = calibration.languages(calibration.CALIBRATION, quant.calib_size)
        report["holdout_languages"] = calibration.languages(calibration.HOLDOUT, quant.holdout_size)
        from .plans.storage import store_exact_fp16

        _say("storing the FP32 weights FP16 holds exactly in FP16")
        report["stored_fp16"] = {n: store_exact_fp16(out / n) for n in FILES}
    report["weights_bytes"] = {n: onnx_initializer_bytes(out / n) for n in FILES}
    (out / "report.json").write_text(json.dumps(report))
    return 0


def _prompt_fn(info):
    """(text, language) -> (start sequence + text tokens, first scored position)."""

    def prompt(text: str, language: str) -> tuple[list[int], int]:
        lang, _ = info.resolve_language(language if info.multilingual else "en")
        p = info.prompt(lang)
        return p + info.tokenizer.encode(" " + text, add_special_tokens=False).ids, len(p) - 1

    return prompt


def _teacher_fn(model, info):
    """(mel, language) -> (start sequence + FP32's own greedy tokens, first scored
    position): the PyTorch FP32 engine's decode, through the shared loop."""
    import torch

    from . import decoding
    from .torch_engine import TorchStepModel

    step = TorchStepModel(model, "cpu", torch.float32)

    def teacher(mel, language: str) -> tuple[list[int], int]:
        r = decoding.decode(step, mel, info, language if info.multilingual else "en")
        p = info.prompt(r.language)
        return p + r.token_ids, len(p) - 1

    return teacher


def _ort_version() -> str:
    import onnxruntime as ort

    return ort.__version__


if __name__ == "__main__":
    raise SystemExit(_child())
