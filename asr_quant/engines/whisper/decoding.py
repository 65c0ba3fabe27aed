"""The one decoding procedure every Whisper engine uses.

Engines differ only in how they run the network (PyTorch FP32/FP16/BF16, ONNX
Runtime INT8); they plug in through `StepModel`, and everything else (prompt,
language detection, token suppression, greedy choice, token budget, the
repetition-loop guard and its fallback) lives here, so differences between
engines come from precision alone. Long-form decoding (timestamps, a seek
to the last complete segment, the previous text as prompt) is `longform`,
built on `decode` here.
"""
from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .. import gate as _gate
from . import features as _features
from .tokens import TokenizerInfo

# Token budget: generous for CJK (Korean/Chinese run ~5-10 tokens/s of speech);
# English needs ~3.5/s. A loop that runs past it is cut and reported.
TOKENS_PER_S = 12.0
TOKENS_MARGIN = 16
# Whisper's own threshold for "this text is a loop" (gzip ratio of the text).
COMPRESSION_RATIO_THRESHOLD = 2.4
MAX_LOOP_PERIOD = 32  # longest repeated block (tokens) the tail detector looks for
MAX_INITIAL_TIMESTAMP_S = 1.0  # openai-whisper's default: the first timestamp is at most <|1.00|>
TIME_PRECISION_S = 0.02  # one timestamp step: 2 mel frames of 10 ms


class StepModel(Protocol):
    """What a runtime must offer to be decoded by `decode`.

    `encode(mel)` takes float32 [1, n_mels, 3000] and returns an opaque encoder
    output. `step(enc, tokens, cache)` takes int64 [1, k] NEW tokens (the whole
    prompt with cache=None on a first call, then usually k == 1; the rest of a
    prompt may follow a first part, k > 1 with a cache) and returns (float32
    logits [vocab] for the last position, the new cache)."""

    def encode(self, mel: np.ndarray) -> Any: ...

    def step(self, enc: Any, tokens: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]: ...


@dataclass
class DecodeResult:
    token_ids: list[int]  # generated text tokens (no prompt, no <|endoftext|>)
    text: str
    language: str | None
    encoder_s: float = 0.0
    decoding_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    no_speech_prob: float | None = None  # P(<|nospeech|>) after <|startoftranscript|>; long-form only
    avg_logprob: float = 0.0  # of the kept tokens and the end token, as openai-whisper averages it
    guard_fired: bool = False  # the repetition-loop guard re-decoded or cut this window


def token_budget(duration_s: float, prompt_len: int, max_positions: int = 448) -> int:
    """Output tokens allowed for `duration_s` of audio: rate x time + margin,
    capped by the decoder's positions left after the prompt."""
    return max(1, min(int(math.ceil(TOKENS_PER_S * max(duration_s, 0.0))) + TOKENS_MARGIN,
                      max_positions - prompt_len))


