"""Figures that mean what their labels say: weights as stored independent of
load order, INT8 on its own (no torch, no FP32 model), the same runtime
policy for every engine, an artifact key that says how it was made, and each
engine's memory measured alone. No timing is asserted here (see the benchmark)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asr_quant.settings import Settings

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "examples" / "weather_en.flac"


# --------------------------------------------------------------------------- no model needed

def test_mel_filters_are_librosas_bit_for_bit():
    import librosa

    from asr_quant.engines.whisper.features import mel_filters

    for n in (80, 128):
        ours = mel_filters(n)
        assert ours.dtype == np.float32
        assert np.array_equal(ours, librosa.filters.mel(sr=16000, n_fft=400, n_mels=n))


def test_features_are_the_same_bits_whatever_numpy_blas_threads():
    """A Ray worker sets OMP_NUM_THREADS=1, a user's shell may set OPENBLAS_NUM_THREADS, a bigger host
    has more cores: none may move the log-mel (a `@` through OpenBLAS did, and a near-tie INT8 word
    flipped with it). Each setting in its own process, since OpenBLAS reads them once at load."""
    code = ("import hashlib, numpy as np; from asr_quant import audio; from asr_quant.engines.whisper import features;"
            f"c = audio.load({str(CLIP)!r}); x = np.random.default_rng(0).normal(0, 0.1, 16000 * 61);"
            "print(hashlib.sha256(features.log_mel(c.samples).tobytes() + features.log_mel(x).tobytes()).hexdigest())")
    seen = {}
    for threads in ("1", "2", "4"):
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        env.update(OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads, PYTHONPATH=str(REPO))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        seen[threads] = out.stdout.strip()
    assert len(set(seen.values())) == 1, seen


def test_device_plan_without_torch_asks_the_driver(monkeypatch):
    from asr_quant.engines import device

    monkeypatch.setattr(device, "cuda_device_count", lambda: 0)
    plan = device.choose("auto", ort_available=["CUDAExecutionProvider", "CPUExecutionProvider"],
                         torch_needed=False)
    assert plan.ort_providers == ("CPUExecutionProvider",)  # the GPU build on a machine without a GPU
    monkeypatch.setattr(device, "cuda_device_count", lambda: 1)
    plan = device.choose("auto", ort_available=["CUDAExecutionProvider", "CPUExecutionProvider"],
                         torch_needed=False)
    assert plan.ort_providers == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert device.choose("cpu", ort_available=["CUDAExecutionProvider"], torch_needed=False).torch_device == "cpu"


def test_every_ort_session_gets_the_same_threads_and_no_spinning():
    from asr_quant.engines import runtime_policy

    so = runtime_policy.ort_session_options(3)
    assert so.intra_op_num_threads == 3 and so.inter_op_num_threads == 1
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert "no spinning" in runtime_policy.describe(3)


def test_the_benchmark_runs_engines_in_a_balanced_latin_square():
    from asr_quant.bench.run import interleave

    from fake_engines import FakeEngine

    order = []

    class Recording(FakeEngine):
        def _run(self, clip, language):
            order.append(self.info.name)
            return super()._run(clip, language)

    engines = [Recording("FP32", "a"), Recording("FP16", "a"), Recording("INT8", "a")]
    from asr_quant import audio

    clip = audio.load(CLIP)

    class U:
        def __init__(self, i):
            self.id, self.row, self.language, self.text = f"c{i}", "en (x)", "en", "a"

    interleave(engines, [(U(0), clip), (U(1), clip), (U(2), clip)], runs=2, warmup=0)
    calls = [order[i:i + 3] for i in range(0, 18, 3)]  # 3 engines: a cycle of 6 orders (the pair of squares)
    assert calls[:4] == [["FP32", "FP16", "INT8"], ["FP16", "INT8", "FP32"], ["INT8", "FP32", "FP16"],
                         ["INT8", "FP16", "FP32"]]
    from collections import Counter

    assert set(Counter((i, e) for c in calls for i, e in enumerate(c)).values()) == {2}  # every position
    follows = Counter((a, b) for c in calls for a, b in zip(c, c[1:]))
    assert len(follows) == 6 and set(follows.values()) == {2}  # every neighbour, equally often


def test_int8_key_follows_calibration_speech_builder_code_and_settings(monkeypatch, tmp_path):
    from asr_quant.engines.whisper import calibration, ort_artifacts
    from asr_quant.engines.whisper.plans.config import QuantConfig

    class B:
        sha256, cache_dir = "abc", tmp_path

    full = ort_artifacts.artifact_key(B, "int8", QuantConfig())
    assert full != ort_artifacts.artifact_key(B, "int8", QuantConfig(calib_size=4))
    assert full != ort_artifacts.artifact_key(B, "fp32", None)
    monkeypatch.setattr(calibration, "INDEX", tmp_path / "missing.tsv")  # no packaged speech
    assert calibration.digest() == "none"
    degraded = ort_artifacts.artifact_key(B, "int8", QuantConfig())
    assert degraded != full  # a dynamic-only build never takes the full recipe's key
    with pytest.raises(calibration.CalibrationError):
        calibration.calibration_clips(2)
    monkeypatch.undo()
    monkeypatch.setattr(ort_artifacts, "builder_hash", lambda: "edited")  # the quantizer's code changed
    assert ort_artifacts.artifact_key(B, "int8", QuantConfig()) != full


def test_calibration_speech_is_packaged_and_needs_no_espeak(monkeypatch):
    """With espeak-ng off the PATH the calibration and hold-out clips still
    load (from the package), checked against their sha256, in the seed
    article's languages too."""
    from asr_quant.engines.whisper import calibration

    monkeypatch.setenv("PATH", "/nonexistent")
    calib = calibration.calibration_clips(len(calibration.CALIBRATION))
    hold = calibration.holdout_clips(len(calibration.HOLDOUT))
    assert len(calib) == len(calibration.CALIBRATION) and len(hold) == len(calibration.HOLDOUT)
    assert all(a.dtype == np.float32 and 16000 < len(a) < 16000 * 30 and np.abs(a).max() > 0.05  # 1-30 s, not silent
               for _, a in calib + hold)
    for langs in (calibration.languages(calibration.CALIBRATION, len(calibration.CALIBRATION)),
                  calibration.languages(calibration.HOLDOUT, len(calibration.HOLDOUT))):
        assert {"zh", "en", "yue", "ja", "ko"} <= set(langs)
    assert {"en", "zh", "ja"} <= set(calibration.languages(calibration.HOLDOUT, 4))  # the default hold-out size


