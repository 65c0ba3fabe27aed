"""Shared, expensive test objects (session-scoped). Add fixtures; keep others'."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def funasr_twin(tmp_path_factory):
    """A tiny Fun-ASR-Nano folder in the real layout (random weights), built
    from funasr's own classes; see asr_quant/engines/funasr_nano/twin.py."""
    from asr_quant.engines.funasr_nano import twin

    return twin.build(tmp_path_factory.mktemp("funasr") / "Fun-ASR-Nano-twin")


@pytest.fixture(scope="session")
def funasr_engines(funasr_twin, tmp_path_factory):
    """FP32, FP16 and INT8 engines on the twin, loaded through `load_engines`
    exactly as the app does. Decoding is capped at 48 new tokens: random
    weights never emit the end token, and 512 steps would only cost time."""
    from asr_quant.engines import load_engines
    from asr_quant.engines.funasr_nano import pipeline
    from asr_quant.settings import Settings

    saved = pipeline.MAX_NEW_TOKENS
    pipeline.MAX_NEW_TOKENS = 48
    settings = Settings(model=str(funasr_twin), precisions="fp32,fp16,int8", device="cpu", threads=2,
                        cache_dir=str(tmp_path_factory.mktemp("asrq-cache")))
    engines = load_engines(settings)
    yield engines
    pipeline.MAX_NEW_TOKENS = saved
    for e in engines.engines:
        e.close()


@pytest.fixture(scope="session")
def whisper_engines():
    """Offline Whisper base at FP32, FP16 and INT8 on the CPU, loaded once per
    session through `load_engines` as the app does. The cache is the normal
    one (ASRQ_CACHE_DIR or ~/.cache/asr-quant), so conversion and INT8 export
    run once per machine, not once per test run."""
    from asr_quant.engines import load_engines
    from asr_quant.settings import Settings

    settings = Settings(model="base", precisions="fp32,fp16,int8", device="cpu", threads=2,
                        cache_dir=Settings.from_env().cache_dir)
    engines = load_engines(settings)
    yield engines
    for e in engines.engines:
        e.close()
