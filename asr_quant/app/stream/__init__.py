"""Live microphone mode, gradio-free: the audio cut at pauses (`segmenter`),
one worker thread per engine carrying the previous text as context
(`worker`), one recording's state (`session`), its text for the page (`view`),
and the recordings by browser session (`pages`)."""
from .pages import LivePages, Shown
from .segmenter import Piece, Segmenter
from .session import LiveConfig, LiveSession, priority, to_mono_16k
from .worker import EngineWorker, WorkerState

__all__ = ["LivePages", "Shown", "Piece", "Segmenter", "LiveConfig", "LiveSession", "priority", "to_mono_16k",
           "EngineWorker", "WorkerState"]
