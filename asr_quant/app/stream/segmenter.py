"""Live mode's cut at pauses. It lives in `asr_quant.engines.pauses`, because
an upload over 30 s is cut at the same pauses (see engines/whisper/longform.py)."""
from ...engines.pauses import FRAME, MAX_S, SAMPLE_RATE, SILENCE_S, Piece, Segmenter, cut_at_pauses

__all__ = ["FRAME", "MAX_S", "SAMPLE_RATE", "SILENCE_S", "Piece", "Segmenter", "cut_at_pauses"]
