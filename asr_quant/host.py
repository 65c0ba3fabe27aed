"""The CPU an engine runs on, as far as its figures depend on it: the model name
and the instruction-set level that picks ONNX Runtime's (MLAS) and PyTorch's
integer and 16-bit kernels. INT8 speed and even INT8 agreement change with it
(without VNNI, MLAS's u8s8 products go through `vpmaddubsw`, whose 16-bit sums
can saturate), so every INT8 figure is labelled with it and the INT8 artifact
key covers it. Read once from /proc/cpuinfo (Linux) or the platform; no imports
beyond the standard library."""
from __future__ import annotations

import functools
import platform
from dataclasses import dataclass, field

# x86 flags that decide MLAS's int8 / 16-bit float kernels, strongest first.
X86_FLAGS = ("amx_int8", "amx_bf16", "amx_fp16", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
             "avx512bw", "avx512f", "avx2", "fma")
ARM_FLAGS = ("i8mm", "asimddp", "sve", "asimd")
# Levels an INT8 plan can be built for, strongest first (`Isa.level`).
LEVELS = ("amx", "avx512-vnni", "avx-vnni", "avx512", "avx2", "x86", "arm-i8mm", "arm-dotprod", "arm", "other")


@dataclass(frozen=True)
class Isa:
    """What this CPU offers integer matrix products: `level` is one of LEVELS."""

    level: str
    cpu: str = ""
    flags: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if self.level not in LEVELS:
            raise ValueError(f"instruction-set level must be one of {', '.join(LEVELS)}, not {self.level!r}")

    @property
    def vnni(self) -> bool:
        """Whether u8s8 products sum in 32 bits without a saturating 16-bit step."""
        return self.level in ("amx", "avx512-vnni", "avx-vnni", "arm-i8mm", "arm-dotprod")

    @property
    def label(self) -> str:
        """E.g. 'AVX512-VNNI + AMX', 'AVX2 + FMA (no VNNI)': beside every INT8 figure."""
        names = {"amx_int8": "AMX", "avx512_vnni": "AVX512-VNNI", "avx_vnni": "AVX-VNNI", "avx512f": "AVX512",
                 "avx2": "AVX2", "fma": "FMA", "asimddp": "dot-product", "i8mm": "i8mm", "asimd": "NEON"}
        have = [names[f] for f in ("avx512_vnni", "avx_vnni", "amx_int8", "avx512f", "avx2", "fma", "i8mm",
                                   "asimddp", "asimd") if f in self.flags]
        if "AVX512-VNNI" in have:
            have = [h for h in have if h not in ("AVX512", "AVX2", "FMA")]
        elif "AVX512" in have:
            have = [h for h in have if h not in ("AVX2", "FMA")]
        text = " + ".join(have) or self.level
        if self.level in ("avx512", "avx2", "x86", "arm"):
            text += " (no VNNI)"
        return text

    def describe(self) -> str:
        """The CPU's model and its label: 'Intel(R) Xeon(R) Processor, AVX512-VNNI + AMX'."""
        return f"{self.cpu}, {self.label}" if self.cpu else self.label

    def as_dict(self) -> dict:
        return {"level": self.level, "label": self.label, "cpu": self.cpu, "flags": list(self.flags)}


def level_of(flags: set[str], machine: str) -> str:
    """The level a set of /proc/cpuinfo flags gives (pure, for tests)."""
    if machine.lower() in ("aarch64", "arm64"):
        return "arm-i8mm" if "i8mm" in flags else "arm-dotprod" if "asimddp" in flags else "arm"
    if machine.lower() not in ("x86_64", "amd64", "i686", "x86"):
        return "other"
    for flag, level in (("amx_int8", "amx"), ("avx512_vnni", "avx512-vnni"), ("avx_vnni", "avx-vnni"),
                        ("avx512f", "avx512"), ("avx2", "avx2")):
        if flag in flags:
            return level
    return "x86"


def parse_cpuinfo(text: str) -> tuple[str, set[str]]:
    """(model name, flags) from /proc/cpuinfo's text (x86 'flags', ARM 'Features')."""
    cpu, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and not cpu:
            cpu = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return cpu, flags


@functools.lru_cache(maxsize=1)
def detect() -> Isa:
    """This machine's Isa, read once."""
    machine = platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu, flags = parse_cpuinfo(f.read())
    except OSError:
        cpu, flags = "", set()
    cpu = cpu or platform.processor() or machine
    wanted = X86_FLAGS + ARM_FLAGS
    return Isa(level=level_of(flags, machine), cpu=cpu, flags=tuple(f for f in wanted if f in flags))