def compression_ratio(text: str) -> float:
    """Whisper's loop signal: len(utf-8) / len(zlib(utf-8)); > 2.4 means repetitive."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def repeated_tail(tokens: list[int], max_period: int = MAX_LOOP_PERIOD) -> tuple[int, int] | None:
    """(period, copies) if the sequence ends in a loop, else None.

    A loop is a block of p tokens repeated back to back at least max(3, ceil(12 / p))
    times: 12 of the same token, 6 of a pair, 4 of a triple, 3 of anything longer.
    Real speech ("no, no, no") rarely meets that; Whisper's loops always do."""
    n = len(tokens)
    for p in range(1, min(max_period, n // 3) + 1):
        need = max(3, math.ceil(12 / p))
        if n < p * need:
            continue
        block = tokens[n - p:]
        copies = 1
        while copies < need and tokens[n - (copies + 1) * p:n - copies * p] == block:
            copies += 1
        if copies >= need:
            while n - (copies + 1) * p >= 0 and tokens[n - (copies + 1) * p:n - copies * p] == block:
                copies += 1
            return p, copies
    return None


@dataclass
class _Pass:
    tokens: list[int]
    stopped: str  # "eot" | "budget" | "loop"
    loop: tuple[int, int] | None = None
    sum_logprob: float = 0.0  # timestamps mode only


def _log_softmax(scores: np.ndarray) -> np.ndarray:
    finite = scores[np.isfinite(scores)]
    top = finite.max() if finite.size else 0.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return scores - (top + np.log(np.sum(np.exp(scores - top))))


def timestamp_rules(scores: np.ndarray, tokens: list[int], info: TokenizerInfo) -> None:
    """openai-whisper's ApplyTimestampRules, in place on one step's scores:
    timestamps come in pairs (except before the end); they never decrease and
    a segment is never empty; the first token is a timestamp of at most
    <|1.00|>; and when the timestamps' total probability beats every text
    token, a timestamp it is."""
    tb = info.timestamp_begin
    last_ts = bool(tokens) and tokens[-1] >= tb
    penultimate_ts = len(tokens) < 2 or tokens[-2] >= tb
    if last_ts:
        if penultimate_ts:
            scores[tb:] = -np.inf
        else:
            scores[: info.eot] = -np.inf
    stamps = [t for t in tokens if t >= tb]
    if stamps:
        floor = stamps[-1] if last_ts and not penultimate_ts else stamps[-1] + 1
        scores[tb:floor] = -np.inf
    if not tokens:
        scores[:tb] = -np.inf
        scores[tb + int(round(MAX_INITIAL_TIMESTAMP_S / TIME_PRECISION_S)) + 1:] = -np.inf
    logprobs = _log_softmax(scores)
    stamp_mass = np.logaddexp.reduce(logprobs[tb:]) if np.isfinite(logprobs[tb:]).any() else -np.inf
    if stamp_mass > logprobs[:tb].max():
        scores[:tb] = -np.inf


def _text_only(tokens: list[int], info: TokenizerInfo) -> list[int]:
    return [t for t in tokens if t < info.eot]


def _greedy(model: StepModel, enc: Any, info: TokenizerInfo, prompt: list[int], budget: int,
            ban_loops: bool, timestamps: bool = False, start: tuple | None = None) -> _Pass:
    """Greedy decoding with a KV cache. Stops at <|endoftext|>, at the budget,
    or (ban_loops False) as soon as the text ends in a loop; with ban_loops
    True, a token that would close a loop is skipped for the next best one.
    `timestamps`: timestamp tokens allowed under `timestamp_rules`, and the
    chosen tokens' log-probabilities summed. `start`: (logits, cache) after
    the prompt, when the caller fed it already."""
    tokens: list[int] = []
    total = 0.0
    logits, cache = start or model.step(enc, np.asarray([prompt], dtype=np.int64), None)
    while True:
        _gate.pause_point()  # a live engine ranked lower waits here while a higher one works
        scores = np.asarray(logits, dtype=np.float32).reshape(-1)[: info.vocab_size].copy()
        scores[info.suppress_mask(first=not tokens, timestamps=timestamps)] = -np.inf
        if timestamps:
            timestamp_rules(scores, tokens, info)
        logprobs = _log_softmax(scores) if timestamps else None
        choice = int(np.argmax(scores))
        if ban_loops:
            for _ in range(8):
                if choice >= info.eot or repeated_tail(_text_only(tokens, info) + [choice]) is None:
                    break
                scores[choice] = -np.inf
                choice = int(np.argmax(scores))
        if logprobs is not None:
            total += float(logprobs[choice])
        if choice == info.eot:
            return _Pass(tokens, "eot", sum_logprob=total)
        tokens.append(choice)
        if not ban_loops and choice < info.eot:
            loop = repeated_tail(_text_only(tokens, info))
            if loop is not None:
                return _Pass(tokens, "loop", loop, total)
        if len(tokens) >= budget:
            return _Pass(tokens, "budget", sum_logprob=total)
        logits, cache = model.step(enc, np.asarray([[choice]], dtype=np.int64), cache)


def _cut_loop(first: _Pass, eot: int) -> list[int]:
    """The first pass with a detected loop cut to one copy; unchanged without one.
    (The loop is counted in text tokens; timestamps inside it go with it.)"""
    if not first.loop:
        return first.tokens
    p, copies = first.loop
    drop = p * (copies - 1)
    end = len(first.tokens)
    while drop > 0 and end > 0:
        end -= 1
        drop -= first.tokens[end] < eot
    return first.tokens[:end]


def _kept_first_pass(first: _Pass, why: str, failed: str) -> str:
    """The warning for keeping the first pass, worded after what was done to it."""
    if first.loop:
        return (f"repetition loop guard fired ({why}); {failed}, so the first pass was kept "
                f"with the repeated block cut after its first copy")
    return (f"repetition loop guard fired ({why}); {failed}, so the first pass was kept as it was "
            "(no repeated block at its end to cut)")


def detect_language(model: StepModel, enc: Any, info: TokenizerInfo) -> str:
    """The language whose token scores highest after <|startoftranscript|>."""
    logits, _ = model.step(enc, np.asarray([[info.sot]], dtype=np.int64), None)
    codes, ids = info.language_ids()
    return codes[int(np.argmax(np.asarray(logits, dtype=np.float32).reshape(-1)[ids]))]


def decode(model: StepModel, mel: np.ndarray, tokenizer_info: TokenizerInfo, language: str | None,
           max_new_tokens: int | None = None, duration_s: float | None = None,
           previous: list[int] | None = None, timestamps: bool = False) -> DecodeResult:
    """Transcribe one 30 s window.

    `language` None detects it; a code forces it (EngineError if unknown).
    `previous`: tokens said before this window, given after <|startofprev|>
    (the last n_text_ctx // 2 - 1 of them), as openai-whisper's
    condition_on_previous_text. `timestamps`: decode with timestamp tokens
    (kept in `token_ids`) and measure the no-speech probability, for `longform`.
    `max_new_tokens` defaults to `token_budget(duration_s)`. The loop guard:
    if greedy output ends in a repeated block or its compression ratio is over
    2.4, decode again greedily with loop-closing tokens banned; keep that if it
    is no longer repetitive and ends, else keep the first pass, with a loop at
    its end cut to one copy (a pass flagged by its compression ratio alone is
    kept as it was). A warning says which of the three happened."""
    info = tokenizer_info
    code, warnings = info.resolve_language(language)
    t0 = time.perf_counter()
    _gate.pause_point()
    enc = model.encode(np.ascontiguousarray(mel, dtype=np.float32))
    t1 = time.perf_counter()
    if code is None:
        code = detect_language(model, enc, info)
    prefix = info.previous(previous or [])
    prompt = prefix + info.prompt(code, timestamps=timestamps)
    if max_new_tokens is None:
        max_new_tokens = token_budget(duration_s if duration_s is not None else _features.WINDOW_S,
                                      len(prompt), info.max_positions)
    max_new_tokens = max(1, min(max_new_tokens, info.max_positions - len(prompt)))

    no_speech, start = None, None
    if timestamps and info.no_speech is not None:
        no_speech, start = _no_speech_then_rest(model, enc, info, prompt, len(prefix))
    first = _greedy(model, enc, info, prompt, max_new_tokens, False, timestamps, start)
    tokens, chosen = first.tokens, first
    ratio = compression_ratio(info.decode(tokens))
    guard = first.stopped == "loop" or ratio > COMPRESSION_RATIO_THRESHOLD
    if guard:
        why = (f"a block of {first.loop[0]} token(s) repeated {first.loop[1]} times" if first.loop
               else f"compression ratio {ratio:.2f} > {COMPRESSION_RATIO_THRESHOLD}")
        second = _greedy(model, enc, info, prompt, max_new_tokens, True, timestamps)
        ratio2 = compression_ratio(info.decode(second.tokens))
        if ratio2 <= COMPRESSION_RATIO_THRESHOLD and second.stopped == "eot":
            tokens, chosen = second.tokens, second
            warnings.append(f"repetition loop guard fired ({why}); re-decoded greedily with loop-closing tokens banned")
        else:
            failed = (f"the re-decode was still repetitive (compression ratio {ratio2:.2f})"
                      if ratio2 > COMPRESSION_RATIO_THRESHOLD else
                      f"the re-decode ran to the token budget ({max_new_tokens} tokens)")
            warnings.append(_kept_first_pass(first, why, failed))
            tokens = _cut_loop(first, info.eot)
    elif first.stopped == "budget":
        warnings.append(f"stopped at the token budget ({max_new_tokens} tokens for this audio) "
                        "before the model ended the text")
    t2 = time.perf_counter()
    return DecodeResult(tokens, info.decode(tokens), code, t1 - t0, t2 - t1, warnings, no_speech,
                        chosen.sum_logprob / (len(chosen.tokens) + 1), guard)


def _no_speech_then_rest(model: StepModel, enc: Any, info: TokenizerInfo, prompt: list[int],
                         at: int) -> tuple[float, tuple]:
    """Feed the prompt in two parts, up to <|startoftranscript|> (at index
    `at`) and the rest, so the logits at <|startoftranscript|> give
    P(<|nospeech|>) as openai-whisper reads it; returns it and (logits, cache)
    after the whole prompt."""
    logits, cache = model.step(enc, np.asarray([prompt[: at + 1]], dtype=np.int64), None)
    full = np.asarray(logits, dtype=np.float32).reshape(-1)[: info.vocab_size]
    prob = float(np.exp(_log_softmax(full)[info.no_speech]))
    rest = prompt[at + 1:]
    if rest:
        logits, cache = model.step(enc, np.asarray([rest], dtype=np.int64), cache)
    return prob, (logits, cache)
