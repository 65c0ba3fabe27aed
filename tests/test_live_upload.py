"""A live transcript and the upload of the same audio read the same: an
upload over 30 s is cut at the pauses live mode cuts at, and each piece is
decoded after the text before it, exactly as live mode's worker decodes it.
On a fake Whisper (no weights) whose words depend on the mel it is given and
on the prompt before it, so any difference in cut or prompt shows."""
from __future__ import annotations

import numpy as np
import pytest

from asr_quant.app import stream
from asr_quant.audio import Clip
from asr_quant.engines import Engine, EngineInfo
from asr_quant.engines import pauses
from asr_quant.engines.whisper import features, longform

from test_whisper_decoding import WORDS, make_info

SR = 16000
RNG = np.random.default_rng(3)


class MelWords:
    """A StepModel: encode keeps a digest of the mel; the text is one word
    picked by that digest and the prompt's length, then the end."""

    def __init__(self, info):
        self.info, self.encodes = info, 0

    def encode(self, mel):
        assert mel.shape[-1] == features.N_FRAMES
        self.encodes += 1
        return int(abs(float(mel.sum())) * 1000) % 997

    def step(self, enc, tokens, cache):
        history = (cache or []) + tokens[0].tolist()
        logits = np.full(self.info.vocab_size, -10.0, np.float32)
        if history[-1] in self.info.prompt("en", timestamps=False)[-1:]:  # the prompt ends: one word
            logits[(enc + len(history)) % 60 + WORDS.index("w0")] = 10.0
        else:
            logits[self.info.eot] = 10.0
        return logits, history


class FakeWhisper(Engine):
    carries_context = True

    def __init__(self, name: str):
        self.info = EngineInfo(name=name, precision=name.lower(), runtime="Fake", device="cpu", model="fake")
        self.tokens = make_info()
        self.model = MelWords(self.tokens)

    def _run(self, clip, language, prompt=None, progress=None):
        return longform.transcribe_samples(self.model, clip.samples, self.tokens, language, prompt=prompt,
                                           progress=progress)


def bursts(n: int) -> np.ndarray:
    """n bursts of a tone of 1.5-4 s (different each), 1 s of near-silence after each."""
    parts = []
    for i in range(n):
        t = np.arange(int((1.5 + (i * 0.37) % 2.5) * SR)) / SR
        parts += [(0.2 * np.sin(2 * np.pi * (180 + 20 * i) * t)).astype(np.float32),
                  RNG.normal(0, 0.0005, SR).astype(np.float32)]
    return np.concatenate(parts)


def test_the_cut_does_not_depend_on_how_the_audio_was_chunked():
    x = bursts(6)
    whole = pauses.cut_at_pauses(x)
    seg, chunked = stream.Segmenter(), []
    for i in range(0, len(x), 8000):
        chunked += seg.push(x[i:i + 8000])
    chunked += seg.flush()
    assert len(whole) == 6 and all(p.at_pause for p in whole)
    assert [(p.start_s, p.end_s) for p in whole] == [(p.start_s, p.end_s) for p in chunked]
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(whole, chunked))


def test_an_upload_over_30_s_reads_what_its_live_transcript_read():
    x = bursts(14)
    assert len(x) / SR > 40
    live_engine, upload_engine = FakeWhisper("FP32"), FakeWhisper("FP32")
    sess = stream.LiveSession([live_engine], "en", stream.LiveConfig(max_backlog_s=600.0))  # fed at once
    for i in range(0, len(x), 8000):
        sess.feed(SR, x[i:i + 8000])
    sess.stop()
    assert sess.wait(10.0)
    live = sess.workers[0].text()
    heard = []
    upload = upload_engine.transcribe(Clip(samples=x), "en", progress=lambda done, total: heard.append(done))
    assert upload.ok, upload.error
    assert len(sess.pieces) == 14 and len(live.split()) == 14
    assert upload.text == live
    assert upload_engine.model.encodes == live_engine.model.encodes == 14  # one window per piece, no more
    assert [s.start_s for s in upload.segments] == [round(p.start_s, 2) for p in sess.pieces]
    assert heard == sorted(set(heard)) and heard[-1] == len(x) / SR
    # the words do depend on the prompt: the same pieces without the text before them read otherwise
    alone = " ".join(FakeWhisper("FP32").transcribe(Clip(samples=p.samples), "en").text for p in sess.pieces)
    assert alone != live


def test_a_run_cut_at_the_cap_is_one_span_and_the_rest_stay_apart():
    t = np.arange(int(27 * SR)) / SR
    run = (0.2 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    x = np.concatenate([bursts(2), run, RNG.normal(0, 0.0005, SR).astype(np.float32), bursts(1)])
    pieces = pauses.cut_at_pauses(x, max_s=10.0)
    groups = pauses.spans(pieces)
    k = len(groups[2])
    assert [len(g) for g in groups] == [1, 1, k, 1] and k >= 3  # 27 s of speech in pieces of 7-10 s
    assert [p.at_pause for p in groups[2]] == [False] * (k - 1) + [True]
    assert all(a.end_s == b.start_s for a, b in zip(groups[2], groups[2][1:]))


@pytest.mark.model
def test_fp32_live_transcript_of_spanish_prompts_is_the_upload_word_for_word(whisper_engines):
    """Debian's recorded Spanish prompts back to back (45 s, so the upload is
    over 30 s), fed to live mode as fast as it takes them: FP32's live text,
    segment by segment, is the upload's text exactly."""
    from asr_quant.bench import prompt_stream, prompts

    try:
        utts = [u for u in prompts.builtin_es() if 2.0 <= u.duration_s <= 8.0]
    except prompts.CorpusError as exc:
        pytest.skip(str(exc))
    rec = prompt_stream.build(utts, total_s=45.0)
    fp32 = whisper_engines.by_name("FP32")
    assert fp32.info.available, fp32.info.error
    sess = stream.LiveSession([fp32], "es", stream.LiveConfig(max_backlog_s=600.0))
    for i in range(0, len(rec.samples), 8000):
        sess.feed(SR, rec.samples[i:i + 8000])
    sess.stop()
    assert sess.wait(300.0)
    upload = fp32.transcribe(Clip(samples=rec.samples, name="stream.wav"), "es")
    assert upload.ok, upload.error
    assert len(sess.pieces) >= len(rec.placed) - 1 and len(upload.segments) == len(sess.pieces)
    assert upload.text == sess.workers[0].text()
