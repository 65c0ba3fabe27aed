"""The instruction-set level read from /proc/cpuinfo decides which INT8 plan a
host gets and labels every INT8 figure."""
from __future__ import annotations

import pytest

from asr_quant import host

AMD_AVX2 = "model name\t: AMD EPYC 7B12\nflags\t\t: fpu sse sse2 avx avx2 fma bmi2\n"
XEON = "model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: avx2 fma avx512f avx512bw avx512_vnni amx_int8 avx_vnni\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes asimddp\n"


@pytest.mark.parametrize("text, machine, level, vnni, label", [
    (AMD_AVX2, "x86_64", "avx2", False, "AVX2 + FMA (no VNNI)"),
    (XEON, "x86_64", "amx", True, "AVX512-VNNI + AVX-VNNI + AMX"),
    ("flags: avx2 fma avx_vnni\n", "x86_64", "avx-vnni", True, "AVX-VNNI + AVX2 + FMA"),
    ("flags: avx2 fma avx512f\n", "x86_64", "avx512", False, "AVX512 (no VNNI)"),
    ("flags: sse2\n", "x86_64", "x86", False, "x86 (no VNNI)"),
    (ARM, "aarch64", "arm-dotprod", True, "dot-product + NEON"),
])
def test_level_and_label(text, machine, level, vnni, label):
    cpu, flags = host.parse_cpuinfo(text)
    isa = host.Isa(host.level_of(flags, machine), cpu, tuple(f for f in host.X86_FLAGS + host.ARM_FLAGS if f in flags))
    assert (isa.level, isa.vnni, isa.label) == (level, vnni, label)


def test_unknown_level_is_refused():
    with pytest.raises(ValueError):
        host.Isa("avx9000")


def test_detect_reads_this_machine():
    isa = host.detect()
    assert isa.level in host.LEVELS and isa.describe()
