"""Balanced run orders: engines (or kernels) timed in turn, each in every position
and after every other equally often, so none always runs first, on a cold
cache or after the same neighbour's threads. Core: the benchmark, the
ablations and the INT8 kernel cost table (engines/whisper/plans/costs.py) use it."""
from __future__ import annotations


def rotated(engines: list, k: int) -> list:
    """The engines in the k-th order of a balanced Latin square (Williams
    design): over a full cycle (n orders for n engines, 2n when n is odd)
    every engine runs in every position, and right after every other engine,
    equally often, so none always runs first, on a cold cache or after the
    same neighbour's threads. k counts clips and runs; it wraps around."""
    n = len(engines)
    if n < 2:
        return list(engines)
    order = williams_order(n, k)
    return [engines[i] for i in order]


def williams_order(n: int, k: int) -> list[int]:
    """Row k (mod the cycle) of a Williams square for n items: the first row
    is 0, 1, n-1, 2, n-2, ...; row i adds i to each (mod n); for odd n the
    rows are followed by their reverses, which balance the neighbours."""
    first, lo, hi = [0], 1, n - 1
    while len(first) < n:
        first.append(lo)
        lo += 1
        if len(first) < n:
            first.append(hi)
            hi -= 1
    k %= n if n % 2 == 0 else 2 * n
    row = [(x + k % n) % n for x in first]
    return row[::-1] if k >= n else row
