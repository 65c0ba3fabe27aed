"""The shared Whisper decoding loop on scripted fake models: prompt and language
handling, suppression, token budget and the repetition-loop guard. No model
weights: a tiny word-level tokenizer and a StepModel whose next-token scores
follow a script, so each branch of `decoding.decode` is reached on purpose."""
from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit

from asr_quant.engines.base import EngineError
from asr_quant.engines.whisper import decoding, features, longform
from asr_quant.engines.whisper.tokens import TokenizerInfo

WORDS = ["the", "cat", "sat", "on", "mat", "la", "di", "da", "dum"] + [f"w{i}" for i in range(60)]
SPECIAL = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|zh|>", "<|ja|>",
           "<|translate|>", "<|transcribe|>", "<|nocaptions|>", "<|startofprev|>", "<|notimestamps|>"]
N_STAMPS = 1501  # <|0.00|> .. <|30.00|>: logits rows after <|notimestamps|>, as in Whisper


def make_info(multilingual: bool = True) -> TokenizerInfo:
    vocab = {w: i for i, w in enumerate(WORDS + SPECIAL)}
    tok = Tokenizer(WordLevel(vocab, unk_token="w0"))
    tok.pre_tokenizer = WhitespaceSplit()
    tok.add_special_tokens(SPECIAL)
    from tokenizers import decoders

    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    ids = {s: vocab[s] for s in SPECIAL}
    langs = {"en": ids["<|en|>"], "zh": ids["<|zh|>"], "ja": ids["<|ja|>"]} if multilingual else {}
    return TokenizerInfo(
        tokenizer=tok, vocab_size=len(vocab) + N_STAMPS, sot=ids["<|startoftranscript|>"], eot=ids["<|endoftext|>"],
        transcribe=ids["<|transcribe|>"], translate=ids["<|translate|>"],
        no_timestamps=ids["<|notimestamps|>"], no_speech=ids["<|nocaptions|>"], lang_to_id=langs,
        suppress_ids=[WORDS.index("dum")], suppress_ids_begin=[WORDS.index("la"), ids["<|endoftext|>"]],
        max_positions=64, sot_prev=ids["<|startofprev|>"])


def w(*words: str) -> list[int]:
    return [WORDS.index(x) for x in words]


class ScriptModel:
    """A StepModel whose scores, given the tokens so far, rank `script(history)`
    first, second, ... (a list of token ids), everything else far below."""

    def __init__(self, info: TokenizerInfo, script, lang_scores: dict[str, float] | None = None):
        self.info, self.script, self.lang_scores = info, script, lang_scores or {}
        self.prompts: list[list[int]] = []
        self.encodes = 0

    def encode(self, mel):
        assert mel.dtype == np.float32 and mel.shape[-1] == features.N_FRAMES
        self.encodes += 1
        return "enc"

    def step(self, enc, tokens, cache):
        assert enc == "enc" and tokens.dtype == np.int64 and tokens.ndim == 2
        if cache is None:
            self.prompts.append(tokens[0].tolist())
            history = tokens[0].tolist()
        else:
            history = cache + tokens[0].tolist()
            if tokens.shape[1] > 1:  # the rest of a prompt fed in two parts
                self.prompts[-1] = history
        logits = np.full(self.info.vocab_size, -10.0, dtype=np.float32)
        if history == [self.info.sot]:  # language detection call
            for code, score in self.lang_scores.items():
                logits[self.info.lang_to_id[code]] = score
            return logits, history
        generated = history[len(self.prompts[-1]):]
        for rank, t in enumerate(self.script(generated)):
            logits[t] = 10.0 - rank
        return logits, history


MEL = np.zeros((1, 80, features.N_FRAMES), dtype=np.float32)


def sequence_then_eot(seq: list[int], eot: int):
    return lambda gen: [seq[len(gen)]] if len(gen) < len(seq) else [eot]


# --- prompt, language, suppression ------------------------------------------------

def test_forced_language_prompt_and_text():
    info = make_info()
    model = ScriptModel(info, sequence_then_eot(w("the", "cat", "sat"), info.eot))
    r = decoding.decode(model, MEL, info, "ja", duration_s=3.0)
    assert model.prompts == [[info.sot, info.lang_to_id["ja"], info.transcribe, info.no_timestamps]]
    assert r.token_ids == w("the", "cat", "sat") and r.text == "the cat sat" and r.language == "ja"
    assert r.warnings == [] and model.encodes == 1


