"""INT8 engine: ONNX Runtime sessions for the encoder and the KV-cache decoder,
fed by funasr's own features and prompt, decoded by the same greedy loop as
the PyTorch engines. The PyTorch model is not kept resident."""
from __future__ import annotations

import json
import time

import numpy as np

from ... import memory as _memory
from ..base import Engine, EngineInfo
from . import artifacts, export, loading, pipeline


def light_parts(folder: loading.ModelFolder):
    """Tokenizer, frontend and prompt settings without building the model."""
    import funasr  # noqa: F401
    from funasr.register import tables

    cfg = loading.read_config(folder)
    with loading.offline():
        tokenizer = tables.tokenizer_classes.get(cfg.get("tokenizer", "HuggingfaceTokenizer"))(
            init_param_path=str(folder.llm_dir))
    frontend = tables.frontend_classes.get(cfg["frontend"])(**cfg.get("frontend_conf", {}))
    frontend.dither = 0.0
    use_low = bool(cfg.get("audio_adaptor_conf", {}).get("use_low_frame_rate", False))
    return tokenizer, frontend, use_low


class Int8Engine(Engine):
    def __init__(self, folder: loading.ModelFolder, providers: tuple[str, ...], threads: int, model_label: str,
                 cache_dir: str, source_model=None, max_new_tokens: int | None = None, log=print):
        import onnxruntime as ort

        self.max_new_tokens = max_new_tokens or pipeline.MAX_NEW_TOKENS
        tokenizer, frontend, use_low = light_parts(folder)
        self.tokenizer = tokenizer
        self.builder = pipeline.PromptBuilder(tokenizer, frontend, use_low)
        self.eos = pipeline.eos_ids_of(folder.llm_dir)

        def builder_factory(am):
            return self.builder

        t = time.perf_counter()
        self.artifacts, self.manifest = artifacts.ensure(folder, cache_dir, threads, builder_factory,
                                                      model=source_model, log=log)
        export_s = time.perf_counter() - t
        start = time.perf_counter()
        with _memory.LoadMeter("cpu") as meter:
            self.encoder = export.session(self.artifacts / "encoder.int8.onnx", threads, providers)
            self.decoder = export.session(self.artifacts / "decoder.int8.onnx", threads, providers)
            self.embed = export.EmbeddingTable(self.artifacts / "embed.int8.npz")
        from transformers import AutoConfig

        self.llm_config = AutoConfig.from_pretrained(str(folder.llm_dir))
        enc = self.manifest["encoder"]
        cand = enc["candidates"].get(enc["chosen"], {})
        details = (f"encoder+adaptor INT8 ONNX ({enc['chosen']} PTQ, chosen by measured error: "
                   f"cosine {cand.get('cosine', float('nan')):.4f} vs FP32 ONNX); Qwen3 decoder INT8 ONNX "
                   f"(dynamic, QUInt8 weight MatMuls) with an explicit KV cache; token embeddings int8 per "
                   f"row; greedy decoding, features without dither. Artifacts: {self.artifacts}"
                   + (f" (exported now in {export_s:.1f} s)" if export_s > 1 else " (cached)"))
        used = providers[0]
        self.info = EngineInfo(
            name="INT8", precision="int8", runtime=f"ONNX Runtime {ort.__version__}", device=used,
            model=model_label, details=details, threads=threads,
            disk_bytes=_memory.disk_bytes(self.artifacts / "encoder.int8.onnx",
                                          self.artifacts / "decoder.int8.onnx",
                                          self.artifacts / "embed.int8.npz"),
            resident_bytes=meter.grown_bytes, load_s=time.perf_counter() - start,
            artifact=self.artifacts.name,  # <model>-<artifact key>
        )
        self.export_s = export_s

    def _step(self, embeds, state):
        if state is None:
            pk, pv = export.empty_cache(self.llm_config, 0)
        else:
            pk, pv = state
        logits, pk, pv = self.decoder.run(None, {"inputs_embeds": np.ascontiguousarray(embeds, np.float32),
                                                 "past_keys": pk, "past_values": pv})
        return logits[0], (pk, pv)

    def _encode(self, p: pipeline.Prepared):
        return self.encoder.run(None, {"speech": p.speech.numpy()})[0]

    def _decode(self, p: pipeline.Prepared, audio) -> pipeline.Decoded:
        embeds = pipeline.splice(self.embed(p.source_ids), audio, p)
        return pipeline.greedy(self._step, embeds, self.embed, self.eos, self.max_new_tokens)

    def _run(self, clip, language):
        return pipeline.transcribe_segments(clip, language, self.builder, self.tokenizer,
                                            self._encode, self._decode)

    def close(self) -> None:
        self.encoder = self.decoder = self.embed = None

    def manifest_text(self) -> str:
        return json.dumps(self.manifest, indent=2)
