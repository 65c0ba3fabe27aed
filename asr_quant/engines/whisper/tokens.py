"""Whisper's special token ids, language codes and text decoding, read from the
CTranslate2 folder's tokenizer.json and config.json (no hub download)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..base import EngineError


@dataclass
class TokenizerInfo:
    """Everything the decoding loop needs to know about the vocabulary."""

    tokenizer: object  # tokenizers.Tokenizer
    vocab_size: int  # rows of the output projection (logits length)
    sot: int
    eot: int
    transcribe: int
    translate: int
    no_timestamps: int
    no_speech: int | None
    lang_to_id: dict[str, int]  # "en" -> 50259; empty for English-only models
    suppress_ids: list[int]  # config "suppress_ids": never emitted
    suppress_ids_begin: list[int]  # config "suppress_ids_begin": not as the first token
    max_positions: int = 448  # decoder positions: prompt + output must fit
    sot_prev: int | None = None  # <|startofprev|>: opens the previous text given as context
    _masks: dict = field(default_factory=dict, repr=False)

    @property
    def multilingual(self) -> bool:
        return bool(self.lang_to_id)

    @classmethod
    def from_ct2_dir(cls, ct2_dir: str | Path, vocab_size: int, max_positions: int = 448) -> "TokenizerInfo":
        from tokenizers import Tokenizer

        ct2_dir = Path(ct2_dir)
        tokenizer = Tokenizer.from_file(str(ct2_dir / "tokenizer.json"))
        config = json.loads((ct2_dir / "config.json").read_text(encoding="utf-8"))
        special = {t.content: t_id for t_id, t in tokenizer.get_added_tokens_decoder().items()}

        def need(name: str) -> int:
            if name not in special:
                raise EngineError(f"{ct2_dir / 'tokenizer.json'} lacks the Whisper token {name}")
            return int(special[name])

        eot = need("<|endoftext|>")
        # English-only checkpoints (vocab 51864) still list language tokens in
        # their tokenizer but were never trained on them: no language prompt.
        multilingual = vocab_size >= 51865
        lang_ids = set(config.get("lang_ids") or [])
        lang_to_id = {}
        if multilingual:
            for content, t_id in special.items():
                m = re.fullmatch(r"<\|([a-z]{2,3}|haw)\|>", content)
                if m and (not lang_ids or t_id in lang_ids):
                    lang_to_id[m.group(1)] = int(t_id)
        return cls(
            tokenizer=tokenizer,
            vocab_size=vocab_size,
            sot=need("<|startoftranscript|>"),
            eot=eot,
            transcribe=need("<|transcribe|>"),
            translate=need("<|translate|>"),
            no_timestamps=need("<|notimestamps|>"),
            no_speech=special.get("<|nocaptions|>", special.get("<|nospeech|>")),
            lang_to_id=lang_to_id,
            suppress_ids=[int(i) for i in config.get("suppress_ids") or [] if 0 <= int(i) < vocab_size],
            suppress_ids_begin=[int(i) for i in config.get("suppress_ids_begin") or [] if 0 <= int(i) < vocab_size],
            max_positions=max_positions,
            sot_prev=special.get("<|startofprev|>"),
        )

    # ------------------------------------------------------------------ languages

    def resolve_language(self, language: str | None) -> tuple[str | None, list[str]]:
        """A code this model has, or None for "detect". Raises EngineError for
        a code it doesn't know. Cantonese falls back to Mandarin's token on
        models without <|yue|> (Whisper before large-v3), with a warning."""
        warnings: list[str] = []
        if language is None or language.strip().lower() in ("", "auto", "detect"):
            return (None if self.multilingual else "en"), warnings
        code = language.strip().lower().replace("_", "-")
        if code not in self.lang_to_id and "-" in code:
            code = code.split("-")[0]
        if code not in self.lang_to_id and len(code) > 3:
            code = _name_to_code(code) or code
        if not self.multilingual:
            if code != "en":
                raise EngineError(f"this Whisper model is English-only; it cannot transcribe language {language!r}")
            return "en", warnings
        if code == "yue" and "yue" not in self.lang_to_id:
            warnings.append("this Whisper model has no Cantonese token; transcribing with the Chinese (zh) token")
            code = "zh"
        if code not in self.lang_to_id:
            known = ", ".join(sorted(self.lang_to_id))
            raise EngineError(f"unknown language code {language!r} for this Whisper model (it knows: {known})")
        return code, warnings

    @property
    def timestamp_begin(self) -> int:
        """<|0.00|>: timestamp tokens follow <|notimestamps|> in every Whisper
        vocabulary (they are logits rows, not entries of tokenizer.json)."""
        return self.no_timestamps + 1

    @property
    def has_timestamps(self) -> bool:
        return self.vocab_size > self.timestamp_begin

    def prompt(self, language: str, timestamps: bool = False) -> list[int]:
        """<|startoftranscript|>[<|xx|><|transcribe|>][<|notimestamps|>]."""
        tail = [] if timestamps else [self.no_timestamps]
        if not self.multilingual:
            return [self.sot] + tail
        return [self.sot, self.lang_to_id[language], self.transcribe] + tail

    def previous(self, tokens: list[int]) -> list[int]:
        """<|startofprev|> and the last n_text_ctx // 2 - 1 tokens of `tokens`,
        as openai-whisper prefixes the previous text; [] without either."""
        if not tokens or self.sot_prev is None:
            return []
        return [self.sot_prev] + list(tokens)[-(self.max_positions // 2 - 1):]

    def encode_text(self, text: str) -> list[int]:
        """Text tokens of `text` (openai-whisper encodes a prompt as " " + text)."""
        text = (text or "").strip()
        return self.tokenizer.encode(" " + text, add_special_tokens=False).ids if text else []

    def language_ids(self) -> tuple[list[str], np.ndarray]:
        codes = list(self.lang_to_id)
        return codes, np.array([self.lang_to_id[c] for c in codes], dtype=np.int64)

    # ------------------------------------------------------------------ suppression

    def suppress_mask(self, first: bool, timestamps: bool = False) -> np.ndarray:
        """Boolean [vocab] of tokens that may not be emitted.

        Always: the config's suppress_ids (Whisper's non-speech symbols and
        control tokens) and every special token but <|endoftext|>, timestamp
        tokens included unless `timestamps` (long-form decoding, whose
        timestamp rules live in `decoding`). At the first step also the config's
        suppress_ids_begin (a blank, or <|endoftext|>), as Whisper's suppress_blank."""
        key = (first, timestamps)
        if key not in self._masks:
            mask = np.zeros(self.vocab_size, dtype=bool)
            mask[self.suppress_ids] = True
            mask[self.eot + 1:self.timestamp_begin if timestamps else None] = True
            if first:
                mask[self.suppress_ids_begin] = True
            self._masks[key] = mask
        return self._masks[key]

    # ------------------------------------------------------------------ text

    def decode(self, ids: list[int]) -> str:
        text_ids = [i for i in ids if i < self.eot]
        return self.tokenizer.decode(text_ids, skip_special_tokens=True).strip()


def _name_to_code(name: str) -> str | None:
    """"japanese" -> "ja", from Whisper's table kept in this package (no transformers import)."""
    from .language_names import NAME_TO_CODE

    return NAME_TO_CODE.get(name)
