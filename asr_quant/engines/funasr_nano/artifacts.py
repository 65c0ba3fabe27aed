"""Fun-ASR-Nano's INT8 artifacts in the cache: the calibration audio, the key
(the model files' contents, the export code's source, opset, runtimes) and
`ensure`, which exports and quantizes once and reuses the folder after, as long
as every file still has the size and sha256 its manifest records."""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import time
from pathlib import Path

import numpy as np

from ...cache import build_dir, file_digest, file_records, files_match, key_of, source_hash
from . import loading

from .export import (EXPORT_VERSION, OPSET, export_decoder, export_encoder,
                     quantize_decoder, quantize_embeddings, quantize_encoder)


# --------------------------------------------------------------------------- calibration audio
def calibration_audio(folder: loading.ModelFolder, n_synthetic: int = 6) -> list[np.ndarray]:
    """The model folder's own example clips if it has them (real folders ship
    `example/*.mp3`), plus speech-like synthetic signals of several lengths."""
    clips = []
    ex = folder.path / "example"
    if ex.is_dir():
        import librosa

        for f in sorted(ex.iterdir())[:8]:
            if f.suffix.lower() in (".wav", ".mp3", ".flac", ".ogg", ".m4a"):
                try:
                    y, _ = librosa.load(str(f), sr=16000, mono=True, duration=20.0)
                    clips.append(y.astype(np.float32))
                except Exception:  # noqa: BLE001 - one unreadable example is not fatal
                    continue
    rng = np.random.RandomState(1234)
    sr = 16000
    for i in range(n_synthetic):
        dur = [1.5, 3.0, 5.0, 2.0, 4.0, 6.0][i % 6]
        t = np.arange(int(dur * sr)) / sr
        f0 = 110 + 90 * rng.rand() + 30 * np.sin(2 * np.pi * 0.7 * t)
        phase = 2 * np.pi * np.cumsum(f0) / sr
        voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
        env = (0.5 + 0.5 * np.sin(2 * np.pi * (2 + 3 * rng.rand()) * t)) ** 2
        y = 0.3 * voiced * env + 0.02 * rng.randn(len(t))
        clips.append((y / (np.abs(y).max() + 1e-9) * 0.5).astype(np.float32))
    return clips


# --------------------------------------------------------------------------- cache
_HERE = Path(__file__).parent
# The code that decides what the artifacts hold; editing any of it changes the key.
BUILDER_SOURCES = ("artifacts.py", "export.py", "loading.py", "pipeline.py")
_VERSIONS = ("torch", "onnx", "onnxruntime-gpu", "onnxruntime", "transformers", "funasr")


def model_digest(folder: loading.ModelFolder, cache_dir: str | Path) -> str:
    """The model's own files by content: model.pt (its sha256, remembered in the
    cache and re-hashed when the file may have changed) and both configs."""
    pt = folder.path / "model.pt"
    stamp = (Path(cache_dir).expanduser() / "funasr-nano" / "digests"
             / f"{hashlib.sha256(str(pt.resolve()).encode()).hexdigest()[:16]}.json")
    return key_of({"model_pt": file_digest(pt, stamp),
                   "config": hashlib.sha256((folder.path / "config.yaml").read_bytes()).hexdigest(),
                   "llm_config": hashlib.sha256((folder.llm_dir / "config.json").read_bytes()).hexdigest()})


def _versions() -> dict:
    out = {}
    for dist in _VERSIONS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def cache_key(folder: loading.ModelFolder, cache_dir: str | Path) -> str:
    info = {
        "path": str(folder.path), "model": model_digest(folder, cache_dir),
        "export": EXPORT_VERSION, "opset": OPSET, "versions": _versions(),
        "code": source_hash(*(_HERE / f for f in BUILDER_SOURCES)),
    }
    return key_of(info)


def artifact_dir(folder: loading.ModelFolder, cache_dir: str | Path) -> Path:
    return Path(cache_dir).expanduser() / "funasr-nano" / f"{folder.name}-{cache_key(folder, cache_dir)}"


def validate(folder: Path) -> dict | None:
    """The manifest if every file it records is present with its size and sha256, else None."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest if files_match(folder, manifest.get("files")) else None


def ensure(folder: loading.ModelFolder, cache_dir: str | Path, threads: int, builder_factory,
           model=None, log=print) -> tuple[Path, dict]:
    """The cached INT8 artifacts for `folder`, exporting them first if needed.

    `model` is a loaded FP32 `FunASRNano` to export from (e.g. the FP32
    engine's); without one a temporary FP32 model is built and freed.
    `builder_factory(model)` returns a PromptBuilder for calibration features.
    """
    final = artifact_dir(folder, cache_dir)
    manifest = final / "manifest.json"
    if (found := validate(final)) is not None:
        return final, found
    own_model = model is None
    am = None

    def fill(tmp: Path) -> None:
        nonlocal am, model
        t0 = time.perf_counter()
        if own_model:
            am, _ = loading.build_automodel(folder, "cpu", threads, "fp32")
            model = am.model
            model.llm.float()
            builder = builder_factory(am)
        else:
            builder = builder_factory(None)
        t_load = time.perf_counter() - t0
        feats = [builder.prepare(y, None).speech.numpy() for y in calibration_audio(folder)]
        held_out, calib = feats[::3], [f for i, f in enumerate(feats) if i % 3]
        info = {"model": str(folder.path), "key": final.name, "export_version": EXPORT_VERSION}
        t = time.perf_counter()
        enc32 = export_encoder(model, tmp / "encoder.fp32.onnx")
        info["encoder_export_s"] = time.perf_counter() - t
        info["encoder_fp32_bytes"] = enc32.stat().st_size
        info["encoder"] = quantize_encoder(enc32, tmp, calib, held_out, threads)
        t = time.perf_counter()
        dec_dir = tmp / "fp32"
        dec_dir.mkdir()
        dec32 = export_decoder(model.llm, dec_dir / "decoder.fp32.onnx")
        info["decoder_export_s"] = time.perf_counter() - t
        info["decoder_fp32_bytes"] = sum(f.stat().st_size for f in dec_dir.iterdir())
        info["decoder_quantize_s"] = quantize_decoder(dec32, tmp / "decoder.int8.onnx")
        emb = model.llm.get_input_embeddings().weight.detach().float().cpu().numpy()
        quantize_embeddings(emb, tmp / "embed.int8.npz")
        del emb
        shutil.rmtree(dec_dir)
        enc32.unlink()
        info["source_load_s"] = t_load
        info["total_s"] = time.perf_counter() - t0
        info["files"] = file_records(tmp, sorted(f.name for f in tmp.iterdir()))
        (tmp / "manifest.json").write_text(json.dumps(info, indent=2, default=str))

    try:
        build_dir(final, fill, valid=lambda f: validate(f) is not None)
        log(f"Fun-ASR-Nano INT8 artifacts ready in {final}")
        return final, json.loads(manifest.read_text())
    finally:
        am = model = None
        loading.release_freed_memory()
