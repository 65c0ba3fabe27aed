"""What each INT8 granularity costs on this host: the kernel cost table of plan "costed".

Why a table: which granularity a layer group can afford is set by kernels,
not by the plan (MatMulNBits' blocks run the encoder's 1500-frame products at
FP32 speed here, while the u8s8 GEMM behind MatMulInteger runs them 3-4x
faster; docs/int8-plans.md). So each option is timed on the host, on the
products Whisper runs, with the very graph writers the plans use:

    fp32      MatMul
    tensor    one activation scale per call (the recipe: quantize_dynamic, per-channel weights)
    row       one symmetric activation scale per row (plans/rowwise.py: MatMulIntegerToFloat)
    row-split row, with an MLP's outlier hidden channels in FP32 (encoder MLPs)
    b16/b32/b128  MatMulNBits, 8-bit blocks on weights and activations (plans/blockwise.py)

A product is (rows, inputs, outputs): an encoder product runs once per 30 s
window over all frames, a decoder product once per token on one row (the
cross-attention's K/V projections run once per window over the frames).
A plan's time is the sum of its products' times per window plus
TOKENS_PER_WINDOW times the sum per token: a model of product time only, not
of the engine's end-to-end latency (attention, LayerNorm and the features are
the same for every plan).

The table is measured once per host and kept in the artifact cache under a key
of the instruction-set level, ONNX Runtime's version, the threads, the shapes
and the graph writers' source; a plan searched from the same table is the
same plan, and the table's own digest is in the INT8 artifact's key.
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

OPTIONS = ("fp32", "tensor", "row", "row-split", "b16", "b32", "b128")
BLOCKS = {"b16": 16, "b32": 32, "b128": 128}
TOKENS_PER_WINDOW = 40  # decoded tokens a window is costed with (start sequence and a ~10 s utterance)
ROUNDS = 15
_HERE = Path(__file__).parent
WRITERS = ("costs.py", "rowwise.py", "blockwise.py", "recipe.py")  # their source is in the table's key


@dataclass(frozen=True)
class Product:
    rows: int
    inputs: int
    outputs: int

    @property
    def label(self) -> str:
        return f"{self.rows}x{self.inputs}->{self.outputs}"


@dataclass
class CostTable:
    """Fastest milliseconds per product and option on one host (`ms[label][option]`)."""

    host: str
    threads: int
    ort: str
    ms: dict[str, dict[str, float]] = field(default_factory=dict)
    rounds: int = ROUNDS
    key: str = ""

    def of(self, product: Product, option: str) -> float:
        return self.ms[product.label][option]

    def digest(self) -> str:
        from ....cache import key_of

        return key_of({"ms": self.ms, "host": self.host, "threads": self.threads, "ort": self.ort})


def group_products(dims: dict, kind: str, side: str, split: int = 0) -> tuple[list[Product], list[Product]]:
    """(per-window products, per-token products) of one layer group. `dims`:
    d_model, encoder_ffn, decoder_ffn, vocab, frames (the encoder's output rows).
    `split`: an MLP's outlier channels, computed apart (their products are FP32)."""
    d, frames = dims["d_model"], dims["frames"]
    if kind == "attn":
        return [Product(frames, d, d)] * 4, []
    if kind == "mlp":
        f = dims["encoder_ffn" if side == "encoder" else "decoder_ffn"]
        rows = frames if side == "encoder" else 1
        main = [Product(rows, d, f - split), Product(rows, f - split, d)]
        return (main, []) if side == "encoder" else ([], main)
    if kind == "self":
        return [], [Product(1, d, d)] * 4
    if kind == "cross":
        return [Product(frames, d, d)] * 2, [Product(1, d, d)] * 2
    if kind == "tokens":
        return [], [Product(1, d, dims["vocab"])]
    return [], []


def outlier_products(dims: dict, split: int) -> list[Product]:
    """The FP32 products of an encoder MLP's `split` outlier channels (per window)."""
    d, frames = dims["d_model"], dims["frames"]
    return [Product(frames, d, split), Product(frames, split, d)]


def group_ms(table: CostTable, dims: dict, kind: str, side: str, option: str, split: int = 0) -> float:
    """One group's product time per window at one option (per-token products x TOKENS_PER_WINDOW)."""
    s = split if option == "row-split" else 0
    q = "row" if option == "row-split" else option
    window, token = group_products(dims, kind, side, s)
    ms = sum(table.of(p, q) for p in window) + TOKENS_PER_WINDOW * sum(table.of(p, q) for p in token)
    if s:
        ms += sum(table.of(p, "fp32") for p in outlier_products(dims, s))
    return ms


def dims_of(config) -> dict:
    """The product shapes' dimensions from a transformers WhisperConfig (or its fields)."""
    return {"d_model": config.d_model, "encoder_ffn": config.encoder_ffn_dim, "decoder_ffn": config.decoder_ffn_dim,
            "vocab": config.vocab_size, "frames": config.max_source_positions}


def all_products(dims: dict, split: int) -> list[Product]:
    out: list[Product] = []
    for side, kinds in (("encoder", ("attn", "mlp")), ("decoder", ("self", "cross", "mlp", "tokens"))):
        for kind in kinds:
            for s in ((0, split) if kind == "mlp" and side == "encoder" and split else (0,)):
                w, t = group_products(dims, kind, side, s)
                out += w + t
    if split:
        out += outlier_products(dims, split)
    return sorted(set(out), key=lambda p: (p.rows, p.inputs, p.outputs))


def valid(product: Product, option: str) -> bool:
    """MatMulNBits needs at least one whole block of inputs."""
    return option not in BLOCKS or product.inputs >= BLOCKS[option]


# --------------------------------------------------------------------------- the graphs timed

def _model(nodes, inits, m: int, k: int):
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, m, k])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.asarray(v), n) for n, v in inits.items()])
    return helper.make_model(graph, ir_version=9, opset_imports=[helper.make_opsetid("", 17),
                                                                 helper.make_opsetid("com.microsoft", 1)])


