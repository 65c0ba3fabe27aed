"""The web demo: `python app.py [--flags]`, or on a Hugging Face Space.

Settings come from ASRQ_* environment variables and the flags below (a flag
wins); see docs/app.md. The engines are built once, before the page opens.
"""
import argparse
import logging
import os

from asr_quant import ui
from asr_quant.engines import load_engines
from asr_quant.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One recognizer at several precisions, side by side.")
    Settings.add_arguments(parser)
    env = dict(os.environ)
    # Hugging Face Spaces (and other hosts) say where to listen with gradio's own variables.
    env.setdefault("ASRQ_SERVER_NAME", os.environ.get("GRADIO_SERVER_NAME", ""))
    env.setdefault("ASRQ_SERVER_PORT", os.environ.get("GRADIO_SERVER_PORT", ""))
    settings = Settings.from_args(parser.parse_args(argv), env)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ui.launch(ui.build(load_engines(settings), settings), settings)


if __name__ == "__main__":
    main()