def test_language_detected_from_language_token_scores():
    info = make_info()
    model = ScriptModel(info, sequence_then_eot(w("cat"), info.eot), lang_scores={"en": 1.0, "zh": 3.0, "ja": 2.0})
    r = decoding.decode(model, MEL, info, None, duration_s=2.0)
    assert r.language == "zh"
    assert model.prompts == [[info.sot], [info.sot, info.lang_to_id["zh"], info.transcribe, info.no_timestamps]]


def test_cantonese_falls_back_to_chinese_token_with_warning_and_unknown_code_errors():
    info = make_info()
    r = decoding.decode(ScriptModel(info, sequence_then_eot(w("cat"), info.eot)), MEL, info, "yue")
    assert r.language == "zh" and any("Cantonese" in m for m in r.warnings)
    with pytest.raises(EngineError, match="unknown language code 'xx'"):
        decoding.decode(ScriptModel(info, lambda g: [info.eot]), MEL, info, "xx")
    assert info.resolve_language("ZH-cn")[0] == "zh" and info.resolve_language("japanese")[0] == "ja"


def test_english_only_model_has_no_language_prompt_and_rejects_others():
    info = make_info(multilingual=False)
    model = ScriptModel(info, sequence_then_eot(w("cat"), info.eot))
    r = decoding.decode(model, MEL, info, None)
    assert r.language == "en" and model.prompts == [[info.sot, info.no_timestamps]]
    with pytest.raises(EngineError, match="English-only"):
        decoding.decode(model, MEL, info, "ja")


def test_suppression_blank_at_start_config_ids_and_special_tokens():
    info = make_info()
    # The script ranks a begin-suppressed word ("la") first at step one, an
    # always-suppressed one ("dum") and a special token next; greedy must skip them.
    def script(gen):
        if not gen:
            return [WORDS.index("la"), WORDS.index("dum"), info.transcribe, WORDS.index("mat")]
        if len(gen) == 1:
            return [WORDS.index("la")]
        return [info.eot]
    r = decoding.decode(ScriptModel(info, script), MEL, info, "en")
    assert r.token_ids == w("mat", "la")
    # ...and <|endoftext|> as the very first token is suppressed too (suppress_blank)
    r = decoding.decode(ScriptModel(info, lambda g: [info.eot, WORDS.index("cat")] if not g else [info.eot]),
                        MEL, info, "en")
    assert r.token_ids == w("cat")


# --- token budget ---------------------------------------------------------------

def test_token_budget_tracks_clip_length_and_is_capped():
    assert decoding.token_budget(1.0, 4) < decoding.token_budget(5.0, 4) < decoding.token_budget(20.0, 4)
    assert decoding.token_budget(1000.0, 4, 448) == 444


def test_budget_stops_a_never_ending_text_and_says_so():
    info = make_info()
    distinct = [WORDS.index(f"w{i}") for i in range(60)]  # no repeats: no loop to detect
    model = ScriptModel(info, lambda gen: [distinct[len(gen) % 60]])
    r = decoding.decode(model, MEL, info, "en", max_new_tokens=25)
    assert len(r.token_ids) == 25 and any("token budget" in m for m in r.warnings)
    r = decoding.decode(model, MEL, info, "en", duration_s=1.0)  # budget from the duration
    assert len(r.token_ids) == decoding.token_budget(1.0, 4, info.max_positions)


# --- the repetition-loop guard -----------------------------------------------------

def test_repeated_tail_detects_loops_but_not_ordinary_repeats():
    assert decoding.repeated_tail([1, 2, 3] + [7] * 12) == (1, 12)
    assert decoding.repeated_tail([1] + [5, 6] * 6) == (2, 6)
    assert decoding.repeated_tail([9, 8] + [1, 2, 3, 4, 5] * 3) == (5, 3)
    assert decoding.repeated_tail([1, 2, 3, 4, 5] * 2) is None  # said twice: speech, not a loop
    assert decoding.repeated_tail([7] * 11) is None
    assert decoding.repeated_tail([5, 6] * 5) is None
    assert decoding.repeated_tail(list(range(40))) is None


