"""FP16/BF16 on a CPU without 16-bit arithmetic (torch_engine.compute_products_in_fp32):
which CPUs take the path, and that a product takes the stored 16-bit values, computes in
FP32 and rounds back, while one-token products keep PyTorch's half kernel. On a tiny
random Whisper, so no weights are needed."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from asr_quant.engines.whisper import torch_engine as te


@pytest.mark.parametrize("precision,flags,native", [
    ("fp16", {"avx2", "fma", "f16c"}, False),  # f16c only converts; it has no FP16 arithmetic
    ("fp16", {"avx512f", "avx512_fp16"}, True),
    ("fp16", {"amx_fp16"}, True),
    ("fp16", {"avx512_bf16"}, False),
    ("bf16", {"avx512_bf16"}, True),
    ("bf16", {"amx_bf16"}, True),
    ("bf16", {"avx512_fp16"}, False),
    ("fp16", {"fp", "asimd", "fphp", "asimdhp"}, True),  # ARM (Features line)
    ("fp16", {"fp", "asimd"}, False),
    ("bf16", {"asimd", "bf16"}, True),
])
def test_which_cpus_have_16_bit_arithmetic(precision, flags, native):
    assert te.cpu_has_half_math(precision, flags) is native


@pytest.fixture(scope="module")
def tiny():
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    cfg = WhisperConfig(vocab_size=120, num_mel_bins=8, d_model=32, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                        decoder_ffn_dim=64, max_source_positions=40, max_target_positions=16,
                        decoder_start_token_id=1, pad_token_id=0, eos_token_id=2, bos_token_id=1)
    fp32 = WhisperForConditionalGeneration(cfg).eval()
    half = WhisperForConditionalGeneration(cfg).eval()
    half.load_state_dict(fp32.state_dict())
    half = half.half()
    plain = WhisperForConditionalGeneration(cfg).eval()
    plain.load_state_dict(half.state_dict())
    plain = plain.half()
    te.compute_products_in_fp32(half)
    return fp32, half, plain


def test_many_row_products_compute_in_fp32_on_the_half_values_and_round_back(tiny):
    _, half, plain = tiny
    fc = half.model.encoder.layers[0].fc1
    assert fc.weight.dtype == torch.float16  # the weights stay 16-bit
    x = torch.randn(1, 20, 32).half()
    want = F.linear(x.float(), fc.weight.float(), fc.bias.float()).half()
    with torch.inference_mode():
        got = fc(x)
        assert got.dtype == torch.float16 and torch.equal(got, want)
        one = torch.randn(1, 1, 32).half()  # one token: PyTorch's own half kernel, as unpatched
        assert torch.equal(fc(one), plain.model.encoder.layers[0].fc1(one))
        conv = half.model.encoder.conv1
        mel = torch.randn(1, 8, 80).half()
        assert torch.equal(conv(mel), F.conv1d(mel.float(), conv.weight.float(), conv.bias.float(),
                                               padding=1).half())


def test_the_model_decodes_as_its_fp32_twin_within_half_rounding(tiny):
    """The whole tiny model, encoder and one cached decoder step, through the registered attention
    and mask functions: as close to FP32 as plain half is, and causal (a later token may not move
    an earlier one's output)."""
    fp32, half, plain = tiny
    mel = torch.randn(1, 8, 80)
    ids = torch.tensor([[1, 5, 7, 9]])
    with torch.inference_mode():
        ref = fp32(input_features=mel, decoder_input_ids=ids).logits
        got = half(input_features=mel.half(), decoder_input_ids=ids).logits.float()
        base = plain(input_features=mel.half(), decoder_input_ids=ids).logits.float()
        changed = half(input_features=mel.half(), decoder_input_ids=torch.tensor([[1, 5, 7, 11]])).logits.float()
    assert (got - ref).abs().max() <= 2 * max((base - ref).abs().max().item(), 1e-3)
    assert torch.equal(changed[:, :3], got[:, :3])  # causal: the first three positions ignore the fourth
    assert not torch.equal(changed[:, 3], got[:, 3])
