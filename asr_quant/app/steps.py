"""Steps of a page request that need no gradio: the upload decoded, the run's
end (history row, charts, history files, summary line), the JSON result.
ui.py hands what they return to its widgets."""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .. import export
from ..audio import Clip
from ..engines import Transcript, results
from . import charts, compare, present
from .history import History, run_record

log = logging.getLogger("asr_quant.app.ui")


@dataclass
class Finished:
    latency: Any
    memory: Any
    history: Any
    headers: list[str]
    rows: list[list[Any]]
    csv_path: Path
    json_path: Path
    summary: str


def finish(hist: History, clip: Clip, request: "compare.Request", engines: Sequence, started: float,
           decode_s: float, folder: Path) -> Finished:
    """Record the run in `hist`, draw its charts and write the history files into `folder`."""
    loaded = [e.info.name for e in engines if e.info.available]  # the others stay out of charts and history
    record = hist.add(run_record(clip.name, clip.duration_s, request, loaded))
    transcripts = [r.transcript for r in request.results if r.transcript.engine in loaded]
    figures = (charts.latency_figure(transcripts), charts.memory_figure(transcripts), charts.history_figure(hist))
    headers, rows = hist.table()
    csv_path, json_path = Path(folder) / "asr-quant-history.csv", Path(folder) / "asr-quant-history.json"
    record.wall_s = time.perf_counter() - started  # all but writing these two small files
    csv_path.write_text(hist.to_csv(), encoding="utf-8")
    json_path.write_text(hist.to_json(), encoding="utf-8")
    log.info("run %d: %s, %.1f s of audio: request %.3f s, engines %.3f s, decode %.3f s, "
             "outside the engines %.1f %%", record.run, clip.name, clip.duration_s, record.wall_s,
             record.engines_s, decode_s, 100 * record.outside_engines_s / max(record.wall_s, 1e-9))
    summary = present.summary(request.results, record.wall_s, clip.name, clip.duration_s, clip.notes)
    return Finished(*figures, headers, rows, csv_path, json_path, summary)


def json_result(model_name: str, clip: Clip, engines: Sequence, answers: Sequence[Transcript], pending) -> dict:
    """The CLI's `--json` object for one clip, from each ready engine's answer; engines still
    loading are listed with that as their error."""
    rows = [results.engine_row(e.info, t) for e, t in zip(engines, answers)]
    rows += [results.engine_row(s.info, Transcript(engine=s.name, audio_s=clip.duration_s,
                                                   error=f"{s.name} is still loading ({s.message})"))
             for s in pending]
    return results.run_result(model_name, clip.name, clip.duration_s, clip.sample_rate_in, rows)


def int8_zip(slots, settings, folder: Path) -> Path:
    """The INT8 download copied into `folder`; export.ExportError says why not."""
    int8 = next((s.engine for s in slots if s.precision == "int8"), None)
    if int8 is None or not int8.info.available:
        raise export.ExportError("The INT8 engine is not ready" + ("" if int8 is None else f": {int8.info.error}"))
    path = Path(folder) / "asr-quant-int8.zip"
    shutil.copyfile(export.export_zip(settings, int8), path)
    return path


def window_progress(report, duration_s: float, window_s: float = 30.0):
    """For a clip over one window: (engine, done_s, total_s) as the page's
    progress bar takes it (`report((done, total), desc=...)`); else None."""
    if duration_s <= window_s:
        return None
    return lambda name, done, total: report((done, total), desc=f"{name}: {done:.0f} of {total:.0f} s")
