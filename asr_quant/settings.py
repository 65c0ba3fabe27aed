"""One settings object, filled from ASRQ_* environment variables and CLI flags.

Environment variables exist for hosted runs (Hugging Face Spaces, Docker)
where flags can't be passed; a flag given on the command line wins.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields
from pathlib import Path


def _default_cache() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "asr-quant")


def _default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


@dataclass
class Settings:
    model: str = "base"  # base | tiny.en | path to a CT2 Whisper folder | Fun-ASR-Nano hub id or folder
    precisions: str = "fp32,fp16,int8"  # add bf16 for the optional fourth engine
    device: str = "auto"  # auto | cpu | cuda[:N]
    threads: int = field(default_factory=_default_threads)  # same for torch and onnxruntime
    cache_dir: str = field(default_factory=_default_cache)
    max_audio_s: float = 600.0  # longest clip accepted (10 minutes); over 30 s is decoded long-form
    max_file_mb: float = 50.0
    inference_timeout_s: float = 300.0
    server_name: str = "127.0.0.1"
    server_port: int = 7860
    concurrency: int = 1  # inferences at once; 1 keeps timings honest
    max_queue: int = 32
    # the page's inference threads run this much nicer than its web server, so
    # that uploads, bad-input checks and page loads get the CPU first (Linux)
    inference_nice: int = 10
    int8_plan: str = "auto"  # Whisper INT8: "auto" (the plan plans/default.py names for this host) | "recipe" | "search" | "blockwise" | "rows" | "costed"
    int8_budget: str = "kl=0.004"  # for "search" and "costed": mean KL ("kl=") or top-1 agreement ("top1=") on hold-out speech; "costed" also takes time=<ratio to FP32 product time>
    memory_probe: str = "background"  # background: measure each engine alone once (cached) after start | off

    @property
    def precision_list(self) -> list[str]:
        return [p.strip().lower() for p in self.precisions.split(",") if p.strip()]

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        s = cls()
        for f in fields(cls):
            key = "ASRQ_" + f.name.upper()
            if key in env and env[key] != "":
                setattr(s, f.name, _cast(f, env[key]))
        return s

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, only: list[str] | None = None) -> None:
        """Add --flag for each field (default None, so env and defaults show through)."""
        for f in fields(cls):
            if only is not None and f.name not in only:
                continue
            parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None,
                                help=f"(env ASRQ_{f.name.upper()})")

    @classmethod
    def from_args(cls, args: argparse.Namespace, environ: dict[str, str] | None = None) -> "Settings":
        s = cls.from_env(environ)
        for f in fields(cls):
            v = getattr(args, f.name, None)
            if v is not None:
                setattr(s, f.name, _cast(f, v))
        return s


def _cast(f, value):
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "str")
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return str(value)
