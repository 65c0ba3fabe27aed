"""The one log-mel front end every Whisper engine uses, and the >30 s splitter.

Why one function: transformers' `WhisperFeatureExtractor` pads the *audio* to
30 s before the log-mel while faster-whisper/CTranslate2 pad the *mel* with
zeros, and that alone changes most transcripts. Every engine here gets the mel
computed the faster-whisper way (numpy STFT, librosa's Slaney mel filters,
Whisper's log10 / max-8 / (x+4)/4 scaling), so precision is the only thing that
differs between engines.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_FRAMES = 3000  # 30 s of 10 ms frames: the encoder's fixed input
WINDOW_S = 30.0


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, log above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@lru_cache(maxsize=4)
def mel_filters(n_mels: int = 80) -> np.ndarray:
    """[n_mels, 201] Slaney-normalised mel filters, as openai-whisper ships them:
    librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels), written out in
    numpy so the ONNX engines need neither librosa nor torch (a test checks
    equality with librosa)."""
    fft_freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper)).astype(np.float32)  # rounded where librosa rounds
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]  # Slaney: constant energy per band
    return weights


def log_mel(samples: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """[n_mels, frames] log-mel of 16 kHz mono audio, unpadded.

    Like faster-whisper: 160 zero samples appended, centred (reflect-padded)
    periodic-Hann STFT, the last frame dropped, power spectrum, mel, log10
    clamped at 1e-10, floor at max - 8, then (x + 4) / 4."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    x = np.pad(x, (0, HOP))
    x = np.pad(x, (N_FFT // 2, N_FFT // 2), mode="reflect")
    n_frames = 1 + (len(x) - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(x, (n_frames, N_FFT), (HOP * x.strides[0], x.strides[0]))
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
    spec = np.fft.rfft(frames * window, n=N_FFT, axis=-1).astype(np.complex64)
    power = (np.abs(spec[:-1]) ** 2).T  # [201, frames - 1]
    # Not `@`: numpy's BLAS (OpenBLAS) splits a product by its thread count, which OMP_NUM_THREADS and
    # OPENBLAS_NUM_THREADS set (Ray sets OMP_NUM_THREADS=1 in its workers), and the features' last bits
    # moved with it, enough to flip a near-tie word of INT8. einsum's own loop (optimize=False never
    # calls BLAS) sums in one order on every thread setting; ~6 ms per 30 s window.
    mel = np.einsum("mk,kt->mt", mel_filters(n_mels), power, optimize=False)
    log_spec = np.log10(np.clip(mel, 1e-10, None))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


def pad_or_trim(mel: np.ndarray, frames: int = N_FRAMES) -> np.ndarray:
    """Zero-pad (in log-mel space, as faster-whisper does) or cut to `frames`."""
    if mel.shape[-1] > frames:
        mel = mel[..., :frames]
    if mel.shape[-1] < frames:
        mel = np.pad(mel, [(0, 0)] * (mel.ndim - 1) + [(0, frames - mel.shape[-1])])
    return np.ascontiguousarray(mel, dtype=np.float32)


@dataclass
class Window:
    """One encoder input: mel [1, n_mels, 3000] and the audio span it covers."""

    mel: np.ndarray
    offset_s: float
    duration_s: float


def windows(samples: np.ndarray, n_mels: int = 80) -> list[Window]:
    """Split a clip into encoder windows of at most 30 s.

    A clip of d seconds becomes ceil(d / 30) windows of equal length (so 61 s
    gives three windows of ~20 s rather than 30 + 30 + a 1 s scrap that
    Whisper would hallucinate on). The mel is computed once over the whole
    clip and sliced, as faster-whisper does; every engine uses this split."""
    n_samples = int(np.asarray(samples).shape[-1])
    mel = log_mel(samples, n_mels)
    count = max(1, math.ceil(n_samples / (WINDOW_S * SAMPLE_RATE)))
    total_frames = n_samples // HOP  # frames that hold real audio
    per = math.ceil(total_frames / count) if count > 1 else N_FRAMES
    out = []
    for i in range(count):
        start = i * per
        stop = min(start + per, mel.shape[-1]) if count > 1 else mel.shape[-1]
        chunk = pad_or_trim(mel[:, start:stop])
        duration = min(n_samples / SAMPLE_RATE - start * HOP / SAMPLE_RATE, per * HOP / SAMPLE_RATE)
        out.append(Window(chunk[None], start * HOP / SAMPLE_RATE, max(0.0, min(duration, WINDOW_S))))
    return out