def test_loop_guard_redecodes_with_loop_closing_token_banned():
    """Greedy would say "the cat sat la di la di ..." forever; the second-best
    choice is the end of text. The guard must stop the loop, decode again with
    the loop-closing token banned (so the model ends), and report it."""
    info = make_info()
    intro, loop = w("the", "cat", "sat"), w("la", "di")

    def script(gen):
        nxt = intro[len(gen)] if len(gen) < 3 else loop[(len(gen) - 3) % 2]
        return [nxt, info.eot]

    r = decoding.decode(ScriptModel(info, script), MEL, info, "en", max_new_tokens=60)
    assert any("repetition loop guard fired" in m and "re-decoded" in m for m in r.warnings)
    assert r.token_ids[:3] == intro
    assert decoding.repeated_tail(r.token_ids) is None  # no loop left
    assert len(r.token_ids) < 3 + 2 * 6  # stopped before a full loop, far from the 60-token budget
    # without the guard's ban the same script loops (check the scripted premise)
    first = decoding._greedy(ScriptModel(info, script), "enc", info,
                             info.prompt("en"), 60, ban_loops=False)
    assert first.stopped == "loop" and first.loop == (2, 6)


def test_loop_guard_cuts_to_one_copy_when_the_redecode_still_loops():
    """Here every alternative continues the loop, so banning can't end it: the
    output is cut after the first copy of the repeated block, and the warning
    says it was cut (and why the re-decode didn't help)."""
    info = make_info()
    intro, loop = w("the", "cat"), w("la", "di", "da")

    def script(gen):
        if len(gen) < 2:
            return [intro[len(gen)]]
        i = (len(gen) - 2) % 3
        return [loop[i], loop[(i + 1) % 3], loop[(i + 2) % 3]]  # never the end token

    model = ScriptModel(info, script)
    r = decoding.decode(model, MEL, info, "en", max_new_tokens=60)
    assert r.token_ids == intro + loop
    assert r.text == "the cat la di da"
    (msg,) = [m for m in r.warnings if "loop guard" in m]
    assert "a block of 3 token(s) repeated 4 times" in msg
    assert "cut after its first copy" in msg and ("still repetitive" in msg or "token budget" in msg)
    assert "re-decoded" not in msg and "as it was" not in msg
    assert model.encodes == 1  # both passes reuse one encoder output


def test_loop_guard_says_the_redecode_ran_to_the_budget_when_it_did(monkeypatch):
    """The first pass loops on "di da"; with the loop-closing token banned, the
    second pass takes a fresh word each time and never ends. The loop of the
    first pass is cut, and the warning says the re-decode hit the budget. (The
    compression threshold is raised so that only the budget stops the second pass.)"""
    monkeypatch.setattr(decoding, "COMPRESSION_RATIO_THRESHOLD", 10.0)
    info = make_info()
    loop = w("di", "da")

    def script(gen):
        return [loop[len(gen) % 2], WORDS.index(f"w{len(gen) % 60}")]

    r = decoding.decode(ScriptModel(info, script), MEL, info, "en", max_new_tokens=40)
    assert r.token_ids == loop
    (msg,) = [m for m in r.warnings if "loop guard" in m]
    assert "ran to the token budget (40 tokens)" in msg and "cut after its first copy" in msg


def test_loop_guard_keeps_a_pass_flagged_by_compression_alone_as_it_was(monkeypatch):
    """A pass flagged only by its compression ratio has no repeated block at
    its end: when the re-decode doesn't help, nothing is cut, and the warning
    says so instead of claiming a cut. (The threshold is lowered so that an
    ordinary sentence reaches this branch.)"""
    info = make_info()
    words = w("the", "cat", "sat", "on", "the", "mat")

    def script(gen):
        return [words[len(gen)] if len(gen) < len(words) else info.eot]

    monkeypatch.setattr(decoding, "COMPRESSION_RATIO_THRESHOLD", 0.1)
    r = decoding.decode(ScriptModel(info, script), MEL, info, "en", max_new_tokens=40)
    assert r.token_ids == words
    (msg,) = [m for m in r.warnings if "loop guard" in m]
    assert "compression ratio" in msg and "still repetitive" in msg
    assert "kept as it was" in msg and "cut" not in msg.replace("to cut", "")


