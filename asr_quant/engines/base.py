"""The one engine interface that FP32, FP16 and INT8 implement.

Everything above the engines (UI, CLI, benchmark, load test) talks only to
`Engine`, `Transcript` and the dataclasses here, never to torch, onnxruntime or
funasr. An engine never raises from `transcribe`: a failure becomes
`Transcript.error`, so one broken precision cannot take the other two down.
"""
from __future__ import annotations

import time
import traceback
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from ..audio import Clip
from .. import memory as _memory


@dataclass
class Timings:
    """Wall-clock seconds of one call; `total_s` is what latency and RTF use."""

    total_s: float = 0.0
    features_s: float = 0.0
    encoder_s: float = 0.0
    decoding_s: float = 0.0

    def per_token_s(self, tokens: int) -> float | None:
        return self.decoding_s / tokens if tokens > 0 else None


@dataclass
class Memory:
    """One call's memory figures, in bytes, with one meaning on every machine
    (see memory.py):

    - `weights_bytes` (*weights as stored*): bytes of the model's weight
      tensors at their stored dtypes (torch parameters and buffers; ONNX
      initializers as the file stores them). Not what a runtime holds: ONNX
      Runtime may keep prepacked copies and an arena beside them.
      Independent of load order.
    - `peak_rss_alone` (*peak RSS alone*, what a machine must provision): the
      high-water mark of RSS of a fresh process that loads only this engine
      and runs it on `alone_clip` (`engines.alone`); None until measured.
    - `working_bytes`: what a call on `alone_clip` (`alone_clip_s` long)
      needs on top of the loaded engine, measured in that same process, so no
      other engine can move it; None until measured.
    - `process_bytes`: the whole process after the call: RSS on CPU, device
      memory in use via NVML on CUDA (`process_kind` says which).
    - `resident_bytes`, `peak_bytes`, `peak_delta_bytes`: the shared process as
      this engine saw it (RSS growth while it loaded, RSS high-water mark during
      the call and its rise above the start): they depend on what loaded and
      ran before, and are kept for the record only.
    """

    disk_bytes: int = 0
    weights_bytes: int = 0
    working_bytes: int | None = None
    peak_rss_alone: int | None = None
    alone_clip: str = ""  # the clip the alone figures are for (file name), "" until measured
    alone_clip_s: float | None = None  # its length in seconds
    process_bytes: int = 0
    process_kind: str = "process RSS"  # "process RSS" | "device memory in use (NVML, whole device)"
    resident_bytes: int = 0
    peak_bytes: int = 0
    peak_delta_bytes: int = 0
    kind: str = "cpu-rss"  # of peak_bytes: "cpu-rss" | "cuda-allocator" (torch) | "cuda-nvml" (ONNX Runtime on CUDA)


@dataclass
class EngineInfo:
    """What a person needs to know to read an engine's numbers."""

    name: str  # "FP32", "FP16", "INT8", "BF16"
    precision: str  # "fp32", "fp16", "int8", "bf16"
    runtime: str  # e.g. "PyTorch 2.13.0", "ONNX Runtime 1.31.1"
    device: str  # e.g. "cpu", "cuda:0", "CPUExecutionProvider"
    model: str  # e.g. "Whisper base (multilingual)"
    details: str = ""  # which parts run in which precision, and caveats
    threads: int = 0
    disk_bytes: int = 0
    weights_bytes: int = 0  # weights as stored (see Memory)
    resident_bytes: int = 0  # RSS growth while this engine loaded: depends on load order (see Memory)
    alone: dict | None = None  # this engine alone in a fresh process (engines.alone), once measured
    load_s: float = 0.0
    available: bool = True
    error: str | None = None  # why it is unavailable
    nodes_on_cpu: int | None = None  # ONNX Runtime on a GPU: nodes it placed on the CPU (None: not measured)
    warnings: list[str] = field(default_factory=list)  # found at load, shown with the engine
    # What its quantizer decided and measured (INT8 from a manifest): {"plan": {name, budget, levels per
    # group, extra_bytes, simulated, measured}, "sensitivity": [{group, level, kl, top1, positions}, ...]}
    quant: dict = field(default_factory=dict)
    # Which files it runs, e.g. the INT8 artifact folder's name (its cache key): caches of what an engine
    # measured (engines.alone) are keyed by it, so a rebuilt artifact is never shown another's figures.
    artifact: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} - {self.runtime}, {self.device}"


