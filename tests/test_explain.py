"""'Explain the difference' (engines/whisper/explain.py, engines/divergence.py,
app/explain.py): where two engines' decodes part, and where the error grows."""
from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client, handle_file
from gradio_client.exceptions import ValidationError

from asr_quant import audio
from asr_quant.app import explain as app_explain
from asr_quant.engines import divergence
from asr_quant.engines.divergence import Divergence, LayerGap, TokenChoice
from asr_quant.settings import Settings

from fake_engines import FakeEngine, fake_set

REPO = Path(__file__).resolve().parents[1]


def _divergence() -> Divergence:
    top = [TokenChoice(" rain", 1, 0.6), TokenChoice(" sun", 2, 0.3)]
    other = [TokenChoice(" sun", 2, 0.5), TokenChoice(" rain", 1, 0.45)]
    layers = [LayerGap("encoder", 0, 0.01, 0.999), LayerGap("encoder", 1, 0.02, 0.998),
              LayerGap("decoder", 0, 0.05, 0.99), LayerGap("decoder", 1, 0.40, 0.9)]
    return Divergence("FP32", "INT8", same=False, step=4, prefix="Tomorrow brings", reference_top=top,
                      other_top=other, layers=layers, token_kind="word start")


def test_explanation_reads_as_markdown_text_and_a_chart():
    d = _divergence()
    md = app_explain.markdown(d)
    assert "First differing token" in md and "step 4" in md and "' rain'" in md and "' sun'" in md
    assert divergence.worst_layer(d) == "decoder layer 1" and "decoder layer 1" in md
    text = divergence.as_text(d)
    assert "dec  1" in text and "step 4" in text and "error grows most at decoder layer 1" in text
    fig = app_explain.layer_figure(d)
    assert list(fig.data[0].y) == [0.01, 0.02, 0.05, 0.40]
    same = Divergence("FP32", "FP16", same=True, note="FP32 and FP16 decode the same tokens on this clip")
    assert app_explain.markdown(same) == same.note and divergence.as_text(same) == same.note


def test_explain_on_engines_it_cannot_trace_is_a_message_not_a_traceback(serve_page, tmp_path):
    engines = fake_set(FakeEngine("FP32", "the quick brown fox"), FakeEngine("INT8", "the quick brown box"))
    demo, url = serve_page(engines, Settings(model="base", inference_timeout_s=10))
    wav = tmp_path / "tone.wav"
    t = np.arange(16000 * 2) / 16000
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    client = Client(url, verbose=False)
    text, fig = client.predict(handle_file(str(wav)), "en", "INT8", api_name="/explain")
    assert "Could not explain" in text and "Whisper" in text and fig is None
    silent = tmp_path / "silence.wav"
    sf.write(silent, np.zeros(32000, np.float32), 16000)
    with pytest.raises(ValidationError, match="is silent"):  # told before the queue, as /transcribe tells it
        client.predict(handle_file(str(silent)), "en", "INT8", api_name="/explain")
    demo.close()


@pytest.mark.model
def test_explanation_places_a_known_fault(whisper_fp32_and_faulty):
    """FP32 against FP32 with decoder layer 3's fc2 perturbed: the texts part at
    some token, both top-5 are there, and the hidden-state error is zero in the
    encoder and the decoder layers before 3, and not from 3 on."""
    es = whisper_fp32_and_faulty
    clip = audio.load(REPO / "examples" / "weather_en.flac")
    faulty = es.by_name("FAULTY")
    r = app_explain.explain(es, "base", "FP32", "FAULTY", clip, "en")
    d = r.divergence
    assert d is not None and not d.same, r.message
    assert len(d.reference_top) == 5 and len(d.other_top) == 5
    assert d.reference_top[0].id != d.other_top[0].id
    assert sum(t.prob for t in d.reference_top) <= 1.0 + 1e-6
    enc = [g for g in d.layers if g.part == "encoder"]
    dec = [g for g in d.layers if g.part == "decoder"]
    assert len(enc) == 6 and len(dec) == 6
    assert all(g.rel_error < 1e-5 for g in enc + dec[:faulty.layer]), d.layers
    assert all(g.rel_error > 1e-3 for g in dec[faulty.layer:]), d.layers
    assert divergence.worst_layer(d) == f"decoder layer {faulty.layer}"
    assert "First differing token" in r.message and r.figure is not None
    same = app_explain.explain(es, "base", "FP32", "FP32", clip, "en")
    assert same.divergence.same and same.figure is None


