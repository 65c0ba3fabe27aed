"""Live recordings by browser session, and what the page shows of each
(gradio-free: the page module maps `Shown` onto its widgets)."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ...engines.base import Engine
from .. import present
from . import view
from .session import LiveConfig, LiveSession


@dataclass
class Shown:
    box: str  # the live box: one row per engine
    columns: dict[str, tuple[str, str]] = field(default_factory=dict)  # engine -> (text so far, live line)


def shown(sess: LiveSession) -> Shown:
    states = sess.states()
    return Shown(view.summary(states, sess.recorded_s, len(sess.pieces), sess.stopped),
                 {s.name: (s.text, view.column_line(s)) for s in states})


class LivePages:
    """One `LiveSession` per browser session key."""

    def __init__(self, config: LiveConfig | None = None, catch_up_s: float = 60.0):
        self.config, self.catch_up_s = config or LiveConfig(), catch_up_s
        self._by: dict[str, LiveSession] = {}
        self._lock = threading.Lock()

    def start(self, key: str, engines: Sequence[Engine], language: str | None) -> Shown:
        """`language`: as the page's dropdown gives it ("auto", "es", "Spanish (es)")."""
        sess = LiveSession([e for e in engines if e.info.available], present.language_code(language), self.config)
        with self._lock:
            old = self._by.pop(key, None)
            self._by[key] = sess
        if old is not None:
            old.stop()
        return shown(sess)

    def feed(self, key: str, chunk) -> Shown | None:
        """`chunk`: (sample_rate, samples) as the browser streams it."""
        sess = self._by.get(key)
        if sess is None or chunk is None or chunk[1] is None:
            return None
        sess.feed(int(chunk[0]), chunk[1])
        return shown(sess)

    def stop(self, key: str, folder: Path) -> tuple[Shown | None, Path | None]:
        """The last segment out; the live columns given up to `catch_up_s` to
        catch up; the whole recording written to `folder` as a wav."""
        with self._lock:
            sess = self._by.pop(key, None)
        if sess is None:
            return None, None
        samples = sess.stop()
        sess.wait(self.catch_up_s)
        if len(samples) == 0:
            return shown(sess), None
        import soundfile as sf

        path = Path(folder) / "live-recording.wav"
        sf.write(str(path), samples, 16000, subtype="PCM_16")
        return shown(sess), path
