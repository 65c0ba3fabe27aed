"""Memory figures, one definition on every machine (engines/base.py `Memory`).

- Weights as stored: bytes of an engine's weight tensors at their stored
  types, computed by the engine from its tensors (torch) or its graphs'
  initializers (ONNX); they do not depend on load order, and are not what a
  runtime holds beside them (ONNX Runtime's prepacked copies and arena).
- Peak RSS alone (what to provision) and the working memory of a call, on a
  named clip: measured with the engine alone in a fresh process
  (engines/alone.py), so no other engine's heap or arena can move them.
- The labels and definitions, for the page, the CLI and the benchmark alike:
  docs/memory.md.
- The process: total RSS on CPU (`rss_bytes`), device memory in use via NVML
  on CUDA (`nvml_used_bytes`), labelled as the whole process or device.

The shared-process samplers below (`PeakSampler`, `LoadMeter`) are what a call
and a load look like from inside the app's process; the alone-probe uses them
in a process that holds one engine only.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

_PROC = None  # psutil.Process, made on first use: scripts/gpu_check.py imports this module where psutil may be absent


def rss_bytes() -> int:
    global _PROC
    if _PROC is None:
        import psutil

        _PROC = psutil.Process(os.getpid())
    return _PROC.memory_info().rss


def trim_heap() -> None:
    """Hand freed heap pages back to the OS (glibc `malloc_trim`). Inference
    frees large buffers from many threads and glibc keeps them in per-thread
    arenas, so without this a long-running app's resident memory creeps up
    with fragmentation, not with use. A no-op where libc is not glibc."""
    global _TRIM
    if _TRIM is None:
        try:
            import ctypes

            _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM = None


def limit_malloc_arenas(n: int = 2) -> bool:
    """Cap glibc's malloc arenas at `n`, as MALLOC_ARENA_MAX does. A web app
    runs requests on many threads; glibc gives threads their own arenas (up
    to 8 per core) and memory freed in one is not reused by another, so
    resident memory creeps up under concurrent load (+19 % in 5 minutes of
    the load test; flat with 2). Call before threads start. An explicit
    MALLOC_ARENA_MAX wins; False where libc is not glibc."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        import ctypes

        return bool(ctypes.CDLL("libc.so.6").mallopt(-8, int(n)))  # -8: M_ARENA_MAX
    except (OSError, AttributeError):
        return False


def disk_bytes(*paths: str | os.PathLike) -> int:
    """Total size of files (or folders, recursively), ONNX external data included."""
    total = 0
    for p in paths:
        p = Path(p)
        if p.is_file():
            total += p.stat().st_size
        elif p.is_dir():
            total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return total


def _is_cuda(device: str) -> bool:
    return device.startswith("cuda") or device == "CUDAExecutionProvider"


def synchronize(device: str) -> None:
    """Make GPU timings honest: wait for queued kernels before reading the clock."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


class PeakSampler:
    """Context manager: peak memory during the block.

    CPU: a thread samples process RSS every `interval_s` (psutil); short calls
    may miss a spike between samples, so the figure is a lower bound.
    CUDA (torch): `torch.cuda.max_memory_allocated` after a reset.
    """

    def __init__(self, device: str = "cpu", interval_s: float = 0.005):
        self.device = device
        self.interval_s = interval_s
        self.kind = "cuda-allocator" if device.startswith("cuda") else "cpu-rss"
        self.start_bytes = 0
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def peak_delta_bytes(self) -> int:
        return max(0, self.peak_bytes - self.start_bytes)

    def __enter__(self) -> "PeakSampler":
        if self.kind == "cuda-allocator":
            import torch

            torch.cuda.reset_peak_memory_stats()
            self.start_bytes = torch.cuda.memory_allocated()
            self.peak_bytes = self.start_bytes
            return self
        self.start_bytes = self._read()
        self.peak_bytes = self.start_bytes
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> int:
        """The sampled figure (process RSS here; NvmlPeakSampler reads the device)."""
        return rss_bytes()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_bytes = max(self.peak_bytes, self._read())

    def __exit__(self, *exc) -> None:
        if self.kind == "cuda-allocator":
            import torch

            self.peak_bytes = torch.cuda.max_memory_allocated()
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._read())


def process_bytes(device: str = "cpu") -> tuple[int, str]:
    """(bytes, what they are): RSS of this process, or on CUDA the device
    memory in use via NVML (all processes on that device)."""
    if _is_cuda(device):
        index = int(device.split(":")[1]) if device.startswith("cuda:") else 0
        used = nvml_used_bytes(index)
        if used is not None:
            return used, "device memory in use (NVML, whole device)"
    return rss_bytes(), "process RSS"


def peak_rss_bytes() -> int:
    """The high-water mark of this process's RSS since it started (Linux
    VmHWM). Not getrusage's ru_maxrss: that survives exec, so a child spawned
    by a 2 GB parent reports the parent's peak as its own."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # KiB on Linux, bytes on macOS (approx.)