@dataclass
class Segment:
    """A stretch of the clip and what was said in it (long-form decoding's unit)."""

    start_s: float
    end_s: float
    text: str


# Told how far a call has got: (seconds of audio done, seconds in the clip).
Progress = Callable[[float, float], None]


@dataclass
class Transcript:
    """One engine's answer on one clip. `error` is None on success."""

    engine: str
    text: str = ""
    language: str | None = None
    tokens: int = 0
    audio_s: float = 0.0
    timings: Timings = field(default_factory=Timings)
    memory: Memory = field(default_factory=Memory)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    token_ids: list[int] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)  # with times, where the engine gives them

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def latency_s(self) -> float:
        return self.timings.total_s

    @property
    def rtf(self) -> float | None:
        """Real-time factor: compute time over audio time (lower is faster)."""
        return self.timings.total_s / self.audio_s if self.audio_s > 0 else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rtf"] = self.rtf
        d["latency_s"] = self.latency_s
        return d


@dataclass
class RawResult:
    """What an implementation returns; the base class adds timing and memory."""

    text: str
    language: str | None
    token_ids: list[int]
    features_s: float = 0.0
    encoder_s: float = 0.0
    decoding_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)


@dataclass
class ModelInfo:
    """What the page and the reports say about the loaded model."""

    name: str  # e.g. "Whisper base (multilingual)"
    family: str  # "whisper" | "funasr-nano"
    source: str  # where the weights came from, in words
    params: int = 0
    languages: str = ""
    notes: str = ""


@dataclass
class EngineSet:
    model: ModelInfo
    engines: list[Engine] = field(default_factory=list)

    def by_name(self, name: str) -> Engine:
        for e in self.engines:
            if e.info.name == name:
                return e
        raise KeyError(name)


class EngineError(RuntimeError):
    """An engine-level failure with a message meant for people."""


