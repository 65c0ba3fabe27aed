"""Export a transformers Whisper to two ONNX graphs with an explicit KV cache.

Why hand-written wrappers rather than exporting transformers' modules as they
are: their cache objects and attention dispatch don't trace cleanly with the
legacy exporter, and we want a cache layout that costs nothing per step.
The wrappers reuse the model's own submodules (so weights are shared and the
ONNX node names keep `layers.N.fc2` etc., which quantization rules match on)
and repeat transformers' arithmetic in the same order.

Graphs (batch is always 1):
  encoder: mel float32 [1, n_mels, 3000]
           -> cross_k, cross_v float32 [L, 1, H, 1500, hd]  (every decoder layer's
              cross-attention K/V, computed once per clip)
  decoder: tokens int64 [1, k] (new tokens only), self_k/self_v [L, 1, H, past, hd]
           (past may be 0 on the first call), cross_k, cross_v
           -> logits float32 [1, k, vocab], new_self_k/new_self_v [L, 1, H, past+k, hd]
The decoder keeps ONE copy of the token embedding, stored transposed
[d_model, vocab]: the output projection multiplies by it and the lookup
gathers its columns, so quantization can share it too.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

OPSET = 17
ENCODER_INPUTS = ["mel"]
ENCODER_OUTPUTS = ["cross_k", "cross_v"]
DECODER_INPUTS = ["tokens", "self_k", "self_v", "cross_k", "cross_v"]
DECODER_OUTPUTS = ["logits", "new_self_k", "new_self_v"]
EMBED_NAME = "embed_tokens_t"  # the shared [d_model, vocab] initializer


def _heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """[1, T, d] -> [1, H, T, hd]."""
    return x.view(x.shape[0], x.shape[1], n_heads, -1).transpose(1, 2)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """q already scaled; -> [1, T, d]. Same order of operations as transformers' eager path."""
    w = torch.matmul(q, k.transpose(2, 3))
    if mask is not None:
        w = w + mask
    w = F.softmax(w, dim=-1)
    o = torch.matmul(w, v).transpose(1, 2)
    return o.reshape(o.shape[0], o.shape[1], -1)


class _EncoderLayer(nn.Module):
    """One encoder layer; a module of its own so ONNX node names carry
    `layers.N/<submodule>` (quantization rules select nodes by these names)."""

    def __init__(self, layer, n_heads: int):
        super().__init__()
        a = layer.self_attn
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = a.q_proj, a.k_proj, a.v_proj, a.out_proj
        self.scaling, self.n_heads = a.scaling, n_heads
        self.self_attn_layer_norm, self.final_layer_norm = layer.self_attn_layer_norm, layer.final_layer_norm
        self.fc1, self.fc2 = layer.fc1, layer.fc2

    def forward(self, x):
        h = self.self_attn_layer_norm(x)
        q = _heads(self.q_proj(h) * self.scaling, self.n_heads)
        o = _attend(q, _heads(self.k_proj(h), self.n_heads), _heads(self.v_proj(h), self.n_heads), None)
        x = x + self.out_proj(o)
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


class _CrossKV(nn.Module):
    """A decoder layer's cross-attention K/V projection of the encoder output."""

    def __init__(self, attn, n_heads: int):
        super().__init__()
        self.k_proj, self.v_proj, self.n_heads = attn.k_proj, attn.v_proj, n_heads

    def forward(self, x):
        return _heads(self.k_proj(x), self.n_heads), _heads(self.v_proj(x), self.n_heads)


class EncoderForExport(nn.Module):
    """Whisper's encoder plus every decoder layer's cross-attention K/V projection."""

    def __init__(self, hf_model):
        super().__init__()
        cfg = hf_model.config
        enc = hf_model.model.encoder
        self.conv1, self.conv2 = enc.conv1, enc.conv2
        self.embed_positions = enc.embed_positions
        self.layers = nn.ModuleList([_EncoderLayer(l, cfg.encoder_attention_heads) for l in enc.layers])
        self.layer_norm = enc.layer_norm
        self.cross = nn.ModuleList([_CrossKV(l.encoder_attn, cfg.decoder_attention_heads)
                                    for l in hf_model.model.decoder.layers])

    def forward(self, mel: torch.Tensor):
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x))
        x = x.permute(0, 2, 1) + self.embed_positions.weight
        for layer in self.layers:
            x = layer(x)
        x = self.layer_norm(x)
        kv = [c(x) for c in self.cross]
        return torch.stack([k for k, _ in kv]), torch.stack([v for _, v in kv])


class _DecoderLayer(nn.Module):
    """One decoder layer over new tokens, with its past self-attention K/V."""

    def __init__(self, layer, n_heads: int):
        super().__init__()
        a, c = layer.self_attn, layer.encoder_attn
        self.self_q, self.self_k, self.self_v, self.self_out = a.q_proj, a.k_proj, a.v_proj, a.out_proj
        self.cross_q, self.cross_out = c.q_proj, c.out_proj
        self.scaling, self.n_heads = a.scaling, n_heads
        self.self_attn_layer_norm = layer.self_attn_layer_norm
        self.encoder_attn_layer_norm = layer.encoder_attn_layer_norm
        self.final_layer_norm = layer.final_layer_norm
        self.fc1, self.fc2 = layer.fc1, layer.fc2

    def forward(self, x, past_k, past_v, cross_k, cross_v, mask):
        h = self.self_attn_layer_norm(x)
        q = _heads(self.self_q(h) * self.scaling, self.n_heads)
        k = torch.cat([past_k, _heads(self.self_k(h), self.n_heads)], dim=2)
        v = torch.cat([past_v, _heads(self.self_v(h), self.n_heads)], dim=2)
        x = x + self.self_out(_attend(q, k, v, mask))
        h = self.encoder_attn_layer_norm(x)
        q = _heads(self.cross_q(h) * self.scaling, self.n_heads)
        x = x + self.cross_out(_attend(q, cross_k, cross_v, None))
        x = x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))
        return x, k, v


