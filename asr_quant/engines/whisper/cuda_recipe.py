"""INT8 Whisper for ONNX Runtime's CUDA provider: weight-only INT8 that stays on the GPU.

Why not the CPU recipe (quantize.py) on CUDA: its graphs are made of
`DynamicQuantizeLinear` + `MatMulInteger` (dynamic) or QDQ pairs the CPU
provider fuses into integer kernels (static). On CUDA, DynamicQuantizeLinear
has no kernel (onnxruntime issues #7745, #12229), so ONNX Runtime places
those nodes on the CPU and copies activations back and forth every layer;
INT8 would look slower than FP32 for a reason that has nothing to do with INT8.

This recipe: every weight MatMul becomes `com.microsoft.MatMulNBits` with
`bits=8` (symmetric, blocks of BLOCK_SIZE along K, one FP32 scale per block),
built by onnxruntime.quantization's `MatMulNBitsQuantizer`. The CUDA kernel
for it (float, float16, bfloat16) handles 8 bits: a GEMV for one token, a
dequantize + cuBLAS GEMM for longer inputs. Activations stay FP32, so there is
no activation scale to calibrate and the fc2 outlier channels that the CPU
recipe has to split off (see quantize.py) do no harm: no calibration speech,
no choice between modes. The decoder's token table is stored once: the
output projection's packed INT8 columns are also what the embedding lookup
gathers (then Cast/Sub/Mul by the gathered block scales), so no FP32 copy.

Every op of the result is checked against the CUDA provider's kernel table
of the pinned onnxruntime version (cuda_kernels.json, vendored from
onnxruntime's docs/OperatorKernels.md) by tests/test_cuda_recipe.py, which
also runs the graphs on the CPU provider against the CPU INT8 engine.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path


from ...cache import build_dir, key_of, sha256_file, source_hash
from . import onnx_export
from .plans import blockwise

BITS = 8
BLOCK_SIZE = 128  # along K; d_model 512 / 2048 are multiples, so no padding
RECIPE_VERSION = 1
FILES = ("encoder.onnx", "decoder.onnx")
TABLE = Path(__file__).with_name("cuda_kernels.json")
log = logging.getLogger(__name__)


def recipe_key(model_sha256: str) -> str:
    """Cache key: weights, recipe settings, builder code (this file and the exporter), ORT version."""
    import onnxruntime as ort

    return key_of({"sha": model_sha256, "recipe": RECIPE_VERSION, "bits": BITS, "block": BLOCK_SIZE,
                   "code": source_hash(__file__, onnx_export.__file__, blockwise.__file__), "ort": ort.__version__})


def artifact_dir(bundle) -> Path:
    """Its own folder beside the CPU recipe's `int8-<key>`."""
    return Path(bundle.cache_dir) / f"int8cuda-{recipe_key(bundle.sha256)}"


# --------------------------------------------------------------------------- graph

def quantize_weights(fp32: Path, out: Path) -> int:
    """Every MatMul with a constant weight -> MatMulNBits (8 bits), activations FP32. Returns the node count."""
    return blockwise.quantize(fp32, out, BLOCK_SIZE, accuracy_level=None)


share_table = blockwise.share_embedding  # the lookup reads the output projection's packed table (blockwise.py)


def build(hf_model, out_dir: Path) -> dict:
    """Export FP32 graphs and write the CUDA INT8 encoder.onnx / decoder.onnx
    into out_dir; returns the report kept in the manifest."""
    import shutil

    t0 = time.perf_counter()
    work = Path(out_dir) / "work"
    enc32, dec32 = onnx_export.export(hf_model, work)
    t1 = time.perf_counter()
    n_enc = quantize_weights(enc32, Path(out_dir) / FILES[0])
    n_dec = quantize_weights(dec32, Path(out_dir) / FILES[1])
    share_table(Path(out_dir) / FILES[1])
    shutil.rmtree(work, ignore_errors=True)
    return {"recipe": "cuda-weight-only", "bits": BITS, "block_size": BLOCK_SIZE, "encoder_nodes": n_enc,
            "decoder_nodes": n_dec, "seconds": {"export": round(t1 - t0, 2),
                                                "quantize": round(time.perf_counter() - t1, 2)}}


