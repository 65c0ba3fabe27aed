"""Export a transformers Whisper to two ONNX graphs with an explicit KV cache.

Why hand-written wrappers rather than exporting transformers' modules as they
are: their cache objects and attention dispatch don't trace cleanly with the
legacy exporter, and we want a cache layout that costs nothing per step.
The wrappers reuse the model's own submodules (so weights are shared and the
ONNX node names keep `layers.N.fc2` etc., which quantization rules match on)
and repeat transformers' arithmetic in the same order.

Graphs (batch is always 1; i = 0..L-1 over decoder layers):
  encoder: mel float32 [1, n_mels, 3000]
           -> cross_k_i, cross_v_i float32 [1, H, 1500, hd]  (each decoder layer's
              cross-attention K/V, computed once per clip)
  decoder: tokens int64 [1, k] (new tokens only), self_k_i/self_v_i [1, H, past, hd]
           (past may be 0 on the first call), cross_k_i, cross_v_i
           -> logits float32 [1, k, vocab], new_self_k_i/new_self_v_i [1, H, past+k, hd]
One tensor per layer, not one stacked [L, ...] tensor: slicing a stacked input
inside the graph copies it, and for the cross K/V that was 37 MB per token.
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

from .onnx_io import (ENCODER_INPUTS, OPSET, cross_names, cache_names, decoder_inputs,  # noqa: F401
                      decoder_outputs, dims)

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


class _FusedAttention(torch.autograd.Function):
    """Self-attention over [1, T, d] q/k/v (q already scaled). In torch it is
    `_attend`; exported it is ONE `com.microsoft.MultiHeadAttention` node,
    whose CPU kernel needs no head transposes and ran the 1500-frame
    attention ~15-20% faster than MatMul/Softmax/MatMul here."""

    @staticmethod
    def forward(ctx, q, k, v, n_heads: int):  # noqa: D401 - autograd signature
        return _attend(_heads(q, n_heads), _heads(k, n_heads), _heads(v, n_heads), None)

    @staticmethod
    def symbolic(g, q, k, v, n_heads: int):
        out = g.op("com.microsoft::MultiHeadAttention", q, k, v, num_heads_i=n_heads, scale_f=1.0)
        out.setType(q.type())
        return out


def _linear(src: nn.Linear, rows=None, cols=None, bias: bool = True) -> nn.Linear:
    """A copy of src restricted to output rows / input columns (index tensors)."""
    w = src.weight.detach()
    w = w if rows is None else w[rows]
    w = w if cols is None else w[:, cols]
    out = nn.Linear(w.shape[1], w.shape[0], bias=bias and src.bias is not None)
    with torch.no_grad():
        out.weight.copy_(w)
        if out.bias is not None:
            out.bias.copy_(src.bias.detach() if rows is None else src.bias.detach()[rows])
    return out


class _SplitMLP(nn.Module):
    """fc2(gelu(fc1(h))) with the few hidden channels whose GELU outputs are
    outliers computed apart (LLM.int8()-style decomposition): `fc1`/`fc2` hold
    the regular channels and quantize well; `fc1_outliers`/`fc2_outliers` hold
    the outlier channels and stay FP32. GELU is elementwise, so the sum is the
    same function; copies, so the shared FP32 model is untouched."""

    def __init__(self, fc1: nn.Linear, fc2: nn.Linear, outliers: torch.Tensor):
        super().__init__()
        keep = torch.ones(fc1.out_features, dtype=torch.bool)
        keep[outliers] = False
        regular = keep.nonzero().flatten()
        self.fc1, self.fc2 = _linear(fc1, rows=regular), _linear(fc2, cols=regular)
        self.fc1_outliers = _linear(fc1, rows=outliers)
        self.fc2_outliers = _linear(fc2, cols=outliers, bias=False)

    def forward(self, h):
        return self.fc2(F.gelu(self.fc1(h))) + self.fc2_outliers(F.gelu(self.fc1_outliers(h)))


class _MLP(nn.Module):
    def __init__(self, fc1: nn.Linear, fc2: nn.Linear):
        super().__init__()
        self.fc1, self.fc2 = fc1, fc2

    def forward(self, h):
        return self.fc2(F.gelu(self.fc1(h)))


def _mlp(layer, outliers: torch.Tensor | None) -> nn.Module:
    if outliers is None or len(outliers) == 0:
        return _MLP(layer.fc1, layer.fc2)
    return _SplitMLP(layer.fc1, layer.fc2, outliers)


class _EncoderLayer(nn.Module):
    """One encoder layer; a module of its own so ONNX node names carry
    `layers.N/<submodule>` (quantization rules select nodes by these names)."""

    def __init__(self, layer, n_heads: int, outliers: torch.Tensor | None = None):
        super().__init__()
        a = layer.self_attn
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = a.q_proj, a.k_proj, a.v_proj, a.out_proj
        self.scaling, self.n_heads = a.scaling, n_heads
        self.self_attn_layer_norm, self.final_layer_norm = layer.self_attn_layer_norm, layer.final_layer_norm
        self.mlp = _mlp(layer, outliers)

    def forward(self, x):
        h = self.self_attn_layer_norm(x)
        o = _FusedAttention.apply(self.q_proj(h) * self.scaling, self.k_proj(h), self.v_proj(h), self.n_heads)
        x = x + self.out_proj(o)
        return x + self.mlp(self.final_layer_norm(x))


class _CrossKV(nn.Module):
    """A decoder layer's cross-attention K/V projection of the encoder output."""

    def __init__(self, attn, n_heads: int):
        super().__init__()
        self.k_proj, self.v_proj, self.n_heads = attn.k_proj, attn.v_proj, n_heads

    def forward(self, x):
        return _heads(self.k_proj(x), self.n_heads), _heads(self.v_proj(x), self.n_heads)