def test_a_damaged_packaged_clip_is_refused(monkeypatch, tmp_path):
    import shutil

    from asr_quant.engines.whisper import calibration

    shutil.copytree(calibration.SPEECH_DIR, tmp_path / "speech")
    monkeypatch.setattr(calibration, "SPEECH_DIR", tmp_path / "speech")
    monkeypatch.setattr(calibration, "INDEX", tmp_path / "speech" / "index.tsv")
    (tmp_path / "speech" / "calib-00.flac").write_bytes(b"not audio")
    with pytest.raises(calibration.CalibrationError, match="damaged"):
        calibration.calibration_clips(1)


# --------------------------------------------------------------------------- real weights

def _load(precisions: str):
    from asr_quant.engines import load_engines

    return load_engines(Settings(model="base", precisions=precisions, device="cpu", threads=2,
                                 cache_dir=Settings.from_env().cache_dir))


@pytest.mark.model
def test_weights_as_stored_do_not_depend_on_load_order():
    """tiny.en's FP32 and FP16 loaded in one order, then, in the same process
    with the first set still alive, in the other: each engine reports the
    same weights as stored on a call in both orders, and they are its
    tensors' own bytes. The shared process's load growth, which does depend
    on order, differs between the two, so a figure read from RSS would fail
    here."""
    from asr_quant import audio
    from asr_quant.engines import load_engines

    def load(precisions):
        return load_engines(Settings(model="tiny.en", precisions=precisions, device="cpu", threads=2,
                                     cache_dir=Settings.from_env().cache_dir))

    clip = audio.load(CLIP)
    first, second = load("fp32,fp16"), load("fp16,fp32")
    try:
        assert [e.info.name for e in first.engines] == ["FP32", "FP16"]
        assert [e.info.name for e in second.engines] == ["FP16", "FP32"]
        reported = [{e.info.name: e.transcribe(clip, "en").memory.weights_bytes for e in s.engines}
                    for s in (first, second)]
        assert reported[0] == reported[1]
        for e in second.engines:
            tensors = {t.data_ptr(): t.numel() * t.element_size()
                       for t in list(e.model.parameters()) + list(e.model.buffers())}
            assert reported[1][e.info.name] == sum(tensors.values()), e.info.name
        fp32 = second.by_name("FP32").model
        assert fp32.proj_out.weight is fp32.model.decoder.embed_tokens.weight  # tied: counted once
        assert reported[0]["FP16"] == pytest.approx(reported[0]["FP32"] / 2, rel=0.02)
        growth = [s.by_name("FP32").info.resident_bytes for s in (first, second)]
        assert growth[0] != growth[1]  # the order-dependent figure does move: this test can tell them apart
    finally:
        for e in first.engines + second.engines:
            e.close()


