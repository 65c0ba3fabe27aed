"""Bytes or a path in, a 16 kHz mono float32 `Clip` out, or a typed error
whose message a person understands.

Uncompressed and lossless files (wav, flac, ogg, aiff, caf) are read with
soundfile (libsndfile); everything else (mp3, m4a/aac, webm/opus from a
browser microphone, video containers) with PyAV (ffmpeg's libraries, no
ffmpeg process). Both are read from an open file object, never from a
user-supplied name, and PyAV only gets a short list of media demuxers, so a
playlist or concat script cannot make ffmpeg open other files.

Hostile input is bounded: sizes and declared durations are checked before
decoding, decoding stops as soon as the length limit is passed, channels
are downmixed block by block (memory holds one mono signal), and the
sample rate and channel count must be plausible.
"""
from __future__ import annotations

import io
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

SAMPLE_RATE = 16000
MIN_S = 0.3  # shorter clips give recognizers nothing to work with
SILENCE_DBFS = -55.0  # loudest 50 ms window below this = silent (mic noise floors sit lower)
CLIP_LEVEL = 0.99  # |x| at or above this counts as full scale
CLIP_NOTE_SHARE = 0.001  # note clipping when at least 0.1 % of samples are at full scale
MAX_CHANNELS = 64
RATE_RANGE = (2000, 384000)
DECODE_TIMEOUT_S = 30.0  # wall-clock bound for one decode
_BLOCK = 65536

Source = Union[str, os.PathLike, bytes, bytearray, memoryview]


class AudioError(ValueError):
    """Base of every input problem; `str(err)` is the message shown to people."""


class NotAudioError(AudioError):
    """Not audio, or a corrupt file."""


class EmptyAudioError(AudioError):
    """Zero bytes or zero samples."""


class SilentAudioError(AudioError):
    """Audio with no measurable signal."""


class TooShortError(AudioError):
    """Shorter than the minimum a recognizer can use."""


class TooLongError(AudioError):
    """Longer than the configured limit."""


class TooLargeError(AudioError):
    """File larger than the upload cap."""


@dataclass
class Clip:
    """Decoded audio ready for any engine."""

    samples: np.ndarray  # float32, mono, SAMPLE_RATE
    sample_rate: int = SAMPLE_RATE
    name: str = "clip"
    sample_rate_in: int = SAMPLE_RATE
    channels_in: int = 1
    notes: list[str] = field(default_factory=list)  # what was done: "resampled from 44.1 kHz stereo"
    format_in: str = ""  # container/format as detected, e.g. "WAV PCM_24", "mp3", "mov,mp4,..."
    level_dbfs: float = float("-inf")  # loudest 50 ms window, before resampling

    @property
    def duration_s(self) -> float:
        return len(self.samples) / float(self.sample_rate)


def load(
    source: Source,
    max_s: float | None = 60.0,
    max_bytes: int | None = None,
    name: str | None = None,
    min_s: float = MIN_S,
) -> Clip:
    """Decode `source` (a path or the file's bytes) to a 16 kHz mono Clip.

    Raises an AudioError subclass with a message for people (None as the
    source is an EmptyAudioError: nothing was uploaded). `max_s=None`
    lifts the length limit (trusted CLI input only); `max_bytes=None` lifts
    the size cap. A WAV whose data was cut short is decoded as far as it
    goes, with a note saying so.
    """
    f, size, default_name = _open(source)
    name = name or default_name
    try:
        if size == 0:
            raise EmptyAudioError(f"'{name}' is empty (0 bytes).")
        if max_bytes is not None and size > max_bytes:
            raise TooLargeError(
                f"'{name}' is {_mb(size)}; the upload limit is {_mb(max_bytes)}.")
        dec = _decode_soundfile(f, max_s, name)
        if dec is None:
            f.seek(0)
            dec = _decode_av(f, max_s, name)
    except (AudioError, MemoryError):
        raise
    except Exception as e:  # last guard at the trust boundary: a decoder bug is still bad input
        raise NotAudioError(f"'{name}' could not be decoded as audio ({type(e).__name__}).") from e
    finally:
        f.close()
    return _finish(dec, name, max_s, min_s)


