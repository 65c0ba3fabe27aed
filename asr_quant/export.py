"""Take the INT8 model away: `python -m asr_quant export --precision int8 --out DIR`
and the page's download. The family builds the folder (engines' `export_int8`
hook); this module loads the engine when needed, and makes the zip once per
export (keyed by the family's `export_int8_key`: the artifacts and the code
that writes every file, so a code change never serves an old transcribe.py),
so repeated downloads cost nothing."""
from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

from .cache import key_of, source_hash
from .engines import Engine, EngineError, family_hook, load_engines
from .settings import Settings


class ExportError(RuntimeError):
    """The model cannot be exported (no INT8 engine, a family without export, a bad folder)."""


def _hook(settings: Settings):
    fn = family_hook(settings.model, "export_int8")
    if fn is None:
        raise ExportError(f"exporting is not available for the model {settings.model!r}")
    return fn


def export_folder(settings: Settings, out: Path, engine: Engine | None = None) -> Path:
    """The export in folder `out` (must be new or empty); loads the INT8 engine unless given."""
    fn = _hook(settings)
    if engine is None:
        from dataclasses import replace

        es = load_engines(replace(settings, precisions="int8"))
        engine = es.engines[0]
    if not engine.info.available:
        raise ExportError(f"the INT8 engine could not load: {engine.info.error}")
    try:
        return fn(engine, Path(out))
    except EngineError as exc:
        raise ExportError(str(exc)) from None


def zip_folder(folder: Path, target: Path) -> Path:
    """`folder`'s files in a zip at `target`, written aside and renamed into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name, suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(folder.iterdir()):
                z.write(p, f"{target.stem}/{p.name}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def export_zip(settings: Settings, engine: Engine) -> Path:
    """The page's download: a zip of the export of this loaded engine, built once per export key."""
    _hook(settings)
    key_fn = family_hook(settings.model, "export_int8_key")
    if key_fn is None or getattr(engine, "folder", None) is None:
        raise ExportError("this engine has no exported artifacts")
    try:
        tag = key_of({"export": key_fn(engine), "zip": source_hash(__file__)}, 16)
    except (OSError, EngineError) as exc:
        raise ExportError(f"the INT8 artifacts cannot be read: {exc}") from None
    target = Path(settings.cache_dir) / "exports" / f"asr-quant-int8-{tag}.zip"
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory(prefix="asrq-export-") as tmp:
        export_folder(settings, Path(tmp) / "export", engine)
        return zip_folder(Path(tmp) / "export", target)


def run_cli(settings: Settings, out: Path, as_zip: bool) -> Path:
    """The CLI: a folder at `out`, or with `as_zip` a zip at `out` (".zip" added)."""
    if not as_zip:
        return export_folder(settings, out)
    with tempfile.TemporaryDirectory(prefix="asrq-export-") as tmp:
        export_folder(settings, Path(tmp) / "export")
        target = out if out.suffix == ".zip" else out.with_name(out.name + ".zip")
        return zip_folder(Path(tmp) / "export", target)


__all__ = ["ExportError", "export_folder", "export_zip", "run_cli", "zip_folder"]
