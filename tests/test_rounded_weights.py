"""The rounded-weights study (engines/whisper/rounded.py, bench --rounded-weights):
FP32 arithmetic on weights rounded to INT8's grid, what 8-bit weights alone cost."""
from __future__ import annotations

import pytest

from test_bench import run_in_process

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def rounded(whisper_engines):
    from asr_quant.engines.whisper.rounded import rounded_copy

    fp32 = whisper_engines.by_name("FP32").bundle.hf_model
    model, n = rounded_copy(fp32)
    return fp32, model, n


def test_every_linear_weight_and_the_token_table_lie_on_the_int8_grid_and_nothing_else_moves(rounded):
    import torch

    fp32, model, n = rounded
    assert n == 6 * 6 + 6 * 10 + 1  # base: q, k, v, out, fc1, fc2 per encoder layer; self + cross + MLP per decoder layer
    orig = dict(fp32.named_parameters())
    moved = set()
    for name, p in model.named_parameters():
        if not torch.equal(p, orig[name]):
            moved.add(name)
    linear = {f"{m}.weight" for m, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)
              and ".layers." in m}
    assert moved == linear | {"model.decoder.embed_tokens.weight"}  # biases, norms, convs, positions untouched
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()  # still tied
    for name in ("model.encoder.layers.0.self_attn.q_proj.weight", "model.decoder.layers.5.fc2.weight",
                 "model.decoder.embed_tokens.weight"):
        w, w0 = dict(model.named_parameters())[name], orig[name]
        scale = w0.abs().amax(1, keepdim=True) / 127.0  # one scale per output channel
        steps = w / scale
        assert torch.allclose(steps, steps.round(), atol=1e-3), name  # integer multiples of the row's scale
        assert steps.abs().max() <= 127 + 1e-3 and (w - w0).abs().max() <= scale.max() / 2 + 1e-7, name
    # the shared FP32 model itself is not rounded
    w0 = orig["model.decoder.layers.5.fc2.weight"]
    assert not torch.allclose(w0 / (w0.abs().amax(1, keepdim=True) / 127.0),
                              (w0 / (w0.abs().amax(1, keepdim=True) / 127.0)).round(), atol=1e-3)


def test_rounded_weights_alone_move_the_output_less_than_simulated_int8(rounded, whisper_engines):
    """Teacher-forced on FP32's own tokens over a packaged hold-out clip: the
    rounded weights move the next-token distributions (KL > 0) but less than
    the full simulated INT8 (weights and per-call activations), which is what
    the study row relies on to split INT8's error in two."""
    import torch

    from asr_quant.engines.whisper import calibration, features
    from asr_quant.engines.whisper.plans import sensitivity
    from asr_quant.engines.whisper.ort_artifacts import _teacher_fn
    from asr_quant.engines.whisper.plans.measure import compare

    fp32, model, _ = rounded
    bundle = whisper_engines.by_name("FP32").bundle
    teacher = _teacher_fn(fp32, bundle.tokens)
    ((utt, audio),) = list(calibration.holdout_clips(1, bundle.cache_dir.parent.parent))
    mel = features.windows(audio, bundle.n_mels)[0].mel
    tokens, first = teacher(mel, utt.language)

    def logits(m):
        with torch.inference_mode():
            return m(input_features=torch.from_numpy(mel), decoder_input_ids=torch.tensor([tokens])).logits[0].numpy()

    ref = logits(fp32)
    kl, agree, n = compare(ref, logits(model), first)
    scorer = sensitivity.Scorer(fp32, [sensitivity.Sample(mel, tokens, first)])
    full = scorer.score({g.name: "int8" for g in sensitivity.groups(fp32)})
    assert n > 5 and 0 < kl / n < full["kl"], (kl / n, full)


def test_the_benchmark_shows_the_study_row_beside_fp32_and_int8(tmp_path, whisper_engines):
    """`bench --rounded-weights` on one English clip: the row is there, a study
    (no memory probe of its own), in the agreement table, and in results.md."""
    from pathlib import Path

    from asr_quant.bench import corpus
    from asr_quant.bench.run import ROUNDED_WEIGHTS
    from asr_quant.settings import Settings

    u = next(u for u in corpus.builtin(Settings.from_env().cache_dir).test if u.language == "en")
    folder = tmp_path / "clips" / "en"
    folder.mkdir(parents=True)
    (folder / Path(u.path).name).write_bytes(Path(u.path).read_bytes())
    (folder / (Path(u.path).stem + ".txt")).write_text(u.text, encoding="utf-8")
    res = run_in_process(tmp_path / "clips", tmp_path / "out", whisper_engines, "--peers", "none",
                         "--rounded-weights")
    by = {e["name"]: e for e in res["engines"]}
    study = by[ROUNDED_WEIGHTS]
    assert study["role"] == "study" and study["available"] and study["failed_calls"] == 0, study
    assert study["precision"] == "fp32" and "study" in study["details"]
    agreement = res["paired"]["engines"][ROUNDED_WEIGHTS]["rows"]["en (clips)"]  # the table that matters for it
    assert agreement["clips"] == 1 and agreement["vs_fp32"] is not None
    assert study["memory"]["alone"] is None and study["load_s"] > 0  # no probe of its own; the copy's time counted
    assert len(res["records"][ROUNDED_WEIGHTS]) == 1 and res["records"][ROUNDED_WEIGHTS][0]["text"]
    assert f"| {ROUNDED_WEIGHTS} |" in (tmp_path / "out" / "results.md").read_text(encoding="utf-8")


def test_the_memory_probe_skips_a_study_row():
    from asr_quant.bench.memprobe import memory_probe

    from fake_engines import FakeEngine

    assert memory_probe([FakeEngine("X")], {"X": "study"}, None, [(None, None)], lambda m: None) == {}