def nvml_used_bytes(index: int = 0) -> int | None:
    """Device memory in use as nvidia-smi reports it (all processes); None without NVML."""
    try:
        import pynvml  # optional, present on GPU images

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
    except Exception:  # noqa: BLE001 - no NVML means no figure, not an error
        return None


class LoadMeter:
    """RSS (or CUDA allocated) growth across an engine's load."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.before = 0
        self.grown_bytes = 0

    def _now(self) -> int:
        if self.device.startswith("cuda"):
            import torch

            return torch.cuda.memory_allocated()
        return rss_bytes()

    def __enter__(self) -> "LoadMeter":
        self.before = self._now()
        return self

    def __exit__(self, *exc) -> None:
        self.grown_bytes = max(0, self._now() - self.before)


# --------------------------------------------------------------------------- CUDA (issue 14)
# One definition for every engine on a GPU:
# - weights as stored: bytes of the engine's weight tensors at their stored types
#   (torch: parameters + buffers on the device; ONNX Runtime: the graphs' initializers);
# - peak during a call: torch's allocator peak for torch engines; for ONNX
#   Runtime, which has no allocator statistics in Python, the rise of NVML's
#   device memory in use during the call (its CUDA arena growing), sampled;
# - device memory in use (NVML), labelled as the whole device, all processes.

def module_tensor_bytes(module) -> int:
    """Exact bytes of a torch module's parameters and buffers (each tensor once)."""
    seen, total = set(), 0
    for t in list(module.parameters()) + list(module.buffers()):
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        total += t.numel() * t.element_size()
    return total


def onnx_initializer_bytes(*paths: str | os.PathLike) -> int:
    """Exact bytes of the initializers (weights) of ONNX graphs, external data included."""
    import numpy as np
    import onnx
    from onnx import helper

    total = 0
    for p in paths:
        model = onnx.load(str(p), load_external_data=False)
        for t in model.graph.initializer:
            n = int(np.prod(t.dims)) if len(t.dims) else 1
            total += n * helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
    return total


def device_index(device: str) -> int:
    """"cuda:1" -> 1; "cuda", "CUDAExecutionProvider" -> 0."""
    tail = device.rpartition(":")[2]
    return int(tail) if device.startswith("cuda:") and tail.isdigit() else 0


class NvmlPeakSampler(PeakSampler):
    """Context manager: peak rise of NVML device memory in use during the
    block, sampled by a thread (a lower bound, like the CPU sampler). For ONNX
    Runtime on CUDA: its arena only grows, so after warm-up a call that fits
    in the arena shows ~0, which is the truth about what that call added."""

    def __init__(self, index: int = 0, interval_s: float = 0.005):
        super().__init__("cpu", interval_s)
        self.kind, self.index = "cuda-nvml", index

    def _read(self) -> int:
        return nvml_used_bytes(self.index) or 0


def sampler_for(device: str):
    """The peak sampler of the definition above for an engine's device:
    torch on CUDA ("cuda:N") -> allocator; ONNX Runtime on CUDA
    ("CUDAExecutionProvider", "TensorrtExecutionProvider") -> NVML when it is
    there; anything else -> process RSS."""
    if device in ("CUDAExecutionProvider", "TensorrtExecutionProvider") and nvml_used_bytes() is not None:
        return NvmlPeakSampler(device_index(device))
    return PeakSampler(device=device)


def device_memory(index: int = 0) -> dict | None:
    """{"used_bytes", "total_bytes", "scope": "whole device"} from NVML; None without it."""
    try:
        import pynvml

        pynvml.nvmlInit()
        info = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(index))
        return {"used_bytes": int(info.used), "total_bytes": int(info.total),
                "scope": "whole device, all processes (NVML)"}
    except Exception:  # noqa: BLE001 - no NVML means no figure, not an error
        return None
