"""faster-whisper (CTranslate2) as a peer engine: the runtime a user would pick
instead of this project's INT8, on the same Whisper weights, run the same way.

Settings chosen for a like-for-like comparison with the project's engines
(which decode a clip of up to 30 s as one window without timestamps, and a
longer one long-form, see longform.py): greedy (beam 1, best_of 1), temperature
0 only (no fallback re-decoding), no VAD, language forced when known. Up to
30 s: no timestamps, no conditioning on previous text, no no-speech dropping,
and the token budget of the project's decoder (tokens per second of audio + a
margin). Over 30 s: faster-whisper's own long-form decoding, as the project's
long-form path does it: timestamps on, conditioned on the previous text, a
window skipped at no-speech probability > 0.6 with average log-probability
< -1, and faster-whisper's per-window limit of 448 positions. Unlike the
project's engines it has no repetition-loop guard: a loop runs to the budget once. faster-whisper is
installed with --no-deps (its `onnxruntime` requirement is only for the VAD,
and plain onnxruntime must never sit beside onnxruntime-gpu), so it is
imported lazily here.
"""
from __future__ import annotations

import importlib.metadata
import time
from pathlib import Path

from ... import memory
from ...audio import Clip
from .decoding import token_budget
from .features import WINDOW_S
from .longform import LOGPROB_THRESHOLD, NO_SPEECH_THRESHOLD
from ..base import Engine, EngineError, EngineInfo, RawResult, Segment, UnavailableEngine
from ...settings import Settings

COMPUTE_TYPES = ("float32", "int8", "int8_float32", "float16", "int8_float16", "bfloat16", "int8_bfloat16")
_PRECISION = {"float32": "fp32", "int8": "int8", "int8_float32": "int8", "float16": "fp16", "int8_float16": "int8",
              "bfloat16": "bf16", "int8_bfloat16": "int8"}


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


class FasterWhisperEngine(Engine):
    """One faster-whisper `WhisperModel` at one compute type, on the CPU."""

    def __init__(self, ct2_dir: str | Path, compute_type: str, threads: int, model_name: str = "Whisper"):
        from faster_whisper import WhisperModel  # lazy: optional peer dependency

        ct2_dir = Path(ct2_dir)
        start = time.perf_counter()
        with memory.LoadMeter("cpu") as meter:
            self.model = WhisperModel(str(ct2_dir), device="cpu", compute_type=compute_type,
                                      cpu_threads=threads, num_workers=1)
        self.compute_type = compute_type
        files = [p for p in (ct2_dir / "model.bin", ct2_dir / "config.json", ct2_dir / "vocabulary.txt",
                             ct2_dir / "tokenizer.json") if p.exists()]
        self.info = EngineInfo(
            name=f"faster-whisper {compute_type}", precision=_PRECISION.get(compute_type, compute_type),
            runtime=f"faster-whisper {_version('faster-whisper')} / CTranslate2 {_version('ctranslate2')}",
            device="cpu", model=model_name,
            details=(f"peer on the same CTranslate2 weights (stored float16 on disk, converted to {compute_type} "
                     "at load); greedy, temperature 0 only, no VAD, language forced when known; up to 30 s one "
                     "window without timestamps, longer clips its own long-form decoding (timestamps, "
                     "conditioned on the previous text)"),
            threads=threads, disk_bytes=memory.disk_bytes(*files), resident_bytes=meter.grown_bytes,
            load_s=time.perf_counter() - start)

    def _language(self, language: str | None) -> str | None:
        """The language token this model really has: faster-whisper lists
        large-v3's codes for every multilingual model, but Whisper before
        large-v3 has no <|yue|> (decoded as Chinese, as the project's engines do)."""
        if language is None:
            return None
        if not self.model.model.is_multilingual:
            return "en"
        has = lambda code: self.model.hf_tokenizer.token_to_id(f"<|{code}|>") is not None  # noqa: E731
        if has(language):
            return language
        if language == "yue" and has("zh"):
            return "zh"
        raise EngineError(f"this model has no language {language!r}")

    def _run(self, clip: Clip, language: str | None) -> RawResult:
        lang = self._language(language)
        if clip.duration_s > WINDOW_S:
            options = dict(without_timestamps=False, condition_on_previous_text=True,
                           no_speech_threshold=NO_SPEECH_THRESHOLD, log_prob_threshold=LOGPROB_THRESHOLD)
        else:
            options = dict(without_timestamps=True, condition_on_previous_text=False, no_speech_threshold=None,
                           log_prob_threshold=None, max_new_tokens=token_budget(clip.duration_s, prompt_len=4))
        segments, info = self.model.transcribe(
            clip.samples, language=lang, task="transcribe", beam_size=1, best_of=1, temperature=0.0,
            vad_filter=False, compression_ratio_threshold=None, **options)
        segments = list(segments)  # the generator decodes lazily: consume it inside the timed call
        tokens = [t for s in segments for t in s.tokens]
        warnings = []
        if lang != language:
            warnings.append(f"language {language!r} decoded as {lang!r}")
        return RawResult(text="".join(s.text for s in segments).strip(), language=info.language,
                         token_ids=tokens, warnings=warnings,
                         segments=[Segment(round(s.start, 2), round(s.end, 2), s.text.strip()) for s in segments])


def faster_whisper_engines(settings: Settings, compute_types: list[str], model_name: str = "Whisper") -> list[Engine]:
    """Peers on the CT2 folder of `settings.model`; one that fails to load
    becomes an UnavailableEngine carrying the reason."""
    from .ct2 import locate

    out: list[Engine] = []
    try:
        ct2_dir = locate(settings.model, settings.cache_dir).ct2_dir
    except Exception as exc:  # noqa: BLE001 - a peer's failure is reported, not raised
        ct2_dir, why = None, f"{type(exc).__name__}: {exc}"
    for ct in compute_types:
        if ct not in COMPUTE_TYPES:
            from .cpu_peers import KINDS

            raise EngineError(f"unknown peer {ct!r}: use a faster-whisper compute type ({', '.join(COMPUTE_TYPES)}) "
                              f"or one of {', '.join(KINDS)}")
        try:
            if ct2_dir is None:
                raise EngineError(why)
            out.append(FasterWhisperEngine(ct2_dir, ct, settings.threads, model_name))
        except Exception as exc:  # noqa: BLE001
            out.append(UnavailableEngine(EngineInfo(
                name=f"faster-whisper {ct}", precision=_PRECISION.get(ct, ct), runtime="faster-whisper",
                device="cpu", model=model_name, error=f"{type(exc).__name__}: {exc}")))
    return out
