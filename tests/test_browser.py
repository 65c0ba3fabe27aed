"""The page in a real browser: Debian's chromium driven by Playwright against
`python app.py` started on 127.0.0.1 with a free port and the real engines.

Pick an example, press the button, wait for every column; then upload a text
file renamed .wav and check the message, then a good request again. Saves
a screenshot after the first run to test-artifacts/screenshot.png (the
pictures in docs/ are made by scripts/screenshots.py).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright import sync_api

from asr_quant import audio, metrics
from asr_quant.examples import read_examples

pytestmark = [pytest.mark.browser, pytest.mark.model]

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
START_TIMEOUT_S = float(os.environ.get("ASRQ_TEST_START_TIMEOUT_S", "1200"))  # first start builds ONNX/INT8
RUN_TIMEOUT_MS = 300_000
ENGINES = ("fp32", "fp16", "int8")

if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, app_process):
    app = app_process(tmp_path_factory.mktemp("app"), ["--precisions", ",".join(ENGINES)], START_TIMEOUT_S)
    print(f"\napp.py answered after {app.ready_s:.1f} s")
    yield app.url
    app.stop()


@pytest.fixture(scope="module")
def page(app_url):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(60_000)
        pg.goto(app_url)
        pg.wait_for_selector("#run")
        try:
            yield pg
        finally:
            browser.close()


def _transcripts(page) -> dict[str, str]:
    """Each engine's transcript; for a missing one, what its column says instead."""
    out = {}
    for e in ENGINES:
        box = page.locator(f"#text-{e} textarea")
        out[e] = box.input_value() if box.count() else ""
        if not out[e].strip():
            out[e + " says"] = page.locator(f"#engine-{e}").inner_text()[:300]
    return out


def _run_and_wait(page, previous_status: str) -> None:
    """Press the button; the summary line ("n/m engines answered") appears
    only once every engine is done."""
    page.click("#run")
    page.wait_for_function(
        """(prev) => {
            const t = document.querySelector('#status')?.innerText || '';
            return t.includes('engines answered') && t !== prev;
        }""", arg=previous_status, timeout=RUN_TIMEOUT_MS)


def _upload(page, path: Path) -> None:
    """Clear the audio box (an example or an earlier upload hides the file
    input), then upload `path` through it as a person would."""
    # after a refused upload the box also shows the validator's message, which has a Clear button of its own
    for _ in range(3):
        clear = page.locator("#clip button[aria-label='Clear']")
        if page.locator("#clip input[type=file]").count() or not clear.count():
            break
        clear.first.click()
        page.wait_for_timeout(300)
    page.set_input_files("#clip input[type=file]", str(path))


def _history_text(page, clip: str, runs: int) -> str:
    """The history table's text once `clip` shows in `runs` rows (waits a
    little: the table renders after the status line)."""
    page.locator("#history").scroll_into_view_if_needed()
    try:
        page.wait_for_function("([name, n]) => document.querySelector('#history').innerText.split(name).length > n",
                               arg=[clip, runs], timeout=15_000)
    except sync_api.TimeoutError:
        pass  # the assertion that follows shows what is there
    return page.locator("#history").inner_text()


def _status(page) -> str:
    return page.locator("#status").inner_text()


def test_example_run_then_bad_upload_then_good_again(page, tmp_path):
    examples = read_examples(REPO / "examples")
    if not examples:
        pytest.skip("examples/examples.tsv is missing")
    ex = next((e for e in examples if e.reference), examples[0])

    # pick the example: the clip, its language and its reference fill in
    page.get_by_text(ex.label, exact=True).first.click()
    page.wait_for_function("(ref) => document.querySelector('#reference textarea').value === ref",
                           arg=ex.reference)
    _run_and_wait(page, "")

    texts = _transcripts(page)
    assert all(texts.get(e, "").strip() for e in ENGINES), texts
    for e in ENGINES:
        assert "error" not in page.locator(f"#figures-{e}").inner_text().lower()
    if ex.reference:
        assert ("WER" in page.locator("#figures-fp32").inner_text()
                or "CER" in page.locator("#figures-fp32").inner_text())
    # the diffs are rendered: one highlighted span per change metrics.diff finds against FP32
    for e in ENGINES[1:]:
        page.wait_for_selector(f"#diff-{e} .textfield .token")
        changes = [op for op in metrics.diff(texts["fp32"], texts[e], ex.language) if op.op != "equal"]
        assert page.locator(f"#diff-{e} .textfield").inner_text().strip(), f"no diff rendered for {e}"
        assert page.locator(f"#diff-{e} .textfield .token.highlighted").count() == len(changes), e
    # the charts are there, drawn by plotly
    for plot in ("plot-latency", "plot-memory", "plot-history"):
        page.wait_for_selector(f"#{plot} .js-plotly-plot .main-svg")
    assert page.locator("#plot-latency").inner_text().count("× FP32") == len(ENGINES)
    # one history row
    table = _history_text(page, ex.path.name, 1)
    assert table.count(ex.path.name) == 1, table
    shot = REPO / "test-artifacts" / "screenshot.png"
    shot.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)

    # a text file renamed .wav: the decoder's own message, no transcripts
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio at all, just a few words of text\n" * 40)
    with pytest.raises(audio.AudioError) as expected:
        audio.load(bad, name=bad.name)
    _upload(page, bad)
    page.click("#run")
    # the validator answers before the queue: the message shows on the page within seconds
    message = str(expected.value)
    page.get_by_text(message).first.wait_for(timeout=15_000)
    assert not any(_transcripts(page).get(e, "").strip() for e in ENGINES)

    # and the next good request works: upload the example's clip itself
    _upload(page, ex.path)
    page.wait_for_timeout(500)
    _run_and_wait(page, _status(page))
    texts2 = _transcripts(page)
    assert all(texts2.get(e, "").strip() for e in ENGINES), texts2
    table = _history_text(page, ex.path.name, 2)
    assert table.count(ex.path.name) == 2, table
