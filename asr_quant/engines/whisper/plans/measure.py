"""How far a quantized encoder/decoder pair moves Whisper's output from FP32's:
teacher-forced next-token log-probabilities on hold-out speech (KL divergence
and top-1 agreement), and the choice between quantization modes that follows."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import onnx_io  # names only: the INT8 engine path imports no torch



def _session(path: Path, threads: int = 2):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # CPU time = work, not spinning
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _prompt_logits(enc_sess, dec_sess, mel: np.ndarray, tokens: list[int], first: int, d: dict) -> tuple[np.ndarray, float]:
    """Teacher-forced logits [len(tokens), vocab], and the encoder's CPU seconds
    (process time: less disturbed by a busy machine).

    The decoder runs as the engine runs it: the start sequence (up to `first`)
    in one call, then one token per call with its self-attention cache. Dynamic
    INT8 computes its activation scales per call, so all tokens in one call
    would share one scale and measure an error the engine never makes."""
    n = d["n_layers"]
    t = time.process_time()
    cross = dict(zip(onnx_io.cross_names(n), enc_sess.run(None, {"mel": mel})))
    enc_s = time.process_time() - t
    names = onnx_io.cache_names(n)
    outputs = onnx_io.decoder_outputs(n)
    cache = {k: np.zeros((1, d["n_heads"], 0, d["head_dim"]), np.float32) for k in names}
    logits = []
    for chunk in [tokens[:first + 1]] + [[tok] for tok in tokens[first + 1:]]:
        got = dec_sess.run(outputs, {"tokens": np.asarray([chunk], np.int64), **cache, **cross})
        logits.append(got[0][0])
        cache = dict(zip(names, got[1:]))
    return np.concatenate(logits, 0), enc_s


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def compare(ref: np.ndarray, got: np.ndarray, first: int) -> tuple[float, float, int]:
    """(sum KL(ref || got), agreeing top-1 count, positions) from position `first` on."""
    lp, lq = _log_softmax(ref[first:]), _log_softmax(got[first:])
    kl = float((np.exp(lp) * (lp - lq)).sum(-1).sum())
    agree = int((ref[first:].argmax(-1) == got[first:].argmax(-1)).sum())
    return kl, agree, len(lp)


def measure(fp32: tuple[Path, Path], variants: dict[str, tuple[Path, Path]], samples: list[tuple[np.ndarray, list[int], int]],
            d: dict, threads: int = 2) -> dict[str, dict]:
    """Per variant: mean KL and top-1 agreement of its next-token
    distributions against FP32, teacher-forced on (mel, tokens, first scored
    position) and decoded step by step as the engine decodes, and the median
    encoder CPU time (variants interleaved)."""
    sessions = {"fp32": fp32, **variants}
    sessions = {k: (_session(e, threads), _session(dd, threads)) for k, (e, dd) in sessions.items()}
    acc = {k: {"kl": 0.0, "agree": 0, "n": 0, "enc": []} for k in variants}
    for m, t, first in samples:
        ref, _ = _prompt_logits(*sessions["fp32"], m, t, first, d)
        for k in variants:
            got, enc_s = _prompt_logits(*sessions[k], m, t, first, d)
            kl, agree, n = compare(ref, got, first)
            a = acc[k]
            a["kl"], a["agree"], a["n"] = a["kl"] + kl, a["agree"] + agree, a["n"] + n
            a["enc"].append(enc_s)
    return {k: {"kl": round(a["kl"] / max(a["n"], 1), 5), "top1": round(a["agree"] / max(a["n"], 1), 4),
                "positions": a["n"], "encoder_cpu_s": round(float(np.median(a["enc"])), 3) if a["enc"] else None}
            for k, a in acc.items()}


def choose(measured: dict[str, dict], tie: float = 0.10) -> tuple[str, str]:
    """Lower KL wins; within `tie` (relative) of each other, the static encoder
    (it needs no per-call range pass, so it is the faster by construction). The
    encoder times measured during the build are reported, never used: on a
    shared host they would make one cache key hold either graph. Returns
    (choice, reason)."""
    by_kl = sorted(measured, key=lambda k: (measured[k]["kl"], k))
    best, other = by_kl[0], by_kl[1]
    kb, ko = measured[best]["kl"], measured[other]["kl"]
    desc = ", ".join(f"{k} KL {v['kl']:.4f} (top-1 {v['top1']:.1%}, encoder {v['encoder_cpu_s']:.2f} s CPU)"
                     for k, v in measured.items())
    if ko <= kb * (1 + tie):
        pick = "static" if "static" in measured else best
        return pick, f"errors within {tie:.0%} of each other, so the {pick} encoder (no per-call range pass): {desc}"
    return best, f"lower mean KL to FP32 on the hold-out clips: {desc}"
