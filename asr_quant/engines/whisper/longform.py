"""Whole clips through `decoding.decode`: one window for up to 30 s; a longer
clip is cut at pauses as live mode cuts it (`_by_pauses`), and only a run of
speech over 30 s without a pause is decoded by openai-whisper's long-form
algorithm (its transcribe.py), greedy (`_long_form`).

Why not fixed 30 s windows: a window that starts with no context and at an
arbitrary cut loses or doubles the word across the cut. Cutting at pauses puts
every cut where no word is, and each piece is decoded after the text before it
(<|startofprev|>), as a live recording's segments are, so an upload reads what
the live transcript of the same audio read. Long-form decoding (for a run over
30 s) decodes each 30 s window with timestamp tokens, keeps the segments that
end with a timestamp, and moves the next window's start (`seek`) to the end of
the last complete segment, so an unfinished segment is decoded again whole in
the next window; and it gives the text so far after <|startofprev|> (the last
n_text_ctx // 2 - 1 tokens), so each window continues the text. A window whose
no-speech probability is over 0.6 and whose average log-probability is under
-1 is skipped as silence (openai-whisper's and faster-whisper's defaults).
There is no temperature fallback: where openai-whisper resets the prompt after
a fallback at a high temperature, this resets it after a window on which the
repetition-loop guard fired, so a loop is not carried into the next window.
Every engine (FP32, FP16, INT8, ORT-FP32) runs this same code.
"""
from __future__ import annotations

import time

import numpy as np

from ..base import Progress, RawResult, Segment
from .. import pauses
from . import decoding
from . import features as _features
from .tokens import TokenizerInfo

NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0
FRAMES_PER_TIMESTAMP = 2  # mel frames per timestamp step (N_FRAMES // encoder positions)
_NO_SPACE = ("zh", "ja", "yue", "th", "lo", "my", "km", "bo")


def split_segments(tokens: list[int], info: TokenizerInfo, offset_s: float,
                   window_frames: int) -> tuple[list[tuple[float, float, list[int]]], int]:
    """openai-whisper's cut of one window's tokens into timed segments:
    (start_s, end_s, tokens) each, and how many mel frames to seek. A window
    whose tokens end in one timestamp ends with a complete segment (seek the
    whole window); otherwise the tokens after the last timestamp pair are an
    unfinished segment, dropped, and the seek stops at the last complete end."""
    tb = info.timestamp_begin
    step = decoding.TIME_PRECISION_S
    is_ts = [t >= tb for t in tokens]
    single_ending = is_ts[-2:] == [False, True]
    cuts = [i + 1 for i in range(len(tokens) - 1) if is_ts[i] and is_ts[i + 1]]
    if cuts:
        if single_ending:
            cuts.append(len(tokens))
        out, last = [], 0
        for cut in cuts:
            piece = tokens[last:cut]
            out.append((offset_s + (piece[0] - tb) * step, offset_s + (piece[-1] - tb) * step, piece))
            last = cut
        if single_ending:
            return out, window_frames
        seek = (tokens[last - 1] - tb) * FRAMES_PER_TIMESTAMP
        return out, seek if seek > 0 else window_frames
    duration = window_frames * _features.HOP / _features.SAMPLE_RATE
    stamps = [t for t in tokens if t >= tb]
    if stamps and stamps[-1] != tb:
        duration = (stamps[-1] - tb) * step
    return [(offset_s, offset_s + duration, tokens)], window_frames


def transcribe_samples(model: decoding.StepModel, samples: np.ndarray, info: TokenizerInfo, language: str | None,
                       n_mels: int = 80, prompt: str | None = None, progress: Progress | None = None) -> RawResult:
    """What every Whisper engine's `_run` returns. Up to 30 s: one window
    without timestamps, after `prompt` (text said before the clip) if given.
    Longer: cut at pauses as live mode cuts it (`_by_pauses`). The language
    found first is kept."""
    info.resolve_language(language)  # fail on a bad code before any compute
    total_s = int(np.asarray(samples).shape[-1]) / _features.SAMPLE_RATE
    if total_s <= _features.WINDOW_S or not info.has_timestamps:
        if total_s > _features.WINDOW_S:  # pragma: no cover - every Whisper vocabulary has timestamps
            raise ValueError("a clip over 30 s needs a model with timestamp tokens")
        r = _one_window(model, samples, info, language, n_mels, info.encode_text(prompt) if prompt else [])
        if progress:
            progress(total_s, total_s)
        return r
    return _by_pauses(model, samples, info, language, n_mels, prompt, progress)


def _one_window(model, samples: np.ndarray, info: TokenizerInfo, language: str | None, n_mels: int,
                previous: list[int]) -> RawResult:
    t0 = time.perf_counter()
    total_s = int(np.asarray(samples).shape[-1]) / _features.SAMPLE_RATE
    mel = _features.log_mel(samples, n_mels)
    features_s = time.perf_counter() - t0
    r = decoding.decode(model, _features.pad_or_trim(mel)[None], info, language, duration_s=total_s,
                        previous=previous)
    return RawResult(text=r.text, language=r.language, token_ids=r.token_ids, features_s=features_s,
                     encoder_s=r.encoder_s, decoding_s=r.decoding_s, warnings=r.warnings,
                     segments=[Segment(0.0, total_s, r.text)] if r.text else [])


