"""The benchmark corpus: noise mixing, users' folders, and the built-in
espeak-ng corpus (made once into a temporary cache)."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from asr_quant.bench import corpus
from asr_quant.bench.sentences import sentences

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def test_mix_at_snr_hits_the_asked_snr_and_pink_noise_is_seeded():
    rng = np.random.default_rng(0)
    speech = (0.05 * np.sin(np.linspace(0, 2000, 32000))).astype(np.float32)
    a = corpus.pink_noise(32000, np.random.default_rng(5))
    b = corpus.pink_noise(32000, np.random.default_rng(5))
    assert np.array_equal(a, b) and np.mean(a.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-3)
    # more power at low frequencies than at high ones: 1/f, not white
    spec = np.abs(np.fft.rfft(a)) ** 2
    assert spec[10:200].mean() > 10 * spec[-2000:].mean()
    for snr in (0.0, 10.0, 20.0):
        mixed = corpus.mix_at_snr(speech, corpus.pink_noise(len(speech), rng), snr)
        assert corpus.snr_db(speech, mixed) == pytest.approx(snr, abs=1e-3)
    loud = corpus.mix_at_snr(speech * 18, corpus.pink_noise(len(speech), rng), 10.0)
    assert np.max(np.abs(loud)) <= 0.95 + 1e-6  # rescaled rather than clipped
    with pytest.raises(corpus.CorpusError):
        corpus.mix_at_snr(np.zeros(100, np.float32), a[:100], 10.0)


def _wav(path, seconds=1.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)


def test_read_folder_language_from_subfolder_prefix_or_default(tmp_path):
    _wav(tmp_path / "ja" / "a.wav")
    (tmp_path / "ja" / "a.txt").write_text("今日は", encoding="utf-8")
    _wav(tmp_path / "zh_b.wav")
    (tmp_path / "zh_b.txt").write_text("你好\n", encoding="utf-8")
    _wav(tmp_path / "ko.wav")
    (tmp_path / "ko.txt").write_text("안녕", encoding="utf-8")
    _wav(tmp_path / "plain.wav")
    (tmp_path / "plain.txt").write_text("hello there", encoding="utf-8")
    _wav(tmp_path / "no_reference.wav")  # no .txt: not part of the corpus
    with pytest.raises(corpus.CorpusError, match="can't tell the language of plain.wav"):
        corpus.read_folder(tmp_path)
    utts = {u.id: u for u in corpus.read_folder(tmp_path, language="en")}
    assert set(utts) == {"ja/a", "zh_b", "ko", "plain"}
    assert [utts[k].language for k in ("ja/a", "zh_b", "ko", "plain")] == ["ja", "zh", "ko", "en"]
    assert utts["zh_b"].text == "你好" and utts["zh_b"].duration_s == pytest.approx(1.0)
    assert utts["ja/a"].row == f"ja ({tmp_path.name})"
    assert utts["plain"].clip().duration_s == pytest.approx(1.0)


def test_read_folder_manifest_and_errors(tmp_path):
    _wav(tmp_path / "x.wav")
    (tmp_path / "manifest.tsv").write_text("file\tlang\ttext\nx.wav\tyue\t呢度\n", encoding="utf-8")
    (u,) = corpus.read_folder(tmp_path)
    assert (u.language, u.text) == ("yue", "呢度")
    (tmp_path / "manifest.tsv").unlink()
    (tmp_path / "examples.tsv").write_text("file\tlanguage\treference\tdescription\nx.wav\ten\tHello there.\tsynthetic\n",
                                           encoding="utf-8")
    (u,) = corpus.read_folder(tmp_path)  # the layout of the repo's examples/
    assert (u.language, u.text) == ("en", "Hello there.")
    (tmp_path / "examples.tsv").unlink()
    (tmp_path / "manifest.tsv").write_text("file\tlang\ttext\nmissing.wav\tyue\t呢度\n", encoding="utf-8")
    with pytest.raises(corpus.CorpusError, match="missing.wav"):
        corpus.read_folder(tmp_path)
    with pytest.raises(corpus.CorpusError, match="does not exist"):
        corpus.read_folder(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(corpus.CorpusError, match="no clips with references"):
        corpus.read_folder(empty)


def test_select_keeps_languages_and_caps_rows():
    utts = [corpus.Utterance(f"{g}{i}", g.split("-")[0], g, "t", "p", "s") for g in ("zh", "zh-noisy", "en")
            for i in range(3)]
    assert len(corpus.select(utts, None, None)) == 9
    picked = corpus.select(utts, ["zh"], 2)
    assert [u.id for u in picked] == ["zh0", "zh1", "zh-noisy0", "zh-noisy1"]


def test_sentences_are_distinct_and_disjoint_from_the_quantizers_calibration_speech():
    for lang in corpus.LANGUAGES:
        refs = [r for r, _ in sentences(lang)]
        assert len(refs) == len(set(refs)) >= 10
        assert not any(ch.isdigit() for r in refs for ch in r)
    from asr_quant.engines.whisper import calibration

    quantizer = {u.text for u in calibration.CALIBRATION + calibration.HOLDOUT}
    test = {r for lang in corpus.LANGUAGES for r, _ in sentences(lang)}
    assert not quantizer & test


@needs_espeak
def test_espeak_reads_every_sentence_in_its_own_language():
    """espeak-ng switches to English ("(en)") for characters its voice can't
    read (kanji in the ja voice, the tone digits of plain cmn): none may occur."""
    for lang in ("zh", "yue", "ja", "ko"):
        for _, spoken in sentences(lang):
            out = subprocess.run(["espeak-ng", "-q", "-x", "-v", corpus.VOICES[lang], corpus._spoken(lang, spoken)],
                                 capture_output=True, text=True, timeout=30).stdout
            assert "(en)" not in out, (lang, spoken, out[:200])


@needs_espeak
def test_builtin_corpus_is_made_once_and_meets_the_spec(tmp_path):
    c = corpus.builtin(tmp_path)
    rows = corpus.describe(c.test)
    for lang in corpus.LANGUAGES:
        assert rows[f"{lang} (espeak-ng)"]["clips"] >= 10
    assert rows["zh-noisy (espeak-ng)"]["clips"] == rows["zh (espeak-ng)"]["clips"]
    for u in c.test:
        assert corpus.MIN_S <= u.duration_s <= corpus.MAX_S, (u.id, u.duration_s)
    clean = {u.id: u for u in c.test if u.group == "zh"}
    for u in [u for u in c.test if u.group == "zh-noisy"][:3]:
        noisy, _ = sf.read(u.path, dtype="float32")
        speech, _ = sf.read(clean[u.id.replace("zh-noisy", "zh")].path, dtype="float32")
        # the mix was rescaled as a whole at most, so the SNR is unchanged
        k = float(np.dot(noisy, speech) / np.dot(speech, speech))
        assert corpus.snr_db(k * speech, noisy) == pytest.approx(corpus.NOISY_SNR_DB, abs=0.3)
    again = corpus.builtin(tmp_path)  # from the cache: same files
    assert [u.path for u in again.test] == [u.path for u in c.test]
    assert len([p for p in (tmp_path / "corpus").iterdir() if p.is_dir()]) == 1  # one corpus folder (and its lock)


# --- recorded prompts: a folder of audio and a `name: text` index -------------------

def test_prompt_index_skips_comments_tones_and_silence(tmp_path):
    from asr_quant.bench import prompts

    idx = tmp_path / "prompts.txt"
    idx.write_text("; Core sounds\n\nhello: Hola, buenos días\nbeep: [tono simple]\njoin: (beep)\n"
                   "digits/5: cinco\nodd: a: b\n", encoding="utf-8")
    assert prompts.read_index(idx) == {"hello": "Hola, buenos días", "digits/5": "cinco", "odd": "a: b"}
    idx.write_text("no colon here\n", encoding="utf-8")
    with pytest.raises(corpus.CorpusError, match="line 1: expected 'name: text'"):
        prompts.read_index(idx)


def test_read_prompts_from_any_folder_laid_out_like_asterisk(tmp_path):
    import gzip

    from asr_quant.bench import prompts

    root = tmp_path / "es_MX_voice"
    for name in ("agent-pass", "digits/at", "digits/5", "beep"):
        _wav(root / f"{name}.wav")
    with gzip.open(root / "core-sounds-es.txt.gz", "wt", encoding="utf-8") as f:
        f.write("agent-pass: Por favor ingrese su contrasena\ndigits/at: a las\ndigits/5: cinco\n"
                "beep: [tono simple]\nmissing-audio: No hay audio\n")
    assert prompts.is_prompt_folder(root) and not prompts.is_prompt_folder(tmp_path)
    utts = prompts.read_prompts(root)  # index found by name, language from the folder's name
    assert [u.id for u in utts] == ["es-prompt/agent-pass", "es-prompt/digits/at"]  # one-word, tone, no audio: out
    u = utts[0]
    assert u.language == "es" and u.recorded and u.source == "es_MX_voice, recorded"
    assert u.row == "es (es_MX_voice, recorded)" and u.duration_s == pytest.approx(1.0)
    assert len(prompts.read_prompts(root, min_words=1)) == 3
    assert [u.language for u in prompts.read_prompts(root, language="pt")] == ["pt", "pt"]
    root.rename(tmp_path / "voice")  # a name that says no language
    with pytest.raises(corpus.CorpusError, match="can't tell the language"):
        prompts.read_prompts(tmp_path / "voice")


def test_builtin_spanish_prompts_are_recorded_and_cli_reads_them():
    """Debian's asterisk-core-sounds-es(-wav), installed by .ci/run: a
    required test dependency, so this fails (with the apt-get line) rather than skip."""
    from asr_quant.bench import cli, prompts

    utts = prompts.builtin_es()
    assert len(utts) >= 200 and all(u.language == "es" and u.recorded for u in utts)
    assert all(len(u.text.split()) >= prompts.MIN_WORDS and not u.text.startswith("[") for u in utts)
    assert sf.info(utts[0].path).samplerate == 8000  # telephone audio, resampled by audio.load
    args = cli.build_parser().parse_args(["--corpus", "prompts-es"])
    got, notes = cli.gather_corpus(args, "/nonexistent-cache", lambda m: None)
    assert len(got) == len(utts) and "CC-BY-SA-3.0" in notes[0]
    assert corpus.describe(got)[utts[0].row]["recorded"] is True


def test_thin_keeps_every_nth_clip_of_each_row():
    utts = [corpus.Utterance(id=f"{g}{i}", language=g, group=g, text="t", path="p", source="s")
            for g in ("a", "b") for i in range(5)]
    assert [u.id for u in corpus.thin(utts, 2)] == ["a0", "a2", "a4", "b0", "b2", "b4"]
    assert corpus.thin(utts, 1) == utts
