"""whisper.cpp (pywhispercpp's bundled build) at F16 or Q8_0, on a ggml file
written from our weights (ggml.py), never downloaded. Decoded greedy
(best_of 1), temperature 0 with no fallback (temperature_inc 0), no
timestamps, no context from previous windows, language forced, no
no-speech/entropy/logprob thresholds, its own VAD off; threads as ours."""
from __future__ import annotations

import importlib.metadata
import time

from ...base import Engine, EngineError, EngineInfo, RawResult
from .... import memory as _memory
from ....audio import Clip
from ....cache import build_dir
from ..model import WhisperBundle
from . import ggml
from .openai_ref import checkpoint

LABEL = {"f16": "F16", "q8_0": "Q8_0"}


def ggml_file(bundle: WhisperBundle, kind: str):
    import torch

    from ....cache import key_of, source_hash

    folder = bundle.cache_dir / f"whispercpp-{kind}-{key_of(source_hash(ggml.__file__, __file__), 12)}"

    def fill(tmp):
        ck = torch.load(checkpoint(bundle), map_location="cpu", weights_only=True)
        ggml.write(ck, tmp / "ggml-model.bin", kind)

    build_dir(folder, fill, valid=lambda f: (f / "ggml-model.bin").is_file())
    return folder / "ggml-model.bin"


class WhisperCppEngine(Engine):
    def __init__(self, bundle: WhisperBundle, kind: str, threads: int):
        from pywhispercpp.model import Model  # lazy: optional peer

        t0 = time.perf_counter()
        path = ggml_file(bundle, kind)
        bundle._hf_model = None  # the transformers copy was needed only to write the file
        self.threads = threads
        self.langs = set(bundle.tokens.lang_to_id) if getattr(bundle.tokens, "lang_to_id", None) else set()
        with _memory.LoadMeter("cpu") as meter:
            self.model = Model(str(path), params_sampling_strategy=0, redirect_whispercpp_logs_to=None,
                               n_threads=threads, print_progress=False, print_realtime=False)
        self.info = EngineInfo(
            name=f"whisper.cpp {LABEL[kind]}", precision="int8" if kind == "q8_0" else "fp16",
            runtime=f"whisper.cpp (pywhispercpp {importlib.metadata.version('pywhispercpp')})", device="cpu",
            model=bundle.name,
            details=(f"peer: ggml {LABEL[kind]} file written from the same weights (ggml.py, whisper.cpp's "
                     "convert-pt-to-ggml layout" + (", Q8_0 blocks of 32 as its quantize tool" if kind == "q8_0"
                                                    else "") + "); greedy, temperature 0 without fallback, no "
                     "timestamps, no context, language forced"),
            threads=threads, disk_bytes=_memory.disk_bytes(path), resident_bytes=meter.grown_bytes,
            load_s=time.perf_counter() - t0)

    def _language(self, language: str | None) -> str:
        if language is None:
            return "auto"
        if not self.langs or language in self.langs:
            return language
        if language == "yue" and "zh" in self.langs:
            return "zh"
        raise EngineError(f"this model has no language {language!r}")

    def _run(self, clip: Clip, language: str | None) -> RawResult:
        lang = self._language(language)
        segs = self.model.transcribe(clip.samples, language=lang, translate=False, no_context=True,
                                     no_timestamps=True, temperature=0.0, temperature_inc=0.0,
                                     greedy={"best_of": 1}, n_threads=self.threads, print_progress=False)
        warnings = [f"language {language!r} decoded as {lang!r}"] if lang != (language or "auto") else []
        return RawResult(text="".join(s.text for s in segs).strip(), language=lang, token_ids=[],
                         warnings=warnings)

    def close(self) -> None:
        self.model = None
