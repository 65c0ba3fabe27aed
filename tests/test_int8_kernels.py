"""scripts/int8_kernels.py on small shapes: every kernel computes the same
product as FP32 within 8-bit rounding, and the table lists each. It prints
speeds and asserts none of them (the machine is shared)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "int8_kernels.py"


def _script():
    spec = importlib.util.spec_from_file_location("int8_kernels", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_kernel_computes_the_product(tmp_path):
    k = _script()
    shapes = [("frames", 24, 256, 64), ("one token", 1, 256, 96)]
    rows = k.measure(shapes, threads=1, rounds=2, tmp=tmp_path)
    assert [(r["shape"], r["kernel"]) for r in rows] == [(s[0], kn) for s in shapes for kn in k.KERNELS]
    by = {(r["shape"], r["kernel"]): r for r in rows}
    for name, *_ in shapes:
        assert by[(name, "FP32 MatMul")]["rel_error"] < 1e-5
        for kn in k.KERNELS[1:]:
            # 8-bit weights (and activations) on Gaussian data: about 1 % RMS; a wrong
            # scale, transpose or zero point would be far off
            assert 0.0 < by[(name, kn)]["rel_error"] < 0.03, (name, kn, by[(name, kn)]["rel_error"])
        # blocks of 16 inputs are a finer grid than one scale per column over 256 inputs
        assert by[(name, "blockwise: MatMulNBits, blocks of 16")]["rel_error"] < by[(name, "recipe: MatMulInteger")]["rel_error"]
        assert all(by[(name, kn)]["ms"] > 0 for kn in k.KERNELS)
    text = k.table(rows)
    assert text.count("\n") == len(rows) + 1 and "blockwise: MatMulNBits, blocks of 16" in text


def test_leaves_the_root_logger_as_it_found_it(tmp_path):
    import logging

    import numpy as np

    root = logging.getLogger()
    before = root.level
    _script().costs.tensor_model(np.eye(16, dtype=np.float32), 4, tmp_path)
    assert root.level == before
