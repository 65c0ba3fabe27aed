"""What the load test's clients send: the example clips, and bad inputs each
paired with the message the page must answer with (computed with `audio.load`)."""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .. import audio
from ..examples import REPO, read_examples


@dataclass
class Input:
    """One file a person might send, and what the page must answer."""

    name: str
    path: Path
    kind: str  # "good" | "bad"
    language: str = "auto"
    reference: str = ""
    message: str = ""  # for a bad input: the decoder's message the page must show
    error: str = ""  # ... and its AudioError class


def _png() -> bytes:
    """A valid 8x8 grey PNG, built by hand (no image library needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + bytes([128] * 8) for _ in range(8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def tone(seconds: float, rate: int, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def bad_inputs(folder: Path, max_audio_s: float, max_file_mb: float) -> list[Input]:
    """The bad inputs of the mix, written to `folder`, each with the message
    the decoder gives for it under the app's limits."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes | None] = {
        "notes.wav": b"Meeting notes\nThis is plain text, not audio.\n" * 20,
        "empty.wav": b"",
        "photo.png": _png(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    sf.write(folder / "silence.wav", np.zeros(32000, np.float32), 16000, subtype="PCM_16")
    sf.write(folder / "blip.wav", tone(0.1, 16000), 16000, subtype="PCM_16")
    # 8-bit 8 kHz keeps it small: refused for its length, not its size
    sf.write(folder / "too_long.wav", tone(max_audio_s + 10, 8000), 8000, subtype="PCM_U8")
    big = folder / "too_big.wav"  # a real WAV header, then sparse zeros past the cap (no disk used)
    sf.write(big, tone(1.0, 16000), 16000, subtype="PCM_16")
    with open(big, "r+b") as f:
        f.truncate(int(max_file_mb * 1024 * 1024) + 1024 * 1024)
    cap = int(max_file_mb * 1024 * 1024)
    out = []
    for p in sorted(folder.iterdir()):
        try:
            audio.load(p, max_s=max_audio_s, max_bytes=cap, name=p.name)
        except audio.AudioError as exc:
            out.append(Input(p.name, p, "bad", "en", message=str(exc), error=type(exc).__name__))
            continue
        raise RuntimeError(f"{p.name} was meant to be rejected by the decoder but was accepted")
    return out


def good_inputs(folder: Path = REPO / "examples") -> list[Input]:
    return [Input(e.path.name, e.path, "good", e.language, e.reference) for e in read_examples(folder)]
