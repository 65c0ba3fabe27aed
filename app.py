"""The web demo: `python app.py [--flags]`, or on a Hugging Face Space.

Settings come from ASRQ_* environment variables and the flags below (a flag
wins); see the settings table in docs/settings.md. The page opens first; the engines
load in a thread and each comes online on the page when it is ready (a fresh
INT8 build takes minutes).
"""
import argparse
import logging
import os
import signal

from asr_quant import children, memory
from asr_quant.app import ui
from asr_quant.app.live import LiveEngines
from asr_quant.app.runner import ACTIVITY
from asr_quant.engines import alone, load_engines_or_reasons, runtime_policy
from asr_quant.examples import read_examples
from asr_quant.settings import Settings


def main(argv: list[str] | None = None) -> None:
    memory.limit_malloc_arenas(2)  # before any thread: keeps resident memory flat under load
    runtime_policy.prepare()  # before torch is imported: no runtime spins while idle
    parser = argparse.ArgumentParser(description="One recognizer at several precisions, side by side.")
    Settings.add_arguments(parser)
    env = dict(os.environ)
    # Hugging Face Spaces (and other hosts) say where to listen with gradio's own variables.
    env.setdefault("ASRQ_SERVER_NAME", os.environ.get("GRADIO_SERVER_NAME", ""))
    env.setdefault("ASRQ_SERVER_PORT", os.environ.get("GRADIO_SERVER_PORT", ""))
    settings = Settings.from_args(parser.parse_args(argv), env)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("asr_quant").setLevel(logging.INFO)  # ours: one line per run; libraries: warnings
    live = LiveEngines(settings.model, settings.precision_list)
    demo = ui.build(live, settings)
    live.start(lambda listener: with_memory_alone(load_engines_or_reasons(settings, listener), settings),
               nice=settings.inference_nice)
    signal.signal(signal.SIGTERM, _interrupt)  # `docker stop` shuts down like Ctrl-C
    # Ctrl-C (SIGINT) always stops the app, even when it was started by a process that ignores
    # SIGINT (a background job of a script does, and children inherit it): Python then installs
    # no handler of its own and the app could only be killed.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        ui.launch(demo, settings)
    finally:
        # helper processes (the memory probe) end with the app; the interpreter's exit (atexit) closes for good
        children.kill_all(close=False)
        ui.close(demo)  # uploads and downloads are deleted, not left in the temp folder


def with_memory_alone(engine_set, settings: Settings):
    """Each engine's working memory of a call, measured alone in a fresh process
    once per model and settings (cached): from the cache now, else measured in
    the background after the engines are up, each engine's probe only once no
    request has run for a few seconds (`--memory-probe off`: cache only). The
    probe's process dies with the app (`asr_quant.children`)."""
    examples = read_examples()
    if examples:
        clip = examples[0]
        language = None if clip.language == "auto" else clip.language
        if settings.memory_probe == "background":
            alone.attach(engine_set, settings, clip.path, language, background=True,
                         wait_idle=lambda: ACTIVITY.wait_idle(IDLE_S))
        else:
            alone.attach_cached(engine_set, settings, clip.path, language)
    return engine_set


IDLE_S = 5.0  # no request for this long: the app is idle and the memory probe may run


def _interrupt(signum, frame):
    children.kill_all()  # the memory probe goes now, not after gradio has closed
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