class Engine(ABC):
    """One precision of one model, loaded once and held resident."""

    info: EngineInfo
    # True where `_run` takes `prompt` (text said just before the clip, carried
    # as context) and `progress` keywords; others get a warning for a prompt.
    carries_context = False

    @abstractmethod
    def _run(self, clip: Clip, language: str | None) -> RawResult:
        """Transcribe; may raise. Called only through `transcribe`."""

    def transcribe(self, clip: Clip, language: str | None = None, prompt: str | None = None,
                   progress: Progress | None = None) -> Transcript:
        """Never raises: any failure, MemoryError included, becomes `error`.

        `prompt`: what was said before this clip (a live recording's previous
        segments), for engines that carry context. `progress(done_s, total_s)`
        hears how far a long clip has got; it must not raise."""
        if not self.info.available:
            return Transcript(
                engine=self.info.name,
                audio_s=clip.duration_s,
                error=f"{self.info.name} is unavailable: {self.info.error}",
                memory=Memory(disk_bytes=self.info.disk_bytes, weights_bytes=self.info.weights_bytes,
                              resident_bytes=self.info.resident_bytes),
            )
        sampler = _memory.sampler_for(self.info.device)
        start = time.perf_counter()
        try:
            with sampler:
                if self.carries_context:
                    raw = self._run(clip, language, prompt=prompt, progress=progress)
                else:
                    raw = self._run(clip, language)
                    if prompt:
                        raw.warnings.append(f"{self.info.name} carries no context between segments: "
                                            "each is transcribed on its own")
            _memory.synchronize(self.info.device)
        except MemoryError:
            return self._failed(clip, "ran out of memory on this clip", start, sampler)
        except Exception as exc:  # noqa: BLE001 - an engine's failure must stay its own
            return self._failed(clip, describe_error(exc), start, sampler)
        total = time.perf_counter() - start
        return Transcript(
            engine=self.info.name,
            text=raw.text,
            language=raw.language,
            tokens=len(raw.token_ids),
            token_ids=list(raw.token_ids),
            audio_s=clip.duration_s,
            timings=Timings(total, raw.features_s, raw.encoder_s, raw.decoding_s),
            memory=self._memory(sampler),
            warnings=list(raw.warnings),
            segments=list(raw.segments),
        )

    def close(self) -> None:
        """Release sessions or weights; optional."""

    def _memory(self, sampler: "_memory.PeakSampler") -> Memory:
        process, process_kind = _memory.process_bytes(self.info.device)
        alone = self.info.alone or {}
        return Memory(
            disk_bytes=self.info.disk_bytes,
            weights_bytes=self.info.weights_bytes,
            working_bytes=alone.get("working_bytes"),
            peak_rss_alone=alone.get("peak_rss"),
            alone_clip=alone.get("clip") or "",
            alone_clip_s=alone.get("clip_s"),
            process_bytes=process,
            process_kind=process_kind,
            resident_bytes=self.info.resident_bytes,
            peak_bytes=sampler.peak_bytes,
            peak_delta_bytes=sampler.peak_delta_bytes,
            kind=sampler.kind,
        )

    def _failed(self, clip: Clip, message: str, start: float, sampler) -> Transcript:
        return Transcript(
            engine=self.info.name,
            audio_s=clip.duration_s,
            timings=Timings(total_s=time.perf_counter() - start),
            memory=self._memory(sampler),
            error=message,
        )


class LoadListener:
    """Told what loading is doing, so a page can open first and show each
    engine come online. Both methods are called from the loading thread; the
    defaults do nothing (the CLI and the benchmark load without listening)."""

    def step(self, precision: str | None, message: str) -> None:
        """`precision` ("int8", ...) is at `message` ("calibrating 3/8"); None: every engine not yet loaded."""

    def loaded(self, engine: "Engine") -> None:
        """`engine` is ready (or, unavailable, carries its reason); it may be used from now on."""


NO_LISTENER = LoadListener()


class UnavailableEngine(Engine):
    """Stands in for an engine that failed to load, so the others still run."""

    def __init__(self, info: EngineInfo):
        info.available = False
        self.info = info

    def _run(self, clip: Clip, language: str | None) -> RawResult:  # pragma: no cover - never called
        raise EngineError(self.info.error or "unavailable")


def unavailable_set(model: str, precisions, reason: str, *, family: str = "?", source: str = "not loaded",
                    info: ModelInfo | None = None) -> EngineSet:
    """The engine set of a model that could not load: one unavailable engine per
    precision, all carrying `reason`."""
    info = info or ModelInfo(name=model, family=family, source=source, notes=reason)
    return EngineSet(model=info, engines=[unavailable(p, info.name, reason) for p in precisions])


def unavailable(precision: str, model: str, reason: str, **fields) -> UnavailableEngine:
    """One precision that could not load, with the reason; `fields` fill in
    what is known (runtime, device, threads, load_s)."""
    fields = {"runtime": "-", "device": "-", **fields}
    return UnavailableEngine(EngineInfo(name=precision.upper(), precision=precision, model=model,
                                        error=reason, **fields))


def describe_error(exc: BaseException) -> str:
    """A one-line message for people; CUDA OOM named as such."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    if "out of memory" in str(exc).lower() or name == "OutOfMemoryError":
        return f"ran out of memory on this clip ({name})"
    if isinstance(exc, EngineError):
        return text
    return f"{name}: {text}"[:500] if text else name


def format_exception(exc: BaseException) -> str:
    """For logs, not for people."""
    return "".join(traceback.format_exception(exc))
