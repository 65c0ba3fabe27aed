"""Real-size costs of the Fun-ASR-Nano engines, measured with random weights.

Builds a FunASRNano folder at the real model's dimensions (SenseVoice encoder
512x70 blocks, adaptor, Qwen3-0.6B: 28 layers, hidden 1024, vocab 151936) with
random weights, then loads each engine in its own subprocess (so resident
memory is that engine's alone) and measures: export and quantization times,
artifact sizes, load time, resident memory, per-token decoding time. The text
is meaningless; the costs are real. Needs ~10 GB RAM at the export step.

    nice python scripts/funasr_realsize.py [--folder /tmp/funasr-realsize] [--tokens 24]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GB = 1e9


def build(folder: Path) -> dict:
    from asr_quant.engines.funasr_nano import twin

    if (folder / "model.pt").is_file():
        return {"build_s": None}
    t = time.perf_counter()
    twin.build(folder, dims=twin.REAL)
    return {"build_s": time.perf_counter() - t}


def param_breakdown(folder: Path) -> dict:
    import torch

    from asr_quant.engines.funasr_nano import loading

    sd = loading.state_dict_of(torch.load(folder / "model.pt", map_location="cpu", mmap=True, weights_only=True))
    parts = {"encoder": 0, "adaptor": 0, "llm_embedding": 0, "llm_other": 0, "other": 0}
    for k, v in sd.items():
        if k == "llm.lm_head.weight":
            continue  # tied to the embedding in Qwen3-0.6B
        if k.startswith("audio_encoder."):
            parts["encoder"] += v.numel()
        elif k.startswith("audio_adaptor."):
            parts["adaptor"] += v.numel()
        elif k == "llm.model.embed_tokens.weight":
            parts["llm_embedding"] += v.numel()
        elif k.startswith("llm."):
            parts["llm_other"] += v.numel()
        else:
            parts["other"] += v.numel()
    n = sum(parts.values())
    enc = parts["encoder"] + parts["adaptor"]
    llm = parts["llm_embedding"] + parts["llm_other"]
    parts.update(
        total=n,
        fp32_weights_gb=4 * n / GB,
        fp16_engine_weights_gb=(4 * enc + 2 * llm) / GB,  # encoder+adaptor FP32, LLM FP16
        all_fp16_weights_gb=2 * n / GB,
        # INT8: every weight matrix 1 byte (+ small scales); the tied lm_head is a second int8 copy
        int8_weights_gb=(n + parts["llm_embedding"]) / GB,
        model_pt_gb=(folder / "model.pt").stat().st_size / GB,
    )
    return parts


def one_engine(folder: str, precision: str, cache: str, tokens: int, seconds: float) -> dict:
    """Runs in a subprocess: load one engine, transcribe one clip, report."""
    import numpy as np

    from asr_quant import memory
    from asr_quant.audio import Clip
    from asr_quant.engines.funasr_nano import load, pipeline
    from asr_quant.settings import Settings

    pipeline.MAX_NEW_TOKENS = tokens
    rss0 = memory.rss_bytes()
    t = time.perf_counter()
    es = load(Settings(model=folder, precisions=precision, device="cpu", threads=2, cache_dir=cache))
    wall = time.perf_counter() - t
    e = es.engines[0]
    out = {"precision": precision, "available": e.info.available, "error": e.info.error,
           "load_wall_s": wall, "load_s": e.info.load_s, "disk_gb": e.info.disk_bytes / GB,
           "resident_gb": e.info.resident_bytes / GB, "rss_after_load_gb": memory.rss_bytes() / GB,
           "rss_before_gb": rss0 / GB, "params": es.model.params}
    if not e.info.available:
        return out
    if precision == "int8":
        out["export_s"] = getattr(e, "export_s", None)
        out["manifest"] = e.manifest
    rng = np.random.RandomState(0)
    tt = np.arange(int(seconds * 16000)) / 16000
    y = (0.3 * np.sin(2 * np.pi * 150 * tt) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * tt)) + 0.01 * rng.randn(len(tt)))
    tr = e.transcribe(Clip(samples=y.astype(np.float32)))
    out.update(ok=tr.ok, call_error=tr.error, tokens=tr.tokens, total_s=tr.timings.total_s,
               features_s=tr.timings.features_s, encoder_s=tr.timings.encoder_s,
               decoding_s=tr.timings.decoding_s,
               per_token_s=tr.timings.decoding_s / tr.tokens if tr.tokens else None,
               peak_rss_gb=tr.memory.peak_bytes / GB, peak_delta_gb=tr.memory.peak_delta_bytes / GB)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folder", default="/tmp/funasr-realsize/Fun-ASR-Nano-random")
    ap.add_argument("--cache", default="/tmp/funasr-realsize/cache")
    ap.add_argument("--tokens", type=int, default=24, help="new tokens per call (random weights never stop)")
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length")
    ap.add_argument("--precisions", default="fp32,fp16,int8")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print("RESULT " + json.dumps(one_engine(a.folder, a.child, a.cache, a.tokens, a.seconds), default=str))
        return

    folder = Path(a.folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    print(f"building {folder} ...", flush=True)
    b = build(folder)
    print(f"build: {b}", flush=True)
    print(json.dumps(param_breakdown(folder), indent=1), flush=True)
    runs = []
    order = [p.strip() for p in a.precisions.split(",") if p.strip()]
    if "int8" in order:
        order.append("int8")  # second INT8 run: load from the cache
    for p in order:
        t = time.perf_counter()
        cmd = [sys.executable, __file__, "--child", p, "--folder", str(folder), "--cache", a.cache,
               "--tokens", str(a.tokens), "--seconds", str(a.seconds)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            print(f"{p}: subprocess failed (rc={proc.returncode}):\n{proc.stderr[-2000:]}", flush=True)
            continue
        r = json.loads(line[len("RESULT "):])
        r["process_s"] = time.perf_counter() - t
        runs.append(r)
        print(json.dumps(r, indent=1, default=str), flush=True)
    print("\nprecision  load_s  resident_GB  rss_GB  disk_GB  tokens  per_token_s  encoder_s  peak_GB")
    for r in runs:
        if not r.get("available"):
            print(f"{r['precision']:9}  unavailable: {r.get('error')}")
            continue
        print(f"{r['precision']:9}  {r['load_s']:6.1f}  {r['resident_gb']:11.2f}  {r['rss_after_load_gb']:6.2f}  "
              f"{r['disk_gb']:7.2f}  {r.get('tokens', 0):6}  {r.get('per_token_s') or float('nan'):11.3f}  "
              f"{r.get('encoder_s', 0):9.2f}  {r.get('peak_rss_gb', 0):7.2f}")


if __name__ == "__main__":
    main()
