"""The machine a benchmark ran on: CPU, cores, memory, GPU, package versions
and the threads each runtime was given."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess

import psutil

from .. import __version__, host
from ..engines.base import Engine
from . import corpus as _corpus


def machine() -> dict:
    """CPU model, its instruction-set level (`isa`: level, label, flags, from
    asr_quant.host; INT8's figures depend on it), cores, RAM, GPU (or None), OS."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = None
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout.strip()
            gpu = "; ".join(out.splitlines()) or None
        except (OSError, subprocess.SubprocessError):
            gpu = None
    return dict(node=platform.node(), cpu=cpu, isa=host.detect().as_dict(), logical_cores=os.cpu_count(),
                physical_cores=psutil.cpu_count(logical=False),
                ram_gb=psutil.virtual_memory().total / 1e9, gpu=gpu, os=platform.platform(),
                python=platform.python_version())


def versions() -> dict:
    """Installed versions, read from package metadata (no heavy imports)."""
    out = {"asr-quant": __version__}
    for dist in ("torch", "onnxruntime-gpu", "onnxruntime", "onnx", "transformers", "ctranslate2",
                 "faster-whisper", "funasr", "numpy", "jiwer", "librosa"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        out["espeak-ng"] = _corpus.espeak_version()
    except _corpus.CorpusError:
        pass
    return out


def threads_summary(engines: list[Engine], requested: int) -> dict:
    per = {e.info.name: e.info.threads for e in engines}
    runtimes = {}
    for e in engines:
        words = (e.info.runtime or "?").split(" ")
        rt = " ".join(words[:-1]) if len(words) > 1 and any(c.isdigit() for c in words[-1]) else " ".join(words)
        if e.info.runtime.startswith("faster-whisper"):
            rt = "CTranslate2"
        runtimes.setdefault(rt, set()).add(e.info.threads)
    summary = ", ".join(f"{rt} {'/'.join(str(t) for t in sorted(ts))}" for rt, ts in runtimes.items())
    return dict(requested=requested, per_engine=per, summary=f"{summary} (requested {requested})")
