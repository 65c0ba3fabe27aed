"""Every INT8 granularity of costs.OPTIONS, simulated in PyTorch per layer group.

What plan "costed" scores: the arithmetic each ONNX writer builds, on the
FP32 model, so one model answers for every candidate plan
(sensitivity.Scorer, teacher-forced) instead of one ONNX build each.

    tensor     uint8 asymmetric activations, one scale per call (sensitivity._fq_act:
               one call per encoder window; the decoder's start sequence, then a call a token),
               int8 weights with one scale per output channel
    row        int8 symmetric activations, one scale per row (frame or token), weights as tensor's
               (7-bit weights, |w| <= 63, where u8s8 pair sums saturate: QuantConfig.weight_qmax;
               "tensor" then takes ONNX Runtime's reduce_range, |w| <= 64)
    row-split  row, with an encoder MLP's outlier hidden channels exactly FP32
    bN         8-bit symmetric blocks of N inputs on both weights (scaled as ONNX Runtime's
               quantizer does: the largest magnitude to -128) and activations (max |x| / 127,
               MatMulNBits at accuracy level 4: one scale per row and block)
    fp32       untouched

The cross-attention's K/V projections read the encoder output once per window
in the engine: one call, one scale, for "tensor".
"""
from __future__ import annotations

import contextlib

from .sensitivity import Group, _fq_act, _fq_weight, _patch, groups

QMAX = 127


def options_for(g: Group, outliers: dict | None, inputs: int) -> tuple[str, ...]:
    """The options a group can take (cheapest-first order is the cost table's business)."""
    if g.kind == "conv":
        return ("fp32",)
    blocks = tuple(b for b, n in (("b16", 16), ("b32", 32), ("b128", 128)) if inputs >= n)
    if g.kind == "tokens":
        return ("fp32",) + blocks
    if g.side == "decoder":
        return ("fp32", "tensor") + blocks
    split = ("row-split",) if g.kind == "mlp" and outliers and outliers.get("encoder") else ()
    return ("fp32", "tensor", "row") + split + blocks


def _fq_rows(x):
    """Symmetric int8 per row (last axis), scale max|x| / 127 (rowwise.py)."""
    import torch

    s = x.abs().amax(-1, keepdim=True).clamp(min=1e-12) / QMAX
    return torch.clamp(torch.round(x / s), -QMAX, QMAX) * s


def _fq_blocks(x, block: int):
    """Symmetric int8 per row and block of `block` inputs (last axis; a short last block padded)."""
    import torch
    from torch.nn import functional as F

    k = x.shape[-1]
    pad = (-k) % block
    xp = F.pad(x, (0, pad)) if pad else x
    b = xp.reshape(*xp.shape[:-1], -1, block)
    s = b.abs().amax(-1, keepdim=True).clamp(min=1e-12) / QMAX
    q = (torch.clamp(torch.round(b / s), -QMAX, QMAX) * s).reshape(xp.shape)
    return q[..., :k] if pad else q


def _fq_weight_blocks(w, block: int):
    """8-bit blocks of `block` inputs per output channel as ONNX Runtime's
    MatMulNBits quantizer writes them (symmetric): the block's largest-magnitude
    value v maps to -128, scale v / -128, codes on [-128, 127]."""
    import torch
    from torch.nn import functional as F

    k = w.shape[-1]
    pad = (-k) % block
    wp = F.pad(w, (0, pad)) if pad else w
    b = wp.reshape(*wp.shape[:-1], -1, block)
    v = torch.gather(b, -1, b.abs().argmax(-1, keepdim=True))
    s = torch.where(v == 0, torch.ones_like(v), v / -128.0)
    q = (torch.clamp(torch.round(b / s), -128, 127) * s).reshape(wp.shape)
    return q[..., :k] if pad else q


def _linear(mod, option: str, first_call: int, qmax: int, split=None):
    """Fake-quantized forward of an nn.Linear at `option`. split: ("rows"|"cols",
    channels) of an MLP's outliers, computed exactly in FP32."""
    import torch
    from torch.nn import functional as F

    w, b = mod.weight.detach(), None if mod.bias is None else mod.bias.detach()
    if option.startswith("b"):
        n = int(option[1:])
        wq = _fq_weight_blocks(w, n)  # weight [out, in]: blocks along the inputs, per output channel
        act = lambda x: _fq_blocks(x, n)  # noqa: E731
    elif option == "tensor":
        wq = _fq_weight(w, QMAX if qmax == QMAX else 64)  # reduce_range: [-64, 64]
        act = lambda x: _fq_act(x, first_call)  # noqa: E731
    else:  # row, row-split
        wq = _fq_weight(w, qmax)
        act = _fq_rows
    if split is None:
        return lambda x: F.linear(act(x), wq, b)
    how, ch = split
    if how == "rows":  # fc1: outlier output channels FP32
        wq = _fq_weight(w, qmax).clone()
        wq[ch] = 0.0
        wo = torch.zeros_like(w)
        wo[ch] = w[ch]
        return lambda x: F.linear(act(x), wq, b) + F.linear(x, wo)
    keep = torch.ones(w.shape[1], dtype=torch.bool)  # fc2: outlier input channels FP32
    keep[ch] = False
    wk, wo = _fq_weight(w[:, keep], qmax), w[:, ~keep]
    return lambda x: F.linear(act(x[..., keep]), wk, b) + F.linear(x[..., ~keep], wo)


@contextlib.contextmanager
def simulated(hf_model, plan: dict[str, str], outliers: dict | None, first_call: int, qmax: int = QMAX):
    """The model with every group at its option in `plan` (missing or "fp32": FP32)."""
    import torch
    from torch.nn import functional as F

    enc, dec = hf_model.model.encoder, hf_model.model.decoder
    undo = []
    try:
        for g in groups(hf_model):
            option = plan.get(g.name, "fp32")
            if option == "fp32" or g.kind == "conv":
                continue
            calls = first_call if g.side == "decoder" else 0
            if g.kind == "tokens":
                n = int(option[1:])
                wq = _fq_weight_blocks(dec.embed_tokens.weight.detach(), n)
                undo += [_patch(hf_model.proj_out, lambda x, wq=wq, n=n: F.linear(_fq_blocks(x, n), wq)),
                         _patch(dec.embed_tokens, lambda ids, wq=wq: F.embedding(ids, wq))]
                continue
            layer = (enc if g.side == "encoder" else dec).layers[g.layer]
            if g.kind == "mlp":
                split = None
                if option == "row-split":
                    split = torch.as_tensor(outliers[g.side][g.layer], dtype=torch.long)
                undo += [_patch(layer.fc1, _linear(layer.fc1, option, calls, qmax,
                                                   None if split is None else ("rows", split))),
                         _patch(layer.fc2, _linear(layer.fc2, option, calls, qmax,
                                                   None if split is None else ("cols", split)))]
                continue
            attn = layer.encoder_attn if g.kind == "cross" else layer.self_attn
            undo += [_patch(attn.q_proj, _linear(attn.q_proj, option, calls, qmax)),
                     _patch(attn.out_proj, _linear(attn.out_proj, option, calls, qmax))]
            kv = 0 if g.kind == "cross" else calls  # the encoder graph runs them once per window
            undo += [_patch(m, _linear(m, option, kv, qmax)) for m in (attn.k_proj, attn.v_proj)]
        yield hf_model
    finally:
        for u in reversed(undo):
            u()
