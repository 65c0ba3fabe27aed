"""Issue 23 (16): the page decodes an upload once (the validator's decode is
the handler's), `/explain` turns bad input away before the queue as
`/transcribe` does, the reference transcript has a length cap with a clear
message on the page and in a benchmark corpus, and a file of nothing but
undecodable packets is still bounded by the decode time limit."""
from __future__ import annotations

import pytest

from asr_quant import audio, metrics
from asr_quant.app import inputs, present, ui
from asr_quant.settings import Settings

from fake_engines import FakeEngine, fake_set
from page_driver import run_page
from test_audio import sf_bytes, tone

LONG = "word " * (metrics.REFERENCE_MAX_CHARS // 5 + 1)


@pytest.fixture(scope="module")
def page():
    engines = [FakeEngine("FP32", "one two"), FakeEngine("INT8", "one two")]
    demo = ui.build(fake_set(*engines), Settings(inference_timeout_s=30), examples=[])
    return demo, engines


def _fn(demo, api_name):
    return next(f for f in demo.fns.values() if f.api_name == api_name)


@pytest.fixture()
def wav(tmp_path):
    p = tmp_path / "clip.wav"
    p.write_bytes(sf_bytes(tone(2.0, 16000), 16000, subtype="PCM_16"))
    return p


def test_the_handler_reuses_the_validators_decode(page, wav, monkeypatch):
    demo, engines = page
    loads = []
    real = audio.load
    monkeypatch.setattr(audio, "load", lambda *a, **k: loads.append(a[0]) or real(*a, **k))
    check = _fn(demo, "transcribe").validator
    assert all(v["is_valid"] for v in check(str(wav), "en", "", None))
    shown = run_page(demo, str(wav), "en")
    assert "2/2 engines answered" in shown.status
    assert loads == [str(wav)]  # once, for both


def test_a_rewritten_upload_is_decoded_again(tmp_path):
    f = tmp_path / "clip.wav"
    f.write_bytes(sf_bytes(tone(2.0, 16000), 16000, subtype="PCM_16"))
    uploads = inputs.DecodedUploads(60.0, None)
    first, _ = uploads.decode(f)
    f.write_bytes(sf_bytes(tone(1.0, 16000), 16000, subtype="PCM_16"))
    second, _ = uploads.decode(f)
    assert uploads.decodes == 2 and second.duration_s == pytest.approx(1.0) != first.duration_s


def test_explain_has_the_same_validator(page, tmp_path):
    demo, _ = page
    bad = tmp_path / "not-audio.wav"
    bad.write_bytes(b"\x89PNG" + bytes(200))
    check = _fn(demo, "explain").validator
    assert check is not None
    told = check(str(bad), "en", "INT8")
    assert not told[0]["is_valid"] and "PNG" in told[0]["message"]
    assert all(v["is_valid"] for v in told[1:])


def test_a_reference_over_the_cap_is_refused_with_a_message(page, wav):
    demo, engines = page
    before = [e.calls for e in engines]
    told = _fn(demo, "transcribe").validator(str(wav), "en", LONG, None)
    assert [v["is_valid"] for v in told] == [True, True, False, True]
    assert f"limit is {metrics.REFERENCE_MAX_CHARS:,}" in told[2]["message"]
    shown = run_page(demo, str(wav), "en", reference=LONG)  # an API client past the validator
    assert shown.status == f"⚠️ {present.escape(metrics.reference_problem(LONG))}"
    assert [e.calls for e in engines] == before
    ok = run_page(demo, str(wav), "en", reference="one two")
    assert "2/2 engines answered" in ok.status


def test_a_corpus_reference_over_the_cap_is_refused_with_a_message(tmp_path):
    from asr_quant.bench.corpus import CorpusError, read_folder

    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "a.wav").write_bytes(sf_bytes(tone(1.0, 16000), 16000, subtype="PCM_16"))
    (tmp_path / "en" / "a.txt").write_text(LONG)
    with pytest.raises(CorpusError, match=r"the reference text of en/a(\.wav)? is .* characters long"):
        read_folder(tmp_path)


def test_undecodable_packets_are_bounded_by_the_decode_time_limit(monkeypatch):
    """Every packet fails to decode: the time limit still applies (it used to be
    checked only when audio came out)."""
    import av

    from test_audio import av_bytes

    data = av_bytes(tone(3.0, 44100), 44100, "mp3", "mp3")
    real_open = av.open

    class Broken:
        def decode(self):
            raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")

    class Container:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.inner.close()

        def demux(self, stream):
            for _ in self.inner.demux(stream):
                yield Broken()

    monkeypatch.setattr(av, "open", lambda *a, **k: Container(real_open(*a, **k)))
    with pytest.raises(audio.NotAudioError, match="corrupt"):  # the limit not reached: corrupt
        audio.load(data, name="bad.mp3")
    monkeypatch.setattr(audio, "DECODE_TIMEOUT_S", -1.0)
    with pytest.raises(audio.NotAudioError, match="took longer than"):
        audio.load(data, name="bad.mp3")
