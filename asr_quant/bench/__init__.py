"""`python -m asr_quant.bench`: the seed article's table, measured on this machine.

The parts, one job each: `cli` (flags, corpus selection, outputs), `run` (one
model's engines interleaved on the same clips), `family` (what a model family
may offer: peers, INT8 variants, calibration texts, operator profiles),
`memprobe` (each engine alone in a fresh process), `env` (the machine),
`stats` (pure statistics), `report` / `charts` / `docs` (results.md, plotly
charts, docs/benchmark.md), `corpus` / `sentences` (the clips).
"""
from .cli import main

__all__ = ["main"]
