"""'Explain the difference' in a real browser (Debian's chromium, Playwright).

The page is served in this process (`serve_page`) over Whisper base FP32 and a
fault-injected twin (`faulty.PerturbedWhisper`: decoder layer 3's fc2 weights
perturbed), so the two texts surely differ and the explanation has a known
answer: the first differing token is the one `explain` finds in-process, and
the per-layer chart shows bars for every layer.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright import sync_api

from asr_quant import audio
from asr_quant.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.model]

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CLIP = REPO / "examples" / "weather_en.flac"

if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


def test_explain_the_difference_shows_first_token_and_layer_chart(whisper_fp32_and_faulty, serve_page):
    from asr_quant.app import explain as app_explain

    es = whisper_fp32_and_faulty
    want = app_explain.explain(es, "base", "FP32", "FAULTY", audio.load(CLIP), "en").divergence
    assert want is not None and not want.same
    settings = Settings(model="base", precisions="fp32", device="cpu", threads=2, inference_timeout_s=600)
    _demo, url = serve_page(es, settings)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(url)
            page.wait_for_selector("#run")
            page.locator("#clip input[type=file]").set_input_files(str(CLIP))
            page.wait_for_timeout(1000)
            page.get_by_text("Explain the difference", exact=True).first.click()  # open the section
            page.click("#explain-run")
            page.wait_for_function(
                "() => (document.querySelector('#explain-text')?.innerText || '').includes('First differing token')",
                timeout=300_000)
            shown = page.locator("#explain-text").inner_text()
            assert f"step {want.step}" in shown, shown
            assert want.reference_top[0].token.strip() in shown and want.other_top[0].token.strip() in shown, shown
            assert "decoder layer 3" in shown, shown
            page.wait_for_selector("#explain-plot .js-plotly-plot .main-svg")
            bars = page.locator("#explain-plot .js-plotly-plot .bars .point")
            assert bars.count() == len(want.layers) == 12
        finally:
            browser.close()
