"""The Gradio page: one clip, every precision side by side.

The only module that imports gradio. It lays out widgets and turns results
into widget values; the work is done elsewhere: decoding in `audio`, engine
calls in `runner`, diffs and WER/CER in `compare`/`metrics`, words in
`present`, figures in `charts`, the session's runs in `history`.
"""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import gradio as gr
import pandas as pd

from .. import audio
from . import charts, compare, present
from ..engines import EngineSet
from ..examples import Example, read_examples
from .history import History, run_record
from .runner import Runner
from ..settings import Settings

log = logging.getLogger(__name__)

CSS = """
#model-card td:nth-child(1), #model-card td:nth-child(3), #model-card td:nth-child(4),
#model-card th:nth-child(1), #model-card th:nth-child(3), #model-card th:nth-child(4) { white-space: nowrap; }
#model-card td:nth-child(2) { min-width: 13em; }
.engine-col .textfield { word-break: normal; overflow-wrap: anywhere; }
#model-card td:last-child { font-size: 0.9em; }
.status-line p { margin: 0.2em 0; }
"""


class _EngineWidgets:
    """The column of one engine: header, transcript, diff against the
    baseline (none in the baseline's own column), figures."""

    def __init__(self, info, baseline: str | None):
        self.info = info
        key = info.name.lower()
        with gr.Column(elem_classes="engine-col", elem_id=f"engine-{key}", min_width=220):
            gr.Markdown(present.engine_header(info), elem_id=f"head-{key}")
            self.text = gr.Textbox(label=f"{info.name} transcript", lines=4, max_lines=12,
                                   interactive=False, elem_id=f"text-{key}", buttons=["copy"],
                                   visible=info.available)
            self.diff = None
            if info.name != baseline:
                self.diff = gr.HighlightedText(label=f"{info.name} vs {baseline}", show_legend=True,
                                               combine_adjacent=False, color_map=present.DIFF_COLORS,
                                               elem_id=f"diff-{key}", visible=info.available)
            self.figures = gr.Markdown("", elem_id=f"figures-{key}")

    @property
    def outputs(self) -> list:
        return [w for w in (self.text, self.diff, self.figures) if w is not None]

    def clear(self, running: bool) -> dict:
        out = {self.text: "", self.figures: present.waiting(self.info, running)}
        if self.diff is not None:
            out[self.diff] = None
        return out

    def fill(self, result: compare.EngineResult) -> dict:
        t = result.transcript
        out = {self.text: t.text if t.ok else "", self.figures: present.figures(result)}
        if self.diff is not None:
            out[self.diff] = present.highlight(result.diff) if result.diff is not None else None
        return out


