"""Per-language normalization, word/character diffs and WER/CER.

Normalization follows Whisper's evaluation: transformers'
`EnglishTextNormalizer` for English (case, punctuation, contractions,
numbers, British spellings, with the spelling map from the MIT
`whisper-normalizer` package) and `BasicTextNormalizer` for the rest, after
NFKC (full-width letters and digits become ASCII) and, for Chinese and
Cantonese, conversion to simplified characters (Whisper writes Mandarin in
traditional characters at times).

Spanish is scored with diacritics folded ("número" = "numero", "contraseña"
= "contrasena"): Spanish references in the wild drop accents and the tilde
inconsistently (the Asterisk prompts write "numero" and "contrasena" but
"Trés"), so an accent alone must not count as a word error. Only marks on
Latin letters are folded, and only for the languages in FOLD_DIACRITICS.

Scripts without spaces (Chinese, Japanese, Thai, Lao, Burmese, Khmer) are
scored by characters: each of their characters is a token while runs of
Latin letters or digits stay whole words, so "我用Python写code" is 我 用
Python 写 code (the usual "mixed error rate" of Chinese benchmarks). The
edit counts come from jiwer over these tokens.
"""
from __future__ import annotations

import functools
import json
import logging
import unicodedata
from dataclasses import dataclass
from typing import Iterable

import jiwer
import regex

log = logging.getLogger(__name__)

# A reference transcript longer than this is refused, on the page and in a benchmark corpus: about 25
# minutes of speech, far beyond any clip either takes, and it keeps the word alignment's cost bounded.
REFERENCE_MAX_CHARS = 20_000


def reference_problem(text: str | None, what: str = "The reference transcript") -> str | None:
    """What is wrong with a reference text (too long), in words for people; None when it is fine."""
    n = len(text or "")
    if n > REFERENCE_MAX_CHARS:
        return (f"{what} is {n:,} characters long; the limit is {REFERENCE_MAX_CHARS:,} "
                "(a reference is the words of one clip).")
    return None


CHAR_LEVEL_LANGUAGES = frozenset({"zh", "ja", "yue", "th", "lo", "my", "km"})
_SIMPLIFY = frozenset({"zh", "yue"})
_ALIASES = {"english": "en", "chinese": "zh", "mandarin": "zh", "japanese": "ja", "cantonese": "yue",
            "korean": "ko", "thai": "th", "lao": "lo", "burmese": "my", "khmer": "km"}
# Characters that are tokens on their own in character-level text.
_CHAR_SCRIPTS = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Myanmar}\p{Khmer}\p{Hangul}"
_CHAR_TOKEN = regex.compile(rf"[{_CHAR_SCRIPTS}]\p{{M}}*|[^\s{_CHAR_SCRIPTS}]+")
_IS_CHAR = regex.compile(rf"[{_CHAR_SCRIPTS}]")
_NO_SPACE_SCRIPT = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Myanmar}\p{Khmer}]")
_KANA = regex.compile(r"[\p{Hiragana}\p{Katakana}]")
_PUNCT = regex.compile(r"[\p{P}\p{S}]+")
FOLD_DIACRITICS = frozenset({"es"})
_LATIN_MARKS = regex.compile(r"(?<=\p{Latin})\p{Mn}+")


@dataclass
class ErrorRate:
    """Edit counts of one hypothesis against one reference (or a corpus).

    `rate` = (S + D + I) / ref_len. An empty reference (after normalization)
    gives rate = number of inserted tokens (0.0 when the hypothesis is empty
    too), jiwer's convention; an empty hypothesis gives 1.0 (all deleted).
    """

    kind: str  # "wer" | "cer" ("mixed" only from aggregate() over both)
    rate: float
    substitutions: int
    deletions: int
    insertions: int
    hits: int
    ref_len: int
    reference: str = ""  # the normalized texts that were compared
    hypothesis: str = ""

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions


@dataclass
class DiffOp:
    """One run of tokens with the same fate between `base` and `other`.

    `op` is "equal", "insert" (only in other), "delete" (only in base) or
    "substitute". `base`/`other` are the runs as display text; `lead` is the
    separator to put before this run when laying the runs out in order
    (" " between words, "" next to a character of a script without spaces).
    """

    op: str
    base: str
    other: str
    base_tokens: tuple[str, ...] = ()
    other_tokens: tuple[str, ...] = ()
    lead: str = ""


