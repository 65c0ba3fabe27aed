"""The package's shape, checked from the source: who may import whom, where
gradio lives, and module sizes. See ../shared/DESIGN.md and docs/layout.md."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "asr_quant"
CORE = {"audio", "metrics", "memory", "settings", "cache", "espeak", "examples", "host", "units", "children", "latin"}
APPS = {"app", "bench", "loadtest"}
RUNTIMES = {"torch", "onnxruntime", "funasr", "transformers", "ctranslate2", "faster_whisper"}
MAX_LINES = 400
DATA_TABLES = {"bench/sentences.py"}  # sentence lists: data, not code


def _modules():
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path):
    """(absolute module imported, names imported from it, at module top?) for every import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
    top = set(id(n) for n in tree.body)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, [], id(node) in top
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            yield mod, [a.name for a in node.names], id(node) in top


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "asr_quant" or len(parts) < 2:
        return None
    if parts[1] in CORE:
        return "core"
    if parts[1] == "engines":
        return "engines"
    if parts[1] in APPS:
        return parts[1]
    return parts[1]


def test_gradio_is_imported_by_the_page_module_only():
    users = {_name(p) for p in _modules() for mod, _, _ in _imports(p) if mod.split(".")[0] == "gradio"}
    assert users == {"asr_quant.app.ui"}


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_imports_point_downward(path):
    """Core uses nothing above it; engines use the core only; applications
    never import each other; nothing imports an application but itself."""
    me = _layer(_name(path))
    bad = []
    for mod, names, _ in _imports(path):
        other = _layer(mod)
        if other is None or other == me:
            continue
        if me == "core" and other != "core":
            bad.append(mod)
        elif me == "engines" and other != "core":
            bad.append(mod)
        elif me in APPS and other in APPS:
            bad.append(mod)
    assert bad == []


def test_no_arrow_runs_upward_inside_engines():
    """The model families and the shared modules beside them (base, device,
    runtime_policy) never import what the engines package's __init__ defines
    (it imports the families): they use base.py and their siblings. Only the
    orchestrators beside __init__ (alone.py) may call `load_engines`."""
    init_names = {"load_engines", "load_engines_or_reasons", "family_of", "family_module", "family_hook",
                  "FUNASR_NANO_HUB_ID"}
    submodules = {p.stem for p in (PKG / "engines").glob("*.py")} | {p.name for p in (PKG / "engines").iterdir()
                                                                     if p.is_dir()}
    lower = ("asr_quant.engines.whisper", "asr_quant.engines.funasr_nano", "asr_quant.engines.base",
             "asr_quant.engines.device", "asr_quant.engines.runtime_policy")
    bad = []
    for p in _modules():
        name = _name(p)
        if not name.startswith(lower):
            continue
        for mod, names, _ in _imports(p):
            if mod == "asr_quant.engines" and (set(names) & init_names or set(names) - submodules):
                bad.append(f"{name}: from asr_quant.engines import {names}")
    base = PKG / "engines" / "base.py"
    assert all(not m.startswith("asr_quant.engines.") for m, _, _ in _imports(base) if m != "asr_quant.engines.base")
    assert bad == []


@pytest.mark.parametrize("app", sorted(APPS) + ["__main__"])
def test_applications_never_import_a_runtime_at_the_top(app):
    """The page, benchmark, load test and CLI talk to `Engine`; torch,
    onnxruntime and funasr come in through the engines that need them."""
    files = [PKG / "__main__.py"] if app == "__main__" else sorted((PKG / app).rglob("*.py"))
    found = [f"{p.name}: {mod}" for p in files for mod, _, top in _imports(p)
             if mod.split(".")[0] in RUNTIMES]
    assert found == []


def test_no_module_over_400_lines_but_data_tables():
    long = {str(p.relative_to(PKG)): n for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert set(long) <= DATA_TABLES, long
