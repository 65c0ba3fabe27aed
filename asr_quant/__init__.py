"""asr-quant: one speech recognizer at FP32, FP16 and INT8, side by side."""

__version__ = "0.1.0"
