#!/usr/bin/env python
"""Every GPU path of the Whisper engines in one run of a few minutes.

    python scripts/gpu_check.py                  # CUDA when torch sees it, else the CPU (and says so)
    python scripts/gpu_check.py --device cpu     # the same steps on the CPU
    python scripts/gpu_check.py --weights DIR    # a transformers Whisper folder (real weights)

Runs from a plain checkout on a bare CUDA machine with only torch,
transformers, numpy, onnx, onnxruntime(-gpu) and nvidia-ml-py: it imports
only the light modules of asr_quant (no gradio, librosa, soundfile, funasr,
psutil at import), reads no network and needs no model wheels. With real
weights (--weights, or the converted FP32 model in $ASRQ_CACHE_DIR) it
decodes greedily until the end token; otherwise it builds Whisper at base
dimensions with random weights and forces --steps decoding steps. It says which.

Engines: FP32, FP16 (LayerNorm FP32) and BF16 in torch on the device; INT8 with
the CUDA recipe (weight-only MatMulNBits) in ONNX Runtime, on CUDA when the
provider is there; FP16 (TensorRT) when the TensorRT provider and libraries
are. Per engine: load time, median latency of --calls calls after --warmup
(CUDA synchronized), encoder time and decoding time per token, the memory
figures (weights as stored: tensor bytes at their stored types; peak during a call: torch
allocator peak / NVML rise for ONNX Runtime; device memory in use: NVML, whole
device), nodes ONNX Runtime placed on the CPU, NaN/inf in the logits, and with
real weights whether the tokens equal FP32's. Writes gpu_check.json and
gpu_check.md into --out and prints the table.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def light_imports():
    """asr_quant's packages as bare namespaces, so their __init__ files (which
    pull the app's dependencies) never run; the modules used below import
    only torch/onnx/onnxruntime/numpy and the standard library."""
    for name, sub in (("asr_quant", ""), ("asr_quant.engines", "engines"), ("asr_quant.engines.whisper", "engines/whisper")):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(ROOT / "asr_quant" / sub)]
            sys.modules[name] = module


light_imports()
from asr_quant import memory  # noqa: E402
from asr_quant.engines import device, ort_placement  # noqa: E402

BASE = dict(vocab_size=51865, num_mel_bins=80, d_model=512, encoder_layers=6, decoder_layers=6,
            encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
            max_source_positions=1500, max_target_positions=448)
TINY = dict(BASE, d_model=384, encoder_layers=4, decoder_layers=4, encoder_attention_heads=6,
            decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536)  # for quick CPU tests
PROMPT = [50258, 50259, 50359, 50363]  # <|startoftranscript|><|en|><|transcribe|><|notimestamps|> (multilingual)
EOT = 50257


# --------------------------------------------------------------------------- model and input

def find_weights(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    import os

    cache = Path(os.environ.get("ASRQ_CACHE_DIR", Path.home() / ".cache" / "asr-quant"))
    found = sorted(cache.glob("whisper/base-*/torch-fp32*/model.safetensors"))
    return found[0].parent if found else None


def load_model(weights: Path | None, dims: str = "base"):
    """(FP32 model, description). Real weights when given, else random at base (or tiny) dimensions."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    if weights is not None:
        model = WhisperForConditionalGeneration.from_pretrained(str(weights), dtype="float32").eval()
        return model, f"real weights from {weights}"
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(WhisperConfig(**(TINY if dims == "tiny" else BASE))).eval()
    return model, (f"Whisper at {dims} dimensions with random weights (seed 0): timings and memory are real, "
                   "text is not")


def make_input(real: bool, n_mels: int) -> tuple[np.ndarray, str]:
    """A 30 s log-mel window: examples/weather_en.flac when the audio stack is
    there and the weights are real, else fixed random features."""
    if real:
        try:
            from asr_quant import audio
            from asr_quant.engines.whisper import features

            clip = audio.load(ROOT / "examples" / "weather_en.flac")
            return features.windows(clip.samples, n_mels)[0].mel, "examples/weather_en.flac"
        except Exception as exc:  # noqa: BLE001 - a bare machine has no audio decoder
            note = f"random log-mel ({type(exc).__name__}: no audio decoder here)"
    else:
        note = "random log-mel (seed 0)"
    return np.random.default_rng(0).standard_normal((1, n_mels, 3000)).astype(np.float32), note


