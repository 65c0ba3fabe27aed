"""The parts every Fun-ASR-Nano engine shares, so the three differ only in
where the encoder and the decoder run.

- the prompt and features come from funasr's own `FunASRNano` methods
  (`get_prompt`, `generate_chatml`, `data_template`, `data_load_speech`), called
  without the model's weights, so the INT8 engine feeds ONNX exactly what
  funasr feeds torch;
- one greedy loop (funasr's `generate` is greedy for this model) with a check
  for non-finite logits, the signature of FP16 overflow;
- one way to split long clips, used by all engines.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

import numpy as np

MAX_NEW_TOKENS = 512  # funasr's default max_length
SEGMENT_S = 30.0  # longest piece one engine call decodes
SEARCH_S = 5.0  # look this far back from a window's end for a quiet cut

# ISO codes people pass -> the names in funasr's prompt ("语音转写成{language}").
LANGUAGE_NAMES = {
    "zh": "中文", "en": "英文", "yue": "粤语", "ja": "日文", "ko": "韩文", "vi": "越南语",
    "id": "印尼语", "th": "泰语", "ms": "马来语", "tl": "菲律宾语", "fil": "菲律宾语",
    "ar": "阿拉伯语", "hi": "印地语", "bg": "保加利亚语", "hr": "克罗地亚语", "cs": "捷克语",
    "da": "丹麦语", "nl": "荷兰语", "et": "爱沙尼亚语", "fi": "芬兰语", "el": "希腊语",
    "hu": "匈牙利语", "ga": "爱尔兰语", "lv": "拉脱维亚语", "lt": "立陶宛语", "mt": "马耳他语",
    "pl": "波兰语", "pt": "葡萄牙语", "ro": "罗马尼亚语", "sk": "斯洛伐克语", "sl": "斯洛文尼亚语",
    "sv": "瑞典语",
}


def prompt_language(language: str | None) -> str | None:
    """None/"auto" lets the model pick; an ISO code or funasr's own name is passed on."""
    if not language or language.lower() == "auto":
        return None
    return LANGUAGE_NAMES.get(language.lower(), language)


@dataclass
class Prepared:
    """One segment ready for an encoder: features and the prompt's token ids."""

    speech: "object"  # torch.Tensor [1, T, 560] float32
    speech_lengths: "object"  # torch.Tensor [1] int32
    source_ids: list[int]  # prompt with placeholder ids where the audio goes
    fbank_beg: int  # first audio position in source_ids
    fake_len: int  # how many audio embeddings funasr splices in


class PromptBuilder:
    """funasr's prompt and features for a clip, without the model's weights."""

    def __init__(self, tokenizer, frontend, use_low_frame_rate: bool, itn: bool = True):
        self.tokenizer = tokenizer
        self.frontend = frontend
        self.itn = itn
        self._shim = SimpleNamespace(use_low_frame_rate=use_low_frame_rate)

    def prepare(self, samples: np.ndarray, language: str | None) -> Prepared:
        import torch
        from funasr.models.fun_asr_nano.model import FunASRNano

        audio = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
        prompt = FunASRNano.get_prompt(self._shim, [], prompt_language(language), self.itn)
        chat = FunASRNano.generate_chatml(self._shim, prompt, audio)
        contents = FunASRNano.data_template(self._shim, chat)
        out = FunASRNano.data_load_speech(self._shim, contents, self.tokenizer, self.frontend, meta_data={})
        return Prepared(
            speech=out["speech"],
            speech_lengths=out["speech_lengths"][:, 0],
            source_ids=[max(0, int(i)) for i in out["source_ids"][0].tolist()],
            fbank_beg=int(out["fbank_beg"][0, 0]),
            fake_len=int(out["fake_token_len"][0, 0]),
        )


def splice(text_embeds: np.ndarray, audio_embeds: np.ndarray, p: Prepared) -> np.ndarray:
    """Write the audio embeddings over the placeholders, as funasr's inference_prepare does."""
    out = text_embeds.clone() if hasattr(text_embeds, "clone") else text_embeds.copy()
    n = min(p.fake_len, audio_embeds.shape[1])
    out[:, p.fbank_beg:p.fbank_beg + n, :] = audio_embeds[:, :n, :]
    return out


@dataclass
class Decoded:
    token_ids: list[int]
    decoding_s: float
    nonfinite: bool = False  # logits held NaN/inf: the output is not a result
    hit_limit: bool = False


def greedy(step: Callable, prefill_embeds, embed: Callable, eos_ids: set[int],
           max_new_tokens: int = MAX_NEW_TOKENS) -> Decoded:
    """Greedy decoding: `step(embeds, state) -> (last_logits as numpy [V], state)`;
    `embed([id]) -> embeds for one token`."""
    start = time.perf_counter()
    ids: list[int] = []
    logits, state = step(prefill_embeds, None)
    nonfinite = False
    while True:
        if not np.all(np.isfinite(logits)):
            nonfinite = True
            break
        tok = int(np.argmax(logits))
        if tok in eos_ids:
            break
        ids.append(tok)
        if len(ids) >= max_new_tokens:
            break
        logits, state = step(embed([tok]), state)
    return Decoded(ids, time.perf_counter() - start, nonfinite, len(ids) >= max_new_tokens)


