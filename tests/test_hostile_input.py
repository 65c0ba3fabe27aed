"""Issue 7's bad-input table through the two front doors, the page and the CLI
(the decoder itself is covered by test_audio.py).

Each case is one file a person might upload. For an input the decoder
rejects, the page shows the decoder's exact message (status line and toast),
the CLI prints it as one line on stderr and exits 2, and no engine is called.
For an odd but usable input every engine is called once and the page says
what was done to the audio. After each case the page answers a good clip.
Engines are counting fakes: these tests are about the front doors, not models.
"""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from asr_quant import __main__ as cli
from asr_quant import audio
from asr_quant.app import present, ui
from asr_quant.audio import (EmptyAudioError, NotAudioError, SilentAudioError, TooLargeError,
                             TooLongError, TooShortError)
from asr_quant.settings import Settings

from fake_engines import FakeEngine, fake_set
from page_driver import run_page
from test_audio import av_bytes, png_bytes, sf_bytes, tone

REPO = Path(__file__).resolve().parents[1]
MAX_FILE_MB = 1.0  # the page under test caps uploads at 1 MiB so the too-large case stays small
TEXTS = {"FP32": "the quick brown fox", "FP16": "the quick brown fox", "INT8": "the quick brown box"}


def _mp3() -> bytes:
    return av_bytes(tone(2.0, 44100, 2), 44100, "mp3", "libmp3lame")


def _corrupt_mp3() -> bytes:
    garbage = np.random.default_rng(0).integers(0, 256, 30000, dtype=np.uint8).tobytes()
    return b"ID3\x04\x00\x00\x00\x00\x00\x00" + garbage


@dataclass
class Case:
    name: str
    file: str
    make: Callable[[], bytes]
    error: type | None  # the AudioError subclass expected, None when the clip is usable
    note: str = ""  # for a usable clip: what the page must say was done to it
    cli: bool = True  # False: only meaningful for uploads (the size cap)


CASES = [
    Case("text file", "notes.wav", lambda: b"Meeting notes\nThis is plain text, not audio.\n" * 20,
         NotAudioError),
    Case("PNG image", "photo.png", png_bytes, NotAudioError),
    Case("zero bytes", "empty.wav", lambda: b"", EmptyAudioError),
    Case("truncated WAV", "cut.wav", lambda: sf_bytes(tone(1.0, 16000), 16000, subtype="PCM_16")[:30],
         NotAudioError),
    Case("corrupt MP3", "broken.mp3", _corrupt_mp3, NotAudioError),
    Case("extension lies", "really_an_mp3.wav", _mp3, None, "resampled from 44.1 kHz"),
    Case("silent clip", "silence.wav", lambda: sf_bytes(np.zeros((32000, 1), np.float32), 16000),
         SilentAudioError),
    Case("0.1 s clip", "blip.wav", lambda: sf_bytes(tone(0.1, 16000), 16000), TooShortError),
    Case("over the length limit", "long.wav", lambda: sf_bytes(tone(61.0, 8000), 8000, subtype="PCM_16"),
         TooLongError),
    Case("8 kHz", "phone.wav", lambda: sf_bytes(tone(1.5, 8000), 8000, subtype="PCM_16"), None,
         "resampled from 8 kHz"),
    Case("48 kHz", "studio.flac", lambda: sf_bytes(tone(1.5, 48000, 2), 48000, "FLAC", "PCM_16"), None,
         "resampled from 48 kHz"),
    Case("6 channels", "surround.wav", lambda: sf_bytes(tone(1.0, 44100, 6), 44100, subtype="PCM_16"), None,
         "downmixed 6 channels to mono"),
    Case("24-bit WAV", "deep.wav", lambda: sf_bytes(tone(1.0, 22050), 22050, subtype="PCM_24"), None,
         "resampled from 22.05 kHz"),
    Case("float WAV", "float.wav", lambda: sf_bytes(tone(1.0, 16000), 16000, subtype="FLOAT"), None, ""),
    Case("video with an audio track", "talk.mp4",
         lambda: av_bytes(tone(1.5, 44100, 2), 44100, "mp4", "aac", video=True), None,
         "took the audio track of a video file"),
    Case("clipped recording", "loud.wav",
         lambda: sf_bytes(np.clip(tone(2.0, 16000, amp=1.6), -1.0, 1.0), 16000, subtype="PCM_16"), None,
         "clipping detected"),
    # 40 s of 16 kHz PCM16 is 1.28 MB: a valid clip, under the length limit, over the 1 MiB upload cap.
    Case("upload larger than the size cap", "big.wav", lambda: sf_bytes(tone(40.0, 16000), 16000,
                                                                         subtype="PCM_16"),
         TooLargeError, cli=False),
]
IDS = [c.name for c in CASES]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    out = {}
    for c in CASES:
        p = d / c.file
        p.write_bytes(c.make())
        out[c.name] = p
    good = d / "good.wav"
    good.write_bytes(sf_bytes(tone(2.0, 16000), 16000, subtype="PCM_16"))
    out["good"] = good
    return out


