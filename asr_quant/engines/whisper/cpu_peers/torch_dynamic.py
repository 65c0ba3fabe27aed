"""PyTorch's own dynamic INT8: `torch.ao.quantization.quantize_dynamic` on a
copy of the same transformers FP32 model, every nn.Linear to qint8 weights
(per-tensor scale, activations quantized per call by the x86/fbgemm kernels),
decoded by this project's own greedy decoder: the one-line answer a PyTorch
user tries first. Convolutions, LayerNorm, attention matmuls and the token
embedding stay FP32; the output projection (a Linear tied to the embedding)
becomes its own INT8 copy."""
from __future__ import annotations

import copy
import time

from ... import runtime_policy
from ...base import Engine, EngineInfo, RawResult
from .... import memory as _memory
from ....audio import Clip
from ....cache import build_dir
from .. import longform
from ..model import WhisperBundle
from ..torch_engine import TorchStepModel, set_threads


def quantize(hf_model, inplace: bool = False):
    """`hf_model` with dynamic-INT8 Linears: a copy, or (inplace) the model itself, so no FP32 copy stays."""
    import torch

    torch.backends.quantized.engine = "x86" if "x86" in torch.backends.quantized.supported_engines else \
        torch.backends.quantized.engine
    model = hf_model if inplace else copy.deepcopy(hf_model)
    return torch.ao.quantization.quantize_dynamic(model.eval(), {torch.nn.Linear}, dtype=torch.qint8,
                                                  inplace=inplace)


def state_bytes(model) -> int:
    """Bytes of every tensor in the state dict (qint8 weights at 1 byte, their scales, the FP32 rest)."""
    import torch

    total, seen = 0, set()
    for v in model.state_dict().values():
        tensors = [v] if isinstance(v, torch.Tensor) else [x for x in (v if isinstance(v, tuple) else ())
                                                           if isinstance(x, torch.Tensor)]
        for t in tensors:
            if t.data_ptr() in seen:
                continue
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()
    return total


class TorchDynamicInt8Engine(Engine):
    carries_context = True  # the shared long-form loop: previous text as prompt, window progress

    def __init__(self, bundle: WhisperBundle, threads: int):
        import torch

        set_threads(threads)
        self.bundle = bundle
        t0 = time.perf_counter()
        self.model = quantize(bundle.hf_model, inplace=True)  # the peer's own bundle (cpu_peers._build)
        self.step_model = TorchStepModel(self.model, "cpu", torch.float32)
        from ....cache import source_hash

        folder = bundle.cache_dir / f"torch-dynamic-int8-{source_hash(__file__)}-torch{torch.__version__}"
        build_dir(folder, lambda tmp: torch.save(self.model.state_dict(), tmp / "model.pt"),
                  valid=lambda f: (f / "model.pt").is_file())
        self.info = EngineInfo(
            name="PyTorch dynamic INT8", precision="int8", runtime=f"PyTorch {torch.__version__.split('+')[0]}",
            device="cpu", model=bundle.name,
            details=("peer: torch.ao.quantization.quantize_dynamic(nn.Linear -> qint8, "
                     f"{torch.backends.quantized.engine} kernels) on the same FP32 model, built at load; this "
                     "project's greedy decoder; size on disk = its state dict saved with torch.save; "
                     + runtime_policy.describe(torch.get_num_threads(), "torch")),
            threads=torch.get_num_threads(), disk_bytes=_memory.disk_bytes(folder / "model.pt"),
            weights_bytes=state_bytes(self.model), load_s=time.perf_counter() - t0)

    def _run(self, clip: Clip, language: str | None, prompt: str | None = None, progress=None) -> RawResult:
        return longform.transcribe_samples(self.step_model, clip.samples, self.bundle.tokens, language,
                                           n_mels=self.bundle.n_mels, prompt=prompt, progress=progress)

    def close(self) -> None:
        self.model = self.step_model = None
