"""The decoder against the bad and odd inputs people upload (issue 7's table),
plus a fuzz test: every input ends in a Clip or an AudioError, never another
exception, and within a time bound. All inputs are generated here."""
from __future__ import annotations

import faulthandler
import io
import time

import av
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asr_quant import audio
from asr_quant.audio import (AudioError, Clip, EmptyAudioError, NotAudioError, SilentAudioError,
                             TooLargeError, TooLongError, TooShortError)


# --- generators ------------------------------------------------------------

def tone(seconds: float, rate: int, channels: int = 1, amp: float = 0.3) -> np.ndarray:
    """A two-tone signal (frames, channels); channels differ so downmix is real work."""
    t = np.arange(int(round(seconds * rate))) / rate
    cols = [amp * np.sin(2 * np.pi * (220 + 110 * c) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
            for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


def sf_bytes(x: np.ndarray, rate: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def av_bytes(x: np.ndarray, rate: int, fmt: str, codec: str, video: bool = False) -> bytes:
    """Encode (frames, channels) float audio with PyAV, optionally beside a video stream."""
    buf = io.BytesIO()
    channels = x.shape[1]
    layout = {1: "mono", 2: "stereo"}[channels]
    with av.open(buf, "w", format=fmt) as c:
        a = c.add_stream(codec, rate=rate)
        a.layout = layout
        if video:  # every stream must exist before the first packet is muxed
            v = c.add_stream("mpeg4", rate=10)
            v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
            for i in range(int(len(x) / rate * 10)):
                img = np.full((48, 64, 3), (i * 25) % 255, np.uint8)
                for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    c.mux(p)
            for p in v.encode():
                c.mux(p)
        n, pts = 960, 0
        for s in range(0, len(x), n):
            chunk = np.ascontiguousarray(x[s:s + n].T)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate, frame.pts = rate, pts
            pts += chunk.shape[1]
            for p in a.encode(frame):
                c.mux(p)
        for p in a.encode():
            c.mux(p)
    return buf.getvalue()


def png_bytes() -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="image2pipe") as c:
        s = c.add_stream("png", rate=1)
        s.width, s.height, s.pix_fmt = 8, 8, "rgb24"
        for p in s.encode(av.VideoFrame.from_ndarray(np.zeros((8, 8, 3), np.uint8), format="rgb24")):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    data = buf.getvalue()
    assert data.startswith(b"\x89PNG")
    return data


@pytest.fixture(scope="module")
def mp3() -> bytes:
    return av_bytes(tone(2.0, 44100, 2), 44100, "mp3", "libmp3lame")


def write(tmp_path, name: str, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def assert_clip(clip: Clip, duration: float, rate_in: int, channels_in: int = 1, tol: float = 0.08):
    assert isinstance(clip, Clip)
    assert clip.sample_rate == 16000
    assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1
    assert np.all(np.abs(clip.samples) <= 1.0)
    assert abs(clip.duration_s - duration) <= tol, clip.duration_s
    assert clip.sample_rate_in == rate_in and clip.channels_in == channels_in
    assert clip.level_dbfs > audio.SILENCE_DBFS


# --- errors ------------------------------------------------------------------

def test_text_file(tmp_path):
    p = write(tmp_path, "notes.wav", b"Meeting notes\nThis is plain text, not audio.\n" * 20)
    with pytest.raises(NotAudioError, match="looks like text"):
        audio.load(p)


def test_png(tmp_path):
    with pytest.raises(NotAudioError, match="PNG image"):
        audio.load(write(tmp_path, "photo.mp3", png_bytes()))


def test_zero_bytes(tmp_path):
    with pytest.raises(EmptyAudioError, match="empty"):
        audio.load(write(tmp_path, "empty.wav", b""))
    with pytest.raises(EmptyAudioError):
        audio.load(b"")
    with pytest.raises(EmptyAudioError, match="No audio was given"):
        audio.load(None)  # a page submitted with nothing uploaded


def test_header_only_wav_is_empty():
    data = sf_bytes(tone(1.0, 16000), 16000, subtype="PCM_16")
    with pytest.raises(EmptyAudioError, match="no audio samples"):
        audio.load(data[:44])


def test_wav_truncated_in_header_is_not_audio():
    data = sf_bytes(tone(1.0, 16000), 16000, subtype="PCM_16")
    with pytest.raises(NotAudioError):
        audio.load(data[:30])


def test_wav_truncated_in_data_decodes_what_is_there_and_says_so():
    data = sf_bytes(tone(2.0, 16000), 16000, subtype="PCM_16")
    clip = audio.load(data[: 44 + 16000 * 2])  # header + 1 s of the declared 2 s
    assert_clip(clip, 1.0, 16000)
    assert any("truncated" in n and "2.00 s" in n for n in clip.notes), clip.notes


def test_corrupt_mp3(mp3):
    rng = np.random.default_rng(0)
    garbage = rng.integers(0, 256, len(mp3) - 10, dtype=np.uint8).tobytes()
    with pytest.raises(NotAudioError):
        audio.load(b"ID3\x04\x00\x00\x00\x00\x00\x00" + garbage, name="broken.mp3")


def test_damaged_mp3_decodes_good_frames_and_says_so(mp3):
    data = bytearray(mp3)
    mid = len(data) // 2
    data[mid:mid + 600] = bytes(600)  # wipe a stretch of frames in the middle
    clip = audio.load(bytes(data))
    assert 1.5 < clip.duration_s < 2.2
    assert clip.channels_in == 2


def test_silent(tmp_path):
    p = write(tmp_path, "silence.wav", sf_bytes(np.zeros((16000 * 2, 1), np.float32), 16000))
    with pytest.raises(SilentAudioError, match="no signal"):
        audio.load(p)


def test_near_silent_noise_floor():
    rng = np.random.default_rng(1)
    hiss = (rng.standard_normal((16000 * 2, 1)) * 10 ** (-75 / 20)).astype(np.float32)  # -75 dBFS
    with pytest.raises(SilentAudioError, match="dBFS"):
        audio.load(sf_bytes(hiss, 16000, subtype="FLOAT"))


def test_too_short():
    with pytest.raises(TooShortError, match="0.10 s"):
        audio.load(sf_bytes(tone(0.1, 16000), 16000))


def test_too_long_wav_rejected_from_header():
    with pytest.raises(TooLongError, match="61.0 s"):
        audio.load(sf_bytes(tone(61.0, 8000), 8000), max_s=60.0)


def test_too_long_compressed_stops_decoding(mp3):
    with pytest.raises(TooLongError, match="limit is 1.5 s|1.5 s limit"):
        audio.load(mp3, max_s=1.5)


def test_max_s_none_lifts_the_limit():
    clip = audio.load(sf_bytes(tone(3.0, 8000), 8000), max_s=None)
    assert_clip(clip, 3.0, 8000)


def test_too_large(tmp_path):
    data = sf_bytes(tone(1.0, 16000), 16000)
    with pytest.raises(TooLargeError, match="limit"):
        audio.load(write(tmp_path, "big.wav", data), max_bytes=len(data) - 1)
    with pytest.raises(TooLargeError):
        audio.load(data, max_bytes=1000)
    assert_clip(audio.load(data, max_bytes=len(data)), 1.0, 16000)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(NotAudioError, match="no file"):
        audio.load(tmp_path / "nope.wav")
    with pytest.raises(NotAudioError, match="folder"):
        audio.load(tmp_path)


def test_ffmpeg_playlists_cannot_open_other_files(tmp_path):
    secret = tmp_path / "secret.wav"
    secret.write_bytes(sf_bytes(tone(1.0, 16000), 16000))
    for text in (f"ffconcat version 1.0\nfile '{secret}'\n",
                 f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{secret}\n#EXT-X-ENDLIST\n"):
        with pytest.raises(NotAudioError):
            audio.load(write(tmp_path, "list.m3u8", text.encode()))


def test_implausible_header_rate():
    data = bytearray(sf_bytes(tone(1.0, 16000), 16000, subtype="PCM_16"))
    data[24:28] = (1).to_bytes(4, "little")  # sample rate field: 1 Hz
    with pytest.raises(NotAudioError, match="sample rate"):
        audio.load(bytes(data))


# --- odd but fine ---------------------------------------------------------------

def test_8khz():
    clip = audio.load(sf_bytes(tone(1.5, 8000), 8000, subtype="PCM_16"))
    assert_clip(clip, 1.5, 8000)
    assert "resampled from 8 kHz" in clip.notes


def test_48khz_stereo_flac():
    clip = audio.load(sf_bytes(tone(1.5, 48000, 2), 48000, "FLAC", "PCM_16"))
    assert_clip(clip, 1.5, 48000, 2)
    assert clip.notes == ["downmixed stereo to mono", "resampled from 48 kHz"]


def test_16khz_mono_needs_nothing():
    x = tone(1.0, 16000)
    clip = audio.load(sf_bytes(x, 16000, subtype="FLOAT"))
    assert clip.notes == []
    np.testing.assert_array_equal(clip.samples, x[:, 0])


def test_six_channels():
    clip = audio.load(sf_bytes(tone(1.0, 44100, 6), 44100, subtype="PCM_16"))
    assert_clip(clip, 1.0, 44100, 6)
    assert "downmixed 6 channels to mono" in clip.notes
    assert "resampled from 44.1 kHz" in clip.notes


@pytest.mark.parametrize("subtype", ["PCM_24", "FLOAT", "DOUBLE", "PCM_U8", "PCM_32"])
def test_wav_sample_formats(subtype):
    x = tone(1.0, 22050)
    clip = audio.load(sf_bytes(x, 22050, subtype=subtype))
    assert_clip(clip, 1.0, 22050)
    assert subtype in clip.format_in
    assert abs(np.abs(clip.samples).max() - np.abs(x).max()) < 0.02  # same level, no rescaling


def test_float_wav_over_full_scale_is_scaled_not_clipped():
    x = tone(1.0, 16000, amp=2.0)
    clip = audio.load(sf_bytes(x, 16000, subtype="FLOAT"))
    assert any(n.startswith("scaled down by 6.0 dB") for n in clip.notes), clip.notes
    assert abs(np.abs(clip.samples).max() - 1.0) < 1e-3


def test_nan_samples_are_replaced():
    x = tone(1.0, 16000)
    x[100:110] = np.nan
    clip = audio.load(sf_bytes(x, 16000, subtype="FLOAT"))
    assert "replaced 10 NaN/infinite sample(s) with silence" in clip.notes
    assert np.isfinite(clip.samples).all()


def test_clipped_recording():
    x = np.clip(tone(2.0, 16000, amp=1.6), -1.0, 1.0)
    clip = audio.load(sf_bytes(x, 16000, subtype="PCM_16"))
    assert_clip(clip, 2.0, 16000)
    note = next(n for n in clip.notes if n.startswith("clipping detected"))
    share = float(note.split(": ")[1].split("%")[0])
    expected = 100 * np.mean(np.abs(x) >= audio.CLIP_LEVEL)
    assert abs(share - expected) < 0.2 and share > 10


def test_clean_loud_recording_is_not_flagged():
    clip = audio.load(sf_bytes(tone(1.0, 16000, amp=0.95), 16000, subtype="PCM_16"))
    assert not any("clipping" in n for n in clip.notes)


def test_mp3(mp3):
    clip = audio.load(mp3, name="x.mp3")
    assert_clip(clip, 2.0, 44100, 2, tol=0.1)
    assert clip.format_in.startswith("mp3") and clip.name == "x.mp3"


def test_lying_extension(tmp_path, mp3):
    clip = audio.load(write(tmp_path, "really_an_mp3.wav", mp3))
    assert clip.format_in.startswith("mp3") and clip.name == "really_an_mp3.wav"
    clip = audio.load(write(tmp_path, "really_a_wav.mp3", sf_bytes(tone(1.0, 16000), 16000)))
    assert clip.format_in.startswith("WAV")


@pytest.mark.parametrize("fmt,codec,rate", [("webm", "libopus", 48000), ("ogg", "libopus", 48000),
                                            ("mp4", "aac", 44100), ("flac", "flac", 22050)])
def test_compressed_containers(fmt, codec, rate):
    clip = audio.load(av_bytes(tone(1.5, rate, 1), rate, fmt, codec))
    assert_clip(clip, 1.5, rate, tol=0.1)


def test_video_container_yields_its_audio(tmp_path):
    for fmt in ("mp4", "matroska"):
        data = av_bytes(tone(1.5, 44100, 2), 44100, fmt, "aac", video=True)
        clip = audio.load(write(tmp_path, f"talk.{fmt}", data))
        assert_clip(clip, 1.5, 44100, 2, tol=0.1)
        assert any(n.startswith("took the audio track of a video file") for n in clip.notes)


def test_video_without_audio_track():
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        v = c.add_stream("mpeg4", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        for _ in range(5):
            for p in v.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
    with pytest.raises(NotAudioError, match="no audio track.*video"):
        audio.load(buf.getvalue())


def test_silence_check_runs_before_resampling_on_the_mono_mix():
    x = tone(1.0, 16000, 2)
    x[:, 1] = -x[:, 0]  # channels cancel: the mono mix the engines hear is silent
    with pytest.raises(SilentAudioError):
        audio.load(sf_bytes(x, 16000, subtype="FLOAT"))


# --- fuzz ------------------------------------------------------------------------

FUZZ_BOUND_S = 5.0


@pytest.fixture(scope="module")
def seeds(mp3):
    return [
        sf_bytes(tone(0.6, 16000), 16000, subtype="PCM_16"),
        sf_bytes(tone(0.6, 8000, 2), 8000, "OGG", "VORBIS"),
        sf_bytes(tone(0.6, 22050), 22050, "FLAC", "PCM_24"),
        mp3[:6000],
        av_bytes(tone(0.6, 48000), 48000, "webm", "libopus"),
        av_bytes(tone(0.6, 44100), 44100, "mp4", "aac"),
    ]


def _load_bounded(data: bytes):
    t0 = time.monotonic()
    try:
        out = audio.load(data, max_s=5.0, max_bytes=1 << 20)
    except AudioError as e:
        out = e
        assert str(e)  # a message for people, never empty
    elapsed = time.monotonic() - t0
    assert elapsed < FUZZ_BOUND_S, f"decode took {elapsed:.1f} s"
    if isinstance(out, Clip):
        assert out.samples.dtype == np.float32 and np.isfinite(out.samples).all()
        assert out.duration_s <= 5.0 + 0.01
    return out


@pytest.fixture
def hang_guard():
    # A hang inside C code cannot be interrupted; kill the run with a traceback
    # instead of letting CI wait forever.
    faulthandler.dump_traceback_later(300, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=4096))
def test_fuzz_random_bytes(data, hang_guard):
    _load_bounded(data)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(which=st.integers(0, 5), edits=st.lists(
    st.tuples(st.sampled_from(["set", "cut", "insert", "truncate"]), st.floats(0, 1),
              st.binary(min_size=1, max_size=64)), min_size=1, max_size=6))
def test_fuzz_mutated_files(seeds, which, edits, hang_guard):
    data = bytearray(seeds[which])
    for op, where, blob in edits:
        i = int(where * len(data))
        if op == "set":
            data[i:i + len(blob)] = blob
        elif op == "cut":
            del data[i:i + len(blob) * 8]
        elif op == "insert":
            data[i:i] = blob
        else:
            del data[i:]
    _load_bounded(bytes(data))


def test_fuzz_seeds_are_valid(seeds):
    # The mutation fuzz starts from files that really decode.
    for s in seeds:
        assert isinstance(_load_bounded(s), Clip)