# --- opening ---------------------------------------------------------------

def _open(source: Source) -> tuple[BinaryIO, int, str]:
    if source is None:
        raise EmptyAudioError("No audio was given.")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return io.BytesIO(data), len(data), "clip"
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"audio.load takes a path or bytes, not {type(source).__name__}")
    path = Path(source)
    try:
        f = open(path, "rb")
        size = os.fstat(f.fileno()).st_size
    except IsADirectoryError:
        raise NotAudioError(f"'{path.name}' is a folder, not an audio file.") from None
    except FileNotFoundError:
        raise NotAudioError(f"There is no file '{path}'.") from None
    except OSError as e:
        raise NotAudioError(f"Cannot read '{path.name}': {e.strerror or e}.") from None
    return f, size, path.name


@dataclass
class _Decoded:
    mono: np.ndarray  # float32 at rate
    rate: int
    channels: int
    fmt: str
    full_scale: int = 0  # samples (all channels) at |x| >= CLIP_LEVEL
    total: int = 0  # samples (all channels)
    peak: float = 0.0
    nonfinite: int = 0
    notes: list[str] = field(default_factory=list)


class _Accumulator:
    """Downmixes (channels, n) float blocks into one mono buffer, keeping
    clipping statistics and stopping once the length limit is passed."""

    def __init__(self, rate: int, channels: int, max_s: float | None, name: str, declared_s=None):
        self.rate, self.channels, self.name = rate, channels, name
        self.cap = None if max_s is None else int(max_s * rate) + 1
        self.max_s, self.declared_s = max_s, declared_s
        self.blocks: list[np.ndarray] = []
        self.n = self.full_scale = self.total = self.nonfinite = 0
        self.peak = 0.0
        self.t0 = time.monotonic()

    def add(self, block: np.ndarray) -> None:  # block: (channels, n)
        if block.size == 0:
            return
        block = np.asarray(block, dtype=np.float32)
        bad = ~np.isfinite(block)
        if bad.any():
            self.nonfinite += int(bad.sum())
            block = np.where(bad, np.float32(0), block)
        a = np.abs(block)
        self.full_scale += int(np.count_nonzero(a >= CLIP_LEVEL))
        self.total += block.size
        self.peak = max(self.peak, float(a.max()))
        mono = block[0] if block.shape[0] == 1 else block.mean(axis=0, dtype=np.float32)
        self.blocks.append(mono)
        self.n += mono.size
        if self.cap is not None and self.n > self.cap:
            raise TooLongError(_too_long_msg(self.name, self.declared_s, self.max_s, self.n / self.rate))
        self.check_time()

    def check_time(self) -> None:
        """The decode's wall-clock bound; also called on packets that gave no audio."""
        if time.monotonic() - self.t0 > DECODE_TIMEOUT_S:
            raise NotAudioError(f"Decoding '{self.name}' took longer than {DECODE_TIMEOUT_S:.0f} s; giving up.")

    def result(self, fmt: str, notes: list[str]) -> _Decoded:
        mono = np.concatenate(self.blocks) if self.blocks else np.zeros(0, np.float32)
        return _Decoded(mono, self.rate, self.channels, fmt, self.full_scale, self.total,
                        self.peak, self.nonfinite, notes)


def _check_shape(rate: int, channels: int, name: str) -> None:
    if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
        raise NotAudioError(f"'{name}' declares a sample rate of {rate} Hz, which is not usable audio.")
    if not 1 <= channels <= MAX_CHANNELS:
        raise NotAudioError(f"'{name}' declares {channels} channels; at most {MAX_CHANNELS} are supported.")


def _too_long_msg(name: str, declared_s, max_s, seen_s) -> str:
    if declared_s:
        return f"'{name}' lasts {declared_s:.1f} s; the limit is {max_s:g} s."
    return f"'{name}' is longer than the {max_s:g} s limit (stopped reading at {seen_s:.1f} s)."


