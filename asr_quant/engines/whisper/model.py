"""`WhisperBundle`: the loaded offline Whisper that every engine is built from."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .tokens import TokenizerInfo


@dataclass
class WhisperBundle:
    """The FP32 model plus what engines need to rebuild or export it.

    `cache_dir` is this model's own artifact folder (keyed by model and
    sha256): engines put their converted/exported files under it."""

    hf_model: Any  # transformers WhisperForConditionalGeneration, FP32, eval()
    tokenizer: Any  # tokenizers.Tokenizer from the CT2 folder's tokenizer.json
    tokens: TokenizerInfo  # special ids, languages, suppression, text decoding
    config: Any  # transformers WhisperConfig
    key: str  # "base" | "tiny.en" | "path-<name>"
    name: str  # "Whisper base (multilingual)"
    source: str  # where the weights came from, in words
    ct2_dir: Path  # CTranslate2 folder (model.bin, config.json, tokenizer.json)
    sha256: str  # of model.bin
    cache_dir: Path
    params: int
    fp32_file: Path  # the FP32 safetensors the FP32 engine loads
    converted_now: bool = False  # True when this load ran the CT2 -> PyTorch conversion

    @property
    def n_mels(self) -> int:
        return int(self.config.num_mel_bins)

    @property
    def languages(self) -> list[str]:
        return list(self.tokens.lang_to_id) or ["en"]