# --------------------------------------------------------------------------- runs

def sync(dev: str) -> None:
    if dev.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def decode(sm, mel: np.ndarray, steps: int, stop_at_eot: bool, dev: str) -> dict:
    """One call: encoder, then greedy steps (argmax) with the KV cache."""
    sync(dev)
    t0 = time.perf_counter()
    enc = sm.encode(mel)
    sync(dev)
    t1 = time.perf_counter()
    logits, cache = sm.step(enc, np.asarray([PROMPT], np.int64), None)
    finite = bool(np.isfinite(logits).all())
    tokens = []
    while len(tokens) < steps:
        tok = int(np.argmax(logits))
        if stop_at_eot and tok == EOT:
            break
        tokens.append(tok)
        logits, cache = sm.step(enc, np.asarray([[tok]], np.int64), cache)
        finite = finite and bool(np.isfinite(logits).all())
    sync(dev)
    t2 = time.perf_counter()
    return {"total_s": t2 - t0, "encoder_s": t1 - t0, "decoding_s": t2 - t1, "tokens": tokens, "finite": finite}


def measure(name: str, sm, mel, args, dev: str, peak) -> dict:
    """Warm-up, then timed calls; the peak of the first timed call."""
    for _ in range(args.warmup):
        decode(sm, mel, args.steps, args.real, dev)
    runs = []
    for i in range(args.calls):
        sampler = peak() if i == 0 else None
        if sampler is not None:
            with sampler:
                runs.append(decode(sm, mel, args.steps, args.real, dev))
            peak_bytes, peak_kind = sampler.peak_delta_bytes, sampler.kind
        else:
            runs.append(decode(sm, mel, args.steps, args.real, dev))
    n = max(1, len(runs[0]["tokens"]) + 1)  # decoder calls per run: prompt + one per token
    return {"engine": name, "latency_s": statistics.median(r["total_s"] for r in runs),
            "encoder_s": statistics.median(r["encoder_s"] for r in runs),
            "per_token_s": statistics.median(r["decoding_s"] for r in runs) / n,
            "tokens": runs[0]["tokens"], "finite": all(r["finite"] for r in runs),
            "peak_bytes": peak_bytes, "peak_kind": peak_kind}


def torch_peak(dev: str):
    if dev.startswith("cuda"):
        return lambda: memory.PeakSampler(dev)
    return lambda: memory.PeakSampler("cpu") if _has_psutil() else None


def _has_psutil() -> bool:
    try:
        import psutil  # noqa: F401

        return True
    except ImportError:
        return False


class _NoPeak:
    kind, peak_delta_bytes = "none", None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def run_torch(precision: str, base, plan, mel, args) -> dict:
    import torch

    from asr_quant.engines.whisper.torch_engine import TorchStepModel, keep_layernorm_fp32

    dev = plan.torch_device
    t0 = time.perf_counter()
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    model = base if precision == "fp32" else copy.deepcopy(base).to(dtype)
    if precision != "fp32":
        keep_layernorm_fp32(model)
    model = model.to(dev).eval()
    sm = TorchStepModel(model, dev, dtype)
    sync(dev)
    load_s = time.perf_counter() - t0
    peak = torch_peak(dev)
    out = measure(precision.upper(), sm, mel, args, dev, lambda: peak() or _NoPeak())
    out.update(runtime=f"PyTorch {torch.__version__}", device=dev, load_s=load_s,
               weights_bytes=memory.module_tensor_bytes(model), nodes_on_cpu=None)
    if precision != "fp32":
        model.to("cpu")
        del model, sm
        if dev.startswith("cuda"):
            torch.cuda.empty_cache()
    return out


def ort_peak(providers):
    first = providers[0][0] if isinstance(providers[0], tuple) else providers[0]
    if first != ort_placement.CPU and memory.nvml_used_bytes() is not None:
        return lambda: memory.NvmlPeakSampler(0)
    return lambda: memory.PeakSampler("cpu") if _has_psutil() else _NoPeak()


