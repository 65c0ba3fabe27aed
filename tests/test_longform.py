"""Long-form decoding on real speech: Debian's recorded Spanish prompts played
back to back as one 150 s recording, with a prompt placed across each of the
30, 60, 90 and 120 s marks (where fixed 30 s windows would cut it).

What must hold: the whole recording decoded long-form is no less accurate than
the same speech cut at pauses into clips under 30 s, and the word that lies
across each mark comes out exactly once (fixed windows lose or double it)."""
from __future__ import annotations

import jiwer
import pytest

from asr_quant import metrics
from asr_quant.audio import Clip
from asr_quant.bench import prompt_stream, prompts

pytestmark = pytest.mark.model

MARKS = (30.0, 60.0, 90.0, 120.0)


@pytest.fixture(scope="module")
def recording():
    try:
        utts = prompts.builtin_es()
    except prompts.CorpusError as exc:
        pytest.skip(str(exc))
    short = [u for u in utts if 2.0 <= u.duration_s <= 8.0]
    return prompt_stream.build(short, total_s=150.0, across=MARKS)


def _clip(samples, name: str) -> Clip:
    return Clip(samples=samples, name=name)


def _words(text: str) -> list[str]:
    return metrics.normalize(text, "es").split()


def _across(rec, mark: float):
    return next(p for p in rec.placed if p.start_s < mark < p.end_s)


def _edits_per_prompt(placed, hypothesis: str) -> list[int]:
    """Words lost (deleted) or added (inserted) per prompt, aligning the
    hypothesis with the prompts' texts back to back (jiwer); an insertion
    counts for the prompt whose word it follows."""
    owner = [i for i, p in enumerate(placed) for _ in _words(p.utt.text)]
    out = jiwer.process_words(" ".join(_words(" ".join(p.utt.text for p in placed))), " ".join(_words(hypothesis)))
    edits = [0] * len(placed)
    for chunk in out.alignments[0]:
        if chunk.type == "delete":
            for k in range(chunk.ref_start_idx, chunk.ref_end_idx):
                edits[owner[k]] += 1
        elif chunk.type == "insert":
            edits[owner[max(0, chunk.ref_start_idx - 1)]] += chunk.hyp_end_idx - chunk.hyp_start_idx
    return edits


def test_long_form_loses_and_doubles_nothing_at_window_edges(recording, whisper_engines):
    int8 = whisper_engines.by_name("INT8")
    assert int8.info.available, int8.info.error
    seen = []
    whole = int8.transcribe(_clip(recording.samples, "stream.wav"), "es",
                            progress=lambda done, total: seen.append(done))
    assert whole.ok, whole.error
    assert len(seen) >= 5 and seen[-1] == pytest.approx(150.0, abs=0.02)  # one report per window
    assert all(b > a for a, b in zip(seen, seen[1:]))
    starts = [s.start_s for s in whole.segments]
    assert starts == sorted(starts) and whole.segments[-1].end_s <= 150.0

    pieces = recording.cut(25.0)
    assert len(pieces) >= 6 and all(b - a < 30.0 for a, b, _ in pieces)
    clips = [int8.transcribe(_clip(recording.slice(a, b), f"piece{i}.wav"), "es") for i, (a, b, _) in enumerate(pieces)]
    assert all(c.ok for c in clips)
    clips_text = " ".join(c.text for c in clips)

    wer_whole = metrics.error_rate(recording.text, whole.text, "es")
    wer_clips = metrics.error_rate(recording.text, clips_text, "es")
    print(f"\nINT8 WER long-form {wer_whole.rate:.3f} (S{wer_whole.substitutions} D{wer_whole.deletions} "
          f"I{wer_whole.insertions}) vs clips under 30 s {wer_clips.rate:.3f} (S{wer_clips.substitutions} "
          f"D{wer_clips.deletions} I{wer_clips.insertions}) over {wer_clips.ref_len} words")
    # No worse, up to INT8's own word-level noise between two decodes of the same speech: 1 % of the words
    # (3 here). A lost or doubled prompt at a window edge costs 5-15 words.
    assert wer_whole.rate <= wer_clips.rate + 0.01, (whole.text, clips_text)
    lost_whole = _edits_per_prompt(recording.placed, whole.text)
    lost_clips = _edits_per_prompt(recording.placed, clips_text)
    # Per prompt across an edge: a lost or doubled segment there costs 5-15 words; INT8's two decodes of
    # the same speech also differ by single words (on the default plan, "de agente seguido" once came out
    # "de seguido" mid-prompt at 30 s), so one word of slack here; FP32 is held to no slack at 30 s below.
    for mark in MARKS:
        k = recording.placed.index(_across(recording, mark))
        assert lost_whole[k] <= lost_clips[k] + 1, (mark, recording.placed[k].utt.text, whole.text)


def test_fp32_keeps_the_prompt_across_30_s_whole(recording, whisper_engines):
    """FP32 (PyTorch) runs the same loop: the first 45 s (two windows) against
    the piece of under 30 s that holds the prompt across 30 s."""
    fp32 = whisper_engines.by_name("FP32")
    end = next(p.end_s for p in recording.placed if p.start_s > 40.0)
    head = [p for p in recording.placed if p.end_s <= end]
    whole = fp32.transcribe(_clip(recording.slice(0.0, end), "head.wav"), "es")
    assert whole.ok, whole.error
    a, b, inside = next(x for x in recording.cut(25.0) if _across(recording, 30.0) in x[2])
    piece = fp32.transcribe(_clip(recording.slice(a, b), "piece.wav"), "es")
    k = head.index(_across(recording, 30.0))
    lost_whole = _edits_per_prompt(head, whole.text)[k]
    lost_piece = _edits_per_prompt(inside, piece.text)[inside.index(_across(recording, 30.0))]
    assert lost_whole <= lost_piece, (head[k].utt.text, whole.text, piece.text)
    assert metrics.error_rate(" ".join(p.utt.text for p in head), whole.text, "es").deletions <= 2, whole.text
