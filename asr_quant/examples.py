"""The example clips shipped in `examples/`, read from `examples/examples.tsv`.

Columns: file, language, reference, description, source, kind ("recorded"
or "synthetic"). A row whose file is missing is skipped (with a log line)
rather than breaking the page.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]  # the checkout (app.py, examples/)
EXAMPLES_DIR = REPO / "examples"


@dataclass
class Example:
    path: Path
    language: str  # a code the language dropdown knows, or "auto"
    reference: str
    description: str = ""
    kind: str = ""  # "recorded" (a real recording) | "synthetic" (espeak-ng) | "" (not stated)
    source: str = ""

    @property
    def label(self) -> str:
        """What the page shows: the language, recorded or synthetic, and what it is."""
        tags = " · ".join(t for t in (self.language if self.language != "auto" else "", self.kind) if t)
        name = self.description or self.path.name
        return f"[{tags}] {name}" if tags else name


def read_examples(folder: str | Path = EXAMPLES_DIR) -> list[Example]:
    folder = Path(folder)
    index = folder / "examples.tsv"
    if not index.is_file():
        return []
    out = []
    with open(index, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            path = folder / (row.get("file") or "").strip()
            if not path.is_file():
                log.warning("example %s listed in %s is missing; skipped", path.name, index)
                continue
            out.append(Example(path=path, language=(row.get("language") or "auto").strip() or "auto",
                               reference=(row.get("reference") or "").strip(),
                               description=(row.get("description") or "").strip(),
                               kind=(row.get("kind") or "").strip(), source=(row.get("source") or "").strip()))
    return out
