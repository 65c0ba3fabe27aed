"""Issue 23's caches, checked without a model: each key moves when what it
stands for moves (a file's content, a builder's code, an engine's artifact),
and a damaged folder is rebuilt rather than served."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from asr_quant import cache

REPO = Path(__file__).resolve().parents[1]


def _rewrite_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    st = path.stat()
    assert len(data) == st.st_size
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns and path.stat().st_size == st.st_size


# --- content digests ----------------------------------------------------------------------

def test_file_digest_catches_a_same_size_rewrite_with_its_mtime_put_back(tmp_path):
    f, stamp = tmp_path / "model.pt", tmp_path / "stamps" / "model.json"
    f.write_bytes(b"A" * 4096)
    first = cache.file_digest(f, stamp)
    assert first == cache.sha256_file(f) and stamp.is_file()
    assert cache.file_digest(f, stamp) == first  # remembered: the stamp answers
    _rewrite_keeping_size_and_mtime(f, b"B" * 4096)
    assert cache.file_digest(f, stamp) == cache.sha256_file(f) != first


# --- Fun-ASR-Nano artifacts ---------------------------------------------------------------

def _funasr_folder(root: Path):
    from asr_quant.engines.funasr_nano import loading

    (root / loading.QWEN_SUBDIR).mkdir(parents=True)
    (root / "model.pt").write_bytes(b"\x01" * 2048)
    (root / "config.yaml").write_text("model: FunASRNano\n")
    (root / loading.QWEN_SUBDIR / "config.json").write_text("{}")
    return loading.ModelFolder(path=root, source="tests", name="twin")


def test_funasr_key_follows_model_pt_content_not_its_size_and_mtime(tmp_path):
    from asr_quant.engines.funasr_nano import artifacts

    folder = _funasr_folder(tmp_path / "model")
    before = artifacts.artifact_dir(folder, tmp_path / "cache")
    _rewrite_keeping_size_and_mtime(folder.path / "model.pt", b"\x02" * 2048)
    assert artifacts.artifact_dir(folder, tmp_path / "cache") != before


def test_funasr_key_follows_the_builder_code(tmp_path, monkeypatch):
    from asr_quant.engines.funasr_nano import artifacts

    folder = _funasr_folder(tmp_path / "model")
    before = artifacts.artifact_dir(folder, tmp_path / "cache")
    code = tmp_path / "code"
    shutil.copytree(artifacts._HERE, code)
    with open(code / "export.py", "a") as f:
        f.write("\n# an edit\n")
    monkeypatch.setattr(artifacts, "_HERE", code)
    assert artifacts.artifact_dir(folder, tmp_path / "cache") != before


def test_funasr_damaged_artifact_is_rebuilt_not_served(tmp_path):
    """A folder whose manifest is there but whose file lost bytes is not served:
    `ensure` starts a build (here the builder says so by raising)."""
    from asr_quant.engines.funasr_nano import artifacts

    folder = _funasr_folder(tmp_path / "model")
    final = artifacts.artifact_dir(folder, tmp_path / "cache")
    final.mkdir(parents=True)
    for name in ("encoder.int8.onnx", "decoder.int8.onnx", "embed.int8.npz"):
        (final / name).write_bytes(os.urandom(1000))
    names = sorted(p.name for p in final.iterdir())
    (final / "manifest.json").write_text(json.dumps({"files": cache.file_records(final, names)}))

    class Rebuilt(Exception):
        pass

    def builder(_):
        raise Rebuilt

    found, manifest = artifacts.ensure(folder, tmp_path / "cache", 1, builder, model=object())
    assert found == final and set(manifest["files"]) == set(names)  # whole: served
    _rewrite_keeping_size_and_mtime(final / "decoder.int8.onnx", b"\x00" * 1000)
    with pytest.raises(Rebuilt):
        artifacts.ensure(folder, tmp_path / "cache", 1, builder, model=object())
    (final / "decoder.int8.onnx").unlink()
    with pytest.raises(Rebuilt):
        artifacts.ensure(folder, tmp_path / "cache", 1, builder, model=object())


# --- Whisper's converted FP32 folder --------------------------------------------------------

def test_fp32_conversion_folder_is_keyed_by_the_conversion_code(tmp_path, monkeypatch):
    from asr_quant.engines.whisper import ct2

    src = SimpleNamespace(cache_dir=tmp_path)
    before = ct2.fp32_dir(src)
    assert before.parent == tmp_path and before.name.startswith("torch-fp32-")
    code = tmp_path / "code"
    code.mkdir()
    for name in ("ct2.py", "ct2_format.py"):
        shutil.copyfile(Path(ct2.__file__).with_name(name), code / name)
    with open(code / "ct2_format.py", "a") as f:
        f.write("\n# an edit\n")
    monkeypatch.setattr(ct2, "__file__", str(code / "ct2.py"))
    assert ct2.fp32_dir(src) != before


# --- the export zip -----------------------------------------------------------------------

def test_export_zip_follows_the_code_that_writes_it(tmp_path, monkeypatch):
    """The page's zip is cached by the export's key: after the script it copies
    changes, the page serves the new transcribe.py, not the old zip."""
    from asr_quant import export as export_mod
    from asr_quant.engines.whisper import export as whisper_export
    from asr_quant.engines.whisper import export_int8_key
    from asr_quant.settings import Settings

    artifact = tmp_path / "int8-abc"
    artifact.mkdir()
    (artifact / "manifest.json").write_text("{}")
    ct2_dir = tmp_path / "ct2"
    ct2_dir.mkdir()
    (ct2_dir / "tokenizer.json").write_text("{}")
    engine = SimpleNamespace(info=SimpleNamespace(available=True, artifact=artifact.name, error=None),
                             folder=artifact, bundle=SimpleNamespace(ct2_dir=ct2_dir))
    script = tmp_path / "standalone.py"
    script.write_text("print('old')\n")
    monkeypatch.setattr(whisper_export, "SCRIPT", script)

    def write(engine, out):
        out.mkdir(parents=True)
        shutil.copyfile(whisper_export.SCRIPT, out / "transcribe.py")
        return out

    hooks = {"export_int8": write, "export_int8_key": export_int8_key}
    monkeypatch.setattr(export_mod, "family_hook", lambda model, name: hooks.get(name))
    settings = Settings(cache_dir=str(tmp_path / "cache"))

    def served() -> str:
        with zipfile.ZipFile(export_mod.export_zip(settings, engine)) as z:
            return z.read(next(n for n in z.namelist() if n.endswith("transcribe.py"))).decode()

    assert served() == "print('old')\n"
    script.write_text("print('new')\n")
    assert served() == "print('new')\n"
    (artifact / "manifest.json").write_text('{"rebuilt": true}')  # a rebuilt artifact: another zip
    assert len({p.name for p in (tmp_path / "cache" / "exports").glob("*.zip")}) == 2
    served()
    assert len({p.name for p in (tmp_path / "cache" / "exports").glob("*.zip")}) == 3


# --- memory alone -------------------------------------------------------------------------

def test_memory_alone_figures_belong_to_the_engines_artifact(tmp_path):
    """Figures measured for one INT8 artifact are not shown for a rebuilt one."""
    from asr_quant.engines import alone
    from asr_quant.settings import Settings

    from fake_engines import FakeEngine, fake_set

    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"RIFF....")
    settings = Settings(model="base", cache_dir=str(tmp_path / "cache"))
    old = alone.spec_for(settings, "int8", clip, "en", artifact="int8-old")
    path = alone.cache_path(old)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"working_bytes": 123, "artifact": "int8-old"}))
    engine = FakeEngine("INT8")
    engine.info.artifact = "int8-old"
    assert alone.attach_cached(fake_set(engine), settings, clip, "en") == []
    assert engine.info.alone["working_bytes"] == 123
    rebuilt = FakeEngine("INT8")
    rebuilt.info.artifact = "int8-new"
    todo = alone.attach_cached(fake_set(rebuilt), settings, clip, "en")
    assert [e for e, _ in todo] == [rebuilt] and rebuilt.info.alone is None
    assert todo[0][1]["artifact"] == "int8-new"


def test_memory_alone_key_follows_the_engine_code(tmp_path, monkeypatch):
    from asr_quant.engines import alone
    from asr_quant.settings import Settings

    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"RIFF....")
    spec = alone.spec_for(Settings(model="base", cache_dir=str(tmp_path)), "int8", clip, None, artifact="int8-x")
    before = alone.cache_path(spec)
    code = tmp_path / "engines"
    shutil.copytree(Path(alone.__file__).parent, code, ignore=shutil.ignore_patterns("__pycache__"))
    with open(code / "whisper" / "ort_engine.py", "a") as f:
        f.write("\n# an edit\n")
    monkeypatch.setattr(alone, "__file__", str(code / "alone.py"))
    alone.code_hash.cache_clear()
    try:
        assert alone.cache_path(spec) != before
    finally:
        monkeypatch.undo()
        alone.code_hash.cache_clear()


# --- language names -----------------------------------------------------------------------

def test_language_table_is_whispers():
    from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

    from asr_quant.engines.whisper.language_names import NAME_TO_CODE

    assert NAME_TO_CODE == TO_LANGUAGE_CODE


def test_a_language_name_on_the_int8_path_imports_no_transformers(tmp_path):
    """What the INT8-only CLI does with `--language spanish`: the bundle without
    FP32, then the name resolved, in a fresh process."""
    probe = ("import json, sys\n"
             "from asr_quant.engines.whisper import load_bundle\n"
             "from asr_quant.settings import Settings\n"
             "b = load_bundle('base', Settings.from_env().cache_dir, fp32=False)\n"
             "codes = [b.tokens.resolve_language(n)[0] for n in ('spanish', 'Japanese', 'castilian')]\n"
             "print(json.dumps([codes, sorted(m for m in sys.modules if m.split('.')[0] in "
             "('transformers', 'torch'))]))\n")
    r = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    codes, heavy = json.loads(r.stdout.strip().splitlines()[-1])
    assert codes == ["es", "ja", "es"] and heavy == []


# --- the >30 s split, in the engines and in the exported script -----------------------------

@pytest.mark.parametrize("seconds", [12.0, 30.0, 30.5, 61.0, 95.3])
def test_standalone_script_splits_long_clips_as_the_engines_do(seconds):
    import importlib.util

    from asr_quant.engines.whisper import features

    spec = importlib.util.spec_from_file_location("standalone_copy", Path(features.__file__).with_name("standalone.py"))
    standalone = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(standalone)
    rng = np.random.default_rng(int(seconds * 10))
    samples = (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
    ours = features.windows(samples, 80)
    theirs = list(standalone.windows(samples, features.mel_filters(80)))
    assert len(ours) == len(theirs) == max(1, int(np.ceil(seconds / 30)))
    for w, (mel, secs) in zip(ours, theirs):
        assert mel.shape == w.mel.shape == (1, 80, 3000)
        np.testing.assert_allclose(mel, w.mel, atol=1e-5)
        assert secs == pytest.approx(w.duration_s, abs=1e-9)
