"""The page fits a sales screen (1280x800) and a phone (390 px wide): after one
example run, no word holding a digit is broken across lines (the model card's
table once set a load time "102.6 s" one digit a line), the engines' long
"what runs how" texts are folded, and every column says it is done. Fake
engines with the real engines' figures and texts; a few seconds per width.
Screenshots go to test-artifacts/ (scripts/screenshots.py makes docs/'s with
the real engines)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("gradio")
sync_api = pytest.importorskip("playwright.sync_api")

from asr_quant.settings import Settings  # noqa: E402

from fake_engines import FakeEngine, fake_set  # noqa: E402

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[1]
if not Path("/usr/bin/chromium").exists():
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)

_spec = importlib.util.spec_from_file_location("screenshots", REPO / "scripts" / "screenshots.py")
shots = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(shots)

# What the real INT8 engine says about itself (its length is what has to fold away).
DETAILS = ("encoder dynamic INT8 on 42 MatMul nodes; decoder dynamic INT8 on 43 MatMul nodes, token table stored "
           "once in INT8 (lookup + output projection); FP32: fc2 (12 layers, outlier activations), convolutions, "
           "LayerNorm, attention scores/softmax. Encoder dynamic: lower mean KL to FP32 on 4 hold-out clips: "
           "static 0.0167 (top-1 95.8%) vs dynamic 0.0116 (top-1 100.0%); 2 threads, idle threads sleep")


def _engines():
    out = []
    for name, mb, load_s in (("FP32", 277, 102.6), ("FP16", 138, 1.7), ("INT8", 76, 1234.5)):
        e = FakeEngine(name, "The weather will be sunny in the morning, with light rain expected in the evening.")
        e.info.runtime, e.info.details, e.info.threads = "PyTorch 2.13.0", DETAILS, 2
        e.info.disk_bytes = e.info.weights_bytes = mb * 2**20
        e.info.load_s = load_s
        e.info.alone = {"working_bytes": 364 * 2**20, "peak_rss": 1234 * 2**20, "measured_at": "2026-12-03T06:00"}
        out.append(e)
    return fake_set(*out)


@pytest.fixture(scope="module")
def url(serve_page):
    demo, url = serve_page(_engines(), Settings(inference_timeout_s=30), examples=None)
    yield url
    demo.close()


@pytest.mark.parametrize("size", list(shots.SIZES))
def test_no_number_wraps_and_the_long_texts_fold(url, size):
    width, height = shots.SIZES[size]
    with sync_api.sync_playwright() as p:
        browser = shots.launch(p)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(30_000)
            page.goto(url)
            page.wait_for_selector("#run")
            shots.run_example(page, timeout_ms=60_000)
            out = REPO / "test-artifacts"
            out.mkdir(exist_ok=True)
            page.screenshot(path=str(out / f"layout-{size}.png"), full_page=True)
            broken = [b for b in shots.broken_words(page) if any(c.isdigit() for c in b["word"])]
            assert not broken, broken
            assert "102.6 s" in page.locator("#model-card").inner_text()  # the figure that once wrapped is there
            assert page.locator("#model-card details.how").count() == 3
            assert page.locator("#model-card details.how[open]").count() == 0
            assert not page.get_by_text("outlier activations").first.is_visible()  # folded away
            page.locator("#model-card details.how summary").first.click()
            assert page.get_by_text("outlier activations").first.is_visible()
            for e in ("fp32", "fp16", "int8"):
                assert "done" in page.locator(f"#state-{e}").inner_text()
        finally:
            browser.close()
