"""Why two Whisper engines' transcripts differ, computed only when asked.

Both engines decode the clip with the shared greedy loop; at the first token
where they part, both are run teacher-forced on the common prefix (the
reference's prompt and tokens), and we read the two next-token distributions
(top-5, after the same suppression the decoder applies) and every layer's
hidden state: each encoder layer's output over all frames, and each decoder
layer's output at the diverging position. The per-layer relative error and
cosine to the reference show where the difference grows.

An engine is traced through `engine.probe` when it has one (a `Probe`), else
through its torch model (hooks on the transformers layers) or its ONNX graphs
(the layer outputs added as graph outputs of a second, lazily made session).
"""
from __future__ import annotations

import re
from typing import Any, Protocol

import numpy as np

from ..base import EngineError
from ..divergence import Divergence, LayerGap, TokenChoice
from . import decoding, features

TOP_K = 5


class Probe(Protocol):
    """trace(mel, tokens) -> (logits [T, vocab], encoder layer outputs [[frames, d]],
    decoder layer outputs [[T, d]]), all float32 numpy, teacher-forced on tokens."""

    step_model: Any

    def trace(self, mel: np.ndarray, tokens: list[int]) -> tuple[np.ndarray, list, list]: ...


class TorchProbe:
    def __init__(self, step_model):
        self.step_model = step_model

    def trace(self, mel, tokens):
        import torch

        sm = self.step_model
        model = sm.model
        enc_out, dec_out, hooks = [], [], []

        def keep(store):
            def hook(_mod, _args, out):
                h = out[0] if isinstance(out, tuple) else out
                store.append(h[0].float().cpu().numpy())
            return hook

        hooks += [l.register_forward_hook(keep(enc_out)) for l in model.model.encoder.layers]
        hooks += [l.register_forward_hook(keep(dec_out)) for l in model.model.decoder.layers]
        try:
            with torch.inference_mode():
                x = torch.from_numpy(np.ascontiguousarray(mel, np.float32)).to(sm.device, sm.dtype)
                enc = model.model.encoder(input_features=x).last_hidden_state
                h = model.model.decoder(input_ids=torch.tensor([tokens], device=sm.device),
                                        encoder_hidden_states=enc).last_hidden_state
                logits = model.proj_out(h)[0].float().cpu().numpy()
        finally:
            for hk in hooks:
                hk.remove()
        return logits, enc_out, dec_out


def _layer_outputs(graph, n_layers: int) -> list[str]:
    """Each layer's output: its last residual Add (`/layers.i/Add`, `Add_1`, ...)."""
    out = []
    for i in range(n_layers):
        adds = [n.output[0] for n in graph.node if n.op_type == "Add" and re.fullmatch(rf"/layers\.{i}/Add(_\d+)?", n.name)]
        if not adds:
            raise EngineError(f"layer {i}'s output was not found in the ONNX graph")
        out.append(adds[-1])
    return out


def _with_outputs(path, n_layers: int, threads: int):
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    names = _layer_outputs(model.graph, n_layers)
    model.graph.output.extend([onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]), names


class OrtProbe:
    def __init__(self, engine):
        from . import onnx_io

        self.step_model = engine.step_model
        d = onnx_io.dims(engine.bundle.config)
        self._d, self._ox = d, onnx_io
        enc_layers = engine.bundle.config.encoder_layers
        threads = max(1, int(engine.info.threads or 1))
        self.enc, self.enc_names = _with_outputs(engine.folder / "encoder.onnx", enc_layers, threads)
        self.dec, self.dec_names = _with_outputs(engine.folder / "decoder.onnx", d["n_layers"], threads)

    def trace(self, mel, tokens):
        n, ox = self._d["n_layers"], self._ox
        cross_names = ox.cross_names(n)
        out = self.enc.run(cross_names + self.enc_names, {"mel": np.ascontiguousarray(mel, np.float32)})
        cross, enc_layers = out[:len(cross_names)], [o[0] for o in out[len(cross_names):]]
        empty = np.zeros((1, self._d["n_heads"], 0, self._d["head_dim"]), np.float32)
        feed = {"tokens": np.asarray([tokens], np.int64), **{k: empty for k in ox.cache_names(n)},
                **dict(zip(cross_names, cross))}
        res = self.dec.run(["logits"] + self.dec_names, feed)
        return res[0][0], enc_layers, [o[0] for o in res[1:]]


