"""Taking the INT8 model away: `python -m asr_quant export --precision int8 --out
DIR` writes the graphs, tokenizer, mel filters, manifest and README; the
folder's own transcribe.py, run in a Python that can import numpy and
onnxruntime and nothing else (no torch, no asr_quant, no site-packages), gives
the INT8 engine's exact transcript on real example clips."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr_quant import audio
from asr_quant.examples import read_examples

pytestmark = pytest.mark.model

REPO = Path(__file__).resolve().parents[1]
FILES = {"encoder.onnx", "decoder.onnx", "tokenizer.json", "whisper.json", "mel_filters.npy", "manifest.json",
         "README.md", "transcribe.py"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, whisper_engines):
    """The CLI's export, in-process, on the cache the engines fixture built."""
    from asr_quant.__main__ import main
    from asr_quant.settings import Settings

    out = tmp_path_factory.mktemp("export") / "whisper-base-int8"
    assert main(["export", "--precision", "int8", "--out", str(out), "--threads", "2",
                 "--cache-dir", Settings.from_env().cache_dir]) == 0
    return out


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory):
    """argv prefix for a Python with only numpy and onnxruntime importable."""
    import numpy as _np
    import onnxruntime as _ort

    shim = tmp_path_factory.mktemp("numpy-ort-only")
    for mod in (_np, _ort):
        pkg = Path(mod.__file__).parent
        (shim / pkg.name).symlink_to(pkg)
        libs = pkg.parent / f"{pkg.name}.libs"
        if libs.exists():
            (shim / libs.name).symlink_to(libs)
    boot = f"import sys; sys.path[:0] = [{str(shim)!r}]; import runpy; sys.argv = sys.argv[1:]; " \
           "runpy.run_path(sys.argv[0], run_name='__main__')"
    return [sys.executable, "-S", "-I", "-c", boot]


def test_export_folder_holds_what_the_readme_says(exported):
    assert {p.name for p in exported.iterdir()} == FILES
    m = json.loads((exported / "manifest.json").read_text())
    plan = m["recipe"]["plan"]  # the default engine's plan: the export carries what the page measured
    assert plan in ("recipe", "rows", "blockwise", "search", "costed") and m["recipe"]["isa"]
    assert m["encoder"] == {"rows": "rows", "blockwise": "blockwise", "costed": "costed"}.get(plan, m["encoder"])
    assert m["encoder"] in ("static", "dynamic", "rows", "blockwise", "costed")
    chosen = m["agreement_with_fp32"][m["encoder"]]
    assert 0.0 <= chosen["kl"] < 0.2 and 0.8 < chosen["top1"] <= 1.0  # measured, not a placeholder
    assert m["calibration"]["clips"] >= 1
    for name in FILES - {"manifest.json"}:
        assert m["files"][name]["bytes"] == (exported / name).stat().st_size > 0
    assert np.load(exported / "mel_filters.npy").shape == (80, 201)
    readme = (exported / "README.md").read_text()
    assert "python transcribe.py clip.wav" in readme and "numpy" in readme and "onnxruntime" in readme


def test_the_bare_python_cannot_import_torch_or_the_project(bare_python, tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import importlib.util as u, sys\n"
                     "print([m for m in ('torch', 'asr_quant', 'transformers', 'librosa', 'tokenizers', "
                     "'numpy', 'onnxruntime') if u.find_spec(m)])\n")
    r = subprocess.run([*bare_python, str(probe)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['numpy', 'onnxruntime']"


@pytest.mark.parametrize("name", ["weather_en.flac", "aishell_BAC009S0764W0121_zh.wav"])
def test_standalone_script_gives_the_engines_transcript(name, exported, bare_python, whisper_engines, tmp_path):
    ex = next(e for e in read_examples(REPO / "examples") if e.path.name == name)
    clip = audio.load(ex.path)
    wav = tmp_path / "clip.wav"
    sf.write(wav, clip.samples, 16000, subtype="PCM_16")  # what the script reads: 16-bit PCM, 16 kHz
    engine = whisper_engines.by_name("INT8")
    want = engine.transcribe(audio.load(wav), None)
    assert want.ok and want.text and not want.warnings, want
    r = subprocess.run([*bare_python, str(exported / "transcribe.py"), str(wav), "--threads", "2"],
                       capture_output=True, text=True, cwd=exported, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got == {"language": want.language, "text": want.text}


def test_zip_holds_the_same_files(exported, tmp_path):
    from asr_quant.export import zip_folder

    z = zip_folder(exported, tmp_path / "int8.zip")
    with zipfile.ZipFile(z) as f:
        assert {Path(n).name for n in f.namelist()} == FILES


def test_page_download_is_the_same_export(whisper_engines, tmp_path):
    """The page's "Prepare the INT8 download": a zip of the same files, built once and reused."""
    from asr_quant.app import ui
    from asr_quant.settings import Settings

    demo = ui.build(whisper_engines, Settings(cache_dir=str(tmp_path / "cache")), examples=[])
    prepare = next(f.fn for f in demo.fns.values() if f.api_name == "export_int8")
    first = prepare()
    path = Path(next(first))
    with zipfile.ZipFile(path) as f:
        assert {Path(n).name for n in f.namelist()} == FILES
    first.close()
    built = list((tmp_path / "cache" / "exports").glob("*.zip"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    again = prepare()
    next(again)
    again.close()
    assert built[0].stat().st_mtime_ns == stamp  # not built twice


def test_blockwise_export_gives_the_engines_transcript(whisper_blockwise, bare_python, tmp_path):
    """The "blockwise" plan's graphs (MatMulNBits 8-bit blocks, a shared token
    table) exported and run by their own transcribe.py in the bare Python:
    the same files and the blockwise engine's exact transcript."""
    from asr_quant.engines.whisper.export import export

    out = export(whisper_blockwise, tmp_path / "whisper-base-int8-blockwise")
    assert {p.name for p in out.iterdir()} == FILES
    m = json.loads((out / "manifest.json").read_text())
    assert m["recipe"]["plan"] == "blockwise"
    for name in FILES - {"manifest.json"}:
        assert m["files"][name]["bytes"] == (out / name).stat().st_size > 0
    ex = next(e for e in read_examples(REPO / "examples") if e.path.name == "weather_en.flac")
    wav = tmp_path / "clip.wav"
    sf.write(wav, audio.load(ex.path).samples, 16000, subtype="PCM_16")
    want = whisper_blockwise.transcribe(audio.load(wav), None)
    assert want.ok and want.text and not want.warnings, want
    r = subprocess.run([*bare_python, str(out / "transcribe.py"), str(wav), "--threads", "2"],
                       capture_output=True, text=True, cwd=out, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got == {"language": want.language, "text": want.text}