def test_compression_ratio_flags_repetitive_text():
    assert decoding.compression_ratio("the cat sat on the mat") < 2.4
    assert decoding.compression_ratio("thank you so much. " * 20) > 2.4


# --- long clips -------------------------------------------------------------------

def test_windows_split_long_audio_evenly_and_keep_short_clips_whole():
    one = features.windows(np.zeros(16000 * 12, dtype=np.float32))
    assert len(one) == 1 and one[0].mel.shape == (1, 80, 3000) and one[0].duration_s == pytest.approx(12.0)
    rng = np.random.default_rng(0)
    wins = features.windows(rng.normal(0, 0.1, 16000 * 61).astype(np.float32))
    assert len(wins) == 3
    assert [round(x.offset_s, 2) for x in wins] == [0.0, pytest.approx(20.34, abs=0.01), pytest.approx(40.68, abs=0.005)]
    assert sum(x.duration_s for x in wins) == pytest.approx(61.0, abs=0.02)
    assert all(x.mel.shape == (1, 80, 3000) for x in wins)
    # the slices are the full clip's mel, zero-padded past each window's end
    full = features.log_mel(rng.normal(0, 0.1, 16000 * 5).astype(np.float32))
    padded = features.pad_or_trim(full)
    assert padded.shape == (80, 3000) and np.all(padded[:, full.shape[1]:] == 0)


def ts(info, seconds: float) -> int:
    return info.timestamp_begin + int(round(seconds / decoding.TIME_PRECISION_S))


def test_split_segments_keeps_complete_segments_and_seeks_to_the_last_end():
    info = make_info()
    toks = [ts(info, 0), *w("the", "cat"), ts(info, 10), ts(info, 10), *w("sat"), ts(info, 20), ts(info, 20), *w("mat")]
    pieces, seek = longform.split_segments(toks, info, offset_s=5.0, window_frames=3000)
    assert [(a, b, info.decode(t)) for a, b, t in pieces] == [(5.0, 15.0, "the cat"), (15.0, 25.0, "sat")]
    assert seek == 2000  # the unfinished "mat" is decoded again from 20 s on
    pieces, seek = longform.split_segments(toks + [ts(info, 24)], info, 0.0, 3000)
    assert [info.decode(t) for *_, t in pieces] == ["the cat", "sat", "mat"] and seek == 3000  # single ending
    pieces, seek = longform.split_segments([ts(info, 0), *w("cat"), ts(info, 4)], info, 30.0, 1200)
    assert pieces == [(30.0, 34.0, [ts(info, 0), *w("cat"), ts(info, 4)])] and seek == 1200


def test_timestamp_rules_pair_order_and_first_token():
    info = make_info()
    tb = info.timestamp_begin
    scores = np.zeros(info.vocab_size, np.float32)
    s = scores.copy()
    decoding.timestamp_rules(s, [], info)  # first: a timestamp of at most 1 s
    allowed = np.flatnonzero(np.isfinite(s))
    assert allowed.min() == tb and allowed.max() == ts(info, 1.0)
    s = scores.copy()
    s[info.eot] = 50.0  # a likely end keeps the timestamps' total from taking over
    decoding.timestamp_rules(s, [ts(info, 2), *w("cat"), ts(info, 5)], info)  # after an end: no text, not earlier
    allowed = np.flatnonzero(np.isfinite(s))
    assert allowed[allowed >= tb].min() == ts(info, 5) and info.eot in allowed and not (allowed < info.eot).any()
    s = scores.copy()
    decoding.timestamp_rules(s, [ts(info, 2), *w("cat"), ts(info, 5)], info)  # ...else their total wins
    assert np.flatnonzero(np.isfinite(s)).min() == ts(info, 5)
    s = scores.copy()
    decoding.timestamp_rules(s, [ts(info, 2), *w("cat"), ts(info, 5), ts(info, 5)], info)  # after a pair: text
    assert not np.isfinite(s[tb:]).any() and np.isfinite(s[w("cat")[0]])
    s = scores.copy()
    decoding.timestamp_rules(s, [ts(info, 2), *w("cat")], info)  # a segment is never empty or backwards
    assert not np.isfinite(s[tb:ts(info, 2) + 1]).any() and np.isfinite(s[ts(info, 2) + 1])


