"""`WhisperBundle`: the offline Whisper every engine is built from.

The FP32 PyTorch model is loaded on first use (`hf_model`), not with the
bundle: an engine set of ONNX Runtime engines whose artifacts are cached needs
only the tokenizer, the model's dimensions and the artifacts, so it runs with
neither torch nor transformers imported and no FP32 copy in memory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

from .tokens import TokenizerInfo


@dataclass
class WhisperBundle:
    """What engines need to build, export or run one Whisper model.

    `cache_dir` is this model's own artifact folder (keyed by model and
    sha256): engines put their converted/exported files under it."""

    tokenizer: Any  # tokenizers.Tokenizer from the CT2 folder's tokenizer.json
    tokens: TokenizerInfo  # special ids, languages, suppression, text decoding
    config: SimpleNamespace  # the transformers WhisperConfig's dimension fields (d_model, decoder_layers, ...)
    key: str  # "base" | "tiny.en" | "path-<name>"
    name: str  # "Whisper base (multilingual)"
    source: str  # where the weights came from, in words
    ct2_dir: Path  # CTranslate2 folder (model.bin, config.json, tokenizer.json)
    sha256: str  # of model.bin
    cache_dir: Path
    params: int
    fp32_dir: Path  # transformers folder of the converted FP32 model (made on first FP32 load)
    load_fp32: Callable[[], tuple[Any, bool]] | None = field(default=None, repr=False)  # -> (model, converted)
    converted_now: bool = False  # True when this process ran the CT2 -> PyTorch conversion
    _hf_model: Any = field(default=None, repr=False)

    @property
    def hf_model(self):
        """transformers WhisperForConditionalGeneration, FP32, eval(); loaded (and converted once) on first use."""
        if self._hf_model is None:
            if self.load_fp32 is None:
                raise RuntimeError(f"{self.name}: no FP32 loader")
            self._hf_model, self.converted_now = self.load_fp32()
        return self._hf_model

    @property
    def fp32_loaded(self) -> bool:
        return self._hf_model is not None

    @property
    def fp32_file(self) -> Path:
        return self.fp32_dir / "model.safetensors"

    @property
    def n_mels(self) -> int:
        return int(self.config.num_mel_bins)

    @property
    def languages(self) -> list[str]:
        return list(self.tokens.lang_to_id) or ["en"]
