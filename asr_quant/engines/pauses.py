"""Cut a recording into segments at pauses, as it arrives (live mode) or
all at once (an upload over 30 s, `cut_at_pauses`): both paths cut the same
audio at the same samples, so a live transcript and the upload's agree.

Why an energy cut and not a VAD model: it needs nothing beyond numpy, costs
nothing beside the engines on a 2-core CPU, and pauses in dictated speech are
clear drops in level. A frame (30 ms) is speech when it is above `floor_dbfs`
and louder by `margin_db` than the noise floor (the 20th percentile of the
last 10 s of frames judged not speech). A segment ends
after `silence_s` of non-speech, or, at `max_s`, at the quietest frame of its
last `search_s` seconds (so a long run without a pause is not cut mid-word
where it can be helped). Pieces with less than `min_speech_s` of speech are
noise and are dropped. The cut depends on the samples only, not on how
they were chunked.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000
FRAME = 480  # 30 ms at 16 kHz
SILENCE_S = 0.5  # a pause this long ends a segment (live mode and uploads alike)
MAX_S = 20.0  # the longest segment


@dataclass
class Piece:
    """A segment of the recording: its samples and span (seconds from the start)."""

    index: int
    start_s: float
    end_s: float
    samples: np.ndarray
    speech_end_s: float  # where its last speech frame ended (end_s minus the trailing pause)
    at_pause: bool = True  # False: cut at `max_s` inside speech, so the next piece continues it

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class Segmenter:
    """Feed 16 kHz float32 chunks with `push`; it returns the pieces they complete."""

    def __init__(self, silence_s: float = SILENCE_S, max_s: float = MAX_S, min_speech_s: float = 0.25,
                 pre_roll_s: float = 0.2, search_s: float = 3.0, margin_db: float = 12.0,
                 floor_dbfs: float = -50.0):
        self.silence_frames = max(1, int(round(silence_s * SAMPLE_RATE / FRAME)))
        self.max_frames = int(max_s * SAMPLE_RATE / FRAME)
        self.min_speech_frames = max(1, int(round(min_speech_s * SAMPLE_RATE / FRAME)))
        self.pre_roll = int(round(pre_roll_s * SAMPLE_RATE / FRAME))
        self.search = max(1, int(search_s * SAMPLE_RATE / FRAME))
        self.margin_db, self.floor_dbfs = margin_db, floor_dbfs
        self._pending = np.zeros(0, np.float32)  # samples not yet a whole frame
        self._frames: list[np.ndarray] = []  # frames of the open segment (with pre-roll)
        self._levels: list[float] = []
        self._speech: list[bool] = []
        self._noise = deque(maxlen=int(10 * SAMPLE_RATE / FRAME))  # levels of recent non-speech frames
        self._start = 0  # frame index (from the recording's start) of _frames[0]
        self._seen = 0  # frames seen
        self._open = False
        self._quiet = 0  # non-speech frames at the open segment's end
        self._count = 0

    def push(self, samples: np.ndarray) -> list[Piece]:
        x = np.concatenate([self._pending, np.asarray(samples, np.float32).reshape(-1)])
        n = len(x) // FRAME
        self._pending = x[n * FRAME:]
        out: list[Piece] = []
        for i in range(n):
            piece = self._frame(x[i * FRAME:(i + 1) * FRAME])
            if piece is not None:
                out.append(piece)
        return out

    def flush(self) -> list[Piece]:
        """The recording stopped: what is open becomes the last piece (if it holds speech)."""
        if len(self._pending):
            self._frames.append(np.pad(self._pending, (0, FRAME - len(self._pending))))
            self._levels.append(-120.0)
            self._speech.append(False)
            self._pending = np.zeros(0, np.float32)
        piece = self._close(len(self._frames), True) if self._open else None
        return [piece] if piece is not None else []

    def _is_speech(self, level: float) -> bool:
        floor = np.percentile(self._noise, 20) if len(self._noise) >= 10 else -90.0
        return level > max(self.floor_dbfs, floor + self.margin_db)

    def _frame(self, frame: np.ndarray) -> Piece | None:
        level = float(10 * np.log10(np.mean(frame.astype(np.float64) ** 2) + 1e-12))
        speech = self._is_speech(level)
        if not speech:
            self._noise.append(level)
        self._seen += 1
        self._frames.append(frame)
        self._levels.append(level)
        self._speech.append(speech)
        if not self._open:
            if speech:
                self._open, self._quiet = True, 0
            else:  # keep only the pre-roll before speech starts
                drop = max(0, len(self._frames) - self.pre_roll)
                if drop:
                    del self._frames[:drop], self._levels[:drop], self._speech[:drop]
                    self._start += drop
            return None
        self._quiet = 0 if speech else self._quiet + 1
        if self._quiet >= self.silence_frames:
            return self._close(len(self._frames), True)
        if len(self._frames) >= self.max_frames:
            tail = self._levels[-self.search:]
            return self._close(len(self._frames) - self.search + int(np.argmin(tail)) + 1, False)
        return None

    def _close(self, cut: int, at_pause: bool) -> Piece | None:
        """The open segment's first `cut` frames become a piece; the rest stays open."""
        frames, speech = self._frames[:cut], self._speech[:cut]
        start = self._start
        self._frames, self._levels, self._speech = self._frames[cut:], self._levels[cut:], self._speech[cut:]
        self._start += cut
        self._open = any(self._speech)
        at_pause = at_pause or not self._open  # a cap cut with no speech after it ended at a pause after all
        self._quiet = 0
        if sum(speech) < self.min_speech_frames:
            return None
        last = max(i for i, s in enumerate(speech) if s) + 1
        self._count += 1
        return Piece(self._count - 1, start * FRAME / SAMPLE_RATE, (start + cut) * FRAME / SAMPLE_RATE,
                     np.concatenate(frames), (start + last) * FRAME / SAMPLE_RATE, at_pause)


def cut_at_pauses(samples: np.ndarray, silence_s: float = SILENCE_S, max_s: float = MAX_S) -> list[Piece]:
    """A whole recording's pieces, as live mode cuts it."""
    seg = Segmenter(silence_s=silence_s, max_s=max_s)
    return seg.push(samples) + seg.flush()


def spans(pieces: list[Piece]) -> list[list[Piece]]:
    """Pieces grouped into runs of speech: a piece cut at the cap (not at a
    pause) and the one after it are one run."""
    out: list[list[Piece]] = []
    for p in pieces:
        if out and not out[-1][-1].at_pause:
            out[-1].append(p)
        else:
            out.append([p])
    return out
