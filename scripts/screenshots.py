"""Screenshots of the page at a sales screen's width and a phone's, after one example.

    python scripts/screenshots.py                       # docs/page-1280.png, docs/page-390.png
    python scripts/screenshots.py --out /tmp/shots --app-args "--precisions fp32,int8"

Starts `python app.py` on a free port as the tests do (asr_quant.loadtest.AppProcess),
waits for every engine, and in Debian's chromium (Playwright, headless, never
`playwright install`) picks the first example with a reference, runs it, and saves
full-page screenshots at 1280x800 and 390x844. It then lists every word on the
page that the browser broke across two lines (`broken_words`, e.g. a load time
"102.6 s" set one digit a line in a cell too narrow for it) and exits 1 if one
holds a digit. tests/test_browser_layout.py runs the same check with fake engines.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHROMIUM = "/usr/bin/chromium"
SIZES = {"1280": (1280, 800), "390": (390, 844)}  # a laptop at a sales desk; a phone (iPhone 12-15)
RUN_TIMEOUT_MS = 600_000

# Every word (a run of non-space characters) of the page's text, outside charts and
# hidden parts, whose characters the browser put on more than one line.
BROKEN_WORDS_JS = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || el.closest('svg, script, style, textarea, [hidden]') || !el.offsetParent) continue;
    if (el.closest('details:not([open])') && !el.closest('summary')) continue;  // folded: not on screen
    const text = node.textContent;
    for (const m of text.matchAll(/\\S{2,}/g)) {
      const r = document.createRange();
      r.setStart(node, m.index);
      r.setEnd(node, m.index + m[0].length);
      const rects = [...r.getClientRects()].filter(b => b.width > 0 && b.height > 0);
      if (!rects.length) continue;
      const h = Math.min(...rects.map(b => b.height));
      const tops = rects.map(b => b.top).sort((a, b) => a - b);
      const lines = tops.filter((t, i) => i === 0 || t - tops[i - 1] > h / 2).length;
      if (lines > 1) out.push({word: m[0], lines, where: el.closest('[id]')?.id || el.tagName});
    }
  }
  return out;
}"""


def broken_words(page) -> list[dict]:
    """Words the browser broke across lines: {word, lines, where (nearest element id)}."""
    return page.evaluate(BROKEN_WORDS_JS)


def run_example(page, timeout_ms: int = RUN_TIMEOUT_MS) -> str:
    """Pick the first example with a reference, press the button, wait for the
    summary line ("n/m engines answered"); returns the example's label."""
    from asr_quant.examples import read_examples

    examples = read_examples(REPO / "examples")
    ex = next((e for e in examples if e.reference), examples[0])
    page.get_by_text(ex.label, exact=True).first.click()
    page.wait_for_function("(ref) => document.querySelector('#reference textarea').value === ref", arg=ex.reference)
    page.click("#run")
    page.wait_for_function("() => (document.querySelector('#status')?.innerText || '').includes('engines answered')",
                           timeout=timeout_ms)
    page.wait_for_selector("#plot-latency .js-plotly-plot .main-svg")
    page.wait_for_timeout(1500)  # the history table and charts render after the status line
    return ex.label


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"])


def shoot(url: str, out: Path) -> int:
    """Both screenshots; returns how many words with digits were broken across lines."""
    from playwright import sync_api

    bad = 0
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            for label, (width, height) in SIZES.items():
                page = browser.new_page(viewport={"width": width, "height": height})
                page.set_default_timeout(60_000)
                page.goto(url)
                page.wait_for_selector("#run")
                print(f"{width} px: ran {run_example(page)!r}")
                path = out / f"page-{label}.png"
                page.screenshot(path=str(path), full_page=True)
                print(f"  saved {path}")
                for b in broken_words(page):
                    digit = any(c.isdigit() for c in b["word"])
                    bad += digit
                    print(f"  {'BROKEN' if digit else 'broken'} across {b['lines']} lines in #{b['where']}: "
                          f"{b['word']!r}")
                page.close()
        finally:
            browser.close()
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs", help="folder for page-1280.png and page-390.png")
    ap.add_argument("--app-args", default="", help="flags for app.py, e.g. \"--precisions fp32,int8\"")
    ap.add_argument("--timeout-s", type=float, default=1800, help="for the engines to load (a first INT8 build)")
    args = ap.parse_args(argv)
    from asr_quant.loadtest import AppProcess, free_port

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="asrq-shots-") as tmp:
        app = AppProcess(Path(tmp), free_port(), shlex.split(args.app_args))
        try:
            print(f"app.py ready after {app.wait_ready(args.timeout_s):.1f} s")
            bad = shoot(app.url, args.out)
        finally:
            app.stop()
    if bad:
        print(f"{bad} words with digits are broken across lines", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