def run_ort(name: str, files, providers, decoder_providers, mel, args, dims) -> dict:
    import onnxruntime as ort

    from asr_quant.engines.whisper.int8_cuda import load_step_model

    t0 = time.perf_counter()
    # The engines' own loader: IOBinding step model, one profiled warm-up
    # (here also on the CPU, so the count is shown either way).
    sm, placement = load_step_model(files[0], files[1], providers, args.threads, dims, mel.shape[1], PROMPT[0],
                                    decoder_providers=decoder_providers, profile=True)
    load_s = time.perf_counter() - t0
    out = measure(name, sm, mel, args, "cpu", ort_peak(providers))  # ORT's run() returns when done
    main = sm.provider
    out.update(runtime=f"ONNX Runtime {ort.__version__}", device=main, load_s=load_s,
               weights_bytes=memory.onnx_initializer_bytes(*files), nodes_on_cpu=placement.cpu_nodes,
               nodes=placement.providers, cpu_ops=placement.cpu_ops, placement_warning=placement.warning(main))
    del sm
    return out


# --------------------------------------------------------------------------- report

def fmt_mb(n) -> str:
    return "n/a" if n is None else f"{n / 2 ** 20:.0f} MiB"


def table(report: dict) -> str:
    rows = ["| engine | runtime · device | load | latency (median) | encoder | per token | weights as stored | "
            "peak during call | nodes on CPU | finite | tokens = FP32 |", "|" + "---|" * 11]
    for r in report["engines"]:
        if "error" in r:
            rows.append(f"| {r['engine']} | unavailable: {r['error']} |" + " |" * 9)
            continue
        same = "n/a (random weights)" if not report["real_weights"] else ("yes" if r.get("tokens_equal_fp32") else "NO")
        cpu = "-" if r["nodes_on_cpu"] is None else (f"⚠️ {r['nodes_on_cpu']} of {sum(r['nodes'].values())}"
                                                     if r["nodes_on_cpu"] and r["device"] != "CPUExecutionProvider"
                                                     else f"{r['nodes_on_cpu']} of {sum(r['nodes'].values())}")
        load = f"{r['load_s']:.1f} s" + (f" (+{r['build_s']:.0f} s build)" if "build_s" in r else "")
        rows.append(f"| {r['engine']} | {r['runtime']} · {r['device']} | {load} | {r['latency_s']:.3f} s | "
                    f"{r['encoder_s']:.3f} s | {r['per_token_s'] * 1000:.1f} ms | {fmt_mb(r['weights_bytes'])} | "
                    f"{fmt_mb(r['peak_bytes'])} ({r['peak_kind']}) | {cpu} | {'yes' if r['finite'] else 'NO (NaN/inf)'} | "
                    f"{same} |")
    dm = report.get("device_memory")
    head = [f"**{report['mode']}** · {report['model']} · input: {report['input']} · "
            f"{report['steps_note']} · {report['calls']} timed calls after {report['warmup']} warm-up",
            f"device plan: torch {report['plan']['torch_device']}, ONNX Runtime {report['plan']['ort_providers']}, "
            f"INT8 recipe {report['plan']['int8_recipe']}, TensorRT: {report['plan']['tensorrt'] or 'available'}",
            "device memory in use (NVML, whole device, all processes): "
            + (f"{fmt_mb(dm['used_bytes'])} of {fmt_mb(dm['total_bytes'])} after all engines" if dm else "n/a (no NVML)"),
            ""]
    return "\n".join(head + rows) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--weights", help="transformers Whisper folder (real weights); default: the asr-quant cache")
    p.add_argument("--random-weights", action="store_true", help="ignore real weights even when present")
    p.add_argument("--dims", choices=("base", "tiny"), default="base",
                   help="dimensions of the random-weights model (tiny: quick CPU tests only)")
    p.add_argument("--engines", default="fp32,fp16,bf16,int8,fp16-trt")
    p.add_argument("--steps", type=int, default=24, help="decoding steps (forced with random weights; a cap with real)")
    p.add_argument("--calls", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--budget-s", type=float, default=270.0, help="skip the engines left once this much time is spent")
    p.add_argument("--out", default="gpu_check_out")
    args = p.parse_args(argv)
    t_start = time.perf_counter()

    import torch

    torch.set_num_threads(args.threads)
    plan = device.choose(args.device, cuda_available=torch.cuda.is_available() and args.device != "cpu")
    weights = None if args.random_weights else find_weights(args.weights)
    t0 = time.perf_counter()
    base, model_note = load_model(weights, args.dims)
    model_s = time.perf_counter() - t0
    args.real = weights is not None
    mel, input_note = make_input(args.real, base.config.num_mel_bins)
    mode = (f"GPU: {torch.cuda.get_device_name(0)}" if plan.torch_device.startswith("cuda")
            else "CPU run (no GPU in use): the same steps on the CPU; GPU figures are not measured")
    report = {"mode": mode, "model": model_note, "real_weights": args.real, "input": input_note,
              "steps_note": (f"greedy to the end token, at most {args.steps} tokens" if args.real
                             else f"{args.steps} forced decoding steps"),
              "calls": args.calls, "warmup": args.warmup, "threads": args.threads,
              "plan": {"torch_device": plan.torch_device, "ort_providers": list(plan.ort_providers),
                       "int8_recipe": plan.int8_recipe, "tensorrt": plan.tensorrt_unavailable},
              "versions": {"torch": torch.__version__, "onnxruntime": __import__("onnxruntime").__version__},
              "engines": []}
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    wanted = [e.strip() for e in args.engines.split(",") if e.strip()]
    from asr_quant.engines.whisper import onnx_export

    dims = onnx_export.dims(base.config)
    graphs, export_s = None, 0.0
    if {"int8", "fp16-trt"} & set(wanted):  # before the torch engines move the model to the GPU
        t0 = time.perf_counter()
        graphs = onnx_export.export(base, work / "fp32")
        export_s = time.perf_counter() - t0
    for name in wanted:
        label = {"fp16-trt": "FP16 (TensorRT)"}.get(name, name.upper())
        if name == "fp16-trt" and plan.tensorrt_unavailable:
            report["engines"].append({"engine": label, "error": plan.tensorrt_unavailable})
            continue
        if time.perf_counter() - t_start > args.budget_s:
            report["engines"].append({"engine": label, "error": f"skipped: the {args.budget_s:.0f} s budget was spent"})
            continue
        try:
            if name in ("fp32", "fp16", "bf16"):
                r = run_torch(name, base, plan, mel, args)
                if name == "fp32":
                    r["load_s"] += model_s  # FP32 is the loaded (or built) model itself
            elif name == "int8":
                from asr_quant.engines.whisper import cuda_recipe

                t0 = time.perf_counter()
                for src, dst in zip(graphs, (work / "encoder.int8.onnx", work / "decoder.int8.onnx")):
                    cuda_recipe.quantize_weights(src, dst)
                cuda_recipe.share_table(work / "decoder.int8.onnx")
                files = (work / "encoder.int8.onnx", work / "decoder.int8.onnx")
                missing = sorted(set(cuda_recipe.missing_kernels(files[0]) + cuda_recipe.missing_kernels(files[1])))
                build_s = time.perf_counter() - t0 + export_s
                r = run_ort("INT8", files, plan.ort_providers, None, mel, args, dims)
                r.update(ops_without_cuda_kernel=missing, build_s=round(build_s, 1), recipe="cuda (MatMulNBits 8 bits)")
            elif name == "fp16-trt":
                from asr_quant.engines.whisper import trt_engine

                (work / "trt").mkdir(exist_ok=True)
                r = run_ort("FP16 (TensorRT)", graphs, trt_engine.providers(work / "trt"),
                            trt_engine.providers(work / "trt", dims), mel, args, dims)
            else:
                raise ValueError(f"unknown engine {name!r}")
        except Exception as exc:  # noqa: BLE001 - one engine failing is a finding, not the end of the check
            r = {"engine": label, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]}
        report["engines"].append(r)
    ref = next((r for r in report["engines"] if r["engine"] == "FP32" and "error" not in r), None)
    for r in report["engines"]:
        if "error" not in r and ref is not None:
            r["tokens_equal_fp32"] = r["tokens"] == ref["tokens"]
    report["device_memory"] = memory.device_memory(0) if plan.torch_device.startswith("cuda") else None
    report["total_s"] = round(time.perf_counter() - t_start, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    md = table(report) + f"\ntotal {report['total_s']} s; `python scripts/gpu_check.py {' '.join(argv or sys.argv[1:])}`\n"
    (out / "gpu_check.md").write_text(md)
    print(md)
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