class EncoderForExport(nn.Module):
    """Whisper's encoder plus every decoder layer's cross-attention K/V projection."""

    def __init__(self, hf_model, outliers: list[torch.Tensor] | None = None):
        super().__init__()
        cfg = hf_model.config
        enc = hf_model.model.encoder
        self.conv1, self.conv2 = enc.conv1, enc.conv2
        self.embed_positions = enc.embed_positions
        outliers = outliers or [None] * len(enc.layers)
        self.layers = nn.ModuleList([_EncoderLayer(l, cfg.encoder_attention_heads, o) for l, o in zip(enc.layers, outliers)])
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
        return tuple(k for k, _ in kv) + tuple(v for _, v in kv)


class _DecoderLayer(nn.Module):
    """One decoder layer over new tokens, with its past self-attention K/V."""

    def __init__(self, layer, n_heads: int, outliers: torch.Tensor | None = None):
        super().__init__()
        a, c = layer.self_attn, layer.encoder_attn
        self.self_q, self.self_k, self.self_v, self.self_out = a.q_proj, a.k_proj, a.v_proj, a.out_proj
        self.cross_q, self.cross_out = c.q_proj, c.out_proj
        self.scaling, self.n_heads = a.scaling, n_heads
        self.self_attn_layer_norm = layer.self_attn_layer_norm
        self.encoder_attn_layer_norm = layer.encoder_attn_layer_norm
        self.final_layer_norm = layer.final_layer_norm
        self.mlp = _mlp(layer, outliers)

    def forward(self, x, past_k, past_v, cross_k, cross_v, mask):
        h = self.self_attn_layer_norm(x)
        q = _heads(self.self_q(h) * self.scaling, self.n_heads)
        k = torch.cat([past_k, _heads(self.self_k(h), self.n_heads)], dim=2)
        v = torch.cat([past_v, _heads(self.self_v(h), self.n_heads)], dim=2)
        x = x + self.self_out(_attend(q, k, v, mask))
        h = self.encoder_attn_layer_norm(x)
        q = _heads(self.cross_q(h) * self.scaling, self.n_heads)
        x = x + self.cross_out(_attend(q, cross_k, cross_v, None))
        x = x + self.mlp(self.final_layer_norm(x))
        return x, k, v


