"""The shipped examples are what examples.tsv says: real audio the decoder
accepts, 3-8 s each, with reference text, each marked recorded or synthetic
(real recordings in more than one language among them), under 2 MB in all."""
from __future__ import annotations

import csv
from pathlib import Path

from asr_quant import audio, metrics

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def rows():
    with open(EXAMPLES / "examples.tsv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_examples_index_matches_files():
    listed = rows()
    assert len(listed) >= 4
    files = {p.name for p in EXAMPLES.iterdir() if p.suffix in (".flac", ".ogg", ".wav", ".mp3", ".opus")}
    assert {r["file"] for r in listed} == files
    assert sum(p.stat().st_size for p in EXAMPLES.rglob("*") if p.is_file()) < 2_000_000


def test_examples_decode_with_reference_text():
    for r in rows():
        clip = audio.load(EXAMPLES / r["file"])
        assert 3.0 <= clip.duration_s <= 8.0, r["file"]
        # real recordings are quieter than espeak-ng (AISHELL-1: -32 dBFS)
        assert clip.level_dbfs > (-36 if r["kind"] == "recorded" else -30), r["file"]
        assert r["language"] and r["description"] and r["kind"] in ("recorded", "synthetic")
        norm = metrics.normalize(r["reference"], r["language"])
        units = len(norm.replace(" ", "")) if r["language"] in ("zh", "ja", "yue") else len(norm.split())
        assert units >= 8, r["file"]


def test_real_recordings_in_other_languages_are_credited():
    recorded = [r for r in rows() if r["kind"] == "recorded"]
    assert {r["language"] for r in recorded} >= {"zh", "es"}
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for r in recorded:
        assert r["source"] and r["file"] in readme
    assert "Apache-2.0" in readme and "CC-BY-SA-3.0" in readme and "Allison Smith" in readme
