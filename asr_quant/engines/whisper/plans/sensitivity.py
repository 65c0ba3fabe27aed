"""How much INT8 in each part of Whisper moves its output (search.py decides what to keep FP32).

Groups: the encoder's convolutions, each encoder layer's attention and MLP;
each decoder layer's self-attention, cross-attention (its query/output and the
K/V projections of the encoder output) and MLP; the token table (embedding
lookup + output projection, one tensor).

Sensitivity of a group: INT8 in that group alone, the rest FP32, teacher-forced
on FP32's own greedy tokens over hold-out speech: mean KL(FP32 || INT8) of the
next-token distributions and top-1 agreement. INT8 is simulated in PyTorch with
ONNX Runtime's dynamic arithmetic (uint8 asymmetric activations scaled per call,
int8 symmetric per-output-channel weights, integer products exact in float).
"Per call" follows the engine: the encoder is one call (one scale per tensor
over all frames); the decoder takes the start sequence in one call, then one
token per call (one scale for the start sequence, then one per token).
Scoring all tokens with one scale instead, as one teacher-forced call would,
overstated the recipe's error by ~40 % (docs/int8-plans.md). One FP32 model answers for
every plan in seconds instead of one ONNX build per candidate. The plan the
search returns is then built in ONNX Runtime and measured again
(recipe.build); both figures go to the manifest.

Levels per group: "int8" (everything INT8), "split" (MLPs only: the outlier
hidden channels in FP32, the rest INT8, see onnx_export._SplitMLP), "fp32".
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from .measure import compare

LEVELS = ("int8", "split", "fp32")


@dataclass(frozen=True)
class Group:
    name: str  # "enc.3.mlp", "dec.0.cross", "dec.tokens", "enc.conv"
    side: str  # "encoder" | "decoder"
    kind: str  # "conv" | "attn" | "self" | "cross" | "mlp" | "tokens"
    layer: int | None
    params: int  # weights INT8 would store in one byte instead of four
    width: int = 0  # d_model: an MLP hidden channel kept FP32 costs 2 x width weights

    @property
    def levels(self) -> tuple[str, ...]:
        return LEVELS if self.kind == "mlp" else ("int8", "fp32")


def groups(hf_model) -> list[Group]:
    enc, dec = hf_model.model.encoder, hf_model.model.decoder

    def n(*mods):
        return sum(m.weight.numel() for m in mods)

    out = [Group("enc.conv", "encoder", "conv", None, n(enc.conv1, enc.conv2))]
    for i, l in enumerate(enc.layers):
        a = l.self_attn
        out += [Group(f"enc.{i}.attn", "encoder", "attn", i, n(a.q_proj, a.k_proj, a.v_proj, a.out_proj)),
                Group(f"enc.{i}.mlp", "encoder", "mlp", i, n(l.fc1, l.fc2), l.fc1.in_features)]
    for i, l in enumerate(dec.layers):
        a, c = l.self_attn, l.encoder_attn
        out += [Group(f"dec.{i}.self", "decoder", "self", i, n(a.q_proj, a.k_proj, a.v_proj, a.out_proj)),
                Group(f"dec.{i}.cross", "decoder", "cross", i, n(c.q_proj, c.k_proj, c.v_proj, c.out_proj)),
                Group(f"dec.{i}.mlp", "decoder", "mlp", i, n(l.fc1, l.fc2), l.fc1.in_features)]
    out.append(Group("dec.tokens", "decoder", "tokens", None, dec.embed_tokens.weight.numel()))
    return out


# --------------------------------------------------------------------------- simulated INT8

def _fq_act(x, first_call: int = 0):
    """uint8 asymmetric fake quantization with scales computed per call
    (DynamicQuantizeLinear). first_call 0: the tensor is one call, one scale
    (the encoder). first_call P > 0: the decoder as the engine runs it, the
    first P tokens (the start sequence) in one call, then one token per call,
    so one scale for the first P rows and one for each row after them."""
    import torch

    if first_call:
        head, tail = _fq_act(x[..., :first_call, :]), x[..., first_call:, :]
        if tail.shape[-2] == 0:
            return head
        lo = torch.clamp(tail.amin(-1, keepdim=True), max=0.0)
        hi = torch.clamp(tail.amax(-1, keepdim=True), min=0.0)
        return torch.cat([head, _uint8_grid(tail, lo, ((hi - lo) / 255.0).clamp(min=1e-30))], dim=-2)
    lo, hi = torch.clamp(x.min(), max=0.0), torch.clamp(x.max(), min=0.0)
    scale = (hi - lo) / 255.0
    if float(scale) == 0.0:
        return x
    return _uint8_grid(x, lo, scale)


def _uint8_grid(x, lo, scale):
    """x rounded to the uint8 grid of (lo, scale), zero point from lo, back in float (an all-zero row stays zero)."""
    import torch

    zp = torch.clamp(torch.round(-lo / scale), 0, 255)
    return (torch.clamp(torch.round(x / scale) + zp, 0, 255) - zp) * scale


def _fq_weight(w, qmax: int = 127):
    """int8 symmetric per-output-channel (dim 0) fake quantization: scale max|w| / qmax, as onnxruntime's
    (qmax 64: its reduce_range; 63: plan rows' 7-bit grid, where the host's u8s8 sums saturate)."""
    import torch

    flat = w.reshape(w.shape[0], -1)
    scale = flat.abs().amax(1, keepdim=True).clamp(min=1e-12) / qmax
    return (torch.clamp(torch.round(flat / scale), -qmax, qmax) * scale).reshape(w.shape)


def _patch(module, fn):
    old = module.forward
    module.forward = fn
    return lambda: setattr(module, "forward", old)


def _linear(mod, split_rows=None, split_cols=None, first_call: int = 0, qmax: int = 127):
    """Fake-INT8 forward for an nn.Linear; split_rows/cols: outlier output rows / input columns in FP32;
    first_call: how the activations' calls are laid out (see _fq_act)."""
    import torch
    from torch.nn import functional as F

    def act(x):
        return _fq_act(x, first_call)

    w, b = mod.weight.detach(), None if mod.bias is None else mod.bias.detach()
    if split_cols is not None:
        keep = torch.ones(w.shape[1], dtype=torch.bool)
        keep[split_cols] = False
        wq = _fq_weight(w[:, keep], qmax)
        wo = w[:, ~keep]
        return lambda x: F.linear(act(x[..., keep]), wq, b) + F.linear(x[..., ~keep], wo)
    wq = _fq_weight(w, qmax)
    if split_rows is not None:
        wq = wq.clone()
        wq[split_rows] = 0.0
        wo = torch.zeros_like(w)
        wo[split_rows] = w[split_rows]
        return lambda x: F.linear(act(x), wq, b) + F.linear(x, wo)
    return lambda x: F.linear(act(x), wq, b)


