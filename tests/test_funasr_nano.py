"""Fun-ASR-Nano engines, proven on the tiny twin (random weights, real layout).

The real model cannot be downloaded here; these tests run the production
loading, export and decoding code on a structure-identical model built from
funasr's own classes (tests/conftest.py: `funasr_twin`, `funasr_engines`).
"""
from __future__ import annotations

import shutil
import socket

import numpy as np
import pytest

from asr_quant.audio import Clip
from asr_quant.engines import EngineError

pytestmark = pytest.mark.funasr


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced, amplitude-modulated signal: deterministic input with structure."""
    rng = np.random.RandomState(seed)
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 10)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2
    y = y + 0.01 * rng.randn(len(t))
    return (0.4 * y / np.abs(y).max()).astype(np.float32)


@pytest.fixture(scope="module")
def clip():
    return Clip(samples=speechlike(2.6), name="speechlike")


# ----------------------------------------------------------------------------- loading
def test_every_checkpoint_tensor_is_loaded(funasr_engines, funasr_twin):
    import torch

    fp32 = funasr_engines.by_name("FP32")
    rep = fp32.load_report
    assert rep.complete, (rep.missing[:5], rep.unused[:5], rep.mismatched[:5])
    ckpt = torch.load(funasr_twin / "model.pt", map_location="cpu")["state_dict"]
    state = fp32.model.state_dict()
    assert rep.loaded == len(state) == len(ckpt)
    # funasr only logs mismatches, so compare values ourselves.
    differing = [k for k, v in ckpt.items() if not torch.equal(state[k].float(), v.float())]
    assert differing == []


def test_loader_reports_a_checkpoint_that_does_not_fit(funasr_twin, tmp_path):
    import torch

    from asr_quant.engines.funasr_nano import loading

    broken = tmp_path / "broken"
    shutil.copytree(funasr_twin, broken)
    obj = torch.load(broken / "model.pt", map_location="cpu")
    dropped = next(k for k in obj["state_dict"] if k.startswith("audio_adaptor."))
    del obj["state_dict"][dropped]
    torch.save(obj, broken / "model.pt")
    with pytest.raises(EngineError, match="missing"):
        loading.build_automodel(loading.resolve(str(broken)), "cpu", 2)


def test_relative_working_directory_never_reaches_for_a_hub(funasr_twin, monkeypatch):
    """The config names Qwen3-0.6B relatively; loaded from elsewhere, that would be a hub id."""
    import funasr.download.download_model_from_hub as dl
    import huggingface_hub
    import transformers
    from transformers import AutoConfig

    from asr_quant.engines.funasr_nano import loading

    calls = []

    def guard(name):
        def refuse(*a, **k):
            calls.append(name)
            raise OSError(f"test guard: {name} called")
        return refuse

    monkeypatch.setattr(socket.socket, "connect", guard("socket.connect"))
    for mod, name in [(dl, "get_or_download_model_dir"), (dl, "get_or_download_model_dir_hf"),
                      (huggingface_hub, "snapshot_download"), (huggingface_hub, "hf_hub_download"),
                      (huggingface_hub.file_download, "hf_hub_download"),
                      (transformers.utils.hub, "hf_hub_download")]:
        if hasattr(mod, name):
            monkeypatch.setattr(mod, name, guard(name))

    elsewhere = funasr_twin.parent
    monkeypatch.chdir(elsewhere)
    # The guard works: the config's relative name, resolved from here, is a hub request.
    with pytest.raises(Exception):
        AutoConfig.from_pretrained("Qwen3-0.6B")
    assert calls, "the hub guard did not catch transformers reaching for the hub"
    calls.clear()

    folder = loading.resolve(funasr_twin.name)  # relative path
    assert folder.path.is_absolute() and folder.source.startswith("local folder")
    am, report = loading.build_automodel(folder, "cpu", 2)
    assert report.complete
    assert calls == []
    assert am.model.ctc_decoder is None  # timestamp path (needs torchaudio) is off


def test_unknown_precision_and_broken_folder_become_unavailable(funasr_twin, tmp_path):
    from asr_quant.engines.funasr_nano import load
    from asr_quant.settings import Settings

    empty = tmp_path / "Fun-ASR-empty"
    empty.mkdir()
    es = load(Settings(model=str(empty), precisions="fp32,int8", device="cpu", threads=2,
                       cache_dir=str(tmp_path / "c")))
    assert [e.info.available for e in es.engines] == [False, False]
    assert "model.pt" in es.engines[0].info.error
    tr = es.engines[0].transcribe(Clip(samples=speechlike(1.0)))
    assert tr.error and "unavailable" in tr.error


# ----------------------------------------------------------------------------- FP32 = funasr
def test_fp32_token_ids_equal_funasr_generate(funasr_engines, clip):
    import torch

    fp32 = funasr_engines.by_name("FP32")
    ours = fp32.transcribe(clip)
    assert ours.ok, ours.error
    am = fp32.automodel
    seen = {}
    original = am.model.llm.generate

    def spy(*a, **k):
        seen["ids"] = original(*a, **k)
        return seen["ids"]

    am.model.llm.generate = spy
    try:
        res = am.generate(input=[torch.from_numpy(clip.samples.copy())], cache={}, batch_size=1,
                          max_length=fp32.max_new_tokens)
    finally:
        del am.model.llm.generate
    theirs = [int(i) for i in seen["ids"][0] if int(i) not in fp32.eos]
    assert len(ours.token_ids) > 0
    assert ours.token_ids == theirs
    assert ours.text == res[0]["text"]


# ----------------------------------------------------------------------------- ONNX
def test_onnx_encoder_adaptor_matches_torch_and_int8_keeps_cosine(funasr_engines, tmp_path):
    import torch

    from asr_quant.engines.funasr_nano import export

    fp32 = funasr_engines.by_name("FP32")
    model = fp32.model
    path = export.export_encoder(model, tmp_path / "enc.onnx")
    sess = export.session(path, 2)
    int8 = export.session(funasr_engines.by_name("INT8").artifacts / "encoder.int8.onnx", 2)
    for seconds in (1.3, 4.7):  # two input lengths: the time axis must not be frozen
        p = fp32.builder.prepare(speechlike(seconds, seed=3), None)
        with torch.no_grad():  # funasr's own modules, its own make_pad_mask
            enc, lens = model.audio_encoder(p.speech.clone(), p.speech_lengths)
            ref, _ = model.audio_adaptor(enc, lens)
        ref = ref.numpy()
        got = sess.run(None, {"speech": p.speech.numpy()})[0]
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
        q = int8.run(None, {"speech": p.speech.numpy()})[0]
        assert export.cosine(q, ref) >= 0.99


def test_onnx_decoder_logits_match_torch_for_first_steps(funasr_engines, clip, tmp_path):
    import torch

    from asr_quant.engines.funasr_nano import export, pipeline

    fp32 = funasr_engines.by_name("FP32")
    llm = fp32.model.llm
    path = export.export_decoder(llm, tmp_path / "dec.onnx")
    sess = export.session(path, 2)
    p = fp32.builder.prepare(clip.samples, None)
    embeds = pipeline.splice(fp32._embed(p.source_ids), fp32.encode(p), p)
    pk, pv = export.empty_cache(llm.config)
    x, cache = embeds, None
    for step in range(5):
        with torch.no_grad():
            out = llm(inputs_embeds=x, past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        ref = out.logits[0, -1].numpy()
        got, pk, pv = sess.run(None, {"inputs_embeds": x.numpy(), "past_keys": pk, "past_values": pv})
        np.testing.assert_allclose(got[0], ref, atol=1e-4, rtol=0)
        x = fp32._embed([int(np.argmax(ref))])
    assert pk.shape[3] == embeds.shape[1] + 4


def test_int8_artifacts_are_cached_and_written_whole(funasr_engines, funasr_twin):
    import time

    from asr_quant.engines.funasr_nano import artifacts, loading

    int8 = funasr_engines.by_name("INT8")
    folder = loading.resolve(str(funasr_twin))
    start = time.perf_counter()
    again, manifest = artifacts.ensure(folder, int8.artifacts.parent.parent, 2, lambda am: int8.builder)
    assert again == int8.artifacts and time.perf_counter() - start < 5  # no second export
    assert manifest["encoder"]["chosen"] in ("dynamic", "static")
    assert {"encoder.int8.onnx", "decoder.int8.onnx", "embed.int8.npz"} <= set(manifest["files"])
    assert not [p for p in again.parent.iterdir() if ".tmp-" in p.name]


# ----------------------------------------------------------------------------- the interface
def test_all_engines_return_a_result_with_sizes_and_memory(funasr_engines, clip):
    assert [e.info.name for e in funasr_engines.engines] == ["FP32", "FP16", "INT8"]
    assert funasr_engines.model.params > 0
    assert funasr_engines.model.source.startswith("local folder")
    for e in funasr_engines.engines:
        assert e.info.available, e.info.error
        tr = e.transcribe(clip, "zh")
        assert tr.ok, f"{e.info.name}: {tr.error}"
        assert tr.tokens == len(tr.token_ids) > 0 and tr.text
        assert tr.audio_s == pytest.approx(2.6, abs=0.01)
        assert tr.timings.total_s > 0 and tr.timings.decoding_s > 0
        assert e.info.disk_bytes > 0 and tr.memory.disk_bytes == e.info.disk_bytes
        assert tr.memory.peak_bytes > 0
    fp16 = funasr_engines.by_name("FP16")
    assert "FP32" in fp16.info.details and "FP16" in fp16.info.details
    assert fp16.model.llm.dtype.__str__() == "torch.float16"
    assert next(fp16.model.audio_encoder.parameters()).dtype.__str__() == "torch.float32"


def test_fp16_nan_logits_become_an_error_not_a_transcript(funasr_engines, clip, monkeypatch):
    fp16 = funasr_engines.by_name("FP16")
    real_step = fp16._step

    def overflowing(embeds, cache):
        logits, cache = real_step(embeds, cache)
        logits[3] = np.nan
        return logits, cache

    monkeypatch.setattr(fp16, "_step", overflowing)
    tr = fp16.transcribe(clip)
    assert not tr.ok and "NaN" in tr.error and tr.text == ""


def test_long_clip_is_split_the_same_way_for_every_engine(funasr_engines):
    from asr_quant.engines.funasr_nano import pipeline

    y = speechlike(64.0, seed=5)
    y[int(27.0 * 16000):int(27.3 * 16000)] = 0.0  # a pause inside the first search window
    pieces = pipeline.split(y)
    assert len(pieces) == 3 and all(len(p) <= 30 * 16000 for p in pieces)
    assert np.array_equal(np.concatenate(pieces), y)
    assert 27.0 * 16000 <= len(pieces[0]) <= 27.3 * 16000
    int8 = funasr_engines.by_name("INT8")
    tr = int8.transcribe(Clip(samples=y[: 16000 * 33]))  # two segments, cheap engine
    assert tr.ok and tr.tokens > 0


# ----------------------------------------------------------------------------- small pieces
def test_degenerate_output_detection():
    from asr_quant.engines.funasr_nano import pipeline as pl

    assert "empty" in pl.degenerate([], pl.Decoded([], 0.0))
    assert "NaN" in pl.degenerate([1, 2], pl.Decoded([1, 2], 0.0, nonfinite=True))
    assert "loop" in pl.degenerate([5, 6] * 20, pl.Decoded([5, 6] * 20, 0.0))
    assert pl.degenerate([1, 2, 3, 4, 5, 6, 7], pl.Decoded([1, 2, 3, 4, 5, 6, 7], 0.0)) is None


def test_greedy_stops_at_eos_and_flags_nonfinite():
    from asr_quant.engines.funasr_nano import pipeline as pl

    script = iter([3, 4, 9])

    def step(embeds, state):
        logits = np.zeros(10, np.float32)
        logits[next(script)] = 1.0
        return logits, state

    d = pl.greedy(step, None, lambda ids: None, eos_ids={9})
    assert d.token_ids == [3, 4] and not d.nonfinite

    d = pl.greedy(lambda e, s: (np.full(10, np.nan, np.float32), s), None, lambda ids: None, eos_ids={9})
    assert d.nonfinite and d.token_ids == []


def test_language_names_follow_funasr_prompt():
    from asr_quant.engines.funasr_nano import pipeline as pl

    assert pl.prompt_language("zh") == "中文" and pl.prompt_language("yue") == "粤语"
    assert pl.prompt_language(None) is None and pl.prompt_language("auto") is None
    assert pl.prompt_language("日文") == "日文"
