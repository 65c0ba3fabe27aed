"""Recorded prompts played back to back as one long recording, with where each
one lies: the known-text input of the long-form test and of the live-mode
measurement (scripts/measure_live.py).

Why a builder: a long recording with known text is the only way to check that
decoding across windows loses or doubles nothing, and the check is only sharp
if prompts are placed across the points where windows are cut (`across`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import audio
from .corpus import Utterance

SAMPLE_RATE = 16000


@dataclass
class Placed:
    """One prompt in the recording: its utterance and its span in seconds."""

    utt: Utterance
    start_s: float
    end_s: float


@dataclass
class Recording:
    samples: np.ndarray  # float32, 16 kHz mono
    placed: list[Placed]

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    @property
    def text(self) -> str:
        return " ".join(p.utt.text for p in self.placed)

    def cut(self, longest_s: float) -> list[tuple[float, float, list[Placed]]]:
        """The recording cut in the middle of pauses into pieces of at most
        `longest_s` seconds, each holding whole prompts: (start_s, end_s, prompts)."""
        pieces, group, start = [], [], 0.0
        for p in self.placed:
            if group and p.end_s - start > longest_s:
                edge = (group[-1].end_s + p.start_s) / 2
                pieces.append((start, edge, group))
                group, start = [], edge
            group.append(p)
        pieces.append((start, self.duration_s, group))
        return pieces

    def slice(self, start_s: float, end_s: float) -> np.ndarray:
        return self.samples[int(round(start_s * SAMPLE_RATE)):int(round(end_s * SAMPLE_RATE))]


def build(utts: list[Utterance], total_s: float, gap_s: float = 0.6, across: tuple[float, ...] = (),
          min_gap_s: float = 0.05) -> Recording:
    """Prompts in the given order with `gap_s` of silence between them, until
    the next would pass `total_s`; then silence up to exactly `total_s`. Each
    time in `across` falls inside a prompt (centred on it where the gap can
    stretch to allow it)."""
    pending = sorted(across)
    parts: list[np.ndarray] = []
    placed: list[Placed] = []
    t = 0.0
    for u in utts:
        clip = audio.load(u.path, name=u.id).samples
        d = len(clip) / SAMPLE_RATE
        start = t + (gap_s if placed else 0.0)
        if pending and start + d > pending[0] - min_gap_s:  # this one ends at the mark or after it
            start = max(t + min_gap_s, min(start, pending[0] - d / 2))
            if not start < pending[0] < start + d:  # it would end at the mark: a longer gap centres it
                start = max(start, pending[0] - d / 2)
            if start < pending[0] < start + d:
                pending.pop(0)
        if start + d > total_s:
            break
        parts += [np.zeros(int(round((start - t) * SAMPLE_RATE)), np.float32), clip]
        t = sum(len(x) for x in parts) / SAMPLE_RATE
        placed.append(Placed(u, round(t - d, 3), round(t, 3)))
    if pending:
        raise ValueError(f"the prompts ran out before {pending[0]} s: give more of them")
    parts.append(np.zeros(max(0, int(round(total_s * SAMPLE_RATE)) - sum(len(x) for x in parts)), np.float32))
    return Recording(np.concatenate(parts).astype(np.float32), placed)
