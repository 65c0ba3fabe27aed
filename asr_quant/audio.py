"""Bytes or a path in, a 16 kHz mono float32 `Clip` out, or a typed error
whose message a person understands. (Implementation in progress.)"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 16000


class AudioError(ValueError):
    """Base of every input problem; `str(err)` is the message shown to people."""


class NotAudioError(AudioError):
    """Not audio, or a corrupt file."""


class EmptyAudioError(AudioError):
    """Zero bytes or zero samples."""


class SilentAudioError(AudioError):
    """Audio with no measurable signal."""


class TooShortError(AudioError):
    """Shorter than the minimum a recognizer can use."""


class TooLongError(AudioError):
    """Longer than the configured limit."""


class TooLargeError(AudioError):
    """File larger than the upload cap."""


@dataclass
class Clip:
    """Decoded audio ready for any engine."""

    samples: np.ndarray  # float32, mono, SAMPLE_RATE
    sample_rate: int = SAMPLE_RATE
    name: str = "clip"
    sample_rate_in: int = SAMPLE_RATE
    channels_in: int = 1
    notes: list[str] = field(default_factory=list)  # what was done: "resampled from 44.1 kHz stereo"

    @property
    def duration_s(self) -> float:
        return len(self.samples) / float(self.sample_rate)
