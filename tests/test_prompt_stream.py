"""The long known-text recording builder: prompts back to back, one placed
across each requested mark, silence to the exact length, cut at pauses."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from asr_quant.bench import prompt_stream
from asr_quant.bench.corpus import Utterance


def test_prompts_are_placed_across_marks_and_cut_at_pauses(tmp_path):
    utts = []
    for i, seconds in enumerate([1.0, 1.5, 2.0, 1.2, 1.8, 1.1]):
        path = tmp_path / f"p{i}.wav"
        sf.write(str(path), np.full(int(seconds * 8000), 0.1 * (i + 1), np.float32), 8000)
        utts.append(Utterance(id=f"p{i}", language="es", group="es", text=f"palabra{i} otra", path=str(path),
                              source="t", duration_s=seconds))
    rec = prompt_stream.build(utts, total_s=12.0, gap_s=0.5, across=(3.0, 7.0))
    assert rec.duration_s == pytest.approx(12.0, abs=1e-3) and len(rec.samples) == 12 * 16000
    for mark in (3.0, 7.0):
        assert any(p.start_s < mark < p.end_s for p in rec.placed)
    assert all(b.start_s - a.end_s >= 0.05 for a, b in zip(rec.placed, rec.placed[1:]))
    for p in rec.placed:  # each prompt's audio is where it is said to be
        mid = rec.slice(p.start_s + 0.1, p.end_s - 0.1)
        assert np.allclose(mid, mid[0], atol=1e-3) and mid[0] > 0.05
    assert rec.text.startswith("palabra0 otra palabra1")
    pieces = rec.cut(4.0)
    assert [p for _, _, g in pieces for p in g] == rec.placed  # every prompt once, whole, in order
    assert all(b - a <= 4.0 for a, b, g in pieces[:-1])
    with pytest.raises(ValueError, match="ran out"):
        prompt_stream.build(utts[:2], total_s=30.0, across=(20.0,))
