"""FP32 arithmetic on INT8-rounded weights: what rounding the weights alone costs.

INT8's error has two sources: the weights rounded to 8 bits, and the
activations quantized at every call. This engine has only the first. Its
weights are the grid that INT8 stores (sensitivity._fq_weight: int8 symmetric,
one scale per output channel, as onnxruntime's per-channel weights). They are
applied to every linear layer of the encoder and decoder and to the token
table, which is also the output projection. Everything else stays FP32: the
activations, the attention scores, the convolutions, LayerNorm and the
positions. So its distance from FP32 estimates the weight grid's share of
INT8's distance, and the rest is the activation recipe's share, which a better
recipe could reduce. It is an estimate, not a bound: the two errors do not
simply add, and a plan that keeps some weights FP32 (the recipe's outlier
channels, the searched plan's groups) rounds fewer weights. The benchmark shows
it as a study row (`--rounded-weights`), not as a deployable engine. It runs
at FP32's speed and holds an FP32 copy of the model, so its time and memory
say nothing about INT8.
"""
from __future__ import annotations

from dataclasses import replace

from .model import WhisperBundle
from .torch_engine import TorchStepModel, WhisperTorchEngine

NAME = "FP32, INT8-rounded weights"


def rounded_copy(hf_model):
    """A deep copy of `hf_model` in which every nn.Linear weight under the
    encoder's and decoder's layers, and the token table, lie on the INT8 grid.
    Returns (model, number of weight tensors rounded). The original is untouched."""
    import copy

    import torch

    from .plans.sensitivity import _fq_weight

    model = copy.deepcopy(hf_model).eval()
    n = 0
    with torch.no_grad():
        for side in (model.model.encoder, model.model.decoder):
            for mod in side.layers.modules():
                if isinstance(mod, torch.nn.Linear):
                    mod.weight.copy_(_fq_weight(mod.weight))
                    n += 1
        table = model.model.decoder.embed_tokens.weight
        table.copy_(_fq_weight(table))  # proj_out shares this tensor (tied), so the output projection is rounded too
        n += 1
    return model, n


class WhisperRoundedWeightsEngine(WhisperTorchEngine):
    """PyTorch FP32 on a copy of the model whose weights were rounded to INT8 (see module doc)."""

    def __init__(self, bundle: WhisperBundle, device: str, threads: int):
        import time

        import torch

        from .. import runtime_policy

        t0 = time.perf_counter()
        super().__init__(bundle, "fp32", device, threads)
        self.model, n = rounded_copy(bundle.hf_model)
        self.model.to(device)
        self.step_model = TorchStepModel(self.model, device, torch.float32)
        self.info = replace(
            self.info, name=NAME, disk_bytes=0, load_s=time.perf_counter() - t0,
            details=(f"a study, not a deployable engine: FP32 arithmetic on a copy of the model with {n} weight "
                     "tensors (every linear layer, and the token table) rounded to INT8's per-channel grid; "
                     "activations stay FP32. Its distance from FP32 is what rounding the weights costs; its time "
                     "and memory are FP32's; " + runtime_policy.describe(torch.get_num_threads(), "torch")))
