"""SmoothQuant (Xiao et al., arXiv 2211.10438) folded into Whisper's weights.

Why: one activation scale per call (the fast u8s8 MatMulInteger path) is ruined
by a few input channels that run 10-100x louder than the rest. SmoothQuant
divides each input channel j of a weight product by s_j and multiplies row j
of its weight by s_j: the product is unchanged, the activations flatter, the
weights a little rougher. With s_j = max|X_j|^alpha / max|W_j|^(1-alpha)
(alpha near 1 moves nearly all the difficulty into the weights) it costs
nothing at run time where something linear in front can absorb 1/s:

- q/k/v_proj after `self_attn_layer_norm`, fc1 after `final_layer_norm`, the
  cross-attention q_proj after `encoder_attn_layer_norm`: the LayerNorm's
  weight and bias are divided by s;
- out_proj: its input is softmax(qk) @ v, linear in v per channel, so v_proj's
  output rows (weight and bias) are divided by s;
- the cross-attention k/v_proj of every decoder layer read the encoder's final
  LayerNorm: one s for all of them, folded into that LayerNorm;
- fc2 reads GELU(fc1(x)), which nothing linear precedes: an explicit
  elementwise Mul by 1/s in front of it (`ScaledInput`), one per MLP.

The token table is tied to the embedding lookup and stays as it is. The model
is changed in place (call it on a copy); `fold` returns what it did.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

EPS = 1e-5


class ScaledInput(nn.Linear):
    """A Linear that first multiplies its input by `inv_scale` (exported as Mul then MatMul)."""

    def __init__(self, src: nn.Linear, inv_scale: torch.Tensor):
        super().__init__(src.in_features, src.out_features, bias=src.bias is not None)
        with torch.no_grad():
            self.weight.copy_(src.weight)
            if src.bias is not None:
                self.bias.copy_(src.bias)
        self.register_buffer("inv_scale", inv_scale.to(src.weight.dtype))

    def forward(self, x):
        return nn.functional.linear(x * self.inv_scale, self.weight, self.bias)


@dataclass
class Folded:
    """What `fold` changed: alpha per side and, per product, the largest and median s."""

    alpha: dict[str, float]
    products: dict[str, list[float]] = field(default_factory=dict)


def input_amax(hf_model, batches: list[tuple], modules: dict[str, nn.Linear]) -> dict[str, torch.Tensor]:
    """Per input channel max |x| of each Linear in `modules`, over (mel, tokens)
    batches run through the FP32 model with their own tokens teacher-forced."""
    amax: dict[str, torch.Tensor] = {}
    hooks = []
    for name, mod in modules.items():
        def hook(_mod, args, name=name):
            a = args[0].detach().abs().reshape(-1, args[0].shape[-1]).amax(0).float()
            amax[name] = a if name not in amax else torch.maximum(amax[name], a)

        hooks.append(mod.register_forward_pre_hook(hook))
    try:
        with torch.inference_mode():
            for mel, tokens in batches:
                hf_model(input_features=torch.from_numpy(mel), decoder_input_ids=torch.tensor([tokens]))
    finally:
        for h in hooks:
            h.remove()
    return amax


def linears(hf_model) -> dict[str, nn.Linear]:
    """Every weight product SmoothQuant can reach, by a stable name."""
    out: dict[str, nn.Linear] = {}
    for side in ("encoder", "decoder"):
        for i, layer in enumerate(getattr(hf_model.model, side).layers):
            out[f"{side}.{i}.qkv"] = layer.self_attn.q_proj
            out[f"{side}.{i}.out_proj"] = layer.self_attn.out_proj
            out[f"{side}.{i}.fc1"] = layer.fc1
            out[f"{side}.{i}.fc2"] = layer.fc2
            if side == "decoder":
                out[f"decoder.{i}.cross_q"] = layer.encoder_attn.q_proj
                out[f"decoder.{i}.cross_out_proj"] = layer.encoder_attn.out_proj
                out[f"decoder.{i}.cross_kv"] = layer.encoder_attn.k_proj  # all layers share one input
    return out


def scales(x_amax: torch.Tensor, weights: list[torch.Tensor], alpha: float) -> torch.Tensor:
    """s_j = max|X_j|^alpha / max|W_j|^(1-alpha), weights [out, in] sharing input j."""
    w_amax = torch.stack([w.detach().abs().amax(0).float() for w in weights]).amax(0)
    s = x_amax.clamp(min=EPS).pow(alpha) / w_amax.clamp(min=EPS).pow(1 - alpha)
    return s.clamp(min=EPS)


def _into_ln(ln: nn.LayerNorm, s: torch.Tensor, *after: nn.Linear) -> None:
    with torch.no_grad():
        ln.weight.div_(s)
        ln.bias.div_(s)
        for lin in after:
            lin.weight.mul_(s)


def fold(hf_model, amax: dict[str, torch.Tensor], alpha: dict[str, float]) -> Folded:
    """Fold SmoothQuant into hf_model in place (alpha per side: 'encoder',
    'decoder'; a side left out is not smoothed). amax from `input_amax` over
    `linears(hf_model)` of the same, unsmoothed model."""
    done = Folded(alpha=dict(alpha))

    def note(name: str, s: torch.Tensor) -> None:
        done.products[name] = [round(float(s.max()), 3), round(float(s.median()), 3)]

    for side in ("encoder", "decoder"):
        if side not in alpha:
            continue
        a = alpha[side]
        for i, layer in enumerate(getattr(hf_model.model, side).layers):
            att = layer.self_attn
            s = scales(amax[f"{side}.{i}.qkv"], [att.q_proj.weight, att.k_proj.weight, att.v_proj.weight], a)
            _into_ln(layer.self_attn_layer_norm, s, att.q_proj, att.k_proj, att.v_proj)
            note(f"{side}.{i}.qkv", s)
            attns = [("", att)] + ([("cross_", layer.encoder_attn)] if side == "decoder" else [])
            for prefix, at in attns:
                s = scales(amax[f"{side}.{i}.{prefix}out_proj"], [at.out_proj.weight], a)
                with torch.no_grad():
                    at.v_proj.weight.div_(s[:, None])
                    at.v_proj.bias.div_(s)
                    at.out_proj.weight.mul_(s)
                note(f"{side}.{i}.{prefix}out_proj", s)
            if side == "decoder":
                s = scales(amax[f"decoder.{i}.cross_q"], [layer.encoder_attn.q_proj.weight], a)
                _into_ln(layer.encoder_attn_layer_norm, s, layer.encoder_attn.q_proj)
                note(f"decoder.{i}.cross_q", s)
            s = scales(amax[f"{side}.{i}.fc1"], [layer.fc1.weight], a)
            _into_ln(layer.final_layer_norm, s, layer.fc1)
            note(f"{side}.{i}.fc1", s)
            s = scales(amax[f"{side}.{i}.fc2"], [layer.fc2.weight], a)
            with torch.no_grad():
                layer.fc2.weight.mul_(s)
            layer.fc2 = ScaledInput(layer.fc2, 1.0 / s)
            note(f"{side}.{i}.fc2", s)
    if "decoder" in alpha:  # cross k/v of every decoder layer read the encoder's final LayerNorm
        layers = hf_model.model.decoder.layers
        ws = [w for layer in layers for w in (layer.encoder_attn.k_proj.weight, layer.encoder_attn.v_proj.weight)]
        x = torch.stack([amax[f"decoder.{i}.cross_kv"] for i in range(len(layers))]).amax(0)
        s = scales(x, ws, alpha["decoder"])
        with torch.no_grad():
            ln = hf_model.model.encoder.layer_norm
            ln.weight.div_(s)
            ln.bias.div_(s)
            for w in ws:
                w.mul_(s)
        note("decoder.cross_kv", s)
    return done