# --- language and tokens ------------------------------------------------------

def language_code(language: str | None) -> str | None:
    """'zh-CN', 'Chinese', 'zh' -> 'zh'; None/''/'auto' -> None."""
    if not language:
        return None
    code = language.strip().lower().replace("_", "-").split("-")[0]
    if code in ("", "auto"):
        return None
    return _ALIASES.get(code, code)


def is_char_level(language: str | None, text: str = "") -> bool:
    """True for zh, ja, yue, th, lo, my, km, and for any text written mostly
    in a script without spaces (checked so that a wrong language tag or
    mixed text like "我用Python写code" is not scored as one long word)."""
    if language_code(language) in CHAR_LEVEL_LANGUAGES:
        return True
    if not text or not _NO_SPACE_SCRIPT.search(text):
        return False
    if not any(c.isspace() for c in text.strip()):
        return True
    toks = _CHAR_TOKEN.findall(_PUNCT.sub(" ", text))
    return sum(bool(_NO_SPACE_SCRIPT.match(t)) for t in toks) * 2 >= len(toks)


def tokenize(text: str, char_level: bool) -> list[str]:
    """Words split on whitespace, or characters of scripts without spaces
    one by one with other runs (Latin words, numbers) kept whole."""
    if not char_level:
        return text.split()
    return _CHAR_TOKEN.findall(text)


# --- normalization ------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _english():
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    try:
        import importlib.resources as res

        spelling = json.loads(res.files("whisper_normalizer").joinpath("normalizers/english.json")
                              .read_text(encoding="utf-8"))
    except Exception:  # package missing: everything but British->American spelling still works
        log.warning("whisper-normalizer's english.json not found; British spellings stay as they are")
        spelling = {}
    return EnglishTextNormalizer(spelling)


@functools.lru_cache(maxsize=1)
def _basic():
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer

    return BasicTextNormalizer()


def _simplify(text: str, code: str | None) -> str:
    """Traditional -> simplified for Chinese/Cantonese, and for untagged Han
    text without kana (kana means Japanese, whose kanji must stay)."""
    if code in _SIMPLIFY or (code is None and regex.search(r"\p{Han}", text) and not _KANA.search(text)):
        import zhconv

        return zhconv.convert(text, "zh-cn")
    return text


def fold_diacritics(text: str) -> str:
    """Marks on Latin letters removed: "Número, contraseña" -> "Numero, contrasena"."""
    return unicodedata.normalize("NFC", _LATIN_MARKS.sub("", unicodedata.normalize("NFD", text)))


def _fold(text: str, code: str | None) -> str:
    return fold_diacritics(text) if code in FOLD_DIACRITICS else text


def normalize(text: str, language: str | None = None) -> str:
    """The text as scored: NFKC, then Whisper's English normalizer for
    English or its basic one (lower case, no punctuation) for the rest,
    simplified characters for Chinese, diacritics folded for Spanish,
    single spaces."""
    code = language_code(language)
    text = unicodedata.normalize("NFKC", text or "")
    text = _english()(text) if code == "en" else _basic()(text)
    text = _fold(_simplify(text, code), code)
    # The English normalizer keeps "." for decimals, so "..." alone would become a word.
    return " ".join(t for t in text.split() if _PUNCT.sub("", t))


# --- error rates --------------------------------------------------------------

def error_rate(reference: str, hypothesis: str, language: str | None = None,
               kind: str | None = None) -> ErrorRate:
    """WER, or CER where the language (or the reference text) has no spaces.
    `kind="wer"|"cer"` forces one (e.g. CER for Korean)."""
    ref, hyp = normalize(reference, language), normalize(hypothesis, language)
    if kind is None:
        kind = "cer" if is_char_level(language, ref or hyp) else "wer"
    elif kind not in ("wer", "cer"):
        raise ValueError(f"kind must be 'wer' or 'cer', not {kind!r}")
    rt, ht = tokenize(ref, kind == "cer"), tokenize(hyp, kind == "cer")
    if not rt or not ht:  # jiwer's conventions, without its empty-input corner cases
        s, d, i, h = 0, len(rt), len(ht), 0
    else:
        out = jiwer.process_words(" ".join(rt), " ".join(ht))
        s, d, i, h = out.substitutions, out.deletions, out.insertions, out.hits
    return ErrorRate(kind=kind, rate=(s + d + i) / max(len(rt), 1), substitutions=s, deletions=d,
                     insertions=i, hits=h, ref_len=len(rt), reference=ref, hypothesis=hyp)