class DecoderForExport(nn.Module):
    """One decoder step for any number of new tokens, with past self-attention K/V."""

    def __init__(self, hf_model, outliers: list[torch.Tensor] | None = None):
        super().__init__()
        dec = hf_model.model.decoder
        n_heads = hf_model.config.decoder_attention_heads
        self.embed_positions = dec.embed_positions
        outliers = outliers or [None] * len(dec.layers)
        self.layers = nn.ModuleList([_DecoderLayer(l, n_heads, o) for l, o in zip(dec.layers, outliers)])
        self.layer_norm = dec.layer_norm
        # One copy of the (tied) token embedding, transposed for the output MatMul.
        self.embed_tokens_t = nn.Parameter(dec.embed_tokens.weight.detach().t().contiguous(), requires_grad=False)

    def forward(self, tokens, *caches):
        n = len(self.layers)
        self_k, self_v, cross_k, cross_v = (caches[j * n:(j + 1) * n] for j in range(4))
        past = self_k[0].shape[2]
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
        return (logits, *new_k, *new_v)


def sample_inputs(config, past: int = 3, k: int = 2, seed: int = 0):
    """Random inputs of the right shapes, for tracing and for tests."""
    d = dims(config)
    g = torch.Generator().manual_seed(seed)
    mel = torch.randn(1, d["n_mels"], d["n_frames"], generator=g)
    cache = (1, d["n_heads"], past, d["head_dim"])
    cross = (1, d["n_heads"], d["n_ctx"], d["head_dim"])
    tokens = torch.randint(0, d["vocab"], (1, k), generator=g)
    caches = [torch.randn(cache, generator=g) for _ in range(2 * d["n_layers"])]
    crosses = [torch.randn(cross, generator=g) for _ in range(2 * d["n_layers"])]
    return mel, tokens, caches + crosses


def export(hf_model, out_dir: str | os.PathLike, outliers: dict | None = None) -> tuple[Path, Path]:
    """Write `encoder.onnx` and `decoder.onnx` (FP32) into out_dir; return their paths.

    outliers: optional hidden-channel indices per MLP to compute apart,
    {"encoder": [LongTensor per layer], "decoder": [...]} (see `_SplitMLP`);
    the FP32 graphs compute the same function either way.

    Both stay under the 2 GB protobuf limit for Whisper up to medium, so no
    external data files are written for base/tiny.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf_model = hf_model.float().eval()
    n = hf_model.config.decoder_layers
    mel, tokens, rest = sample_inputs(hf_model.config)
    enc_path, dec_path = out / "encoder.onnx", out / "decoder.onnx"
    axes = {"tokens": {1: "k"}, "logits": {1: "k"}}
    axes.update({name: {2: "past"} for name in cache_names(n)})
    axes.update({name: {2: "total"} for name in cache_names(n, "new_")})
    with torch.no_grad():
        torch.onnx.export(
            EncoderForExport(hf_model, (outliers or {}).get("encoder")).eval(), (mel,), str(enc_path),
            input_names=ENCODER_INPUTS, output_names=cross_names(n),
            opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )
        torch.onnx.export(
            DecoderForExport(hf_model, (outliers or {}).get("decoder")).eval(), (tokens, *rest), str(dec_path),
            input_names=decoder_inputs(n), output_names=decoder_outputs(n), dynamic_axes=axes,
            opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )
    _check_single_embedding(dec_path)
    return enc_path, dec_path


def _check_single_embedding(path: Path) -> None:
    """The decoder must hold the token table once, under EMBED_NAME: fail
    loudly if an exporter change duplicated or renamed it."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    table = [i for i in model.graph.initializer if i.name == EMBED_NAME]
    if len(table) != 1:
        raise RuntimeError(f"{path.name} has no initializer {EMBED_NAME!r} (the shared token table)")
    copies = [i.name for i in model.graph.initializer if list(i.dims) in (list(table[0].dims), list(table[0].dims)[::-1])]
    if len(copies) != 1:
        raise RuntimeError(f"{path.name} holds the token table more than once: {copies}")
