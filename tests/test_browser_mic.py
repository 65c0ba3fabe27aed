"""The microphone in a real browser: Debian's chromium with its fake capture
device playing a known clip (--use-file-for-fake-audio-capture), against the
page served in this process on the session's Whisper FP32 and INT8.

Once as a finished recording (the clip input's microphone, then the button),
once in live mode (the streaming microphone: segments typed along, then the
whole recording run as one clip). Both texts are checked against what the
same engines give for the same audio read from the file (the upload path)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr_quant import audio, metrics
from asr_quant.engines import EngineSet
from asr_quant.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.model]

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ENGINES = ("FP32", "INT8")
# Recorded speech passes the browser's recorder (48 kHz, a lossy codec, back to
# 16 kHz): here 2-4 words of 15-29 came out differently ("expected in" ->
# "at night to win"). A lost or doubled segment, or a recording cut short,
# costs half the words or more.
MAX_WER = 0.3
# INT8's near-tie words move with those codec changes too: with plan costed on an AVX2 host the upload of
# weather_en reads "light rain expect to be in the evening" and one browser recording of it "light rain at
# night" (6 edits of 17 apart), FP32's upload "expected in the evening" (4 of 15 from the recording). A
# recording that reached the engine whole reads close to one of the same audio's file readings; a lost or
# cut segment is far from both.

if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


def _wav(folder: Path, name: str, parts: list[str], pause_s: float) -> Path:
    """Examples back to back with `pause_s` between them and silence around,
    as a 16-bit wav (what chromium's fake device reads)."""
    hush = lambda s: np.zeros(int(s * 16000), np.float32)  # noqa: E731
    clips = [audio.load(REPO / "examples" / f).samples for f in parts]
    body = [x for c in clips for x in (c, hush(pause_s))][:-1]
    path = folder / name
    sf.write(str(path), np.concatenate([hush(0.7), *body, hush(1.5)]), 16000, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """One sentence (a finished recording); two with a pause (two live segments)."""
    d = tmp_path_factory.mktemp("mic")
    return {"one": _wav(d, "one.wav", ["weather_en.flac"], 0.0),
            "two": _wav(d, "two.wav", ["weather_en.flac", "question_en.flac"], 1.2)}


@pytest.fixture(scope="module")
def served(whisper_engines, serve_page):
    engines = EngineSet(model=whisper_engines.model, engines=[whisper_engines.by_name(n) for n in ENGINES])
    demo, url = serve_page(engines, Settings(device="cpu", threads=2, cache_dir=Settings.from_env().cache_dir))
    yield engines, url
    demo.close()


@pytest.fixture
def page_playing(served):
    """`page_playing(wav)`: a fresh chromium whose fake microphone plays `wav` once, on the page."""
    with sync_api.sync_playwright() as p:
        opened = []

        def open_page(wav: Path):
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}%noloop"])
            opened.append(browser)
            pg = browser.new_context(permissions=["microphone"], viewport={"width": 1400, "height": 1000}).new_page()
            pg.set_default_timeout(60_000)
            pg.goto(served[1])
            pg.wait_for_selector("#run")
            return pg

        try:
            yield open_page
        finally:
            for b in opened:
                b.close()


@pytest.fixture(scope="module")
def upload_texts(served, clips) -> dict[str, str]:
    """Each engine's text for the one-sentence clip uploaded (the page's "auto" language)."""
    clip = audio.load(clips["one"])
    return {e.info.name: e.transcribe(clip, None).text for e in served[0].engines}


@pytest.fixture(scope="module")
def part_texts(served) -> dict[str, str]:
    """Each engine's text for the two examples uploaded one by one (live mode's two segments)."""
    clips = [audio.load(REPO / "examples" / f) for f in ("weather_en.flac", "question_en.flac")]
    return {e.info.name: " ".join(e.transcribe(c, None).text for c in clips) for e in served[0].engines}


def _record(page, box: str, seconds: float) -> None:
    """Press record in `box`, let the fake device play for `seconds`, press stop."""
    page.locator(f"{box} .record-button").first.click()
    time.sleep(seconds)
    page.locator(f"{box} .stop-button").first.click()


def _wer(ref: str, hyp: str) -> float:
    return metrics.error_rate(ref, hyp, "en").rate


def _wait_for_run(page) -> None:
    try:
        page.wait_for_function("() => (document.querySelector('#status')?.innerText || '').includes('engines answered')",
                               timeout=300_000)
    except sync_api.TimeoutError:
        page.screenshot(path=str(REPO / "test-artifacts" / "mic-timeout.png"), full_page=True)
        pytest.fail(f"no run finished; status: {page.locator('#status').inner_text()!r}; "
                    f"clip: {page.locator('#clip').inner_text()[:300]!r}")


def test_a_finished_recording_reads_as_the_upload_does(page_playing, clips, upload_texts):
    page = page_playing(clips["one"])
    page.locator("#clip button[aria-label='Record audio']").first.click()
    _record(page, "#clip", sf.info(str(clips["one"])).duration + 0.8)
    for attempt in range(5):  # the recording reaches the server a moment after stop
        time.sleep(2.0)
        page.click("#run")
        page.wait_for_function("() => { const t = document.querySelector('#status')?.innerText || '';"
                               " return t.includes('engines answered') || t.includes('⚠️'); }", timeout=300_000)
        if "engines answered" in page.locator("#status").inner_text():
            break
    status = page.locator("#status").inner_text()
    assert "engines answered" in status and "audio" in status, status
    for name in ENGINES:
        got = page.locator(f"#text-{name.lower()} textarea").input_value()
        nearest = min(_wer(upload_texts[n], got) for n in (name, "FP32"))
        assert nearest <= MAX_WER, (name, got, upload_texts[name], upload_texts["FP32"])


def test_live_mode_types_along_and_ends_as_one_clip(page_playing, clips, part_texts):
    page = page_playing(clips["two"])
    _record(page, "#live-mic", sf.info(str(clips["two"])).duration + 0.8)
    page.wait_for_function("() => (document.querySelector('#live-status')?.innerText || '').includes('stopped')",
                           timeout=120_000)
    box = page.locator("#live-status").inner_text()
    assert "2 segment(s)" in box, box
    rows = {line.split("\t")[0]: line.split("\t") for line in box.splitlines() if "\t" in line}
    for name in ENGINES:
        live_text = rows[name][-1]
        assert "keeps up" in rows[name][1] or "falls behind" in rows[name][1]
        assert _wer(part_texts[name], live_text) <= MAX_WER, (name, live_text, part_texts[name])
    _wait_for_run(page)  # the recording then runs as one clip, as an upload
    status = page.locator("#status").inner_text()
    assert "live-recording.wav" in status and f"{len(ENGINES)}/{len(ENGINES)} engines answered" in status, status
    for name in ENGINES:  # (its text is not compared: one window without timestamps may end at the pause)
        assert page.locator(f"#text-{name.lower()} textarea").input_value().strip()
