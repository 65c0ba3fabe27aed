"""Find a Fun-ASR-Nano folder and build it through `funasr.AutoModel`, safely.

Why each safeguard exists (see issue 5):
- `config.yaml` names `Qwen3-0.6B` by a relative path; transformers treats a
  relative path that does not exist from the working directory as a hub id, so
  `llm_conf`, `tokenizer_conf` and the CTC tokenizer get absolute paths.
- a local folder is loaded with the hub switched off (`HF_HUB_OFFLINE`,
  `MODELSCOPE_OFFLINE`, funasr's `disable_update=True`); `hub="ms"` is used for
  the local build because funasr's ms path deep-merges our overrides, while its
  hf path replaces a whole sub-dict with a user kwarg.
- `AutoModel` sets torch's thread count (`ncpu`); we pass ours explicitly.
- funasr's CTC timestamp path needs torchaudio's forced_align, which does not
  exist for this torch: it is switched off (`ctc_decoder=None`); text is unaffected.
- `FunASRNano` registers itself on `import funasr`: no `trust_remote_code`
  (that would import, and pip-install requirements from, the model folder).
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..base import EngineError

HUB_ID = "FunAudioLLM/Fun-ASR-MLT-Nano-2512"
QWEN_SUBDIR = "Qwen3-0.6B"
REQUIRED_FILES = ("config.yaml", "model.pt")


@dataclass
class ModelFolder:
    """A resolved model: an absolute local folder and where it came from, in words."""

    path: Path
    source: str  # "FunAudioLLM hub (…)" or "local folder …"
    name: str

    @property
    def llm_dir(self) -> Path:
        return self.path / QWEN_SUBDIR

    @property
    def tiktoken(self) -> Path:
        return self.path / "multilingual.tiktoken"


@dataclass
class LoadReport:
    """What happened to each tensor of model.pt (funasr only logs this)."""

    checkpoint_keys: int = 0
    loaded: int = 0
    missing: list[str] = field(default_factory=list)  # model tensors model.pt lacks
    unused: list[str] = field(default_factory=list)  # model.pt tensors the model did not take
    mismatched: list[str] = field(default_factory=list)  # same name, other shape
    skipped_ctc: list[str] = field(default_factory=list)  # CTC tensors, deliberately not loaded

    @property
    def complete(self) -> bool:
        return not (self.missing or self.unused or self.mismatched)


def resolve(model: str, hub: str | None = None) -> ModelFolder:
    """A local folder as is; a hub id downloaded once through funasr's own hub code."""
    p = Path(model).expanduser()
    if p.is_dir():
        folder = p.resolve()
        _check_folder(folder)
        return ModelFolder(folder, f"local folder {folder}", folder.name)
    if os.path.exists(model):
        raise EngineError(f"{model!r} is a file; give the Fun-ASR-Nano model folder or a hub id")
    hub = hub or os.environ.get("ASRQ_FUNASR_HUB", "hf")
    try:
        from funasr.download import download_model_from_hub as dl

        fetch = dl.get_or_download_model_dir_hf if hub in ("hf", "huggingface") else dl.get_or_download_model_dir
        local = fetch(model, "master", is_training=False, check_latest=False)
    except Exception as exc:  # noqa: BLE001 - no network is the common case here
        raise EngineError(f"could not download {model!r} from the {hub} hub ({type(exc).__name__}: "
                          f"{str(exc)[:200]}); pass a local model folder instead") from exc
    folder = Path(local).resolve()
    _check_folder(folder)
    label = "FunAudioLLM hub" if model.startswith("FunAudioLLM/") else f"{hub} hub"
    return ModelFolder(folder, f"{label} ({model}, cached at {folder})", model.split("/")[-1])


def _check_folder(folder: Path) -> None:
    missing = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
    if not (folder / QWEN_SUBDIR / "config.json").is_file():
        missing.append(f"{QWEN_SUBDIR}/config.json")
    if missing:
        raise EngineError(f"{folder} is not a Fun-ASR-Nano folder: missing {', '.join(missing)}")