@pytest.mark.model
def test_ort_fp32_says_what_fp32_says(whisper_engines):
    """The exported FP32 graph in ONNX Runtime gives PyTorch FP32's tokens on
    the English examples: only the runtime differs."""
    from asr_quant import audio
    from asr_quant.examples import read_examples

    ort = _load("ort-fp32")
    try:
        engine = ort.by_name("ORT-FP32")
        assert engine.info.available, engine.info.error
        fp32 = whisper_engines.by_name("FP32")
        for e in read_examples():
            clip = audio.load(e.path)
            a, b = fp32.transcribe(clip, e.language), engine.transcribe(clip, e.language)
            assert b.token_ids == a.token_ids, (e.path.name, a.text, b.text)
    finally:
        ort.engines[0].close()


@pytest.mark.model
def test_int8_alone_imports_neither_torch_nor_transformers(whisper_engines, tmp_path):
    """With the INT8 artifacts cached (the session built them), the CLI on
    INT8 alone never imports torch or transformers and builds no FP32 model."""
    env = dict(os.environ, ASRQ_CACHE_DIR=Settings.from_env().cache_dir)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "asr_quant", "transcribe", str(CLIP),
                           "--precisions", "int8", "--threads", "2", "--json"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "onnxruntime" in imported and "asr_quant.engines.whisper.int8" in imported  # the probe works
    heavy = {m for m in imported if m.split(".")[0] in ("torch", "transformers", "librosa", "numba")}
    assert heavy == set()
    row = json.loads(proc.stdout)["engines"][0]
    assert row["error"] is None and "sunny" in row["text"].lower()
    assert row["weights_bytes"] == whisper_engines.by_name("INT8").info.weights_bytes


@pytest.mark.model
def test_each_engine_alone_has_its_working_memory_measured_and_cached(tmp_path, whisper_engines):
    """INT8 (the cheapest) alone in a fresh process: load growth, a call's
    working memory, the process's peak and the engine's weights, then the
    same figures from the cache without a second process."""
    from asr_quant.engines import alone

    settings = Settings(model="base", threads=2, device="cpu", cache_dir=Settings.from_env().cache_dir)
    spec = alone.spec_for(settings, "int8", CLIP, "en", artifact=whisper_engines.by_name("INT8").info.artifact)
    first = alone.measure(spec, use_cache=False)
    assert "error" not in first, first
    assert first["artifact"] == spec["artifact"]  # the fresh process ran the same INT8 files
    assert first["weights_bytes"] == whisper_engines.by_name("INT8").info.weights_bytes
    assert 0 < first["rss_start"] < first["rss_after_load"] <= first["peak_rss"]
    assert first["load_growth"] > 0.5 * first["weights_bytes"]  # the weights, at least mostly, are read in
    assert 1e6 < first["working_bytes"] < first["peak_rss"]
    assert first["measured_at"][:4].isdigit()
    again = alone.cached(spec)
    assert again == first
    from asr_quant import audio

    int8 = whisper_engines.by_name("INT8")
    try:
        alone.attach_cached(whisper_engines, settings, CLIP, "en")
        assert int8.info.alone == first
        t = int8.transcribe(audio.load(CLIP), "en")
        assert t.memory.working_bytes == first["working_bytes"] and t.memory.weights_bytes == first["weights_bytes"]
        assert t.memory.process_kind == "process RSS" and t.memory.process_bytes > t.memory.weights_bytes
    finally:
        for e in whisper_engines.engines:
            e.info.alone = None  # the session's engines stay as the other tests expect them