class DecoderForExport(nn.Module):
    """One decoder step for any number of new tokens, with past self-attention K/V."""

    def __init__(self, hf_model):
        super().__init__()
        dec = hf_model.model.decoder
        n_heads = hf_model.config.decoder_attention_heads
        self.embed_positions = dec.embed_positions
        self.layers = nn.ModuleList([_DecoderLayer(l, n_heads) for l in dec.layers])
        self.layer_norm = dec.layer_norm
        # One copy of the (tied) token embedding, transposed for the output MatMul.
        self.embed_tokens_t = nn.Parameter(dec.embed_tokens.weight.detach().t().contiguous(), requires_grad=False)

    def forward(self, tokens, self_k, self_v, cross_k, cross_v):
        past = self_k.shape[3]
        k = tokens.shape[1]
        x = torch.index_select(self.embed_tokens_t, 1, tokens[0]).t().unsqueeze(0)  # [1, k, d]
        positions = torch.arange(k, device=tokens.device) + past
        x = x + self.embed_positions.weight.index_select(0, positions).unsqueeze(0)
        # Causal mask over [past + k] keys for the k new queries.
        key_pos = torch.arange(past + k, device=tokens.device).unsqueeze(0)
        mask = (key_pos > positions.unsqueeze(1)).to(x.dtype) * torch.finfo(x.dtype).min
        new_k, new_v = [], []
        for i, layer in enumerate(self.layers):
            x, sk, sv = layer(x, self_k[i], self_v[i], cross_k[i], cross_v[i], mask)
            new_k.append(sk)
            new_v.append(sv)
        x = self.layer_norm(x)
        logits = torch.matmul(x, self.embed_tokens_t)
        return logits, torch.stack(new_k), torch.stack(new_v)


def dims(config) -> dict[str, int]:
    """Shapes the engine needs to build empty caches."""
    return {
        "n_layers": config.decoder_layers,
        "n_heads": config.decoder_attention_heads,
        "head_dim": config.d_model // config.decoder_attention_heads,
        "n_mels": config.num_mel_bins,
        "n_frames": 2 * config.max_source_positions,
        "n_ctx": config.max_source_positions,
        "vocab": config.vocab_size,
        "max_target": config.max_target_positions,
    }


def sample_inputs(config, past: int = 3, k: int = 2, seed: int = 0):
    """Random inputs of the right shapes, for tracing and for tests."""
    d = dims(config)
    g = torch.Generator().manual_seed(seed)
    mel = torch.randn(1, d["n_mels"], d["n_frames"], generator=g)
    cache = (d["n_layers"], 1, d["n_heads"], past, d["head_dim"])
    cross = (d["n_layers"], 1, d["n_heads"], d["n_ctx"], d["head_dim"])
    tokens = torch.randint(0, d["vocab"], (1, k), generator=g)
    return mel, tokens, torch.randn(cache, generator=g), torch.randn(cache, generator=g), \
        torch.randn(cross, generator=g), torch.randn(cross, generator=g)


def export(hf_model, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write `encoder.onnx` and `decoder.onnx` (FP32) into out_dir; return their paths.

    Both stay under the 2 GB protobuf limit for Whisper up to medium, so no
    external data files are written for base/tiny.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf_model = hf_model.float().eval()
    mel, tokens, sk, sv, ck, cv = sample_inputs(hf_model.config)
    enc_path, dec_path = out / "encoder.onnx", out / "decoder.onnx"
    with torch.no_grad():
        torch.onnx.export(
            EncoderForExport(hf_model).eval(), (mel,), str(enc_path),
            input_names=ENCODER_INPUTS, output_names=ENCODER_OUTPUTS,
            opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )
        cache_axes = {3: "past"}
        torch.onnx.export(
            DecoderForExport(hf_model).eval(), (tokens, sk, sv, ck, cv), str(dec_path),
            input_names=DECODER_INPUTS, output_names=DECODER_OUTPUTS,
            dynamic_axes={
                "tokens": {1: "k"}, "self_k": cache_axes, "self_v": cache_axes,
                "logits": {1: "k"}, "new_self_k": {3: "total"}, "new_self_v": {3: "total"},
            },
            opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )
    _check_single_embedding(dec_path)
    return enc_path, dec_path


def _check_single_embedding(path: Path) -> None:
    """The decoder must hold the token table once: fail loudly if export duplicated it."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    big = [i for i in model.graph.initializer if len(i.dims) == 2 and max(i.dims) > 10000]
    if len(big) != 1:
        raise RuntimeError(f"expected one token-embedding table in {path.name}, found {len(big)}")
