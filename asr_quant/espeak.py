"""espeak-ng (the Debian package) as a source of speech with a known text.

Used by the benchmark's built-in corpus and by the INT8 calibration speech;
both need the same thing: the engine's version (it goes into cache keys, since
another version speaks differently) and one utterance as 16 kHz mono float32.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000


class EspeakError(RuntimeError):
    """espeak-ng is missing or failed; the message says which."""


def _exe() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise EspeakError("espeak-ng is not installed (Debian/Ubuntu: apt-get install -y espeak-ng)")
    return exe


def version() -> str:
    """e.g. "eSpeak NG 1.51"."""
    out = subprocess.run([_exe(), "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.split("Data at")[0].strip().replace(" text-to-speech:", "")


def synthesize(text: str, voice: str, rate: int = 160, pitch: int = 50) -> np.ndarray:
    """One utterance as a 16 kHz mono float32 signal."""
    import soundfile as sf

    exe = _exe()
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "u.wav"
        r = subprocess.run([exe, "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(wav), text],
                           capture_output=True, timeout=60)
        if r.returncode != 0 or not wav.is_file():
            raise EspeakError(f"espeak-ng failed for voice {voice}: {r.stderr.decode(errors='replace')[:200]}")
        audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != SAMPLE_RATE:
        import librosa

        audio = librosa.resample(audio, orig_sr=sr, target_sr=SAMPLE_RATE)
    return np.ascontiguousarray(audio, dtype=np.float32)