def aggregate(rates: Iterable[ErrorRate]) -> ErrorRate:
    """Corpus-level rate: summed edits over summed reference lengths (not
    the mean of per-clip rates, which over-weighs short clips)."""
    rates = list(rates)
    kinds = {r.kind for r in rates}
    s = sum(r.substitutions for r in rates)
    d = sum(r.deletions for r in rates)
    i = sum(r.insertions for r in rates)
    n = sum(r.ref_len for r in rates)
    return ErrorRate(kind=kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else "wer"),
                     rate=(s + d + i) / max(n, 1), substitutions=s, deletions=d, insertions=i,
                     hits=sum(r.hits for r in rates), ref_len=n)


def corpus_error_rate(pairs: Iterable[tuple[str, str]], language: str | None = None,
                      kind: str | None = None) -> ErrorRate:
    """`aggregate` over (reference, hypothesis) pairs of one language."""
    return aggregate(error_rate(r, h, language, kind) for r, h in pairs)


# --- diff -----------------------------------------------------------------------

def _display_tokens(text: str, char_level: bool, code: str | None) -> tuple[list[str], list[str]]:
    """Tokens as written, each with the key it is compared by (NFKC, case,
    punctuation and script differences ignored). Punctuation-only tokens are
    glued onto their neighbour so that they show but never count."""
    shown, keys = [], []
    for tok in tokenize(text, char_level):
        key = _fold(_simplify(_PUNCT.sub("", unicodedata.normalize("NFKC", tok)).casefold(), code), code)
        if not key:
            if shown:
                shown[-1] += tok
            else:
                shown.append(tok)
                keys.append("")
            continue
        if keys and keys[-1] == "":  # leading punctuation: glue onto the first real token
            shown[-1] += tok
            keys[-1] = key
        else:
            shown.append(tok)
            keys.append(key)
    if keys == [""]:  # punctuation only
        return [], []
    return shown, keys


def _join(tokens: Iterable[str]) -> str:
    out = ""
    for t in tokens:
        out += t if not out or _is_char_token(out[-1]) or _is_char_token(t[0]) else " " + t
    return out


def _is_char_token(ch: str) -> bool:
    return bool(_IS_CHAR.match(ch))


def diff(base: str, other: str, language: str | None = None) -> list[DiffOp]:
    """How `other` differs from `base`, as runs of equal/insert/delete/
    substitute tokens (word or character level, see `is_char_level`).
    Tokens are shown as written but compared without case, punctuation,
    full-width forms or (Chinese) traditional/simplified differences; the
    alignment is jiwer's minimum-edit one, the same that WER counts."""
    code = language_code(language)
    char = is_char_level(code, base) or is_char_level(code, other)
    bs, bk = _display_tokens(base or "", char, code)
    os_, ok = _display_tokens(other or "", char, code)
    if not bk and not ok:
        return []
    if not bk or not ok:
        chunks = [("insert" if ok else "delete", 0, len(bk), 0, len(ok))]
    else:
        out = jiwer.process_words(" ".join(bk), " ".join(ok))
        chunks = [(c.type, c.ref_start_idx, c.ref_end_idx, c.hyp_start_idx, c.hyp_end_idx)
                  for c in out.alignments[0]]
    ops: list[DiffOp] = []
    last = ""
    for kind, b0, b1, o0, o1 in chunks:
        bt, ot = tuple(bs[b0:b1]), tuple(os_[o0:o1])
        first = (ot or bt)[0]
        lead = "" if not last or _is_char_token(last[-1]) or _is_char_token(first[0]) else " "
        ops.append(DiffOp(op=kind, base=_join(bt), other=_join(ot), base_tokens=bt, other_tokens=ot,
                          lead=lead))
        last = (ot or bt)[-1]
    return ops


def diff_counts(ops: Iterable[DiffOp]) -> dict[str, int]:
    """Tokens per op kind (substitutions counted on the base side)."""
    counts = {"equal": 0, "insert": 0, "delete": 0, "substitute": 0}
    for op in ops:
        counts[op.op] += len(op.other_tokens) if op.op == "insert" else len(op.base_tokens)
    return counts