@contextlib.contextmanager
def offline():
    """No hub traffic while building from a local folder (env and the constants
    huggingface_hub already read at import)."""
    keys = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MODELSCOPE_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1"}
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    patched = []
    try:
        import huggingface_hub.constants as hc

        if hasattr(hc, "HF_HUB_OFFLINE"):
            patched.append((hc, "HF_HUB_OFFLINE", hc.HF_HUB_OFFLINE))
            hc.HF_HUB_OFFLINE = True
    except Exception:  # noqa: BLE001 - huggingface_hub is optional for a local folder
        pass
    try:
        yield
    finally:
        for obj, name, value in patched:
            setattr(obj, name, value)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def automodel_kwargs(folder: ModelFolder, device: str, threads: int, llm_dtype: str = "fp32") -> dict:
    """The overrides that make `AutoModel` load this folder without surprises."""
    llm = str(folder.llm_dir)
    return dict(
        model=str(folder.path),
        hub="ms",  # deep-merge of overrides; no download happens for an existing folder
        device=device,
        ncpu=threads,
        disable_update=True,
        disable_pbar=True,
        disable_log=True,
        log_level="WARNING",
        llm_conf={"init_param_path": llm, "llm_dtype": llm_dtype},
        tokenizer_conf={"init_param_path": llm},
        dataset_conf={"ctc_tokenizer_conf": {"vocab_path": str(folder.tiktoken)}},
        ctc_decoder=None,  # timestamps need torchaudio's forced_align: off
    )


def build_automodel(folder: ModelFolder, device: str = "cpu", threads: int = 2, llm_dtype: str = "fp32"):
    """`funasr.AutoModel` on a resolved folder; returns (automodel, LoadReport)."""
    import torch

    import funasr  # noqa: F401 - registers FunASRNano
    from funasr import AutoModel

    kwargs = automodel_kwargs(folder, device, threads, llm_dtype)
    root = logging.getLogger()
    level = root.level
    try:
        with offline():
            am = AutoModel(**kwargs)
    finally:
        root.setLevel(level)
    torch.set_num_threads(threads)
    release_freed_memory()  # funasr's loader deep-copies the checkpoint; give that back
    report = check_loaded(am.model, folder.path / "model.pt")
    if report.missing or report.mismatched:
        raise EngineError(
            f"model.pt does not fit this config: {len(report.missing)} tensors missing "
            f"({', '.join(report.missing[:3])}), {len(report.mismatched)} with other shapes "
            f"({', '.join(report.mismatched[:3])})")
    return am, report


def release_freed_memory() -> None:
    """Return freed heap pages to the OS (glibc keeps them otherwise), so an
    engine's resident memory is its weights, not its loader's leftovers."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def check_loaded(model, checkpoint: Path) -> LoadReport:
    """Compare the built model with model.pt by name and shape (funasr only logs gaps).

    The checkpoint is memory-mapped, so this costs little even at real size.
    """
    import torch

    try:
        obj = torch.load(checkpoint, map_location="cpu", mmap=True, weights_only=True)
    except Exception:  # noqa: BLE001 - legacy (non-zip) checkpoints cannot be mmapped
        obj = torch.load(checkpoint, map_location="cpu", weights_only=False)
    src = state_dict_of(obj)
    dst = model.state_dict()
    rep = LoadReport(checkpoint_keys=len(src))
    for k, v in dst.items():
        if k not in src:
            rep.missing.append(k)
        elif tuple(src[k].shape) != tuple(v.shape):
            rep.mismatched.append(k)
        else:
            rep.loaded += 1
    for k in src:
        if k in dst:
            continue
        if k.startswith("ctc_decoder.") or k.startswith("ctc."):
            rep.skipped_ctc.append(k)
        else:
            rep.unused.append(k)
    return rep


def state_dict_of(obj) -> dict:
    """Unwrap the containers funasr accepts ("state_dict", "model_state_dict", "model")."""
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def read_config(folder: ModelFolder) -> dict:
    """config.yaml with our absolute paths, interpolations resolved."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(folder.path / "config.yaml")
    cfg.llm_conf.init_param_path = str(folder.llm_dir)
    return OmegaConf.to_container(cfg, resolve=True)


def count_params(folder: ModelFolder) -> int:
    """Parameters in model.pt (what the weights cost), read memory-mapped.

    A tied lm_head stored beside the embedding is counted once."""
    import torch

    try:
        obj = torch.load(folder.path / "model.pt", map_location="cpu", mmap=True, weights_only=True)
    except Exception:  # noqa: BLE001
        obj = torch.load(folder.path / "model.pt", map_location="cpu", weights_only=False)
    sd = state_dict_of(obj)
    total = 0
    seen_ptrs = set()
    emb = sd.get("llm.model.embed_tokens.weight")
    for k, v in sd.items():
        if k == "llm.lm_head.weight" and emb is not None and torch.equal(v, emb):
            continue
        if (v.data_ptr(), v.numel()) in seen_ptrs:
            continue
        seen_ptrs.add((v.data_ptr(), v.numel()))
        total += v.numel()
    return total