class _Page:
    """The widgets of the page and the one request handler that fills them."""

    def __init__(self, engine_set: EngineSet, settings: Settings, examples: Sequence[Example]):
        self.settings = settings
        self.max_bytes = int(settings.max_file_mb * 1024 * 1024)
        ordered = compare.baseline_first(engine_set.engines)
        self.baseline = baseline = compare.baseline_name([e.info.name for e in ordered])
        self.runner = Runner(ordered, settings.inference_timeout_s)

        gr.Markdown("# One recognizer at several precisions, side by side\n"
                    "Record or upload a clip (or pick an example): every engine transcribes it, one after "
                    "another, and each column fills in as soon as its engine is done.")
        with gr.Accordion("Loaded model and engines", open=True):
            gr.Markdown(present.model_card(engine_set), elem_id="model-card")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                self.clip = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                     label="Clip (upload or record)", elem_id="clip", buttons=["download"])
            with gr.Column(scale=2):
                choices = present.language_choices(present.model_languages(engine_set),
                                                   [e.language for e in examples])
                self.language = gr.Dropdown(choices=choices, value="auto", filterable=True, label="Language",
                                            elem_id="language")
                self.reference = gr.Textbox(label="Reference transcript (optional, for WER/CER)", lines=3,
                                            elem_id="reference")
                self.button = gr.Button("Transcribe with every engine", variant="primary", elem_id="run")
        if examples:
            gr.Examples(examples=[[str(e.path), e.language, e.reference] for e in examples],
                        inputs=[self.clip, self.language, self.reference],
                        example_labels=[e.label for e in examples],
                        label="Examples (reference and language are filled in)", examples_per_page=12)
        self.status = gr.Markdown("", elem_id="status", elem_classes="status-line")
        with gr.Row(equal_height=False):
            self.cols = [_EngineWidgets(e.info, baseline) for e in ordered]
        with gr.Row():
            self.lat_plot = gr.Plot(label="Latency", elem_id="plot-latency")
            self.mem_plot = gr.Plot(label="Memory", elem_id="plot-memory")
        with gr.Accordion("This session", open=True):
            self.hist_plot = gr.Plot(label="Session history", elem_id="plot-history")
            self.hist_table = gr.Dataframe(label="Runs", interactive=False, wrap=True, elem_id="history")
            with gr.Row():
                self.csv_btn = gr.DownloadButton("Download history (CSV)", visible=False, elem_id="dl-csv")
                self.json_btn = gr.DownloadButton("Download history (JSON)", visible=False, elem_id="dl-json")
        self.history = gr.State(History())  # one per browser session (gradio copies it)

    @property
    def inputs(self) -> list:
        return [self.clip, self.language, self.reference, self.history]

    @property
    def outputs(self) -> list:
        return [self.status, *[w for c in self.cols for w in c.outputs], self.lat_plot, self.mem_plot,
                self.hist_plot, self.hist_table, self.csv_btn, self.json_btn, self.history]

    def _problem(self, message: str) -> dict:
        """An input problem: the message as toast and status line, nothing transcribed."""
        gr.Warning(message)
        return {self.status: f"⚠️ {present.escape(message)}", self.lat_plot: None, self.mem_plot: None,
                **{k: v for c in self.cols for k, v in c.clear(False).items()}}

    def run(self, clip_path, language, reference, hist: History, progress):
        """One request: decode, run each engine (yielding its column), then
        charts and history. Input problems end here with their message."""
        started = time.perf_counter()
        if not clip_path:
            yield self._problem("Record or upload a clip first, or pick an example.")
            return
        progress(0, desc="decoding")
        try:
            clip = audio.load(clip_path, max_s=self.settings.max_audio_s, max_bytes=self.max_bytes,
                              name=Path(clip_path).name)  # gradio keeps the upload's own name
        except audio.AudioError as exc:
            yield self._problem(str(exc))
            return
        decode_s = time.perf_counter() - started
        chosen = present.language_code(language)
        cols, n = self.cols, len(self.cols)
        ready = sum(1 for c in cols if c.info.available)
        yield {self.status: f"Running {ready} engines one after another on **{present.escape(clip.name)}** "
                            f"({clip.duration_s:.1f} s)…",
               **{k: v for i, c in enumerate(cols) for k, v in c.clear(i == 0).items()}}

        request = compare.Request(self.baseline, chosen, reference)
        filled: dict = {}  # every column's final values, repeated in the last yield for API clients
        for i, t in enumerate(self.runner.run(clip, chosen)):
            update = cols[i].fill(request.add(t))
            filled.update(update)
            if i + 1 < n:
                update.update(cols[i + 1].clear(True))
                progress((i + 1, n), desc=f"{cols[i + 1].info.name} running")
            yield update

        loaded = [c.info.name for c in cols if c.info.available]  # the others stay out of charts and history
        record = hist.add(run_record(clip.name, clip.duration_s, request, loaded))
        transcripts = [r.transcript for r in request.results if r.transcript.engine in loaded]
        figures = (charts.latency_figure(transcripts), charts.memory_figure(transcripts),
                   charts.history_figure(hist))
        headers, rows = hist.table()
        with tempfile.TemporaryDirectory(prefix="asrq-history-") as tmp:
            csv_path, json_path = Path(tmp) / "asr-quant-history.csv", Path(tmp) / "asr-quant-history.json"
            record.wall_s = time.perf_counter() - started  # all but writing these two small files
            csv_path.write_text(hist.to_csv(), encoding="utf-8")
            json_path.write_text(hist.to_json(), encoding="utf-8")
            log.info("run %d: %s, %.1f s of audio: request %.3f s, engines %.3f s, decode %.3f s, "
                     "outside the engines %.1f %%", record.run, clip.name, clip.duration_s, record.wall_s,
                     record.engines_s, decode_s, 100 * record.outside_engines_s / max(record.wall_s, 1e-9))
            yield {
                **filled,
                self.status: present.summary(request.results, record.wall_s, clip.name, clip.duration_s, clip.notes),
                self.lat_plot: figures[0], self.mem_plot: figures[1], self.hist_plot: figures[2],
                self.hist_table: pd.DataFrame(rows, columns=headers),
                self.csv_btn: gr.DownloadButton(value=str(csv_path), visible=True),
                self.json_btn: gr.DownloadButton(value=str(json_path), visible=True),
                self.history: hist,
            }  # gradio copies the files into its own cache before it resumes us; then tmp goes


def build(engine_set: EngineSet, settings: Settings, examples: Sequence[Example] | None = None) -> gr.Blocks:
    """The page for these engines; call `launch` on the result."""
    if examples is None:
        examples = read_examples()
    charts.warm_up()
    with gr.Blocks(title="asr-quant: one recognizer, three precisions", delete_cache=(1800, 3600)) as demo:
        page = _Page(engine_set, settings, examples)

        def transcribe(clip_path, language, reference, hist: History, progress=gr.Progress()):
            try:
                yield from page.run(clip_path, language, reference, hist, progress)
            except Exception as exc:  # noqa: BLE001 - a bug of ours: say so briefly, log the rest
                log.exception("request failed")
                msg = f"Something went wrong on our side ({type(exc).__name__}); the details are in the log."
                gr.Warning(msg)
                yield {page.status: f"⚠️ {msg}"}

        page.button.click(transcribe, inputs=page.inputs, outputs=page.outputs, api_name="transcribe",
                          concurrency_limit=settings.concurrency, show_progress="minimal")
    demo.queue(default_concurrency_limit=settings.concurrency, max_size=settings.max_queue)
    return demo


# Gradio keeps every browser session's state (our history, and a copy of each
# widget a request updated, which grows with each run of a session in gradio
# 6.31) until this many newer sessions push it out; its default, 10000, lets a
# public demo creep up by gigabytes. 0.2-0.4 MB a session: this bounds it.
SESSIONS_KEPT = 500


def launch(demo: gr.Blocks, settings: Settings, **kwargs: Any):
    """Serve on the configured address; never a public share link."""
    return demo.launch(server_name=settings.server_name, server_port=settings.server_port,
                       max_file_size=int(settings.max_file_mb * 1024 * 1024), share=False,
                       state_session_capacity=SESSIONS_KEPT,
                       theme=gr.themes.Soft(), css=CSS, footer_links=["gradio"], **kwargs)


def close(demo: gr.Blocks) -> None:
    """Stop serving and delete the files gradio kept for this page (uploads,
    history downloads) now. Gradio's own sweep at shutdown waits until every
    browser has disconnected and is skipped when the process ends first; a
    stopped app must leave nothing behind."""
    from gradio.route_utils import delete_files_created_by_app

    demo.close(verbose=False)
    delete_files_created_by_app(demo, age=None)
