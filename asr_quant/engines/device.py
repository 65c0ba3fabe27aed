"""Where engines run: one choice, made once, testable on a CPU machine."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DevicePlan:
    torch_device: str  # "cuda:0" or "cpu"
    ort_providers: tuple[str, ...]  # in order of preference

    @property
    def ort_device(self) -> str:
        return self.ort_providers[0]


def choose(requested: str = "auto", cuda_available: bool | None = None,
           ort_available: list[str] | None = None) -> DevicePlan:
    """"auto" takes the GPU when torch sees one; "cpu" forces the CPU.

    ORT gets the CUDA provider only when the installed build offers it and a
    GPU is in use, with the CPU provider behind it as ONNX Runtime expects.
    """
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    if ort_available is None:
        import onnxruntime as ort

        ort_available = ort.get_available_providers()
    req = (requested or "auto").lower()
    if req not in ("auto", "cpu") and not req.startswith("cuda"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], not {requested!r}")
    use_cuda = cuda_available and req != "cpu"
    if req.startswith("cuda") and not cuda_available:
        raise ValueError("CUDA was requested but torch sees no GPU")
    torch_device = (req if req.startswith("cuda:") else "cuda:0") if use_cuda else "cpu"
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    if use_cuda and "CUDAExecutionProvider" in ort_available:
        providers = ("CUDAExecutionProvider", "CPUExecutionProvider")
    return DevicePlan(torch_device, providers)
