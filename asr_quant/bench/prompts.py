"""Recorded telephone prompts as a benchmark corpus: a folder of audio files
and one index of `name: text` lines (Asterisk's sound-package layout).

The built-in `prompts-es` is Debian's `asterisk-core-sounds-es-wav` (audio,
8 kHz, one professional voice, Allison Smith, CC-BY-SA-3.0) with the texts of
`asterisk-core-sounds-es` (core-sounds-es.txt.gz). Index entries whose text
is all in [...] or (...) are tones or silence and are skipped; so are
prompts of fewer than `min_words` words (the digits/, letters/ folders hold
single words Asterisk splices into numbers and spellings, 0.3-1 s long, a
different task from transcribing a sentence). Any folder laid out the same way
reads with `read_prompts` (`--corpus DIR` finds its index by name).
"""
from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import soundfile as sf

from .corpus import AUDIO_EXTS, CorpusError, Utterance, _language_of

BUILTIN = "prompts-es"
DEBIAN_AUDIO = Path("/usr/share/asterisk/sounds/es")  # an alternatives link to es_MX_f_Allison
DEBIAN_INDEX = Path("/usr/share/doc/asterisk-core-sounds-es/core-sounds-es.txt.gz")
DEBIAN_PACKAGES = "asterisk-core-sounds-es-wav asterisk-core-sounds-es"
SOURCE = "Asterisk es prompts, recorded"
LICENCE = "Allison Smith, CC-BY-SA-3.0 (Debian asterisk-core-sounds-es, see its copyright file)"
MIN_WORDS = 2
INDEX_NAMES = ("prompts.txt", "prompts.txt.gz", "core-sounds-*.txt", "core-sounds-*.txt.gz")
_NOT_SPEECH = re.compile(r"\s*[\[(][^\])]*[\])]\s*")


def read_index(path: str | os.PathLike) -> dict[str, str]:
    """`name: text` per line (gzip or plain); `;` comments and blank lines
    skipped; tones/silence ([...] or (...)) left out."""
    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    try:
        with opener(p, "rt", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"cannot read the prompt index {p}: {exc}") from None
    out: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        name, sep, text = line.partition(":")
        if not sep or not name.strip():
            raise CorpusError(f"{p}, line {n}: expected 'name: text', got {line[:60]!r}")
        text = text.strip()
        if text and not _NOT_SPEECH.fullmatch(text):
            out[name.strip()] = text
    return out


def find_index(folder: Path) -> Path | None:
    for pattern in INDEX_NAMES:
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
    return None


def read_prompts(folder: str | os.PathLike, index: str | os.PathLike | None = None, language: str | None = None,
                 source: str | None = None, min_words: int = MIN_WORDS) -> list[Utterance]:
    """Every indexed prompt whose audio is in `folder` (names may include
    subfolders, e.g. digits/5) and whose text has at least `min_words` words,
    sorted by name. The language comes from `language`, else the folder's
    name (es_MX_f_Allison -> es)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise CorpusError(f"prompt folder {str(folder)!r} does not exist or is not a folder")
    root = root.resolve()
    idx_path = Path(index) if index else find_index(root)
    if idx_path is None or not idx_path.is_file():
        raise CorpusError(f"no prompt index (name: text per line) for {root}")
    lang = language or _language_of(Path(root.name), None)
    if not lang:
        raise CorpusError(f"can't tell the language of the prompts in {root}: pass --language")
    src = source or f"{root.name}, recorded"
    out = []
    for name, text in sorted(read_index(idx_path).items()):
        if len(text.split()) < min_words:
            continue
        path = next((root / f"{name}{ext}" for ext in AUDIO_EXTS if (root / f"{name}{ext}").is_file()), None)
        if path is None:
            continue
        out.append(Utterance(id=f"{lang}-prompt/{name}", language=lang, group=lang, text=text, path=str(path),
                             source=src, duration_s=round(sf.info(str(path)).duration, 3)))
    if not out:
        raise CorpusError(f"no prompt of {idx_path} has its audio in {root}")
    return out


def builtin_es() -> list[Utterance]:
    """The Debian Spanish prompts, or a message saying which packages to install."""
    if not DEBIAN_AUDIO.exists() or not DEBIAN_INDEX.is_file():
        raise CorpusError(f"--corpus {BUILTIN} needs the Debian packages {DEBIAN_PACKAGES} "
                          f"(apt-get install {DEBIAN_PACKAGES})")
    return read_prompts(DEBIAN_AUDIO.resolve(), DEBIAN_INDEX, language="es", source=SOURCE)


def is_prompt_folder(folder: str | os.PathLike) -> bool:
    root = Path(folder).expanduser()
    return root.is_dir() and find_index(root) is not None


def note(utts: list[Utterance]) -> str:
    total = sum(u.duration_s for u in utts)
    return (f"{len(utts)} recorded Spanish telephone prompts ({total / 60:.0f} min, 8 kHz, one voice; "
            f"{LICENCE}); prompts of one word and tones left out; accents folded when scoring Spanish "
            "(the texts write 'numero', 'contrasena')")