@pytest.fixture(scope="module")
def page():
    engines = [FakeEngine(name, text) for name, text in TEXTS.items()]
    settings = Settings(max_file_mb=MAX_FILE_MB, max_audio_s=60.0, inference_timeout_s=30)  # the limit _expected uses
    demo = ui.build(fake_set(*engines), settings, examples=[])
    return demo, engines, settings


def _expected(case: Case, path: Path, max_bytes: int | None) -> str:
    """The decoder's own message for this file, checking its class on the way."""
    with pytest.raises(case.error) as info:
        audio.load(path, max_s=60.0, max_bytes=max_bytes, name=path.name)
    assert type(info.value) is case.error
    return str(info.value)


def _calls(engines) -> list[int]:
    return [e.calls for e in engines]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_page(case, files, page):
    demo, engines, settings = page
    path = files[case.name]
    before = _calls(engines)
    shown = run_page(demo, str(path), "en")
    if case.error is not None:
        message = _expected(case, path, int(MAX_FILE_MB * 1024 * 1024))
        assert shown.status == f"⚠️ {present.escape(message)}"
        assert shown.toasts == [message]
        assert "Traceback" not in shown.status
        assert _calls(engines) == before, "an engine was called on garbage"
        assert all(shown.text(n) == "" for n in TEXTS)
    else:
        assert not shown.status.startswith("⚠️"), shown.status
        assert "3/3 engines answered" in shown.status
        assert case.note in shown.status
        assert _calls(engines) == [b + 1 for b in before]
        assert all(shown.text(n) == t for n, t in TEXTS.items())
    # ... and the page still answers the next request.
    again = run_page(demo, str(files["good"]), "en")
    assert all(again.text(n) == t for n, t in TEXTS.items()), again.status


def test_page_with_nothing_uploaded(page):
    demo, engines, _ = page
    before = _calls(engines)
    shown = run_page(demo, None)
    assert shown.status.startswith("⚠️") and "upload a clip" in shown.status
    assert _calls(engines) == before


CLI_CASES = [c for c in CASES if c.cli]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.name for c in CLI_CASES])
def test_cli(case, files, monkeypatch, capsys):
    """In-process, with counting fake engines standing in for `load_engines`."""
    engines = [FakeEngine(name, text) for name, text in TEXTS.items()]
    loads = []

    def fake_load(settings):
        loads.append(settings)
        return fake_set(*engines)

    monkeypatch.setattr("asr_quant.engines.load_engines", fake_load)
    path = files[case.name]
    if case.error is not None:
        message = _expected(case, path, None)
        with pytest.raises(SystemExit) as info:
            cli.main(["transcribe", str(path), "--max-audio-s", "60"])  # the limit _expected uses
        assert info.value.code == cli.EXIT_BAD_INPUT
        out, err = capsys.readouterr()
        assert err == f"error: {message}\n" and out == ""
        assert loads == [] and _calls(engines) == [0, 0, 0]
    else:
        assert cli.main(["transcribe", str(path), "--json"]) == 0
        out, err = capsys.readouterr()
        import json

        result = json.loads(out)
        assert [r["text"] for r in result["engines"]] == list(TEXTS.values())
        assert _calls(engines) == [1, 1, 1]


def test_cli_processes_exit_2_with_one_line(files):
    """The real process: exit code 2, one line on stderr, no traceback, for
    every error case of the table (run side by side to save time)."""
    bad = [c for c in CLI_CASES if c.error is not None]
    procs = [subprocess.Popen([sys.executable, "-m", "asr_quant", "transcribe", str(files[c.name]), "--max-audio-s", "60"],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in bad]
    for case, p in zip(bad, procs):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 2, (case.name, err)
        assert out == ""
        assert err.count("\n") == 1 and err.startswith("error: "), (case.name, err)
        assert "Traceback" not in err
        assert err.strip() == f"error: {_expected(case, files[case.name], None)}"
