"""`--ray`: a real local Ray cluster (two actors, one CPU each) benchmarks four
recorded Spanish prompts with Whisper base FP32 and INT8, and gets the
transcripts and identical shares of the single-process run on the same clips;
their INT8/FP32 latency ratios agree within the noise each report states
(the bootstrap 95 % intervals of the median per-clip ratio overlap). Both runs are
CLI subprocesses with a time limit; the Ray run stops the cluster it started."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from asr_quant.bench import prompts

pytest.importorskip("ray")
pytestmark = [pytest.mark.model,
              pytest.mark.skipif(not prompts.DEBIAN_AUDIO.is_dir(), reason=f"needs {prompts.DEBIAN_PACKAGES}")]

FLAGS = ["--corpus", "prompts-es", "--max-per-row", "4", "--engines", "fp32,int8", "--peers", "none", "--runs", "1",
         "--threads", "1", "--no-progress", "--no-memory-probe"]


def _bench(out, *extra, timeout=240) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", RAY_AUTH_MODE="disabled")
    proc = subprocess.run([sys.executable, "-m", "asr_quant.bench", *FLAGS, "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def test_ray_cluster_matches_the_single_process_run(tmp_path):
    single = _bench(tmp_path / "single")
    ray_res = _bench(tmp_path / "ray", "--ray", "local", "--ray-nodes", "2")
    assert len(ray_res["nodes"]) == 2 and ray_res["corpus"]["clips"] == single["corpus"]["clips"] == 4
    texts = lambda res: {n: {r["clip"]: r["text"] for r in v} for n, v in res["records"].items()}  # noqa: E731
    assert texts(ray_res) == texts(single)
    s, r = (res["paired"]["engines"]["INT8"]["recorded"] for res in (single, ray_res))
    assert (r["identical"], r["delta"], r["ci_low"], r["ci_high"]) == (s["identical"], s["delta"], s["ci_low"],
                                                                       s["ci_high"])
    # latency: every pair timed, and the two runs' INT8/FP32 ratios agree within the noise each
    # report states: their medians' 95 % intervals overlap (speed itself comes from benchmarks)
    a, b = single["ratios"]["INT8"]["latency"], ray_res["ratios"]["INT8"]["latency"]
    assert a["pairs"] == b["pairs"] == 4 and a["ci_low"] is not None and b["ci_low"] is not None
    assert a["ci_low"] <= b["ci_high"] and b["ci_low"] <= a["ci_high"], (a, b)
    md = (tmp_path / "ray" / "results.md").read_text(encoding="utf-8")
    assert md.count("(Ray node ") == 2 and "median's 95 % CI" in md