# --- soundfile: wav, flac, ogg, aiff, caf -------------------------------------

_SF_FORMATS = {"WAV", "WAVEX", "RF64", "W64", "FLAC", "OGG", "AIFF", "CAF"}
_TRUNCATED = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.M)


def _decode_soundfile(f: BinaryIO, max_s: float | None, name: str) -> _Decoded | None:
    """Decode with libsndfile, or return None to let PyAV try."""
    import soundfile as sf

    head = f.read(3)
    f.seek(0)
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return None  # MP3: libsndfile's mpg123 would only print warnings before PyAV takes it
    try:
        snd = sf.SoundFile(f)
    except Exception:  # not a format libsndfile knows: PyAV's turn
        return None
    with snd:
        if snd.format not in _SF_FORMATS:  # e.g. MP3: PyAV handles it
            return None
        _check_shape(snd.samplerate, snd.channels, name)
        rate, frames = snd.samplerate, snd.frames
        declared_s = frames / rate
        if max_s is not None and declared_s > max_s:
            raise TooLongError(_too_long_msg(name, declared_s, max_s, declared_s))
        notes = []
        m = _TRUNCATED.search(snd.extra_info or "")
        if m and int(m.group(2)) < int(m.group(1)) < 0xFFFFFF00:  # not a streaming "unknown size" header
            bpf = max(1, int(m.group(2)) // max(frames, 1)) if frames else 1
            notes.append(f"file is truncated: header declares {int(m.group(1)) / bpf / rate:.2f} s "
                         f"of audio, {declared_s:.2f} s present")
        acc = _Accumulator(rate, snd.channels, max_s, name, declared_s)
        try:
            for block in snd.blocks(blocksize=_BLOCK, dtype="float32", always_2d=True):
                acc.add(block.T)
        except AudioError:
            raise
        except Exception:
            return None  # corrupt stream: let PyAV try, it reports the failure
        fmt = f"{snd.format} {snd.subtype}"
    return acc.result(fmt, notes)


# --- PyAV: mp3, m4a, webm, opus, video containers ----------------------------

_AV_DEMUXERS = ("wav,w64,flac,ogg,mp3,mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,aac,aiff,caf,"
                "asf,avi,amr,amrnb,amrwb,au,wv,mpegts,flv,mpeg")


def _decode_av(f: BinaryIO, max_s: float | None, name: str) -> _Decoded:
    import av

    try:
        container = av.open(f, mode="r", options={"format_whitelist": _AV_DEMUXERS})
    except Exception:
        raise NotAudioError(_not_audio_msg(f, name)) from None
    with container:
        if not container.streams.audio:
            kinds = sorted({s.type for s in container.streams})
            what = f" (it holds only {', '.join(kinds)})" if kinds else ""
            raise NotAudioError(f"'{name}' has no audio track{what}.")
        stream = container.streams.audio[0]
        cc = stream.codec_context
        if cc is None:
            raise NotAudioError(f"'{name}' uses an audio codec that cannot be decoded here.")
        rate, channels = cc.sample_rate or 0, cc.channels or 0
        _check_shape(rate, channels, name)
        declared_s = None
        if stream.duration and stream.time_base:
            declared_s = float(stream.duration * stream.time_base)
        elif container.duration:
            declared_s = container.duration / 1e6
        # Compressed formats may only estimate their length (mp3 without a
        # Xing header): reject early only when far beyond the limit; the
        # decoded length is checked exactly below.
        if max_s is not None and declared_s and declared_s > max_s * 1.1 + 1.0:
            raise TooLongError(_too_long_msg(name, declared_s, max_s, declared_s))
        resampler = av.AudioResampler(format="fltp", layout=cc.layout, rate=rate)
        acc = _Accumulator(rate, channels, max_s, name, declared_s)
        errors = 0
        try:
            for packet in container.demux(stream):
                acc.check_time()  # per packet: a file of bad or empty packets is bounded too
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    errors += 1
                    continue
                for frame in frames:
                    for out in resampler.resample(frame):
                        acc.add(out.to_ndarray())
            for out in resampler.resample(None):
                acc.add(out.to_ndarray())
        except AudioError:
            raise
        except Exception:
            if acc.n == 0:
                raise NotAudioError(f"'{name}' is corrupt: its audio could not be decoded.") from None
            errors += 1
        if errors and acc.n == 0:
            raise NotAudioError(f"'{name}' is corrupt: its audio could not be decoded.")
        notes = []
        if container.streams.video:
            notes.append(f"took the audio track of a video file ({container.format.name})")
        if errors:
            notes.append(f"skipped {errors} undecodable packet(s): the file is damaged")
        fmt = f"{container.format.name} {cc.name}"
    return acc.result(fmt, notes)


_MAGIC = [
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a zip archive (or an office document)"),
]


def _not_audio_msg(f: BinaryIO, name: str) -> str:
    f.seek(0)
    head = f.read(4096)
    what = next((desc for magic, desc in _MAGIC if head.startswith(magic)), None)
    if what is None:
        try:
            text = head.decode("utf-8")
            if text and sum(c.isprintable() or c.isspace() for c in text) > 0.95 * len(text):
                what = "text"
        except UnicodeDecodeError:
            pass
    if what:
        return f"'{name}' is not audio: it looks like {what}."
    return f"'{name}' could not be read as audio: it is corrupt or not an audio/video format."


# --- after decoding ---------------------------------------------------------

def _khz(rate: int) -> str:
    return f"{rate / 1000:g} kHz"


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n} bytes"


