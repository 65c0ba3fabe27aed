"""The Whisper INT8 engine: the ONNX export is exact in FP32, the artifacts
are cached and checked, and the recipe's choices behave as documented.

Accuracy of the INT8 engine against FP32 (FP32's transcript on the real
zh/ja/ko recordings; identical on most of 43 recorded Spanish prompts, with a
bounded pooled WER delta) is tested with the other precisions in
test_whisper.py, on the same session-wide engines. No timing is asserted.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from asr_quant import audio
from asr_quant.engines.whisper import calibration
from asr_quant.engines.whisper.plans import recipe as quantize

REPO = Path(__file__).resolve().parents[1]
SPEECH = REPO.parent / "shared" / "speech"


# --------------------------------------------------------------------------- no model needed

def _measured(kl_static, kl_dynamic, enc_static, enc_dynamic):
    return {"static": {"kl": kl_static, "top1": 0.95, "encoder_cpu_s": enc_static},
            "dynamic": {"kl": kl_dynamic, "top1": 0.95, "encoder_cpu_s": enc_dynamic}}


@pytest.mark.parametrize("measured, expected, rule", [
    # clearly lower error wins, even when it is the slower one (either way round)
    (_measured(0.050, 0.010, 0.5, 0.9), "dynamic", "lower mean KL"),
    (_measured(0.010, 0.050, 0.9, 0.5), "static", "lower mean KL"),
    # 0.0111 is 11 % above 0.0100: outside the 10 % tie, so still the lower error
    (_measured(0.0100, 0.0111, 0.9, 0.5), "static", "lower mean KL"),
    # within 10 % of each other: static, whatever the build's timings said (they vary with the host's load,
    # and one cache key must not hold either graph by chance)
    (_measured(0.0100, 0.0105, 0.9, 0.5), "static", "no per-call range pass"),
    (_measured(0.0105, 0.0100, 0.5, 0.9), "static", "no per-call range pass"),
    (_measured(0.0100, 0.0100, 0.7, 0.6), "static", "no per-call range pass"),
    (_measured(0.0100, 0.0100, 0.6, 0.7), "static", "no per-call range pass"),
])
def test_choose_picks_lower_error_and_breaks_ties_without_timings(measured, expected, rule):
    """quant_measure.choose on made-up measurements: no model, nothing skipped."""
    from asr_quant.engines.whisper.plans import measure as quant_measure

    choice, why = quant_measure.choose(measured)
    assert choice == expected and rule in why
    assert "static KL" in why and "dynamic KL" in why  # the reason carries both measurements


def test_quant_config_rejects_bad_settings_and_keys_differ():
    with pytest.raises(ValueError):
        quantize.QuantConfig(mode="fast")
    with pytest.raises(ValueError):
        quantize.QuantConfig(calib_size=0)
    with pytest.raises(ValueError):
        quantize.QuantConfig(fc2="int4")
    from types import SimpleNamespace

    from asr_quant.engines.whisper import ort_artifacts

    def key(sha, **q):  # the key the cache really uses (QuantConfig has no key of its own)
        return ort_artifacts.artifact_key(SimpleNamespace(sha256=sha), "int8", quantize.QuantConfig(**q))

    assert key("x", calib_size=4) != key("x", calib_size=8) and key("x", calib_size=4) != key("y", calib_size=4)
    assert key("x", calib_size=4) == key("x", calib_size=4)
    assert not hasattr(quantize.QuantConfig, "key")


def _norm(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def test_calibration_and_holdout_speech_share_nothing_with_test_clips():
    from asr_quant.examples import read_examples

    tests = {_norm(e.reference) for e in read_examples(REPO / "examples")}
    if (SPEECH / "manifest.tsv").is_file():
        tests |= {_norm(line.split("\t")[2]) for line in (SPEECH / "manifest.tsv").read_text(encoding="utf-8").splitlines()[1:]}
    assert tests, "no test clip references found"
    calib = {_norm(u.text) for u in calibration.CALIBRATION}
    hold = {_norm(u.text) for u in calibration.HOLDOUT}
    assert not calib & tests and not hold & tests and not calib & hold
    assert len({u.language for u in calibration.CALIBRATION[:8]}) >= 6  # a small set is still multilingual


# --------------------------------------------------------------------------- real weights

@pytest.fixture(scope="module")
def bundle(whisper_engines):
    engine = whisper_engines.by_name("FP32")
    return engine.bundle


@pytest.fixture(scope="module")
def int8(whisper_engines):
    engine = whisper_engines.by_name("INT8")
    if not engine.info.available:
        pytest.fail(f"INT8 failed to load: {engine.info.error}")
    return engine


@pytest.mark.model
def test_fp32_export_matches_torch(bundle, tmp_path):
    """Encoder (cross-attention K/V) and decoder logits of the FP32 graphs,
    prompt then two cached steps, against transformers on a real clip, with
    some MLP channels split apart as the INT8 recipe does."""
    import onnxruntime as ort
    import torch

    from asr_quant.engines.whisper import features, onnx_export

    m = bundle.hf_model
    d = onnx_export.dims(m.config)
    outliers = {side: [torch.tensor([3, 100, 777]) for _ in range(d["n_layers"])] for side in ("encoder", "decoder")}
    enc_path, dec_path = onnx_export.export(m, tmp_path, outliers=outliers)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    enc, dec = (ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"]) for p in (enc_path, dec_path))

    clip = audio.load(REPO / "examples" / "weather_en.flac")
    mel = features.windows(clip.samples, bundle.n_mels)[0].mel
    tokens = bundle.tokens.prompt("en") + [440, 5503, 486]
    with torch.inference_mode():
        hidden = m.model.encoder(torch.from_numpy(mel)).last_hidden_state
        ref_logits = m(encoder_outputs=(hidden,), decoder_input_ids=torch.tensor([tokens])).logits[0].numpy()
        ref_k = [layer.encoder_attn.k_proj(hidden).view(1, -1, d["n_heads"], d["head_dim"]).transpose(1, 2).numpy()
                 for layer in m.model.decoder.layers]

    def close(a, b, rel=1e-4):
        err = float(np.abs(a - b).max() / np.abs(b).max())
        assert err < rel, f"relative error {err:.2e}"

    cross = enc.run(None, {"mel": mel})
    for got, want in zip(cross[:d["n_layers"]], ref_k):
        close(got, want)
    names = onnx_export.cross_names(d["n_layers"])
    empty = np.zeros((1, d["n_heads"], 0, d["head_dim"]), np.float32)
    feed = {**dict(zip(names, cross)), **{k: empty for k in onnx_export.cache_names(d["n_layers"])}}
    first = len(tokens) - 2
    out = dec.run(None, {**feed, "tokens": np.asarray([tokens[:first]])})
    close(out[0][0], ref_logits[:first])
    for i in range(first, len(tokens)):
        feed.update(zip(onnx_export.cache_names(d["n_layers"]), out[1:]))
        out = dec.run(None, {**feed, "tokens": np.asarray([[tokens[i]]])})
        assert out[1].shape[2] == i + 1
        close(out[0][0, -1], ref_logits[i])


@pytest.mark.model
def test_int8_engine_says_what_it_is(int8):
    import onnxruntime as ort

    info = int8.info
    assert info.precision == "int8" and info.runtime == f"ONNX Runtime {ort.__version__}"
    assert info.device == int8.step_model.encoder.get_providers()[0]
    manifest = json.loads((int8.folder / "manifest.json").read_text())
    plan = manifest["quant"]["plan"]
    assert plan == int8.quant.plan and f"plan '{plan}'" in info.details.lower()
    if plan == "recipe":
        assert int8.encoder_mode in ("static", "dynamic") and f"encoder {int8.encoder_mode}" in info.details.lower()
    else:
        assert int8.encoder_mode == {"rows": "rows", "blockwise": "blockwise", "search": "dynamic", "costed": "costed"}[plan]
    assert f"instruction set {manifest['quant']['isa']}" in info.details or plan != "rows"
    assert manifest["host"]["level"] == manifest["quant"]["isa"]  # built for the host it was built on
    files = [int8.folder / "encoder.onnx", int8.folder / "decoder.onnx"]
    assert info.disk_bytes == sum(f.stat().st_size for f in files)
    assert manifest["report"]["encoder"] == int8.encoder_mode
    if manifest["report"]["measured"]:  # the choice is backed by figures
        assert int8.encoder_mode in manifest["report"]["measured"]
    # INT8 on disk: well under the FP32 weights (290 MB for base), the token table stored once.
    assert info.disk_bytes < 0.5 * bundle_fp32_bytes(int8)


@pytest.mark.model
def test_the_build_measures_the_decoder_as_the_engine_decodes(int8):
    """quant_measure's teacher-forced logits are the engine's own step by step
    (the start sequence in one call, then one token per call, each with its own
    dynamic activation scale), not one call over all tokens, which quantizes
    every token with one shared scale and differs."""
    from asr_quant.engines.whisper import calibration, features, onnx_io
    from asr_quant.engines.whisper.plans import measure as quant_measure

    d = onnx_io.dims(int8.bundle.config)
    sm = int8.step_model
    ((utt, audio),) = list(calibration.holdout_clips(1, int8.bundle.cache_dir.parent.parent))
    mel = features.windows(audio, int8.bundle.n_mels)[0].mel
    prompt = int8.bundle.tokens.prompt(utt.language)
    tokens = prompt + int8.bundle.tokens.tokenizer.encode(" " + utt.text, add_special_tokens=False).ids[:12]
    first = len(prompt) - 1
    enc, dec = (quant_measure._session(int8.folder / f"{n}.onnx") for n in ("encoder", "decoder"))
    measured, _ = quant_measure._prompt_logits(enc, dec, mel, tokens, first, d)
    state = sm.encode(mel)
    logits, cache = sm.step(state, np.asarray([tokens[:first + 1]], np.int64), None)
    engine = [logits]
    for tok in tokens[first + 1:]:
        logits, cache = sm.step(state, np.asarray([[tok]], np.int64), cache)
        engine.append(logits)
    engine = np.stack(engine)
    assert np.abs(measured[first:] - engine).max() <= 1e-3 * np.abs(engine).max()
    # One call over all tokens is not what the engine computes: the recipe's dynamic decoder shares one
    # activation scale over the call (gap ~3 %), and MatMulNBits (the rows plan's decoder) takes another
    # kernel path for several rows (gap ~1.2 %); the step-by-step measure above is within 0.1 %.
    one_call = dec.run(["logits"], {"tokens": np.asarray([tokens], np.int64),
                                    **{k: np.zeros((1, d["n_heads"], 0, d["head_dim"]), np.float32)
                                       for k in onnx_io.cache_names(d["n_layers"])},
                                    **dict(zip(onnx_io.cross_names(d["n_layers"]), enc.run(None, {"mel": mel})))})[0][0]
    gap = np.abs(one_call[first:] - engine).max() / np.abs(engine).max()
    assert gap > 5e-3, gap


def bundle_fp32_bytes(engine) -> int:
    return engine.bundle.fp32_file.stat().st_size


@pytest.mark.model
def test_second_construction_reuses_cached_artifacts(int8, whisper_engines):
    from asr_quant.engines import device
    from asr_quant.engines.whisper import int8 as int8_module, ort_artifacts
    from asr_quant.settings import Settings

    files = [int8.folder / n for n in ("encoder.onnx", "decoder.onnx", "manifest.json")]
    before = {f: f.stat().st_mtime_ns for f in files}
    builds = ort_artifacts.BUILDS
    s = Settings(model="base", device="cpu", threads=2, cache_dir=Settings.from_env().cache_dir)
    again = int8_module.WhisperInt8Engine(int8.bundle, s, device.choose("cpu"))
    assert ort_artifacts.BUILDS == builds, "rebuilt although the cache held valid artifacts"
    assert again.folder == int8.folder
    assert {f: f.stat().st_mtime_ns for f in files} == before
    again.close()


@pytest.mark.model
def test_corrupt_artifact_is_rebuilt_not_trusted(bundle, tmp_path):
    """A cheap recipe (dynamic, fc2 in FP32: no calibration) in a private cache:
    build, truncate the decoder, build again; a damaged manifest fails validation too."""
    from asr_quant.engines import device
    from asr_quant.engines.whisper import int8 as int8_module, ort_artifacts
    from asr_quant.settings import Settings

    private = dataclasses.replace(bundle, cache_dir=tmp_path / "model")
    s = Settings(model="base", device="cpu", threads=2, cache_dir=str(tmp_path))
    cfg = quantize.QuantConfig(mode="dynamic", fc2="fp32", holdout_size=0)
    plan = device.choose("cpu")
    clip = audio.load(REPO / "examples" / "meeting_en.flac")

    builds = ort_artifacts.BUILDS
    first = int8_module.WhisperInt8Engine(private, s, plan, quant=cfg)
    assert ort_artifacts.BUILDS == builds + 1
    text = first.transcribe(clip, "en").text
    assert "meeting" in text.lower()
    first.close()

    dec = first.folder / "decoder.onnx"
    with open(dec, "r+b") as f:
        f.truncate(dec.stat().st_size // 2)
    second = int8_module.WhisperInt8Engine(private, s, plan, quant=cfg)
    assert ort_artifacts.BUILDS == builds + 2
    assert second.transcribe(clip, "en").text == text
    second.close()

    (second.folder / "manifest.json").write_text("{not json")
    assert ort_artifacts.validate(second.folder) is None  # would be rebuilt, as above
    assert not list((tmp_path / "model").glob("*.tmp-*")), "a temp build folder was left behind"