@pytest.mark.model
def test_real_int8_difference_is_traced_through_its_onnx_graphs(whisper_engines):
    """Where the default CPU INT8 engine's decode parts from FP32's on an example
    clip, the explanation parts at the same token, and INT8's quantized encoder
    already differs from FP32's at layer 0. Which example differs depends on the
    plan and the host (plan rows read question_en.flac differently on an AVX512
    Xeon), so the test takes the first English example that does."""
    fp32, int8 = whisper_engines.by_name("FP32"), whisper_engines.by_name("INT8")
    for path in sorted((REPO / "examples").glob("*_en.flac")):
        clip = audio.load(path)
        a, b = fp32.transcribe(clip, "en"), int8.transcribe(clip, "en")
        if a.token_ids != b.token_ids:
            break
    else:
        pytest.skip("INT8 decodes every English example exactly as FP32 on this host: no difference to trace")
    k = next(i for i, (x, y) in enumerate(zip(a.token_ids, b.token_ids)) if x != y)
    r = app_explain.explain(whisper_engines, "base", "FP32", "INT8", clip, "en")
    d = r.divergence
    assert d is not None and not d.same, r.message
    assert d.step == k and d.reference_top[0].id == a.token_ids[k] and d.other_top[0].id == b.token_ids[k]
    assert len(d.layers) == 12 and d.layers[0].part == "encoder"
    # a plan may keep the first layers FP32 (costed does on AVX2): the error starts where quantization does
    assert any(g.part == "encoder" and g.rel_error > 1e-4 for g in d.layers), d.layers
    assert all(0 <= g.rel_error < 1 and g.cosine > 0.5 for g in d.layers), d.layers


@pytest.mark.model
def test_cli_explain_adds_the_divergence_to_the_json(whisper_fp32_and_faulty, monkeypatch):
    import asr_quant.engines as engines_pkg
    from asr_quant.__main__ import main

    monkeypatch.setattr(engines_pkg, "load_engines", lambda settings: whisper_fp32_and_faulty)
    clip = REPO / "examples" / "weather_en.flac"
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["transcribe", str(clip), "--language", "en", "--json", "--explain"])
    assert code == 0, err.getvalue()
    rows = {r["name"]: r for r in json.loads(out.getvalue())["engines"]}
    assert "explain" not in rows["FP32"]  # the baseline is not explained against itself
    e = rows["FAULTY"]["explain"]
    assert e["reference"] == "FP32" and e["other"] == "FAULTY" and not e["same"]
    assert len(e["layers"]) == 12 and e["reference_top"][0]["id"] != e["other_top"][0]["id"]
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        assert main(["transcribe", str(clip), "--language", "en", "--explain"]) == 0
    assert "FAULTY vs FP32: first differing token at step" in out.getvalue()
    assert "error grows most at decoder layer 3" in out.getvalue()


@pytest.mark.model
def test_bench_explain_summarizes_where_decodes_part(tmp_path, whisper_fp32_and_faulty):
    """`bench --explain` on two English examples with FP32 and the faulty twin:
    every differing clip explained, the error growing at the perturbed layer."""
    from test_bench import run_in_process

    folder = tmp_path / "clips" / "en"
    folder.mkdir(parents=True)
    for name, text in (("weather_en", "x"), ("question_en", "y")):
        (folder / f"{name}.flac").write_bytes((REPO / "examples" / f"{name}.flac").read_bytes())
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    res = run_in_process(folder.parent, out, whisper_fp32_and_faulty, "--warmup", "0", "--peers", "none",
                         "--explain")
    s = res["explain"]["FAULTY"]
    texts = {n: {r["clip"]: r["text"] for r in res["records"][n]} for n in ("FP32", "FAULTY")}
    assert s["differing"] == sum(texts["FP32"][c] != texts["FAULTY"][c] for c in texts["FP32"]) >= 1
    assert s["explained"] == s["differing"] and set(s["worst_layers"]) == {"decoder layer 3"}
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "Where FAULTY parts from FP32" in md and "decoder layer 3" in md