def _conv(mod):
    from torch.nn import functional as F

    wq, b = _fq_weight(mod.weight.detach()), mod.bias
    return lambda x: F.conv1d(_fq_act(x), wq, b, mod.stride, mod.padding, mod.dilation, mod.groups)


@contextlib.contextmanager
def simulated(hf_model, plan: dict[str, str], outliers: dict | None, first_call: int):
    """The model with every group at its level in `plan` (missing: FP32).
    first_call: tokens in the decoder's first call (the start sequence), after
    which it takes one token per call, as the engine decodes."""
    import torch
    from torch.nn import functional as F

    enc, dec = hf_model.model.encoder, hf_model.model.decoder
    undo = []
    try:
        for g in groups(hf_model):
            level = plan.get(g.name, "fp32")
            if level == "fp32":
                continue
            if g.kind == "conv":
                undo += [_patch(enc.conv1, _conv(enc.conv1)), _patch(enc.conv2, _conv(enc.conv2))]
            elif g.kind == "tokens":
                wq = _fq_weight(dec.embed_tokens.weight.detach())
                undo += [_patch(hf_model.proj_out, lambda x, wq=wq: F.linear(_fq_act(x, first_call), wq)),
                         _patch(dec.embed_tokens, lambda ids, wq=wq: F.embedding(ids, wq))]
            elif g.kind == "mlp":
                layer = (enc if g.side == "encoder" else dec).layers[g.layer]
                o = None
                if level == "split" and outliers:
                    o = outliers[g.side][g.layer]
                    o = torch.as_tensor(o, dtype=torch.long)
                calls = first_call if g.side == "decoder" else 0
                undo += [_patch(layer.fc1, _linear(layer.fc1, split_rows=o, first_call=calls)),
                         _patch(layer.fc2, _linear(layer.fc2, split_cols=o, first_call=calls))]
            else:
                layer = (enc if g.side == "encoder" else dec).layers[g.layer]
                attn = layer.encoder_attn if g.kind == "cross" else layer.self_attn
                calls = first_call if g.side == "decoder" else 0
                undo += [_patch(attn.q_proj, _linear(attn.q_proj, first_call=calls)),
                         _patch(attn.out_proj, _linear(attn.out_proj, first_call=calls))]
                # The cross-attention K/V projections read the encoder output: in the
                # engine they run once per clip in the encoder graph, one call, one scale.
                kv = 0 if g.kind == "cross" else calls
                undo += [_patch(m, _linear(m, first_call=kv)) for m in (attn.k_proj, attn.v_proj)]
        yield hf_model
    finally:
        for u in reversed(undo):
            u()


