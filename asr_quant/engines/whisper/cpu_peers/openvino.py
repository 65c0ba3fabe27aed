"""OpenVINO FP32 and OpenVINO INT8 (NNCF) rows: unavailable here, with the reason.

The route a user takes, optimum-intel's OVModelForSpeechSeq2Seq exported from
the local transformers folder and compressed with NNCF, cannot be installed
beside this project: optimum-intel 2.2.0 (the newest on PyPI) requires
transformers<5.6 and torchvision, and pip would replace this project's
transformers 5.23.0 and torch 2.13.0 (with 5.5.4 and 2.14.1); --no-deps would
leave optimum-intel importing against a transformers it does not support. The
row says so instead of leaving the peer out; docs/peers.md has the route that
needs no optimum-intel (OpenVINO reading the exported ONNX graphs), not built yet.
"""
from __future__ import annotations

from ...base import EngineError

REASON = ("optimum-intel 2.2.0 (newest on PyPI) requires transformers<5.6,>=4.51 and torchvision; installing it "
          "would replace this project's transformers 5.23.0 and torch 2.13.0 (pip resolves to 5.5.4 and 2.14.1), "
          "which the install rules forbid")


class OpenVINOEngine:
    def __init__(self, bundle, kind: str, threads: int):
        try:
            import optimum.intel  # noqa: F401
        except ImportError:
            raise EngineError(f"not installed: {REASON}") from None
        raise EngineError("optimum-intel is installed, but this project's OpenVINO peer is not built: "
                          f"{REASON}; see docs/peers.md")