class WindowScript(ScriptModel):
    """One script per window (by encode count), in timestamp mode."""

    def __init__(self, info, scripts):
        super().__init__(info, None, lang_scores={"en": 5.0})
        self.scripts = scripts
        self.script = lambda gen: self.scripts[self.encodes - 1](gen)


def test_long_form_seeks_to_the_last_complete_segment_and_carries_the_text():
    info = make_info()
    windows = [
        [ts(info, 0), *w("the", "cat"), ts(info, 10), ts(info, 10), *w("sat", "on"), ts(info, 20),
         ts(info, 20), *w("mat")],  # "mat" unfinished at the window's end
        [ts(info, 0), *w("mat", "la"), ts(info, 6)],
        [ts(info, 0), *w("di", "da"), ts(info, 3)],
    ]
    model = WindowScript(info, [sequence_then_eot(x, info.eot) for x in windows])
    seen = []
    raw = longform.transcribe_samples(model, np.random.default_rng(1).normal(0, 0.1, 16000 * 75).astype(np.float32),
                                      info, None, progress=lambda done, total: seen.append((done, total)))
    assert raw.text == "the cat sat on mat la di da" and raw.language == "en"
    assert raw.token_ids == w("the", "cat", "sat", "on", "mat", "la", "di", "da")
    assert [(s.start_s, s.end_s, s.text) for s in raw.segments] == [
        (0.0, 10.0, "the cat"), (10.0, 20.0, "sat on"), (20.0, 26.0, "mat la"), (50.0, 53.0, "di da")]
    assert model.encodes == 3 and seen == [(20.0, 75.0), (50.0, 75.0), (75.0, 75.0)]
    # window 2 starts after <|startofprev|> and window 1's complete segments (not the unfinished "mat")
    second = model.prompts[2]  # [sot] (language detection), window 1, window 2
    assert second[0] == info.sot_prev and second[1:-3] == windows[0][:-2]
    assert second[-3:] == [info.sot, info.lang_to_id["en"], info.transcribe]  # timestamps on: no <|notimestamps|>


def test_previous_text_is_capped_at_half_the_context_and_a_prompt_reaches_a_short_clip():
    info = make_info()
    prev = [WORDS.index(f"w{i % 60}") for i in range(100)]
    assert info.previous(prev) == [info.sot_prev] + prev[-(info.max_positions // 2 - 1):]
    model = ScriptModel(info, sequence_then_eot(w("cat"), info.eot))
    raw = longform.transcribe_samples(model, np.zeros(16000 * 4, np.float32), info, "en", prompt="the mat")
    assert model.prompts == [[info.sot_prev, *w("the", "mat"), info.sot, info.lang_to_id["en"], info.transcribe,
                              info.no_timestamps]]
    assert raw.text == "cat" and [(s.start_s, s.end_s) for s in raw.segments] == [(0.0, 4.0)]


def test_a_silent_window_is_skipped_by_its_no_speech_probability():
    info = make_info()

    class Silent(WindowScript):
        def step(self, enc, tokens, cache):
            logits, history = super().step(enc, tokens, cache)
            if self.encodes == 2:  # window 2: all but certain there is no speech, and unsure of its text
                logits = logits * 0.03
                if history[-1] == info.sot:
                    logits[info.no_speech] = 30.0
            return logits, history

    hallucination = [WORDS.index(f"w{i}") for i in range(40)]  # low-confidence text where nothing was said
    windows = [[ts(info, 0), *w("the", "cat"), ts(info, 4)], [ts(info, 0), *hallucination, ts(info, 20)]]
    model = Silent(info, [sequence_then_eot(x, info.eot) for x in windows])
    noise = np.random.default_rng(2).normal(0, 0.1, 16000 * 50).astype(np.float32)  # no pause: one 50 s run
    raw = longform.transcribe_samples(model, noise, info, "en")
    assert raw.text == "the cat" and model.encodes == 2