# --------------------------------------------------------------------------- measuring

@dataclass
class Sample:
    mel: np.ndarray  # [1, n_mels, 3000]
    tokens: list[int]  # prompt + FP32's greedy tokens
    first: int  # first scored position: the start sequence's last token, so the decoder's first call is tokens[:first + 1]


class Scorer:
    """Teacher-forced next-token logits of plans against FP32 on fixed samples."""

    def __init__(self, hf_model, samples: list[Sample], simulate=None):
        """simulate: the context manager that puts a plan on the model
        (`simulated` here; granular.simulated for plan "costed")."""
        self.model, self.samples = hf_model, samples
        self.simulate = simulate or simulated
        starts = {s.first + 1 for s in samples}  # the start sequence: the decoder's first call
        if len(starts) > 1:
            raise ValueError(f"samples with start sequences of different lengths {sorted(starts)} cannot share a scorer")
        self.first_call = starts.pop() if starts else 1
        self.layer_in: list[list] = []  # per sample: FP32 input of each encoder layer
        self.enc_ref = [self._encode(s.mel, keep=True) for s in samples]
        self.ref = [self._decode(s.tokens, e) for s, e in zip(samples, self.enc_ref)]
        self.evaluations = 0
        self._enc_cache: dict[tuple, list] = {}  # encoder levels -> outputs (a search mostly moves the decoder)

    def _encode(self, mel, keep: bool = False):
        import torch

        inputs, hooks = [], []
        if keep:
            hooks = [l.register_forward_pre_hook(lambda _m, args: inputs.append(args[0].clone()))
                     for l in self.model.model.encoder.layers]
        try:
            with torch.inference_mode():
                out = self.model.model.encoder(input_features=torch.from_numpy(mel)).last_hidden_state
        finally:
            for h in hooks:
                h.remove()
        if keep:
            self.layer_in.append(inputs)
        return out

    def _encode_from(self, i: int, start: int):
        """Sample i's encoder output, running the layers from `start` on (FP32 before it)."""
        import torch

        enc = self.model.model.encoder
        with torch.inference_mode():
            h = self.layer_in[i][start]
            for layer in enc.layers[start:]:
                h = layer(h, None)
                h = h[0] if isinstance(h, tuple) else h
            return enc.layer_norm(h)

    def _decode(self, tokens, enc):
        import torch

        with torch.inference_mode():
            h = self.model.model.decoder(input_ids=torch.tensor([tokens]), encoder_hidden_states=enc).last_hidden_state
            return self.model.proj_out(h)[0].numpy()

    def score(self, plan: dict[str, str], outliers=None) -> dict:
        self.evaluations += 1
        # The FP32 encoder output serves every plan that leaves the encoder in FP32
        # (in transformers the cross-attention K/V projections run in the decoder).
        changed = [k for k, v in plan.items() if v != "fp32" and k.startswith("enc.")]
        start = min((-1 if k == "enc.conv" else int(k.split(".")[1]) for k in changed), default=None)
        key = (id(outliers), *sorted((k, plan[k]) for k in changed))
        kl = agree = n = 0
        with self.simulate(self.model, plan, outliers, self.first_call):
            encs = self._enc_cache.get(key)
            if encs is None:
                encs = [e if start is None else self._encode(s.mel) if start < 0 else self._encode_from(i, start)
                        for i, (s, e) in enumerate(zip(self.samples, self.enc_ref))]
                if len(self._enc_cache) >= 4:
                    self._enc_cache.pop(next(iter(self._enc_cache)))
                self._enc_cache[key] = encs
            for s, enc, ref in zip(self.samples, encs, self.ref):
                k, a, m = compare(ref, self._decode(s.tokens, enc), s.first)
                kl, agree, n = kl + k, agree + a, n + m
        return {"kl": round(kl / max(n, 1), 6), "top1": round(agree / max(n, 1), 5), "positions": n}


def sensitivity(scorer: Scorer, gs: list[Group], outliers=None) -> list[dict]:
    """One row per group and INT8 level: that group alone quantized."""
    rows = []
    for g in gs:
        for level in g.levels[:-1]:
            if level == "split" and not outliers:
                continue
            m = scorer.score({g.name: level}, outliers)
            rows.append({"group": g.name, "side": g.side, "kind": g.kind, "layer": g.layer, "level": level, **m})
    return rows
