"""Transcribe a 16 kHz wav with an exported Whisper INT8 model: numpy and onnxruntime only.

    python transcribe.py clip.wav [--language en] [--threads 2]

Run it from (or point --model at) the exported folder: encoder.onnx,
decoder.onnx, tokenizer.json, whisper.json, mel_filters.npy. It computes the
same log-mel as the asr-quant engines and decodes greedily the same way
(language detected unless given, the same suppressed tokens and token
budget); the asr-quant engine's repetition-loop guard is left out, so on a
clip where that guard fires the text can differ. This file is copied as is
into every export (asr_quant/engines/whisper/standalone.py); it imports
nothing from asr_quant.
"""
import argparse
import json
import math
import os
import sys
import wave

import numpy as np
import onnxruntime as ort

SAMPLE_RATE, N_FFT, HOP, N_FRAMES = 16000, 400, 160, 3000


def read_wav(path):
    """16-bit PCM wav at 16 kHz -> float32 mono in [-1, 1)."""
    with wave.open(path, "rb") as w:
        if w.getframerate() != SAMPLE_RATE or w.getsampwidth() != 2:
            sys.exit(f"{path}: need 16-bit PCM at 16 kHz (got {w.getsampwidth() * 8}-bit, {w.getframerate()} Hz)")
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, w.getnchannels())
    return (x.astype(np.float32) / 32768.0).mean(axis=1)


def log_mel(samples, filters):
    """Whisper's log-mel: centred periodic-Hann STFT, power, mel, log10, max-8 floor, (x+4)/4."""
    x = np.pad(np.asarray(samples, dtype=np.float32), (0, HOP))
    x = np.pad(x, (N_FFT // 2, N_FFT // 2), mode="reflect")
    n = 1 + (len(x) - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(x, (n, N_FFT), (HOP * x.strides[0], x.strides[0]))
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
    spec = np.fft.rfft(frames * window, n=N_FFT, axis=-1).astype(np.complex64)
    mel = filters @ (np.abs(spec[:-1]) ** 2).T
    log_spec = np.log10(np.clip(mel, 1e-10, None))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


def windows(samples, filters):
    """(mel [1, n_mels, 3000], seconds of audio in it) per window of at most 30 s, equal lengths."""
    mel = log_mel(samples, filters)
    count = max(1, math.ceil(len(samples) / (30 * SAMPLE_RATE)))
    per = math.ceil((len(samples) // HOP) / count) if count > 1 else N_FRAMES
    for i in range(count):
        chunk = mel[:, i * per:(i * per + per) if count > 1 else None][:, :N_FRAMES]
        chunk = np.pad(chunk, [(0, 0), (0, N_FRAMES - chunk.shape[1])])
        seconds = min(len(samples) / SAMPLE_RATE - i * per * HOP / SAMPLE_RATE, per * HOP / SAMPLE_RATE, 30.0)
        yield np.ascontiguousarray(chunk[None], dtype=np.float32), max(0.0, seconds)


class Text:
    """Byte-level BPE ids -> text, from tokenizer.json's vocabulary (GPT-2 byte table)."""

    def __init__(self, path):
        vocab = json.load(open(path, encoding="utf-8"))["model"]["vocab"]
        self.pieces = {i: t for t, i in vocab.items()}
        keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
        chars = keep + [256 + k for k in range(256 - len(keep))]
        order = keep + [b for b in range(256) if b not in keep]
        self.byte = {chr(c): b for c, b in zip(chars, order)}

    def decode(self, ids):
        s = "".join(self.pieces.get(i, "") for i in ids)
        return bytes(self.byte[c] for c in s if c in self.byte).decode("utf-8", errors="replace").strip()


class Model:
    def __init__(self, folder, threads):
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        so.log_severity_level = 3
        self.enc = ort.InferenceSession(os.path.join(folder, "encoder.onnx"), so, providers=["CPUExecutionProvider"])
        self.dec = ort.InferenceSession(os.path.join(folder, "decoder.onnx"), so, providers=["CPUExecutionProvider"])
        self.cfg = json.load(open(os.path.join(folder, "whisper.json"), encoding="utf-8"))
        self.filters = np.load(os.path.join(folder, "mel_filters.npy"))
        self.text = Text(os.path.join(folder, "tokenizer.json"))
        n = self.cfg["n_layers"]
        self.cross = [f"cross_k_{i}" for i in range(n)] + [f"cross_v_{i}" for i in range(n)]
        self.cache = [f"self_k_{i}" for i in range(n)] + [f"self_v_{i}" for i in range(n)]
        self.outputs = ["logits"] + ["new_" + c for c in self.cache]
        self.empty = np.zeros((1, self.cfg["n_heads"], 0, self.cfg["head_dim"]), np.float32)
        c, v = self.cfg, self.cfg["vocab_size"]
        self.mask = {first: np.zeros(v, bool) for first in (True, False)}
        for first, m in self.mask.items():
            m[c["suppress_ids"]] = True
            m[c["eot"] + 1:] = True
            if first:
                m[c["suppress_ids_begin"]] = True

    def step(self, cross, tokens, cache):
        feed = dict(zip(self.cross, cross))
        feed.update(zip(self.cache, cache if cache is not None else [self.empty] * len(self.cache)))
        feed["tokens"] = np.asarray(tokens, dtype=np.int64)
        out = self.dec.run(self.outputs, feed)
        return out[0][0, -1, : self.cfg["vocab_size"]], out[1:]

    def prompt(self, language):
        c = self.cfg
        if not c["lang_to_id"]:
            return [c["sot"], c["no_timestamps"]]
        return [c["sot"], c["lang_to_id"][language], c["transcribe"], c["no_timestamps"]]

    def window(self, mel, seconds, language):
        c = self.cfg
        cross = self.enc.run(self.cross, {"mel": mel})
        if language is None and c["lang_to_id"]:
            logits, _ = self.step(cross, [[c["sot"]]], None)
            codes = list(c["lang_to_id"])
            language = codes[int(np.argmax(logits[[c["lang_to_id"][k] for k in codes]]))]
        prompt = self.prompt(language)
        budget = max(1, min(math.ceil(12.0 * seconds) + 16, c["max_positions"] - len(prompt)))
        tokens, (logits, cache) = [], self.step(cross, [prompt], None)
        while len(tokens) < budget:
            scores = np.asarray(logits, np.float32).copy()
            scores[self.mask[not tokens]] = -np.inf
            choice = int(np.argmax(scores))
            if choice == c["eot"]:
                break
            tokens.append(choice)
            logits, cache = self.step(cross, [[choice]], cache)
        return self.text.decode([t for t in tokens if t < c["eot"]]), language

    def transcribe(self, samples, language=None):
        texts = []
        for mel, seconds in windows(samples, self.filters):
            text, language = self.window(mel, seconds, language)
            if text:
                texts.append(text)
        joiner = "" if language in ("zh", "ja", "yue", "th", "lo", "my", "km", "bo") else " "
        return joiner.join(texts), language


def main():
    p = argparse.ArgumentParser(description="Transcribe a 16 kHz wav with the exported Whisper INT8 ONNX model.")
    p.add_argument("wav")
    p.add_argument("--language", default=None, help="e.g. en, zh, es; detected when omitted")
    p.add_argument("--model", default=os.path.dirname(os.path.abspath(__file__)), help="the exported folder")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    text, language = Model(a.model, a.threads).transcribe(read_wav(a.wav), a.language)
    print(json.dumps({"language": language, "text": text}, ensure_ascii=False))


if __name__ == "__main__":
    main()