def decode_text(tokenizer, ids: list[int]) -> str:
    """funasr's post-processing of the generated ids."""
    text = tokenizer.batch_decode([ids], skip_special_tokens=True)[0] if ids else ""
    return re.sub(r"\s+", " ", text.replace("/sil", " "))


def eos_ids_of(llm_dir) -> set[int]:
    """Stop tokens as transformers' generate would use them for this LLM folder."""
    from pathlib import Path

    from transformers import AutoConfig, GenerationConfig

    d = Path(llm_dir)
    if (d / "generation_config.json").is_file():
        gc = GenerationConfig.from_pretrained(str(d))
    else:
        gc = GenerationConfig.from_model_config(AutoConfig.from_pretrained(str(d)))
    eos = gc.eos_token_id
    eos = [eos] if isinstance(eos, int) else list(eos or [])
    return {int(e) for e in eos}


def degenerate(ids: list[int], decoded: Decoded) -> str | None:
    """Why this output looks like the known FP16 failure (repeated or empty), else None."""
    if decoded.nonfinite:
        return "the decoder's logits became NaN/inf (half-precision overflow)"
    if not ids:
        return "empty output"
    tail = ids[-32:]
    for period in range(1, 9):
        reps = len(tail) // period
        if reps >= 4 and len(tail) >= 16:
            pat = tail[-period:]
            if all(tail[-(k + 1) * period:len(tail) - k * period] == pat for k in range(reps)):
                return f"output ends in a loop of {period} token(s) repeated {reps}+ times"
    if decoded.hit_limit:
        return f"did not stop within {len(ids)} tokens"
    return None


def split(samples: np.ndarray, sr: int = 16000, max_s: float = SEGMENT_S,
          search_s: float = SEARCH_S) -> list[np.ndarray]:
    """Clips longer than `max_s` become pieces of at most `max_s`, each cut at
    the quietest 100 ms within the last `search_s` of its window (no overlap,
    so no text is repeated at the joins). Same for every engine."""
    n = len(samples)
    max_n = int(max_s * sr)
    if n <= max_n:
        return [samples]
    hop = int(0.1 * sr)
    pieces, start = [], 0
    while n - start > max_n:
        lo = start + max_n - int(search_s * sr)
        window = samples[lo:start + max_n]
        frames = len(window) // hop
        if frames >= 1:
            energy = (window[:frames * hop].reshape(frames, hop) ** 2).mean(axis=1)
            cut = lo + int(np.argmin(energy)) * hop + hop // 2
        else:
            cut = start + max_n
        pieces.append(samples[start:cut])
        start = cut
    pieces.append(samples[start:])
    return pieces


def join_texts(texts: list[str]) -> str:
    """Segments joined the way funasr joins VAD pieces (no space between CJK)."""
    from funasr.auto.auto_model import _join_vad_texts

    return _join_vad_texts(texts)


def transcribe_segments(clip, language: str | None, builder: "PromptBuilder", tokenizer,
                        encode: Callable, decode: Callable, sync: Callable[[], None] = lambda: None,
                        on_degenerate: Callable[[str, "Decoded"], None] | None = None):
    """The one segment loop of every engine: split, prompt, encode, decode, check.

    `encode(prepared)` returns the audio embeddings and `decode(prepared, audio)`
    a `Decoded`; `sync` waits for queued GPU work so stage timings are honest;
    `on_degenerate(why, decoded)` may raise to turn a degenerate output into an
    error instead of a warning.
    """
    from ..base import RawResult

    texts, ids, warnings = [], [], []
    feats_s = enc_s = dec_s = 0.0
    for i, seg in enumerate(split(clip.samples, clip.sample_rate)):
        t0 = time.perf_counter()
        p = builder.prepare(seg, language)
        t1 = time.perf_counter()
        audio = encode(p)
        sync()
        t2 = time.perf_counter()
        d = decode(p, audio)
        sync()
        feats_s += t1 - t0
        enc_s += t2 - t1
        dec_s += time.perf_counter() - t2
        why = degenerate(d.token_ids, d)
        if why and on_degenerate is not None:
            on_degenerate(why, d)
        if why:
            warnings.append(f"segment {i + 1}: {why}" if clip.duration_s > SEGMENT_S else why)
        ids.extend(d.token_ids)
        texts.append(decode_text(tokenizer, d.token_ids))
    return RawResult(text=join_texts(texts), language=language, token_ids=ids,
                     features_s=feats_s, encoder_s=enc_s, decoding_s=dec_s, warnings=warnings)
