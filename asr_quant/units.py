"""How a byte count reads, on the page, in the CLI and in the benchmark alike:
MB = 10^6 bytes and GB = 10^9 (decimal, as disk sizes are sold), so one
figure is one string everywhere. The definitions of the memory figures
themselves are in docs/memory.md."""
from __future__ import annotations

MB = 10 ** 6
GB = 10 ** 9


def fmt_bytes(n: float | None, missing: str = "—") -> str:
    """'290 MB', '1.20 GB', '0 MB'; `missing` for None (not measured, not known)."""
    if n is None:
        return missing
    if abs(n) >= GB:
        return f"{n / GB:.2f} GB"
    return f"{n / MB:.0f} MB"
