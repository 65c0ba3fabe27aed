"""Users' corpora in public layouts (Hugging Face audio folder, Common Voice,
LibriSpeech), each read from a tiny fixture this test writes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from asr_quant.bench import corpus, layouts


def _wav(path, seconds=0.5, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000, format=fmt)


def test_huggingface_audio_folder_csv_and_jsonl_splits(tmp_path):
    _wav(tmp_path / "a.wav")
    _wav(tmp_path / "sub" / "b.wav")
    (tmp_path / "metadata.csv").write_text("file_name,transcription\na.wav,hello there\nsub/b.wav,good day\n",
                                           encoding="utf-8")
    assert layouts.detect(tmp_path) == "huggingface"
    utts = {u.id: u for u in layouts.read(tmp_path, language="en")}
    assert {k: (u.text, u.language) for k, u in utts.items()} == {"a": ("hello there", "en"),
                                                                  "sub/b": ("good day", "en")}
    assert utts["a"].duration_s == pytest.approx(0.5)
    split = tmp_path / "hf2"
    _wav(split / "test" / "x.wav")
    (split / "test" / "metadata.jsonl").write_text(
        json.dumps({"file_name": "x.wav", "sentence": "hola amigo", "locale": "es-MX"}) + "\n", encoding="utf-8")
    (u,) = layouts.read(split)
    assert (u.id, u.text, u.language) == ("test/x", "hola amigo", "es")


def test_huggingface_errors_name_the_problem(tmp_path):
    (tmp_path / "metadata.csv").write_text("file_name,label\na.wav,3\n", encoding="utf-8")
    with pytest.raises(corpus.CorpusError, match="none of the text columns"):
        layouts.read(tmp_path, "en")
    (tmp_path / "metadata.csv").write_text("file_name,text\nmissing.wav,hi\n", encoding="utf-8")
    with pytest.raises(corpus.CorpusError, match="missing.wav"):
        layouts.read(tmp_path, "en")
    _wav(tmp_path / "a.wav")
    (tmp_path / "metadata.csv").write_text("file_name,text\na.wav,hi\n", encoding="utf-8")
    with pytest.raises(corpus.CorpusError, match="can't tell the language"):
        layouts.read(tmp_path)


def test_common_voice_tsv_prefers_test_and_takes_the_locale(tmp_path):
    root = tmp_path / "es"
    _wav(root / "clips" / "c1.mp3.wav")
    _wav(root / "clips" / "c2.wav")
    head = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccent\tlocale\tsegment\n"
    (root / "validated.tsv").write_text(head + "u\tc2.wav\tno usar\t2\t0\t\t\t\tes\t\n", encoding="utf-8")
    (root / "test.tsv").write_text(head + "u\tc1.mp3.wav\t¿Dónde está?\t2\t0\t\t\t\t\t\n", encoding="utf-8")
    assert layouts.detect(root) == "commonvoice"
    (u,) = layouts.read(root)  # test.tsv, language from the folder name (no locale in the row)
    assert (u.id, u.text, u.language, u.row) == ("clips/c1.mp3", "¿Dónde está?", "es", "es (es)")
    (root / "test.tsv").unlink()
    (u,) = layouts.read(root)
    assert u.text == "no usar"
    (root / "validated.tsv").write_text("path\ttext\nc2.wav\tx\n", encoding="utf-8")
    with pytest.raises(corpus.CorpusError, match="path and sentence"):
        layouts.read(root)


def test_librispeech_trans_txt(tmp_path):
    chapter = tmp_path / "test-clean" / "61" / "70968"
    _wav(chapter / "61-70968-0000.flac", fmt="FLAC")
    _wav(chapter / "61-70968-0001.flac", fmt="FLAC")
    (chapter / "61-70968.trans.txt").write_text("61-70968-0000 HE BEGAN A CONFUSED COMPLAINT\n"
                                                "61-70968-0001 GIVE NOT SO EARNEST A MIND\n", encoding="utf-8")
    assert layouts.detect(tmp_path) == "librispeech"
    utts = layouts.read(tmp_path)
    assert [(u.id, u.text, u.language) for u in utts] == [
        ("test-clean/61/70968/61-70968-0000", "HE BEGAN A CONFUSED COMPLAINT", "en"),
        ("test-clean/61/70968/61-70968-0001", "GIVE NOT SO EARNEST A MIND", "en")]
    (chapter / "61-70968.trans.txt").write_text("61-70968-0002 MISSING AUDIO\n", encoding="utf-8")
    with pytest.raises(corpus.CorpusError, match="61-70968-0002"):
        layouts.read(tmp_path)


def test_other_folders_are_no_layout_and_the_cli_reads_each(tmp_path):
    _wav(tmp_path / "plain" / "en_a.wav")
    (tmp_path / "plain" / "en_a.txt").write_text("hello", encoding="utf-8")
    assert layouts.detect(tmp_path / "plain") is None
    assert layouts.detect(tmp_path / "nope") is None
    hf = tmp_path / "hf"
    _wav(hf / "a.wav")
    (hf / "metadata.csv").write_text("file_name,text\na.wav,hello there\n", encoding="utf-8")
    from asr_quant.bench.cli import build_parser, gather_corpus

    args = build_parser().parse_args(["--corpus", str(hf), "--corpus", str(tmp_path / "plain"), "--language", "en"])
    utts, notes = gather_corpus(args, str(tmp_path), print)
    assert [u.id for u in utts] == ["a", "en_a"]
    assert "huggingface" in notes[0]
