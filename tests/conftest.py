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


@pytest.fixture(scope="session")
def whisper_blockwise(whisper_engines):
    """Whisper base INT8 of the "blockwise" plan (8-bit weight blocks), built
    beside the session's engines as the benchmark builds a plan variant."""
    from dataclasses import replace

    from asr_quant.bench.run import int8_plan_variants
    from asr_quant.settings import Settings

    settings = replace(Settings.from_env(), model="base", device="cpu", threads=2)
    (engine,) = int8_plan_variants(whisper_engines, settings, "blockwise", lambda message: None)
    if not engine.info.available:
        pytest.fail(f"the blockwise plan failed to build: {engine.info.error}")
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def whisper_fp32_and_faulty(whisper_engines):
    """The session's Whisper base FP32 and a `faulty.PerturbedWhisper` beside it,
    as one EngineSet: two engines whose texts differ for a known reason."""
    from asr_quant.engines import EngineSet

    from faulty import PerturbedWhisper

    fp32 = whisper_engines.by_name("FP32")
    faulty = PerturbedWhisper(fp32)
    yield EngineSet(model=whisper_engines.model, engines=[fp32, faulty])
    faulty.step_model = None


# --- serving the page in tests: one free-port helper, one launcher, one app process -------------

from asr_quant.loadtest import AppProcess, free_port  # noqa: E402  (the load test's own)


@pytest.fixture(scope="session")
def serve_page():
    """`serve_page(engine_set, settings, examples=())` -> (demo, url): the page
    in this process on a free 127.0.0.1 port (examples=None: the shipped ones).
    The caller may close it; any still open are closed at the end of the session."""
    from asr_quant.app import ui

    opened = []

    def launch(engine_set, settings, examples=()):
        settings.server_port = free_port()
        demo = ui.build(engine_set, settings, examples=None if examples is None else list(examples))
        ui.launch(demo, settings, prevent_thread_lock=True, quiet=True)
        opened.append(demo)
        return demo, f"http://127.0.0.1:{settings.server_port}/"

    yield launch
    for demo in opened:
        demo.close()


@pytest.fixture(scope="session")
def app_process():
    """`app_process(workdir, app_args, timeout_s)` -> a ready `AppProcess`:
    the real `python app.py` in its own process on a free port, with its own
    gradio temp folder and log, as the load test starts it. Stopped at the end
    of the session unless the test stopped it."""
    started = []

    def start(workdir, app_args=(), timeout_s=1200.0):
        app = AppProcess(workdir, free_port(), list(app_args))
        started.append(app)
        try:
            app.ready_s = app.wait_ready(timeout_s)
        except RuntimeError as exc:
            app.stop()
            pytest.fail(str(exc))
        return app

    yield start
    for app in started:
        app.stop()
