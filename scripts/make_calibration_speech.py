"""Synthesize the INT8 calibration and hold-out speech once, into the package.

    python scripts/make_calibration_speech.py      # needs espeak-ng (Debian package)

Writes asr_quant/engines/whisper/calibration_speech/{calib,holdout}-NN.flac and
index.tsv (kind, index, file, voice, language, text, variant, sha256). Each clip
is one sentence of calibration.CALIBRATION / HOLDOUT spoken by espeak-ng with
a deterministic speed, pitch, gain and (every third clip) white noise, so the
activation ranges are spread the way real input spreads them. Run again only
when those lists change: the INT8 cache key follows the index's hash.
"""
from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from asr_quant import espeak  # noqa: E402
from asr_quant.engines.whisper import calibration  # noqa: E402


def render(utt: calibration.Utterance, v: dict) -> np.ndarray:
    audio = espeak.synthesize(utt.text, utt.voice, v["speed"], v["pitch"])
    peak = float(np.max(np.abs(audio))) or 1.0
    audio = audio / peak * v["gain"]
    if v["snr_db"] is not None:
        rng = np.random.default_rng(v["seed"])
        noise = rng.standard_normal(audio.shape).astype(np.float32)
        p_sig = float(np.mean(audio**2)) or 1e-8
        audio = audio + noise * np.sqrt(p_sig / 10 ** (v["snr_db"] / 10))
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def main() -> None:
    out = calibration.SPEECH_DIR
    out.mkdir(exist_ok=True)
    for old in out.glob("*.flac"):
        old.unlink()
    rows = []
    for kind, utts, offset in (("calib", calibration.CALIBRATION, 0), ("holdout", calibration.HOLDOUT, 500)):
        for i, utt in enumerate(utts):
            v = calibration._variant(i + offset)
            name = f"{kind}-{i:02d}.flac"
            sf.write(out / name, render(utt, v), calibration.SAMPLE_RATE, subtype="PCM_16")
            rows.append({"kind": kind, "i": i, "file": name, "voice": utt.voice, "language": utt.language,
                         "text": utt.text, "variant": json.dumps(v, sort_keys=True),
                         "sha256": hashlib.sha256((out / name).read_bytes()).hexdigest()})
    with open(calibration.INDEX, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    (out / "README.md").write_text(
        "# INT8 calibration and hold-out speech\n\n"
        f"Synthesized by `scripts/make_calibration_speech.py` with {espeak.version()} (GPL-3.0 program; "
        "its output speech is not covered by the program's licence). One sentence per clip, written for this "
        "project; never a test or example clip. See `asr_quant/engines/whisper/calibration.py`.\n",
        encoding="utf-8")
    size = sum(p.stat().st_size for p in out.glob("*.flac"))
    print(f"{len(rows)} clips, {size / 1e6:.2f} MB in {out}")


if __name__ == "__main__":
    main()