def _by_pauses(model, samples: np.ndarray, info: TokenizerInfo, language: str | None, n_mels: int,
               prompt: str | None, progress: Progress | None) -> RawResult:
    """A clip over 30 s cut at pauses exactly as live mode cuts it
    (`pauses.cut_at_pauses`; faster-whisper's vad_filter and WhisperX also cut
    at pauses first), each run of speech decoded after the text before it as
    its prompt, joined as live mode joins it. So the upload of a recording
    reads what its live transcript read, and a cut lies in a pause, never in
    a word. A run longer than 30 s (pieces cut at the cap inside speech) is
    decoded by the windows with a seek of `_long_form`, so no word is lost
    or doubled there either."""
    total_s = int(np.asarray(samples).shape[-1]) / _features.SAMPLE_RATE
    texts = [prompt.strip()] if prompt and prompt.strip() else []
    out = RawResult(text="", language=language, token_ids=[])
    lang, kept = language, []
    done_s = [0.0]

    def report(at_s: float) -> None:
        if progress and at_s > done_s[0]:
            done_s[0] = at_s
            progress(at_s, total_s)
    for k, run in enumerate(pauses.spans(pauses.cut_at_pauses(samples))):
        x = np.concatenate([p.samples for p in run])
        a, b = run[0].start_s, min(run[-1].end_s, total_s)
        before = info.encode_text(" ".join(texts)) if texts else []
        if len(x) / _features.SAMPLE_RATE <= _features.WINDOW_S:
            r = _one_window(model, x, info, lang, n_mels, before)
        else:
            t0 = time.perf_counter()
            mel = _features.log_mel(x, n_mels)
            r = _long_form(model, mel, len(x), info, lang, before, time.perf_counter() - t0,
                           lambda done, _, a=a: report(min(a + done, total_s)))
        lang = r.language
        out.features_s += r.features_s
        out.encoder_s += r.encoder_s
        out.decoding_s += r.decoding_s
        out.token_ids += r.token_ids
        where = f" (speech {k + 1}, from {a:.1f} s)"
        out.warnings += [m + where for m in r.warnings]
        out.segments += [Segment(round(a + s.start_s, 2), round(min(a + s.end_s, b), 2), s.text) for s in r.segments]
        if r.text.strip():
            texts.append(r.text.strip())
            kept.append(r.text.strip())
        report(b)
    report(total_s)
    out.language = lang
    out.text = ("" if lang in _NO_SPACE else " ").join(kept)
    return out


def _long_form(model, mel: np.ndarray, n_samples: int, info: TokenizerInfo, language: str | None,
               previous: list[int], features_s: float, progress: Progress | None) -> RawResult:
    content_frames = n_samples // _features.HOP
    total_s = n_samples / _features.SAMPLE_RATE
    all_tokens = list(previous)
    reset_since = 0
    segments: list[Segment] = []
    ids: list[int] = []
    warnings: list[str] = []
    enc_s = dec_s = 0.0
    lang, seek, window = language, 0, 0
    while seek < content_frames:
        window += 1
        offset_s = seek * _features.HOP / _features.SAMPLE_RATE
        size = min(_features.N_FRAMES, content_frames - seek)
        chunk = _features.pad_or_trim(mel[:, seek:seek + size])[None]
        r = decoding.decode(model, chunk, info, lang, duration_s=size * _features.HOP / _features.SAMPLE_RATE,
                            previous=all_tokens[reset_since:], timestamps=True)
        lang = r.language
        enc_s += r.encoder_s
        dec_s += r.decoding_s
        where = f" (window {window}, from {offset_s:.1f} s)"
        warnings += [m + where for m in r.warnings if m + where not in warnings]
        silent = (r.no_speech_prob is not None and r.no_speech_prob > NO_SPEECH_THRESHOLD
                  and r.avg_logprob < LOGPROB_THRESHOLD)
        if silent or not r.token_ids:
            seek += size
        else:
            pieces, advance = split_segments(r.token_ids, info, offset_s, size)
            seek += min(advance, size)
            for start, end, toks in pieces:
                text = info.decode(toks)
                if end <= start or not text:
                    continue  # openai-whisper clears an instantaneous or empty segment
                segments.append(Segment(round(start, 2), round(min(end, total_s), 2), text))
                all_tokens += toks
                ids += [t for t in toks if t < info.eot]
            if r.guard_fired:
                reset_since = len(all_tokens)
        if progress:
            progress(min(seek, content_frames) * _features.HOP / _features.SAMPLE_RATE, total_s)
    joiner = "" if lang in _NO_SPACE else " "
    return RawResult(text=joiner.join(s.text for s in segments), language=lang, token_ids=ids,
                     features_s=features_s, encoder_s=enc_s, decoding_s=dec_s, warnings=warnings,
                     segments=segments)