def fp32_model(w: np.ndarray, m: int):
    from onnx import helper

    return _model([helper.make_node("MatMul", ["X", "W"], ["Y"], name="matmul")], {"W": w}, m, w.shape[0])


def tensor_model(w: np.ndarray, m: int, tmp: Path, qmax: int = 127):
    """The recipe's own writer (recipe.quantize_dynamic_graph: per-channel int8 weights)."""
    import logging

    import onnx

    from .recipe import quantize_dynamic_graph

    onnx.save(fp32_model(w, m), str(tmp / "f.onnx"))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic's advice to pre-process, once a graph
    try:
        quantize_dynamic_graph(tmp / "f.onnx", tmp / "q.onnx", per_channel=True, reduce_range=qmax < 127)
    finally:
        root.setLevel(level)
    return onnx.load(str(tmp / "q.onnx"))


def row_model(w: np.ndarray, m: int, qmax: int = 127):
    """Plan "rows"' own writer (rowwise.rewrite)."""
    from . import rowwise

    model = fp32_model(w, m)
    rowwise.rewrite(model, lambda name: True, qmax)
    return model


def blocks_model(w: np.ndarray, m: int, block: int):
    """The blockwise plan's own writer (blockwise.quantize_model)."""
    from . import blockwise

    return blockwise.quantize_model(fp32_model(w, m), block)


def option_model(option: str, w: np.ndarray, m: int, tmp: Path, qmax: int = 127):
    if option == "fp32":
        return fp32_model(w, m)
    if option == "tensor":
        return tensor_model(w, m, tmp, qmax)
    if option == "row":
        return row_model(w, m, qmax)
    return blocks_model(w, m, BLOCKS[option])


def time_products(products: list[Product], options: tuple[str, ...], threads: int, rounds: int = ROUNDS,
                  qmax: int = 127, seed: int = 0) -> dict[str, dict[str, float]]:
    """Fastest ms of each product at each option over `rounds`: options
    interleaved, their order a new row of a balanced Latin square every round,
    in the engines' own session options. The minimum, not the median: on a
    shared host other work only ever adds time, and one disturbed stretch
    moved a median 2x (a table measured beside other jobs had FP32's
    1500 x 2048 -> 512 at 38 ms against 17 ms quiet, and the search it fed
    chose other groups)."""
    import onnxruntime as ort

    from ...runtime_policy import ort_session_options
    from ....latin import rotated

    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for p in products:
            w = (rng.standard_normal((p.inputs, p.outputs)) / np.sqrt(p.inputs)).astype(np.float32)
            x = rng.standard_normal((1, p.rows, p.inputs)).astype(np.float32)
            so = ort_session_options(threads)
            sessions = {o: ort.InferenceSession(option_model(o, w, p.rows, Path(tmp), qmax).SerializeToString(), so,
                                                providers=["CPUExecutionProvider"])
                        for o in options if valid(p, o)}
            times: dict[str, list[float]] = {o: [] for o in sessions}
            for s in sessions.values():
                s.run(None, {"X": x})  # warm-up
            names = list(sessions)
            for r in range(rounds):
                for o in rotated(names, r):
                    t = time.perf_counter()
                    sessions[o].run(None, {"X": x})
                    times[o].append(time.perf_counter() - t)
            out[p.label] = {o: round(min(v) * 1000, 4) for o, v in times.items()}
    return out


def table_key(dims: dict, split: int, threads: int, isa: str, qmax: int = 127) -> str:
    import onnxruntime as ort

    from ....cache import key_of, source_hash

    return key_of({"dims": dims, "split": split, "threads": threads, "isa": isa, "qmax": qmax, "ort": ort.__version__,
                   "rounds": ROUNDS, "code": source_hash(*(_HERE / f for f in WRITERS))})


def load_or_measure(dims: dict, split: int, threads: int, isa: str, cache_dir: str | Path,
                    say=lambda message: None, qmax: int = 127) -> CostTable:
    """This host's table from the cache, measured (once, under a lock) if it is not there."""
    import onnxruntime as ort

    from ....cache import file_lock

    key = table_key(dims, split, threads, isa, qmax)
    path = Path(cache_dir) / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_suffix(".lock")):
        if path.exists():
            try:
                return CostTable(**json.loads(path.read_text()))
            except (ValueError, TypeError):
                pass  # a damaged table is measured again
        say("timing the INT8 kernels on this host")
        ms = time_products(all_products(dims, split), tuple(o for o in OPTIONS if o != "row-split"), threads,
                           qmax=qmax)
        table = CostTable(host=isa, threads=threads, ort=ort.__version__, ms=ms, key=key)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(table.__dict__, indent=1))
        tmp.replace(path)
        return table


def for_quant(config, quant, model_cache_dir: str | Path, say=lambda message: None) -> CostTable:
    """The table plan "costed" is searched on for this model and QuantConfig: its
    shapes (with the MLPs' outlier split, when the config splits them; the
    unsplit products are in it too) at `quant.cost_threads` threads, built for
    `quant.isa`. The artifact key and the build read the same one."""
    split = quant.outlier_channels if quant.fc2 == "split" else 0
    return load_or_measure(dims_of(config), split, quant.cost_threads, quant.isa, Path(model_cache_dir) / "int8-costs",
                           say, quant.weight_qmax)
