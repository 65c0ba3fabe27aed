"""Users' corpora in the layouts public speech sets ship in, found by their files.

- Hugging Face `datasets` audio folder: `metadata.csv` or `metadata.jsonl`
  (in the folder or in split subfolders such as test/), a `file_name` column
  and the text in `transcription`, `text` or `sentence` (first found);
- Common Voice: `test.tsv` (else `validated.tsv`) with `path` and `sentence`,
  the audio in `clips/`; the language from its `locale` column or the folder's
  name (Common Voice unpacks to `cv-corpus-N/<lang>/`);
- LibriSpeech: `*.trans.txt` files of `ID TEXT` lines beside `ID.flac`
  (English unless --language says otherwise).

`detect` names the layout (or None), `read` turns it into Utterances like
`corpus.read_folder` does, so every layout benchmarks the same way.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from .corpus import KNOWN_LANGUAGES, CorpusError, Utterance, _user_utt

HF_METADATA = ("metadata.csv", "metadata.jsonl")
HF_TEXT_COLUMNS = ("transcription", "text", "sentence")
LANGUAGE_COLUMNS = ("language", "locale", "lang")
CV_TABLES = ("test.tsv", "validated.tsv")
LIBRISPEECH_GLOB = "*.trans.txt"


def _hf_metadata(root: Path) -> list[Path]:
    """metadata files of the folder itself, else of its split subfolders."""
    own = [root / n for n in HF_METADATA if (root / n).is_file()]
    if own:
        return own[:1]
    return sorted(p for d in sorted(root.iterdir()) if d.is_dir()
                  for p in [next((d / n for n in HF_METADATA if (d / n).is_file()), None)] if p)


def detect(folder: str | os.PathLike) -> str | None:
    """'huggingface', 'commonvoice', 'librispeech' or None (another layout)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        return None
    if any((root / t).is_file() for t in CV_TABLES) and (root / "clips").is_dir():
        return "commonvoice"
    if _hf_metadata(root):
        return "huggingface"
    if next(root.rglob(LIBRISPEECH_GLOB), None) is not None:
        return "librispeech"
    return None


def read(folder: str | os.PathLike, language: str | None = None) -> list[Utterance]:
    """The clips of a folder in one of the layouts above; CorpusError if none fits."""
    root = Path(folder).expanduser()
    kind = detect(root)
    if kind is None:
        raise CorpusError(f"{root} is in none of the layouts Hugging Face audio folder, Common Voice, LibriSpeech")
    out = {"huggingface": _read_hf, "commonvoice": _read_cv, "librispeech": _read_librispeech}[kind](root, language)
    if not out:
        raise CorpusError(f"{root} looks like a {kind} corpus but lists no clip with a text")
    return out


def _source(root: Path) -> str:
    return root.resolve().name or "folder"


def _lang_of(row: dict, fallback: str | None) -> str | None:
    for col in LANGUAGE_COLUMNS:
        value = (row.get(col) or "").strip().lower()
        if value:
            return value.split("-")[0].split("_")[0]  # es-ES, zh_CN: the language alone
    return fallback


def _clip(root: Path, path: Path, text, lang: str | None, table: Path, name: str) -> Utterance:
    if not path.is_file():
        raise CorpusError(f"{table} lists {name!r}, which is not in {path.parent}")
    if text is None:
        raise CorpusError(f"{table}: {name!r} has no text")
    return _user_utt(root, path, str(text).strip(), lang, _source(root))


# --- Hugging Face audio folder ---------------------------------------------------

def _hf_rows(meta: Path) -> list[dict]:
    try:
        if meta.suffix == ".jsonl":
            return [json.loads(line) for line in meta.read_text(encoding="utf-8").splitlines() if line.strip()]
        with meta.open(encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CorpusError(f"cannot read {meta}: {exc}") from None


def _read_hf(root: Path, language: str | None) -> list[Utterance]:
    out = []
    for meta in _hf_metadata(root):
        rows = _hf_rows(meta)
        if rows and "file_name" not in rows[0]:
            raise CorpusError(f"{meta} has no file_name column (a Hugging Face audio folder needs one)")
        col = next((c for c in HF_TEXT_COLUMNS if rows and c in rows[0]), None)
        if rows and col is None:
            raise CorpusError(f"{meta} has none of the text columns {', '.join(HF_TEXT_COLUMNS)}")
        for row in rows:
            name = str(row["file_name"])
            out.append(_clip(root, meta.parent / name, row.get(col), _lang_of(row, language), meta, name))
    return out


# --- Common Voice ------------------------------------------------------------------

def _read_cv(root: Path, language: str | None) -> list[Utterance]:
    table = next(root / t for t in CV_TABLES if (root / t).is_file())
    folder_lang = root.resolve().name.lower().split("-")[0]
    fallback = language or (folder_lang if folder_lang in KNOWN_LANGUAGES else None)
    out = []
    with table.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if not {"path", "sentence"} <= set(reader.fieldnames or ()):
            raise CorpusError(f"{table} needs the columns path and sentence (Common Voice's layout)")
        for row in reader:
            out.append(_clip(root, root / "clips" / row["path"], row["sentence"], _lang_of(row, fallback),
                             table, row["path"]))
    return out


# --- LibriSpeech ---------------------------------------------------------------------

def _read_librispeech(root: Path, language: str | None) -> list[Utterance]:
    out = []
    for trans in sorted(root.rglob(LIBRISPEECH_GLOB)):
        for n, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            uid, sep, text = line.strip().partition(" ")
            if not sep:
                raise CorpusError(f"{trans}, line {n}: expected 'ID TEXT', got {line[:60]!r}")
            audio = next((trans.parent / f"{uid}{ext}" for ext in (".flac", ".wav")
                          if (trans.parent / f"{uid}{ext}").is_file()), trans.parent / f"{uid}.flac")
            out.append(_clip(root, audio, text, language or "en", trans, uid))
    return out