def probe_of(engine) -> Probe:
    """The engine's own probe, or one made for its torch model / ONNX graphs (cached on the engine)."""
    from .torch_engine import TorchStepModel

    p = getattr(engine, "probe", None)
    if p is not None:
        return p
    sm = getattr(engine, "step_model", None)
    if isinstance(sm, TorchStepModel):
        engine.probe = TorchProbe(sm)
    elif sm is not None and getattr(engine, "folder", None) is not None:
        engine.probe = OrtProbe(engine)
    else:
        raise EngineError(f"{engine.info.name} cannot be traced layer by layer")
    return engine.probe


def _top(logits: np.ndarray, mask: np.ndarray, info, k: int = TOP_K) -> list[TokenChoice]:
    x = np.asarray(logits, np.float64)[: info.vocab_size].copy()
    x[mask] = -np.inf
    p = np.exp(x - x.max())
    p /= p.sum()
    ids = np.argsort(-p)[:k]
    return [TokenChoice(_token_text(int(i), info), int(i), float(p[i])) for i in ids]


def _token_text(i: int, info) -> str:
    if i == info.eot:
        return "<|endoftext|>"
    return info.tokenizer.decode([i], skip_special_tokens=False)


def token_kind(text: str) -> str:
    """What kind of token diverged: end of text, punctuation, digits, a word start or a piece of a word."""
    if text == "<|endoftext|>":
        return "end of text"
    s = text.strip()
    if not s:
        return "space"
    if all(not c.isalnum() for c in s):
        return "punctuation"
    if any(c.isdigit() for c in s):
        return "digits"
    return "word start" if text.startswith(" ") else "word piece"


def _gap(part: str, i: int, a: np.ndarray, ref: np.ndarray) -> LayerGap:
    a, ref = a.astype(np.float64).ravel(), ref.astype(np.float64).ravel()
    rel = float(np.linalg.norm(a - ref) / max(np.linalg.norm(ref), 1e-12))
    cos = float(a @ ref / max(np.linalg.norm(a) * np.linalg.norm(ref), 1e-12))
    return LayerGap(part, i, round(rel, 5), round(cos, 6))


def explain(reference, other, clip, language: str | None, info, n_mels: int) -> Divergence:
    """The `Divergence` of `other` from `reference` (both Whisper engines) on this clip."""
    pr, po = probe_of(reference), probe_of(other)
    info.resolve_language(language)
    names = (reference.info.name, other.info.name)
    lang = language
    for w_i, w in enumerate(features.windows(clip.samples, n_mels)):
        a = decoding.decode(pr.step_model, w.mel, info, lang, duration_s=w.duration_s)
        b = decoding.decode(po.step_model, w.mel, info, lang or a.language, duration_s=w.duration_s)
        note = ""
        if lang is None and b.language != a.language:
            note = (f"{names[1]} detects {b.language} where {names[0]} detects {a.language}; "
                    f"both are traced in {a.language}")
        lang = a.language
        ta, tb = a.token_ids, b.token_ids
        if ta == tb and not note:
            continue
        k = next((i for i, (x, y) in enumerate(zip(ta, tb)) if x != y), min(len(ta), len(tb)))
        prompt = info.prompt(a.language)
        seq = prompt + ta[:k]
        la, ea, da = pr.trace(w.mel, seq)
        lb, eb, db = po.trace(w.mel, seq)
        mask = info.suppress_mask(first=k == 0)
        top_a, top_b = _top(la[-1], mask, info), _top(lb[-1], mask, info)
        layers = [_gap("encoder", i, x, y) for i, (x, y) in enumerate(zip(eb, ea))]
        layers += [_gap("decoder", i, x[-1], y[-1]) for i, (x, y) in enumerate(zip(db, da))]
        if k >= len(ta) and k >= len(tb):
            note = note or "the texts differ only after the decoders' loop guard"
        return Divergence(*names, same=False, window=w_i, step=k, prefix=info.decode(ta[:k]),
                          reference_top=top_a, other_top=top_b, layers=layers,
                          token_kind=token_kind(top_a[0].token if top_a else ""), note=note)
    return Divergence(*names, same=True, note=f"{names[0]} and {names[1]} decode the same tokens on this clip")
