"""What every INT8 plan shares: the build report saved as the manifest, the
`Plan` record (a level per layer group), the build context, the hold-out
clips and the sentences that state measured figures. Imports nothing of the
plans, so they import it and not each other."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import calibration

FIXED = {"enc.conv": "fp32"}  # the ONNX plans quantize weight MatMuls; the convolutions stay FP32


@dataclass
class BuildContext:
    """What a plan's `build` gets (see plans.build)."""

    hf_model: object
    out_dir: Path
    cfg: object  # config.QuantConfig
    features: Callable[[np.ndarray], np.ndarray]  # audio 16 kHz -> mel [1, n_mels, 3000]
    prompt: Callable[[str, str], tuple[list[int], int]]  # (text, language) -> (tokens, first scored position)
    cache_dir: str | Path
    threads: int = 2
    say: Callable[[str], None] = lambda message: None
    teacher: Callable[[np.ndarray, str], tuple[list[int], int]] | None = None  # FP32's own greedy tokens
    model_cache_dir: Path | None = None  # this model's own cache folder (plan "costed" keeps its cost table there)


@dataclass
class BuildReport:
    """What was built and why; saved as manifest.json beside the graphs."""

    encoder: str  # "static" | "dynamic" | "blockwise"
    decoder: str = "dynamic"  # | "blockwise"
    measured: dict = field(default_factory=dict)  # variant -> {"kl": .., "top1": ..}
    reason: str = ""
    static_nodes: int = 0  # encoder
    dynamic_nodes: int = 0  # encoder
    decoder_nodes: int = 0
    fp32_nodes: list[str] = field(default_factory=list)  # weight MatMul/Gemm left in FP32, both graphs
    fc2: str = "fp32"  # what was done to fc2: "split" | "fp32" | "blocks" (nothing apart: plan "blockwise")
    outliers: dict = field(default_factory=dict)  # "encoder"/"decoder" -> channel indices per layer
    outlier_clips: int = 0  # calibration clips the outlier channels were found on
    seconds: dict = field(default_factory=dict)
    # name, budget, level per group, extra bytes, simulated/measured error, the search's path (common.Plan)
    plan: dict = field(default_factory=dict)
    sensitivity: list = field(default_factory=list)  # plan "search": one row per group and level
    holdout_tokens: str = "reference text"  # what the hold-out measurements are teacher-forced on


@dataclass
class Plan:
    name: str
    levels: dict[str, str]  # group -> "int8" | "split" | "fp32"
    budget: str = ""
    simulated: dict = field(default_factory=dict)  # {"kl", "top1", "positions"} of the whole plan
    extra_bytes: int = 0
    steps: list[dict] = field(default_factory=list)  # the search's path: every scoring, kept or undone

    def kept(self, level: str = "fp32") -> list[str]:
        return [g for g, lv in self.levels.items() if lv == level]


def counted(items: list, what: str, say: Callable[[str], None]):
    """`items`, saying "what i/n" as each is taken (progress of a loop we don't own)."""
    for i, item in enumerate(items, 1):
        say(f"{what} {i}/{len(items)}")
        yield item


def measured_reason(m: dict, clips: int) -> str:
    """The build reason's figures for the one graph pair built."""
    return f"; mean KL to FP32 {m['kl']:.4f}, top-1 agreement {m['top1']:.1%} on {clips} hold-out clips"


def holdout(cfg, features, prompt, teacher, report: BuildReport, say) -> list[tuple[np.ndarray, list[int], int]]:
    """The hold-out clips as (mel, tokens, first scored position), teacher-forced
    on FP32's own tokens when `teacher` is given, else on the reference text
    (`prompt`). Missing speech is said in the report, not raised."""
    samples: list[tuple[np.ndarray, list[int], int]] = []
    if cfg.holdout_size <= 0:
        return samples
    try:
        say("making hold-out speech")
        for utt, audio in calibration.holdout_clips(cfg.holdout_size):
            mel = features(audio)
            samples.append((mel, *(teacher(mel, utt.language) if teacher else prompt(utt.text, utt.language))))
        report.holdout_tokens = "FP32's greedy tokens" if teacher else "reference text"
    except calibration.CalibrationError as exc:
        report.reason += f"no hold-out speech ({exc}); "
    return samples


def measured_sentence(m: dict) -> str:
    """' Measured in ONNX Runtime: ...' for engine details, from a plan's measured figures ('' if none)."""
    if not m:
        return ""
    return (f" Measured in ONNX Runtime: mean KL {m['kl']:.4f}, top-1 {m['top1']:.1%} over "
            f"{m.get('positions', '?')} teacher-forced positions of hold-out speech.")


def measure_built(report: BuildReport, name: str, fp32: tuple[Path, Path], built: tuple[Path, Path], samples: list,
                  cfg, dims: dict, threads: int, say: Callable[[str], None], secs: dict) -> None:
    """One plan's built graphs against FP32 on the hold-out samples (none: nothing), into the report:
    its measured figures, the plan's `measured` entry and the reason's sentence."""
    if not samples:
        return
    from .measure import measure

    t = time.perf_counter()
    report.measured = measure(fp32, {name: built}, counted(samples, "measuring hold-out clips", say), dims, threads)
    secs["measure"] = time.perf_counter() - t
    m = report.measured[name]
    report.plan["measured"] = {**m, "teacher": report.holdout_tokens}
    report.reason += measured_reason(m, cfg.holdout_size)


def finished(report: BuildReport, secs: dict, t0: float, work: Path) -> BuildReport:
    """The end of every plan's build: its step times in the report, its work folder gone."""
    import shutil

    secs["total"] = time.perf_counter() - t0
    report.seconds = {k: round(v, 2) for k, v in secs.items()}
    shutil.rmtree(work, ignore_errors=True)
    return report
