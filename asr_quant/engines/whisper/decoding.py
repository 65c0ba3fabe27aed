"""The one decoding procedure every Whisper engine uses.

Engines differ only in how they run the network (PyTorch FP32/FP16/BF16, ONNX
Runtime INT8); they plug in through `StepModel`, and everything else (prompt,
language detection, token suppression, greedy choice, token budget, the
repetition-loop guard and its fallback) lives here, so differences between
engines come from precision alone.
"""
from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..base import RawResult
from . import features as _features
from .tokens import TokenizerInfo

# Token budget: generous for CJK (Korean/Chinese run ~5-10 tokens/s of speech);
# English needs ~3.5/s. A loop that runs past it is cut and reported.
TOKENS_PER_S = 12.0
TOKENS_MARGIN = 16
# Whisper's own threshold for "this text is a loop" (gzip ratio of the text).
COMPRESSION_RATIO_THRESHOLD = 2.4
MAX_LOOP_PERIOD = 32  # longest repeated block (tokens) the tail detector looks for


class StepModel(Protocol):
    """What a runtime must offer to be decoded by `decode`.

    `encode(mel)` takes float32 [1, n_mels, 3000] and returns an opaque encoder
    output. `step(enc, tokens, cache)` takes int64 [1, k] NEW tokens (the whole
    prompt with cache=None on a first call, then k == 1) and returns (float32
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


def _greedy(model: StepModel, enc: Any, info: TokenizerInfo, prompt: list[int], budget: int,
            ban_loops: bool) -> _Pass:
    """Greedy decoding with a KV cache. Stops at <|endoftext|>, at the budget,
    or (ban_loops False) as soon as the output ends in a loop; with ban_loops
    True, a token that would close a loop is skipped for the next best one."""
    tokens: list[int] = []
    logits, cache = model.step(enc, np.asarray([prompt], dtype=np.int64), None)
    while True:
        scores = np.asarray(logits, dtype=np.float32).reshape(-1)[: info.vocab_size].copy()
        scores[info.suppress_mask(first=not tokens)] = -np.inf
        choice = int(np.argmax(scores))
        if ban_loops:
            for _ in range(8):
                if choice == info.eot or repeated_tail(tokens + [choice]) is None:
                    break
                scores[choice] = -np.inf
                choice = int(np.argmax(scores))
        if choice == info.eot:
            return _Pass(tokens, "eot")
        tokens.append(choice)
        if not ban_loops:
            loop = repeated_tail(tokens)
            if loop is not None:
                return _Pass(tokens, "loop", loop)
        if len(tokens) >= budget:
            return _Pass(tokens, "budget")
        logits, cache = model.step(enc, np.asarray([[choice]], dtype=np.int64), cache)


def _cut_loop(first: _Pass) -> list[int]:
    """The first pass with a detected loop cut to one copy; unchanged without one."""
    if not first.loop:
        return first.tokens
    p, copies = first.loop
    return first.tokens[: len(first.tokens) - p * (copies - 1)]


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
           max_new_tokens: int | None = None, duration_s: float | None = None) -> DecodeResult:
    """Transcribe one 30 s window.

    `language` None detects it; a code forces it (EngineError if unknown).
    `max_new_tokens` defaults to `token_budget(duration_s)`. The loop guard:
    if greedy output ends in a repeated block or its compression ratio is over
    2.4, decode again greedily with loop-closing tokens banned; keep that if it
    is no longer repetitive and ends, else keep the first pass, with a loop at
    its end cut to one copy (a pass flagged by its compression ratio alone is
    kept as it was). A warning says which of the three happened."""
    info = tokenizer_info
    code, warnings = info.resolve_language(language)
    t0 = time.perf_counter()
    enc = model.encode(np.ascontiguousarray(mel, dtype=np.float32))
    t1 = time.perf_counter()
    if code is None:
        code = detect_language(model, enc, info)
    prompt = info.prompt(code)
    if max_new_tokens is None:
        max_new_tokens = token_budget(duration_s if duration_s is not None else _features.WINDOW_S,
                                      len(prompt), info.max_positions)
    max_new_tokens = max(1, min(max_new_tokens, info.max_positions - len(prompt)))

    first = _greedy(model, enc, info, prompt, max_new_tokens, ban_loops=False)
    tokens = first.tokens
    ratio = compression_ratio(info.decode(tokens))
    if first.stopped == "loop" or ratio > COMPRESSION_RATIO_THRESHOLD:
        why = (f"a block of {first.loop[0]} token(s) repeated {first.loop[1]} times" if first.loop
               else f"compression ratio {ratio:.2f} > {COMPRESSION_RATIO_THRESHOLD}")
        second = _greedy(model, enc, info, prompt, max_new_tokens, ban_loops=True)
        ratio2 = compression_ratio(info.decode(second.tokens))
        if ratio2 <= COMPRESSION_RATIO_THRESHOLD and second.stopped == "eot":
            tokens = second.tokens
            warnings.append(f"repetition loop guard fired ({why}); re-decoded greedily with loop-closing tokens banned")
        else:
            failed = (f"the re-decode was still repetitive (compression ratio {ratio2:.2f})"
                      if ratio2 > COMPRESSION_RATIO_THRESHOLD else
                      f"the re-decode ran to the token budget ({max_new_tokens} tokens)")
            warnings.append(_kept_first_pass(first, why, failed))
            tokens = _cut_loop(first)
    elif first.stopped == "budget":
        warnings.append(f"stopped at the token budget ({max_new_tokens} tokens for this audio) "
                        "before the model ended the text")
    t2 = time.perf_counter()
    return DecodeResult(tokens, info.decode(tokens), code, t1 - t0, t2 - t1, warnings)


def transcribe_samples(model: StepModel, samples: np.ndarray, info: TokenizerInfo, language: str | None,
                       n_mels: int = 80) -> RawResult:
    """Features, then `decode` per 30 s window; what every Whisper engine's
    `_run` returns. The language found in the first window is kept for the rest."""
    info.resolve_language(language)  # fail on a bad code before any compute
    t0 = time.perf_counter()
    wins = _features.windows(samples, n_mels)
    features_s = time.perf_counter() - t0
    ids: list[int] = []
    texts: list[str] = []
    warnings: list[str] = []
    enc_s = dec_s = 0.0
    lang = language
    for i, w in enumerate(wins):
        r = decode(model, w.mel, info, lang, duration_s=w.duration_s)
        lang = r.language
        ids += r.token_ids
        if r.text:
            texts.append(r.text)
        enc_s += r.encoder_s
        dec_s += r.decoding_s
        where = f" (window {i + 1} of {len(wins)}, from {w.offset_s:.0f} s)" if len(wins) > 1 else ""
        warnings += [m + where for m in r.warnings if m + where not in warnings]
    joiner = "" if lang in ("zh", "ja", "yue", "th", "lo", "my", "km", "bo") else " "
    return RawResult(text=joiner.join(texts), language=lang, token_ids=ids, features_s=features_s,
                     encoder_s=enc_s, decoding_s=dec_s, warnings=warnings)
