"""Where engines run: one choice, made once, testable on a CPU machine."""
from __future__ import annotations

from dataclasses import dataclass


TRT = "TensorrtExecutionProvider"
TRT_LIBS = ("libnvinfer.so.10", "libnvonnxparser.so.10")  # what onnxruntime-gpu 1.31.1's TensorRT provider links


@dataclass(frozen=True)
class DevicePlan:
    torch_device: str  # "cuda:0" or "cpu"
    ort_providers: tuple[str, ...]  # in order of preference
    tensorrt_unavailable: str | None = "no GPU in use"  # why "FP16 (TensorRT)" cannot run; None: it can

    @property
    def ort_device(self) -> str:
        return self.ort_providers[0]

    @property
    def int8_recipe(self) -> str:
        """"cuda" (weight-only INT8 that stays on the GPU) when ORT runs on CUDA, else "cpu"."""
        return "cuda" if self.ort_device == "CUDAExecutionProvider" else "cpu"


def tensorrt_libraries_missing() -> list[str]:
    """TensorRT libraries the provider needs that cannot be loaded (the
    tensorrt wheel's `tensorrt_libs` folder is tried after the loader path)."""
    import ctypes
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("tensorrt_libs")
    folder = Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None
    missing = []
    for lib in TRT_LIBS:
        for candidate in [lib] + ([str(folder / lib)] if folder else []):
            try:
                ctypes.CDLL(candidate)
                break
            except OSError:
                continue
        else:
            missing.append(lib)
    return missing


def cuda_device_count() -> int:
    """GPUs the CUDA driver sees, asked of the driver itself (libcuda), so that
    an engine set of ONNX Runtime engines needs no torch to know."""
    import ctypes

    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return int(count.value)


def choose(requested: str = "auto", cuda_available: bool | None = None,
           ort_available: list[str] | None = None, torch_needed: bool = True,
           trt_missing: list[str] | None = None) -> DevicePlan:
    """"auto" takes the GPU when there is one; "cpu" forces the CPU.

    ORT gets the CUDA provider only when the installed build offers it and a
    GPU is in use, with the CPU provider behind it as ONNX Runtime expects.
    Whether there is a GPU: torch's answer when torch engines are wanted,
    else the CUDA driver's (no torch import for an ONNX-only engine set).
    TensorRT FP16 is possible when, on top of that, the build lists the
    TensorRT provider and its libraries load (`trt_missing`: the libraries
    that don't; looked up only when needed).
    """
    if cuda_available is None and (requested or "auto").lower() == "cpu":
        cuda_available = False  # nothing to ask
    if cuda_available is None:
        if torch_needed:
            import torch

            cuda_available = torch.cuda.is_available()
        else:
            cuda_available = cuda_device_count() > 0
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
    if not use_cuda:
        trt = "no GPU in use"
    elif providers[0] != "CUDAExecutionProvider":
        trt = "this onnxruntime build has no CUDA execution provider (install onnxruntime-gpu)"
    elif TRT not in ort_available:
        trt = "this onnxruntime build has no TensorRT execution provider"
    else:
        missing = tensorrt_libraries_missing() if trt_missing is None else trt_missing
        trt = (f"onnxruntime-gpu has a TensorRT provider but cannot load {', '.join(missing)} "
               f"(install TensorRT 10 built for CUDA 13 so that they are on the library path)") if missing else None
    return DevicePlan(torch_device, providers, trt)
