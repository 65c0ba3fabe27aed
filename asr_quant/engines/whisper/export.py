"""The Whisper INT8 model as a folder to take away: the quantized ONNX graphs,
the tokenizer, the mel filters, a manifest, and a numpy + onnxruntime script
(`standalone.py`, copied as transcribe.py) that transcribes a wav with those
files alone. Why a folder of plain files: an edge device (Jetson, a phone)
runs ONNX Runtime, not torch or this project."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from ...cache import key_of, sha256_file, source_hash
from ..base import EngineError
from . import features, onnx_io
from .int8 import WhisperInt8Engine
from .ort_artifacts import FILES

SCRIPT = Path(__file__).with_name("standalone.py")
FORMAT = 1  # of the exported folder; bump when its files or their meaning change
# The code that writes the folder besides the artifacts' own graphs (SCRIPT is looked up when keyed).
WRITERS = tuple(Path(__file__).with_name(n) for n in ("export.py", "features.py", "onnx_io.py", "tokens.py"))


def identity(engine: WhisperInt8Engine) -> str:
    """A key of everything that changes the export of this engine: its artifacts
    (folder key and manifest bytes), the tokenizer copied beside them, and the
    source of every file written here, the transcribe.py script included."""
    return key_of({"format": FORMAT, "artifact": engine.info.artifact,
                   "manifest": sha256_file(Path(engine.folder) / "manifest.json"),
                   "tokenizer": sha256_file(Path(engine.bundle.ct2_dir) / "tokenizer.json"),
                   "code": source_hash(SCRIPT, *WRITERS)})


def whisper_config(engine: WhisperInt8Engine) -> dict:
    """What the script needs besides the graphs: special ids, languages, suppression, shapes."""
    t, d = engine.bundle.tokens, onnx_io.dims(engine.bundle.config)
    return {"sot": t.sot, "eot": t.eot, "transcribe": t.transcribe, "translate": t.translate,
            "no_timestamps": t.no_timestamps, "lang_to_id": t.lang_to_id, "suppress_ids": t.suppress_ids,
            "suppress_ids_begin": t.suppress_ids_begin, "vocab_size": t.vocab_size,
            "max_positions": t.max_positions, "n_layers": d["n_layers"], "n_heads": d["n_heads"],
            "head_dim": d["head_dim"], "n_mels": engine.bundle.n_mels, "sample_rate": features.SAMPLE_RATE,
            "n_fft": features.N_FFT, "hop": features.HOP, "n_frames": features.N_FRAMES}


def export(engine, out: Path) -> Path:
    """Write the export of a loaded INT8 engine into `out` (created; must not hold files)."""
    if not isinstance(engine, WhisperInt8Engine) or engine.step_model is None:
        raise EngineError("only a loaded Whisper INT8 engine can be exported")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise EngineError(f"{out} is not empty")
    bundle = engine.bundle
    for name in FILES:
        shutil.copyfile(engine.folder / name, out / name)
    shutil.copyfile(Path(bundle.ct2_dir) / "tokenizer.json", out / "tokenizer.json")
    np.save(out / "mel_filters.npy", features.mel_filters(bundle.n_mels))
    (out / "whisper.json").write_text(json.dumps(whisper_config(engine), indent=1), encoding="utf-8")
    shutil.copyfile(SCRIPT, out / "transcribe.py")
    (out / "README.md").write_text(readme(engine), encoding="utf-8")
    (out / "manifest.json").write_text(json.dumps(manifest(engine, out), indent=1, ensure_ascii=False),
                                       encoding="utf-8")  # last: it lists every other file
    return out


def manifest(engine: WhisperInt8Engine, out: Path) -> dict:
    """Recipe, calibration, measured agreement with FP32 and sizes, from the artifacts' own manifest."""
    m, info = engine.manifest, engine.info
    report = m.get("report", {})
    return {
        "format": FORMAT, "model": m.get("model"), "model_sha256": m.get("model_sha256"),
        "runtime_built_with": info.runtime, "onnxruntime_quantization": m.get("ort_quantization"),
        "recipe": m.get("quant"), "what_runs_how": info.details,
        "calibration": {k: v for k, v in (m.get("calibration") or {}).items()} or {
            "clips": (m.get("quant") or {}).get("calib_size"), "method": (m.get("quant") or {}).get("calib_method"),
            "speech": "synthesized (espeak-ng), never a test or example clip"},
        "encoder": report.get("encoder"), "choice_reason": report.get("reason"),
        "agreement_with_fp32": report.get("measured"),
        "build_seconds": report.get("seconds"),
        "files": {p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
                  for p in sorted(out.iterdir()) if p.is_file() and p.name != "manifest.json"},
    }


def readme(engine: WhisperInt8Engine) -> str:
    m = engine.manifest
    measured = (m.get("report") or {}).get("measured") or {}
    chosen = measured.get((m.get("report") or {}).get("encoder"), {})
    agree = (f"mean KL {chosen['kl']} and top-1 agreement {chosen['top1']:.1%} with FP32 next-token choices "
             f"on the hold-out clips" if chosen else "see manifest.json")
    return f"""# {m.get('model')} · INT8 ONNX (exported by asr-quant)

{engine.info.details}

Measured against FP32: {agree}. Everything else (recipe, calibration, sizes, sha256 of every file): `manifest.json`.

| file | what |
|---|---|
| `encoder.onnx`, `decoder.onnx` | the quantized encoder and KV-cache decoder (inputs `mel`, `tokens`, `self_k_i`/`self_v_i`, `cross_k_i`/`cross_v_i`) |
| `tokenizer.json` | Whisper's byte-level BPE vocabulary |
| `whisper.json` | special token ids, language tokens, suppressed tokens, shapes |
| `mel_filters.npy` | the [n_mels, 201] Slaney mel filters of the log-mel front end (16 kHz, n_fft 400, hop 160) |
| `transcribe.py` | a minimal transcriber: numpy + onnxruntime, nothing else |

```bash
pip install numpy onnxruntime
python transcribe.py clip.wav                 # 16-bit PCM, 16 kHz; prints {{"language": ..., "text": ...}}
python transcribe.py clip.wav --language es
```

It computes the same log-mel and decodes greedily the same way as the asr-quant INT8 engine (language detected
unless given, the same suppressed tokens and token budget, windows of at most 30 s), so it gives the engine's
transcript; the engine's repetition-loop guard is left out.
"""
