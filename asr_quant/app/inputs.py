"""The page's input checks, without gradio: an upload decoded once, and the
reference transcript's length cap.

Gradio runs an event's validator before the queue and the handler after it;
both need the decoded clip. `DecodedUploads` keeps the last few decodes keyed
by the upload's path, size, mtime and ctime (any rewrite changes one of them)
and the limits, so the handler takes the validator's clip (or its error)
instead of decoding the file a second time.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

from .. import audio
from ..metrics import reference_problem

NO_CLIP = "Record or upload a clip first, or pick an example."


class DecodedUploads:
    """`decode(path)` -> (clip, None) or (None, what is wrong), the last `keep` answers remembered."""

    def __init__(self, max_s: float | None, max_bytes: int | None, keep: int = 4):
        self.max_s, self.max_bytes, self.keep = max_s, max_bytes, keep
        self._seen: OrderedDict[tuple, tuple[audio.Clip | None, str | None]] = OrderedDict()
        self._lock = threading.Lock()
        self.decodes = 0  # files actually decoded (tests check the second look is free)

    def _key(self, path: str) -> tuple | None:
        try:
            st = os.stat(path)
        except OSError:
            return None  # the decoder says what is wrong
        return (os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                self.max_s, self.max_bytes)

    def decode(self, path) -> tuple[audio.Clip | None, str | None]:
        if not path:
            return None, NO_CLIP
        path = str(path)
        key = self._key(path)
        with self._lock:
            hit = self._seen.get(key) if key is not None else None
            if hit is not None:
                self._seen.move_to_end(key)
        if hit is None:
            hit = self._decode(path)
            if key is not None:
                with self._lock:
                    self._seen[key] = hit
                    while len(self._seen) > self.keep:
                        self._seen.popitem(last=False)
        clip, problem = hit
        return (replace(clip, notes=list(clip.notes)) if clip is not None else None), problem

    def _decode(self, path: str) -> tuple[audio.Clip | None, str | None]:
        self.decodes += 1
        try:  # gradio keeps the upload's own name
            return audio.load(path, max_s=self.max_s, max_bytes=self.max_bytes, name=Path(path).name), None
        except audio.AudioError as exc:
            return None, str(exc)


__all__ = ["DecodedUploads", "NO_CLIP", "reference_problem"]
