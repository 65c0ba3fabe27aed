"""The API page's gradio_client example (docs/api.md) runs as printed against a served page
(fake engines), and prints one line per engine; the hosting files agree:
README starts with the Spaces front matter, packages.txt lists the Debian
packages the code needs and the Dockerfile installs exactly those."""
from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

pytest.importorskip("gradio")

from asr_quant.settings import Settings  # noqa: E402

from fake_engines import FakeEngine, fake_set  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
API_DOC = (REPO / "docs" / "api.md").read_text(encoding="utf-8")


def _example() -> str:
    block = API_DOC.split("<!-- client-example", 1)[1]
    code = re.search(r"```python\n(.*?)```", block, re.S).group(1)
    assert len(code.strip().splitlines()) == 5
    return code


def test_api_doc_client_example_runs(serve_page, monkeypatch):
    demo, url = serve_page(fake_set(FakeEngine("FP32", "sunny in the morning"), FakeEngine("INT8", "sunny")),
                           Settings())
    try:
        monkeypatch.chdir(REPO)  # the example names examples/weather_en.flac
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(_example().replace("http://127.0.0.1:7860/", url), {})
    finally:
        demo.close()
    lines = [ln for ln in out.getvalue().strip().splitlines() if not ln.startswith("Loaded as API")]
    assert [ln.split()[0] for ln in lines] == ["FP32", "INT8"]
    assert lines[0].endswith("sunny in the morning") and lines[1].endswith("sunny")


def test_hosting_files_agree():
    front = README.split("---\n")[1] if README.startswith("---\n") else ""
    meta = dict(line.split(": ", 1) for line in front.strip().splitlines())
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    import gradio

    assert meta["sdk_version"] == gradio.__version__
    packages = (REPO / "packages.txt").read_text().split()
    assert "libsndfile1" in packages
    assert "espeak-ng" not in packages  # the INT8 calibration speech ships in the package (calibration.py)
    docker = (REPO / "Dockerfile").read_text()
    assert "COPY packages.txt" in docker and "xargs -a /tmp/packages.txt apt-get install" in docker
    assert os.path.exists(REPO / "app.py")
