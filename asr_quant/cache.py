"""The artifact cache's one way of writing: build a folder aside, then rename it in.

Every builder (converted weights, INT8 ONNX artifacts, Fun-ASR-Nano exports,
the built-in benchmark corpus) goes through `build_dir`, so that a reader never
sees half a folder, two processes never build the same folder at once, and a
folder that fails its check is rebuilt rather than trusted. Keys are hashes of
everything that changes the result (`key_of`), the builder's own source
included (`source_hash`).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_digest(path: str | os.PathLike, stamp: str | os.PathLike) -> str:
    """sha256 of a large input file, remembered in the small JSON file `stamp`
    and re-hashed when the file may have changed: its size, mtime, ctime, inode
    or device differ. ctime is set by the kernel on every write and on every
    `touch`/`os.utime`, so a same-size rewrite with its mtime put back is still caught."""
    path = Path(path)
    st = path.stat()
    ident = {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
             "ctime_ns": st.st_ctime_ns, "inode": st.st_ino, "device": st.st_dev}
    stamp = Path(stamp)
    try:
        saved = json.loads(stamp.read_text())
        if {k: saved.get(k) for k in ident} == ident and len(saved.get("sha256", "")) == 64:
            return saved["sha256"]
    except (OSError, ValueError):
        pass
    sha = sha256_file(path)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    tmp = stamp.with_name(stamp.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps({**ident, "sha256": sha}))
    os.replace(tmp, stamp)
    return sha


def file_records(folder: str | os.PathLike, names) -> dict:
    """{name: {"bytes", "sha256"}} of files in `folder`: what a manifest records
    so that `files_match` can tell a whole folder from a damaged one."""
    folder = Path(folder)
    return {n: {"bytes": (folder / n).stat().st_size, "sha256": sha256_file(folder / n)} for n in names}


def files_match(folder: str | os.PathLike, records) -> bool:
    """Every file `file_records` recorded is there with its size and sha256."""
    folder = Path(folder)
    try:
        if not isinstance(records, dict) or not records:
            return False
        for name, want in records.items():
            p = folder / name
            if not isinstance(want, dict) or p.stat().st_size != want["bytes"] or sha256_file(p) != want["sha256"]:
                return False
        return True
    except (OSError, KeyError, TypeError):
        return False


def key_of(spec, length: int = 16) -> str:
    """A short stable hash of a JSON-able description of what a build depends on."""
    text = json.dumps(spec, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def source_hash(*files: str | os.PathLike, length: int = 12) -> str:
    """Hash of the builder's source files: editing the code that makes an
    artifact changes its key, so an artifact of older code is never reused."""
    h = hashlib.sha256()
    for f in sorted(str(p) for p in files):
        h.update(Path(f).name.encode())
        h.update(Path(f).read_bytes())
    return h.hexdigest()[:length]


@contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """One holder at a time across processes (POSIX flock); others wait."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock; the rename still keeps readers safe
        yield
        return
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_dir(final: str | os.PathLike, fill: Callable[[Path], None],
              valid: Callable[[Path], bool] = Path.is_dir, rebuild: bool = False) -> Path:
    """`final`, built by `fill(tmp)` in a temporary sibling and renamed into place
    unless it is already there and `valid`.

    Builders of the same folder take turns (a lock beside it); the second finds
    the first one's folder valid and reuses it. A folder that is present but not
    valid (truncated, corrupt, older layout) is moved aside and replaced.
    """
    final = Path(final)
    if not rebuild and final.exists() and valid(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(final.with_name(final.name + ".lock")):
        if not rebuild and final.exists() and valid(final):
            return final  # another process built it while we waited
        tmp = Path(tempfile.mkdtemp(prefix=final.name + ".tmp-", dir=final.parent))
        try:
            fill(tmp)
            os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is shared like any other
            if final.exists():
                trash = final.with_name(f"{final.name}.trash-{os.getpid()}")
                os.rename(final, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.rename(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final
