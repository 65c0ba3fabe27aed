"""Regenerate `examples/`: English clips synthesized with espeak-ng from known
sentences, and the index `examples/examples.tsv`.

    python scripts/make_examples.py            # needs the Debian package espeak-ng

The clips are 16 kHz mono 16-bit FLAC (lossless and small). No real
recording is added: see examples/README.md for what was looked for.
"""
from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "examples"
RATE = 16000
PEAK = 0.7  # espeak's level varies by voice; give every clip the same peak

# file, espeak voice, words per minute, reference text, description
SYNTH = [
    ("weather_en.flac", "en-us", 150,
     "The weather will be sunny in the morning, with light rain expected in the evening.",
     "English, weather forecast (espeak-ng en-us)"),
    ("meeting_en.flac", "en-us", 150,
     "Our team meeting has moved to Thursday afternoon, so please update your calendars.",
     "English, office announcement (espeak-ng en-us)"),
    ("quantization_en.flac", "en-us", 150,
     "Storing the weights in eight bits makes the model smaller and often faster on a laptop.",
     "English, technical sentence (espeak-ng en-us)"),
    ("directions_en.flac", "en-gb", 150,
     "Turn left at the second traffic light and the station is on your right.",
     "English, directions (espeak-ng en-gb, British voice)"),
    ("question_en.flac", "en-us+f3", 140,
     "Could you send me the report before lunch, or is tomorrow better for you?",
     "English, question (espeak-ng en-us, female variant, slower)"),
]

def synthesize(text: str, voice: str, wpm: int) -> np.ndarray:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        sys.exit("espeak-ng is not installed (Debian: apt-get install -y espeak-ng)")
    wav = subprocess.run([espeak, "-v", voice, "-s", str(wpm), "--stdout", text],
                         check=True, capture_output=True).stdout
    x, rate = sf.read(io.BytesIO(wav), dtype="float32")
    x = soxr.resample(x, rate, RATE, quality="HQ")
    return (x * (PEAK / np.abs(x).max())).astype(np.float32)


COLUMNS = ["file", "language", "reference", "description", "source", "kind"]


def main() -> None:
    OUT.mkdir(exist_ok=True)
    rows = []
    for name, voice, wpm, text, desc in SYNTH:
        x = synthesize(text, voice, wpm)
        dur = len(x) / RATE
        if not 3.0 <= dur <= 8.0:
            sys.exit(f"{name}: {dur:.1f} s is outside 3-8 s; shorten or lengthen the sentence")
        sf.write(OUT / name, x, RATE, format="FLAC", subtype="PCM_16")
        rows.append((name, "en", text, desc, f"synthesized by scripts/make_examples.py: espeak-ng -v {voice} -s {wpm}",
                     "synthetic"))
        print(f"{name}: {dur:.2f} s")

    index = OUT / "examples.tsv"
    if index.is_file():  # the recorded clips are not made here: keep their rows
        with open(index, encoding="utf-8", newline="") as f:
            rows += [tuple(r[k] for k in COLUMNS) for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
                     if r.get("kind") == "recorded"]
    with open(index, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows(rows)
    total = sum(p.stat().st_size for p in OUT.iterdir() if p.is_file())
    print(f"examples/: {total / 1e6:.2f} MB in all")


if __name__ == "__main__":
    main()