def _level_dbfs(x: np.ndarray, rate: int) -> float:
    """RMS of the loudest 50 ms window, in dBFS (full-scale sine = -3 dBFS)."""
    win = max(1, rate // 20)
    n = len(x) // win
    if n == 0:
        rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    else:
        frames = x[: n * win].reshape(n, win).astype(np.float64)
        rms = float(np.sqrt(np.mean(frames ** 2, axis=1)).max())
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


def _finish(d: _Decoded, name: str, max_s: float | None, min_s: float) -> Clip:
    x, notes = d.mono, list(d.notes)
    if len(x) == 0:
        raise EmptyAudioError(f"'{name}' holds no audio samples.")
    dur = len(x) / d.rate
    if max_s is not None and dur > max_s:
        raise TooLongError(_too_long_msg(name, dur, max_s, dur))
    if dur < min_s:
        raise TooShortError(f"'{name}' lasts {dur:.2f} s; at least {min_s:g} s of speech is needed.")
    if d.nonfinite:
        notes.append(f"replaced {d.nonfinite} NaN/infinite sample(s) with silence")
    if d.channels > 1:
        notes.append("downmixed stereo to mono" if d.channels == 2 else f"downmixed {d.channels} channels to mono")
    share = d.full_scale / max(d.total, 1)
    if share >= CLIP_NOTE_SHARE:
        notes.append(f"clipping detected: {100 * share:.1f}% of samples at full scale")
    if d.peak > 1.0:  # float files may exceed full scale without clipping
        x = x / np.float32(d.peak)
        notes.append(f"scaled down by {20 * np.log10(d.peak):.1f} dB: samples exceeded full scale")
    level = _level_dbfs(x, d.rate)
    if level < SILENCE_DBFS:
        shown = "no signal at all" if level == float("-inf") else f"loudest part at {level:.0f} dBFS"
        raise SilentAudioError(f"'{name}' is silent ({shown}; below {SILENCE_DBFS:.0f} dBFS).")
    if d.rate != SAMPLE_RATE:
        import soxr

        x = soxr.resample(x, d.rate, SAMPLE_RATE, quality="HQ")
        notes.append(f"resampled from {_khz(d.rate)}")
    x = np.clip(np.ascontiguousarray(x, dtype=np.float32), -1.0, 1.0)
    return Clip(samples=x, sample_rate=SAMPLE_RATE, name=name, sample_rate_in=d.rate,
                channels_in=d.channels, notes=notes, format_in=d.fmt, level_dbfs=level)
