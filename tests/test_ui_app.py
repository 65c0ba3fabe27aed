"""The page's request flow end to end through gradio's API, with the
tests-only fake engines (no model, a few seconds): a good clip fills every
column, a text file renamed .wav gives the decoder's message and no
transcripts, a failing and an unavailable engine stay in their columns, and
the next request works."""
from __future__ import annotations


import numpy as np
import pytest
import soundfile as sf

from gradio_client import Client, handle_file
from gradio_client.exceptions import ValidationError

from asr_quant import audio
from asr_quant.settings import Settings

from fake_engines import FakeEngine, fake_set, unavailable



ENGINES = fake_set(FakeEngine("FP32", "the quick brown fox"),
                   FakeEngine("FP16", fail=RuntimeError("fp16 kernel missing")),
                   FakeEngine("INT8", "the quick brown box"),
                   unavailable("BF16", "no bf16 on this CPU"))


@pytest.fixture(scope="module")
def client(serve_page):
    demo, url = serve_page(ENGINES, Settings(inference_timeout_s=10))
    try:
        yield Client(url, verbose=False)
    finally:
        demo.close()


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    t = np.arange(16000 * 2) / 16000
    sf.write(d / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    (d / "notes.wav").write_text("this is a text file, not audio\n" * 20)
    return d


def _outputs(client, path, reference=""):
    """The page's outputs by widget label ("status", "FP32 transcript", "INT8 vs FP32", ...):
    the columns' positions follow the demo's order, not the configured one."""
    labels = [r["label"] for r in client.view_api(print_info=False, return_format="dict")
              ["named_endpoints"]["/transcribe"]["returns"]]
    return dict(zip(labels, client.predict(handle_file(str(path)), "en", reference, api_name="/transcribe")))


def _expected_message(path) -> str:
    with pytest.raises(audio.AudioError) as info:
        audio.load(path, max_s=60, name=path.name)
    return str(info.value)


def test_good_clip_then_garbage_then_good_again(client, wavs):
    first = _outputs(client, wavs / "tone.wav", reference="the quick brown fox")
    status, fp32_text, fp32_fig, fp16_text = (first[k] for k in ("status", "FP32 transcript", "FP32 figures",
                                                                "FP16 transcript"))
    assert "3/4 engines answered" not in status and "2/4 engines answered" in status
    assert fp32_text == "the quick brown fox"
    assert "WER" in fp32_fig and "latency" in fp32_fig
    assert fp16_text == "" and "fp16 kernel missing" in first["FP16 figures"]
    assert first["INT8 transcript"] == "the quick brown box"
    int8_diff = first["INT8 vs FP32"]
    assert any(seg.get("class_or_confidence") for seg in int8_diff)  # a highlighted change

    # turned away by the validator, before the queue: the decoder's own message, no engine called
    calls = [e.calls for e in ENGINES.engines if isinstance(e, FakeEngine)]
    with pytest.raises(ValidationError) as refused:
        _outputs(client, wavs / "notes.wav")
    assert _expected_message(wavs / "notes.wav") in str(refused.value)
    assert [e.calls for e in ENGINES.engines if isinstance(e, FakeEngine)] == calls

    again = _outputs(client, wavs / "tone.wav")
    assert again["FP32 transcript"] == "the quick brown fox" and again["INT8 transcript"] == "the quick brown box"
