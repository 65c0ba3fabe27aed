"""Normalization, WER/CER and diffs on small cases counted by hand."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asr_quant import metrics
from asr_quant.metrics import aggregate, diff, error_rate, is_char_level, normalize, tokenize


def counts(er):
    return (er.substitutions, er.deletions, er.insertions, er.hits, er.ref_len)


# --- WER / CER by hand ------------------------------------------------------------

@pytest.mark.parametrize("ref,hyp,sdihn,rate", [
    ("the cat sat on the mat", "the cat sat on a mat", (1, 0, 0, 5, 6), 1 / 6),
    ("a b c d", "a x c d e", (1, 0, 1, 3, 4), 2 / 4),
    ("red green blue black", "red blue black", (0, 1, 0, 3, 4), 1 / 4),
    ("red green", "white red green blue black", (0, 0, 3, 2, 2), 3 / 2),  # rate may exceed 1
    ("yes", "no", (1, 0, 0, 0, 1), 1.0),
])
def test_wer_counts(ref, hyp, sdihn, rate):
    er = error_rate(ref, hyp, "en")
    assert er.kind == "wer"
    assert counts(er) == sdihn
    assert er.rate == pytest.approx(rate)
    assert er.errors == sum(sdihn[:3])


@pytest.mark.parametrize("ref,hyp,lang,sdihn", [
    ("今天天气很好", "今天天汽很好啊", "zh", (1, 0, 1, 5, 6)),
    ("今天天气很好", "今天很好", "zh", (0, 2, 0, 4, 6)),
    ("こんにちは、世界。", "こんにちわ世界", "ja", (1, 0, 0, 6, 7)),
    ("我用Python写code", "我用Java写code", "zh", (1, 0, 0, 4, 5)),  # Latin runs count as one token
    ("สวัสดีครับ", "สวัสดีค่ะ", "th", None),
])
def test_cer_counts(ref, hyp, lang, sdihn):
    er = error_rate(ref, hyp, lang)
    assert er.kind == "cer"
    if sdihn is not None:
        assert counts(er) == sdihn
        assert er.rate == pytest.approx(sum(sdihn[:3]) / sdihn[4])
    else:
        assert 0 < er.rate < 1


def test_kind_can_be_forced():
    er = error_rate("안녕하세요", "안녕하세오", "ko", kind="cer")
    assert er.kind == "cer" and counts(er) == (1, 0, 0, 4, 5)
    assert error_rate("안녕하세요 반갑습니다", "안녕하세요 반갑습니다", "ko").kind == "wer"
    with pytest.raises(ValueError):
        error_rate("a", "b", "en", kind="ser")


def test_language_inferred_from_text_when_untagged():
    assert error_rate("今天天气很好", "今天天气不好", None).kind == "cer"
    assert error_rate("today is fine", "today is fine", None).kind == "wer"


@pytest.mark.parametrize("ref,hyp,sdihn,rate", [
    ("", "", (0, 0, 0, 0, 0), 0.0),
    ("", "two words", (0, 0, 2, 0, 0), 2.0),  # jiwer's convention: insertions over max(len, 1)
    ("two words", "", (0, 2, 0, 0, 2), 1.0),
    ("...", "hello", (0, 0, 1, 0, 0), 1.0),  # punctuation-only reference normalizes to empty
    ("   ", "   ", (0, 0, 0, 0, 0), 0.0),
])
def test_empty_texts(ref, hyp, sdihn, rate):
    er = error_rate(ref, hyp, "en")
    assert counts(er) == sdihn and er.rate == pytest.approx(rate)
    er = error_rate(ref.replace("two words", "两个字"), hyp.replace("two words", "两个字"), "zh")
    assert er.kind == "cer" and er.substitutions == 0


def test_corpus_aggregation_sums_edits_not_rates():
    a = error_rate("red green blue black", "red green blue", "en")  # 1/4
    b = error_rate("white grey", "white grey", "en")  # 0/2
    total = aggregate([a, b])
    assert total.rate == pytest.approx(1 / 6)  # the mean of rates would be 0.125
    assert counts(total) == (0, 1, 0, 5, 6) and total.kind == "wer"
    assert metrics.corpus_error_rate([("red green blue black", "red green blue"), ("white grey", "white grey")],
                                     "en").rate == pytest.approx(1 / 6)
    mixed = aggregate([a, error_rate("你好", "你好", "zh")])
    assert mixed.kind == "mixed" and mixed.ref_len == 6
    assert aggregate([]).ref_len == 0 and aggregate([]).rate == 0.0


# --- normalization ------------------------------------------------------------

@pytest.mark.parametrize("text,lang,expected", [
    ("Hello, World!", "en", "hello world"),
    ("I'm here. It's fine; we'll see.", "en", "i am here it is fine we will see"),
    ("Don't WORRY", "en", "do not worry"),
    ("The colour of the centre", "en", "the color of the center"),  # spelling map
    ("  spaces\tand\nlines  ", "en", "spaces and lines"),
    ("ＡＢＣ　１２３", "en", "abc 123"),  # full-width letters, digits and space
    ("這是繁體中文，說話。", "zh", "这是繁体中文 说话"),
    ("佢哋喺度講廣東話", "yue", "佢哋喺度讲广东话"),
    ("ＡＢＣ１２３号", "zh", "abc123号"),
    ("東京で会議があります。", "ja", "東京で会議があります"),  # Japanese kanji stay as they are
    ("Ça va TRÈS bien, merci !", "fr", "ça va très bien merci"),
    ("Wait... what?", "en", "wait what"),
    ("one two three", "en", "123"),  # Whisper's normalizer writes numbers as digits
    ("", "en", ""),
])
def test_normalize(text, lang, expected):
    assert normalize(text, lang) == expected


def test_english_normalization_makes_equivalent_texts_score_zero():
    er = error_rate("Mr. Smith said: \"It's twenty-five dollars!\"", "mister smith said it is $25", "en")
    assert er.rate == 0.0 and er.ref_len > 0


def test_untagged_han_text_is_simplified_but_kana_text_is_not():
    assert normalize("說話", None) == "说话"
    assert normalize("會議があります", None) == "會議があります"


@pytest.mark.parametrize("lang,text,expected", [
    ("zh", "hello world", True), ("ja", "", True), ("yue", "", True), ("th", "", True),
    ("lo", "", True), ("my", "", True), ("km", "", True), ("zh-CN", "", True), ("Chinese", "", True),
    ("en", "hello world", False), ("ko", "안녕하세요 반갑습니다", False), (None, "hello world", False),
    (None, "今天天气很好", True), ("en", "今天天气很好", True),  # a wrong tag does not make it one word
    (None, "我用Python写code", True), (None, "今天 天气 很好", True),
    (None, "see 东 here and there", False), ("auto", "", False),
])
def test_is_char_level(lang, text, expected):
    assert is_char_level(lang, text) is expected


def test_tokenize():
    assert tokenize("我用Python写code 2024年", True) == ["我", "用", "Python", "写", "code", "2024", "年"]
    assert tokenize("a  b\tc", False) == ["a", "b", "c"]
    assert tokenize("ที่นี่", True) == ["ที่", "นี่"]  # combining marks stay on their letter


# --- diffs ----------------------------------------------------------------------

def ops_of(ops):
    return [(o.op, o.base, o.other) for o in ops]


def test_word_diff():
    ops = diff("the cat sat", "the dog sat down", "en")
    assert ops_of(ops) == [("equal", "the", "the"), ("substitute", "cat", "dog"),
                           ("equal", "sat", "sat"), ("insert", "", "down")]
    assert [o.lead for o in ops] == ["", " ", " ", " "]
    assert metrics.diff_counts(ops) == {"equal": 2, "insert": 1, "delete": 0, "substitute": 1}


def test_word_diff_runs_and_deletes():
    ops = diff("one two three four five", "one four five", "en")  # diffs compare text as written
    assert ops_of(ops) == [("equal", "one", "one"), ("delete", "two three", ""), ("equal", "four five", "four five")]
    assert ops[1].base_tokens == ("two", "three")


def test_diff_ignores_case_punctuation_and_width_but_shows_text_as_written():
    ops = diff("Hello, world.", "hello ＷＯＲＬＤ", "en")
    assert ops_of(ops) == [("equal", "Hello, world.", "hello ＷＯＲＬＤ")]


def test_char_diff():
    ops = diff("今天天气很好。", "今天天气不好", "zh")
    assert ops_of(ops) == [("equal", "今天天气", "今天天气"), ("substitute", "很", "不"),
                           ("equal", "好。", "好")]
    assert all(o.lead == "" for o in ops)


def test_char_diff_traditional_equals_simplified():
    assert [o.op for o in diff("今天天氣很好", "今天天气很好", "zh")] == ["equal"]
    # Japanese is not converted, so a simplified form is a real difference there.
    assert [o.op for o in diff("会議", "会议", "ja")] == ["equal", "substitute"]


def test_mixed_script_diff():
    ops = diff("我用Python写code", "我用Java写code")  # untagged: the text decides
    assert ops_of(ops) == [("equal", "我用", "我用"), ("substitute", "Python", "Java"),
                           ("equal", "写code", "写code")]
    assert ops[2].other_tokens == ("写", "code")
    ops = diff("我们用 Python and Java 写", "我们用 Python or Java 写", "zh")
    assert ops_of(ops)[1] == ("substitute", "and", "or")
    laid_out = "".join(o.lead + o.other for o in ops if o.op != "delete")
    assert laid_out == "我们用Python or Java写"


def test_diff_empty_sides():
    assert diff("", "", "en") == []
    assert ops_of(diff("", "a b", "en")) == [("insert", "", "a b")]
    assert ops_of(diff("a b", "", "en")) == [("delete", "a b", "")]
    assert ops_of(diff("。", "你好", "zh")) == [("insert", "", "你好")]


words = st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta", "eps"]), max_size=12)


@settings(max_examples=200, deadline=None)
@given(a=words, b=words)
def test_diff_covers_both_texts_and_agrees_with_wer(a, b):
    ops = diff(" ".join(a), " ".join(b), "en")
    assert [t for o in ops for t in o.base_tokens] == a
    assert [t for o in ops for t in o.other_tokens] == b
    c = metrics.diff_counts(ops)
    er = error_rate(" ".join(a), " ".join(b), "en")
    assert c["insert"] == er.insertions and c["delete"] == er.deletions
    assert c["substitute"] == er.substitutions and c["equal"] == er.hits