def describe(report: dict) -> str:
    """What runs in which precision, for `EngineInfo.details`."""
    return (f"CUDA recipe: weight-only INT8 (MatMulNBits, {report['bits']} bits, symmetric, blocks of "
            f"{report['block_size']} with FP32 scales) on {report['encoder_nodes']} encoder and "
            f"{report['decoder_nodes']} decoder MatMuls; activations FP32 (no calibration); token table stored "
            f"once in INT8 (output projection + lookup); FP32: convolutions, LayerNorm, attention.")


# --------------------------------------------------------------------------- artifacts

def cpu_model(bundle):
    """The FP32 model on the CPU for export: the bundle's own when it is there,
    else a fresh copy from its weights file (the FP32 engine may have moved
    the shared model to the GPU, and tracing wants CPU tensors)."""
    p = next(bundle.hf_model.parameters())
    if p.device.type == "cpu":
        return bundle.hf_model
    from transformers import WhisperForConditionalGeneration

    return WhisperForConditionalGeneration.from_pretrained(str(Path(bundle.fp32_file).parent), dtype="float32").eval()


def validate(folder: Path) -> dict | None:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        for name in FILES:
            want, p = manifest["files"][name], folder / name
            if p.stat().st_size != want["bytes"] or sha256_file(p) != want["sha256"]:
                return None
        return manifest
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ensure_artifacts(bundle, rebuild: bool = False) -> tuple[Path, dict]:
    """The artifact folder and its manifest, built in this process when missing
    or invalid (export + weight packing only: no calibration, ~1 minute for base)."""
    final = artifact_dir(bundle)
    if not rebuild and (manifest := validate(final)) is not None:
        return final, manifest

    def fill(tmp: Path) -> None:
        report = build(cpu_model(bundle), tmp)
        manifest = {"model": bundle.name, "model_sha256": bundle.sha256, "report": report,
                    "key": recipe_key(bundle.sha256),
                    "files": {n: {"bytes": (tmp / n).stat().st_size, "sha256": sha256_file(tmp / n)} for n in FILES}}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))

    build_dir(final, fill, valid=lambda f: validate(f) is not None, rebuild=rebuild)
    manifest = validate(final)
    if manifest is None:
        raise RuntimeError(f"the CUDA INT8 artifacts in {final} failed their check right after the build")
    return final, manifest


# --------------------------------------------------------------------------- kernel table

def graph_ops(path: Path) -> set[tuple[str, str]]:
    """(domain, op type) of every node; "" is the default ONNX domain."""
    import onnx

    g = onnx.load(str(path), load_external_data=False).graph
    return {(n.domain if n.domain not in ("", "ai.onnx") else "", n.op_type) for n in g.node}


def cuda_table() -> dict:
    """The vendored CUDA kernel list (see cuda_kernels.json's "source")."""
    return json.loads(TABLE.read_text())


def missing_kernels(path: Path, opset: int = onnx_export.OPSET) -> list[str]:
    """Ops of the graph that have no CUDA kernel for float at this opset, per the table."""
    doc, missing = cuda_table(), []
    table = doc["kernels"]
    for domain, op in sorted(graph_ops(path)):
        name = f"{domain or 'ai.onnx'}:{op}"
        if name in doc["no_kernel_needed"]:
            continue
        entry = table.get(name)
        version = opset if not domain else 1  # contrib ops (com.microsoft) are all version 1
        if entry is None or not any(lo <= version <= (hi or 10 ** 6) for lo, hi in entry):
            missing.append(name)
    return missing


def installed_cuda_kernels() -> set[str] | None:
    """Kernel class names compiled into the installed onnxruntime-gpu CUDA
    provider library, read from its C++ type information (e.g. "MatMulNBits",
    "DequantizeLinear"); None where that library is not installed. A second
    witness beside the vendored table: this is the pinned wheel itself."""
    import mmap
    import re

    import onnxruntime as ort

    lib = Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
    if not lib.is_file():
        return None
    names = set()
    with open(lib, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        for hit in re.finditer(rb"N11onnxruntime(?:7contrib)?4cuda(\d{1,2})", m):
            n = int(hit.group(1))
            names.add(m[hit.end():hit.end() + n].decode("ascii", "replace"))
    return names
