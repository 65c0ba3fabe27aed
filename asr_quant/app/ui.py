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

from .. import export
from ..sensitivity_chart import engines_sensitivity
from . import charts, compare, explain, inputs, order, present, steps, stream
from ..engines import EngineSet
from ..examples import Example, read_examples
from .history import History
from .live import LiveEngines, Slot
from .runner import Runner
from ..settings import Settings

log = logging.getLogger(__name__)

CSS = Path(__file__).with_name("page.css").read_text(encoding="utf-8")  # no wrapped numbers; column states


class _EngineWidgets:
    """The column of one engine: header (what it is doing while it loads),
    transcript, diff against the baseline (none in the baseline's own column),
    figures. Transcript and diff show once the engine is ready."""

    def __init__(self, slot: Slot, baseline: str | None):
        self.name, self.precision = slot.name, slot.precision
        key = slot.name.lower()
        ready = slot.state == "ready"
        with gr.Column(elem_classes="engine-col", elem_id=f"engine-{key}", min_width=220):
            self.head = gr.Markdown(self.header(slot), elem_id=f"head-{key}", label=f"{slot.name} engine")
            self.state = gr.Markdown("", elem_id=f"state-{key}", elem_classes="col-state", label=f"{slot.name} state")
            self.text = gr.Textbox(label=f"{slot.name} transcript", lines=4, max_lines=12,
                                   interactive=False, elem_id=f"text-{key}", buttons=["copy"], visible=ready)
            self.diff = None
            if slot.name != baseline:
                self.diff = gr.HighlightedText(label=f"{slot.name} vs {baseline}", show_legend=True,
                                               combine_adjacent=False, color_map=present.DIFF_COLORS,
                                               elem_id=f"diff-{key}", visible=ready)
            self.figures = gr.Markdown("", elem_id=f"figures-{key}", label=f"{slot.name} figures")

    @staticmethod
    def header(slot: Slot) -> str:
        if slot.engine is not None:
            return present.engine_header(slot.engine.info)
        return present.loading_header(slot.name, slot.message, slot.elapsed_s())

    @property
    def outputs(self) -> list:
        return [w for w in (self.text, self.diff, self.figures) if w is not None]

    def refresh(self, slot: Slot) -> dict:
        """The header and whether transcript and diff show, as loading goes on."""
        ready = slot.state == "ready"
        out = {self.head: self.header(slot), self.text: gr.update(visible=ready)}
        if self.diff is not None:
            out[self.diff] = gr.update(visible=ready)
        return out

    def clear(self, running: bool, info=None, note: str = "") -> dict:
        """Empty; with `info` (in this run) "running" or "waiting"; `note`: why it is not in this run."""
        state = present.column_state(order.RUNNING if running else order.WAITING, info) if info else ""
        out = {self.state: state, self.text: "", self.figures: note}
        if self.diff is not None:
            out[self.diff] = None
        return out

    def fill(self, result: compare.EngineResult, info=None) -> dict:
        t = result.transcript
        out = {self.state: present.column_state(order.DONE, info, t),
               self.text: t.text if t.ok else "", self.figures: present.figures(result)}
        if self.diff is not None:
            out[self.diff] = present.highlight(result.diff) if result.diff is not None else None
        return out


class _Page:
    """The widgets of the page and the request handlers that fill them."""

    def __init__(self, live: LiveEngines, settings: Settings, examples: Sequence[Example]):
        self.settings, self.live = settings, live
        self.max_bytes = int(settings.max_file_mb * 1024 * 1024)
        self.uploads = inputs.DecodedUploads(settings.max_audio_s, self.max_bytes)  # validator's decode, reused
        slots = live.snapshot()
        self.baseline = baseline = compare.baseline_name([s.name for s in slots])
        self.speeds = order.Speeds()  # this host's measured speed per engine, across sessions
        slots = order.run_order(slots, baseline)  # the baseline's column first, then the fastest expected
        self.runner = Runner([], settings.inference_timeout_s, nice=settings.inference_nice)

        gr.Markdown(present.PAGE_INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                self.clip = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                     label="Clip (upload or record)", elem_id="clip", buttons=["download"])
            with gr.Column(scale=2):
                choices = present.language_choices(present.model_languages(live.engine_set()),
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
                        label="Examples (language · recorded or synthetic; reference and language are filled in)",
                        examples_per_page=12)
        self.live_mode = _LiveMode(self)
        self.status = gr.Markdown("", elem_id="status", elem_classes="status-line", label="status")
        with gr.Row(equal_height=False):
            self.cols = [_EngineWidgets(s, baseline) for s in slots]
        with gr.Row():
            self.lat_plot = gr.Plot(label="Latency", elem_id="plot-latency")
            self.mem_plot = gr.Plot(label="Memory", elem_id="plot-memory")
        with gr.Accordion("Loaded model and engines", open=True):  # after the results: the demo first
            self.card = gr.Markdown(self.model_card(), elem_id="model-card", label="model card")
            fig = engines_sensitivity(self.live.engine_set().engines)
            self.sens_plot = gr.Plot(fig, label="INT8: how much each group alone moves the output",
                                     elem_id="sensitivity", visible=fig is not None)
        others = [s.name for s in slots if s.name != baseline]
        with gr.Accordion("Explain the difference", open=False, elem_id="explain-box"):
            gr.Markdown(present.explain_intro(baseline))
            with gr.Row():
                self.explain_engine = gr.Dropdown(choices=others, value=others[0] if others else None,
                                                  label=f"Engine to compare with {baseline}", elem_id="explain-engine")
                self.explain_btn = gr.Button("Explain the difference", elem_id="explain-run")
            self.explain_text = gr.Markdown("", elem_id="explain-text", label="explanation")
            self.explain_plot = gr.Plot(label="Hidden-state error per layer", elem_id="explain-plot")
        with gr.Accordion("This session", open=True):
            self.hist_plot = gr.Plot(label="Session history", elem_id="plot-history")
            self.hist_table = gr.Dataframe(label="Runs", interactive=False, wrap=True, elem_id="history")
            with gr.Row():
                self.csv_btn = gr.DownloadButton("Download history (CSV)", visible=False, elem_id="dl-csv")
                self.json_btn = gr.DownloadButton("Download history (JSON)", visible=False, elem_id="dl-json")
        with gr.Accordion("Take the INT8 model away", open=False):
            gr.Markdown(present.EXPORT_NOTE)
            self.export_btn = gr.Button("Prepare the INT8 download (zip)", elem_id="export")
            self.export_file = gr.File(label="INT8 model (zip)", elem_id="export-file", interactive=False)
        self.history = gr.State(History())  # one per browser session (gradio copies it)
        self.timer = gr.Timer(1.0, active=not live.done)  # polls the engines while they load
        self.api_json = gr.JSON(visible=False, label="result")
        self.api_button = gr.Button(visible=False)
        self.status_json = gr.JSON(visible=False, label="engine status")
        self.status_button = gr.Button(visible=False)

    @property
    def inputs(self) -> list:
        return [self.clip, self.language, self.reference, self.history]

    @property
    def outputs(self) -> list:
        return [self.status, *[w for c in self.cols for w in c.outputs], self.lat_plot, self.mem_plot,
                self.hist_plot, self.hist_table, self.csv_btn, self.json_btn, self.history,
                *[c.state for c in self.cols]]  # the states last: API clients' positions stay

    @property
    def loading_outputs(self) -> list:
        return [self.card, self.sens_plot, *[w for c in self.cols for w in (c.head, c.text, c.diff) if w is not None],
                self.timer]

    def model_card(self) -> str:
        return present.live_model_card(self.live.engine_set(), [s.name for s in self.live.snapshot() if s.engine is None])

    def refresh(self) -> dict:
        """The loading state now (the timer's tick): headers, columns, model card."""
        slots = {s.precision: s for s in self.live.snapshot()}
        fig = engines_sensitivity(self.live.engine_set().engines)
        out: dict = {self.card: self.model_card(), self.timer: gr.Timer(active=not self.live.done),
                     self.sens_plot: gr.Plot(fig, visible=fig is not None)}
        for c in self.cols:
            out.update(c.refresh(slots[c.precision]))
        return out

    def explain(self, clip_path, language, other):
        """The explanation's text and per-layer chart (the clip is checked first)."""
        clip, problem = self.uploads.decode(clip_path)
        if problem is not None or not other:
            return f"⚠️ {present.escape(problem or 'Pick an engine to compare first.')}", None
        r = explain.explain(self.live.engine_set(), self.settings.model, self.baseline, other, clip,
                            present.language_code(language))
        return r.message, r.figure

    def new_clip(self) -> dict:
        """A new clip (uploaded, recorded or picked): the last clip's results go,
        so a refused upload is not shown beside another clip's transcripts."""
        return {self.status: "", self.lat_plot: None, self.mem_plot: None,
                **{k: v for c in self.cols for k, v in c.clear(False).items()}}

    def input_problem(self, clip_path) -> str | None:
        """What is wrong with an upload; None when it is fine (the validator's check)."""
        return self.uploads.decode(clip_path)[1]

    def _problem(self, message: str) -> dict:
        """An input problem: the message as toast and status line, nothing transcribed."""
        gr.Warning(message)
        return {self.status: f"⚠️ {present.escape(message)}", self.lat_plot: None, self.mem_plot: None,
                **{k: v for c in self.cols for k, v in c.clear(False).items()}}

    def _ready(self) -> tuple[list, list[Slot]]:
        """(engines ready now in demo order: the baseline, then the fastest measured
        here so far; slots still loading)."""
        slots = self.live.snapshot()
        engines = order.run_order([s.engine for s in slots if s.engine is not None], self.baseline, self.speeds)
        return engines, [s for s in slots if s.engine is None]

    def run(self, clip_path, language, reference, hist: History, progress):
        """One request: decode, run each ready engine (yielding its column),
        then charts and history. Input problems end here with their message
        (the validator has already turned them away before the queue)."""
        started = time.perf_counter()
        progress(0, desc="decoding")
        clip, problem = self.uploads.decode(clip_path)
        if (problem := problem or inputs.reference_problem(reference)) is not None:
            yield self._problem(problem)
            return
        decode_s = time.perf_counter() - started
        chosen = present.language_code(language)
        engines, pending = self._ready()
        by_precision = {c.precision: c for c in self.cols}
        cols, n = [by_precision[e.info.precision] for e in engines], len(engines)
        later = present.still_loading([s.name for s in pending])
        waiting = {k: v for s in pending for k, v in
                   by_precision[s.precision].clear(False, note=f"_still loading ({present.escape(s.message)}); "
                                                               f"not in this run_").items()}
        ready = sum(1 for e in engines if e.info.available)
        if not engines:  # the first seconds after a start: nothing to run yet
            yield {self.status: f"⏳ No engine is ready yet. {later}", **waiting}
            return
        yield {self.status: f"Running {ready} engines one after another ({' → '.join(order.names(engines))}) on "
                            f"**{present.escape(clip.name)}** ({clip.duration_s:.1f} s)… {later}",
               **waiting, **{k: v for i, c in enumerate(cols) for k, v in c.clear(i == 0, engines[i].info).items()}}

        request = compare.Request(self.baseline, chosen, reference)
        filled: dict = dict(waiting)  # every column's final values, repeated in the last yield for API clients
        tell = steps.window_progress(progress, clip.duration_s)  # long clips: how far each engine has got
        for i, t in enumerate(self.runner.run(clip, chosen, engines, tell)):
            self.speeds.record(t)
            update = cols[i].fill(request.add(t), engines[i].info)
            filled.update(update)
            if i + 1 < n:
                update.update(cols[i + 1].clear(True, engines[i + 1].info))
                progress((i + 1, n), desc=f"{cols[i + 1].name} running")
            yield update

        with tempfile.TemporaryDirectory(prefix="asrq-history-") as tmp:
            done = steps.finish(hist, clip, request, engines, started, decode_s, Path(tmp))
            yield {
                **filled,
                self.status: done.summary + (f"  \n{later}" if later else ""),
                self.lat_plot: done.latency, self.mem_plot: done.memory, self.hist_plot: done.history,
                self.hist_table: pd.DataFrame(done.rows, columns=done.headers),
                self.csv_btn: gr.DownloadButton(value=str(done.csv_path), visible=True),
                self.json_btn: gr.DownloadButton(value=str(done.json_path), visible=True),
                self.history: hist,
            }  # gradio copies the files into its own cache before it resumes us; then tmp goes

    def run_json(self, clip_path, language) -> dict:
        """The CLI's `--json` object for one clip (the `/transcribe_json` API)."""
        clip, problem = self.uploads.decode(clip_path)
        if problem is not None:
            raise gr.Error(problem)
        engines, pending = self._ready()
        answers = [self.speeds.record(t) for t in self.runner.run(clip, present.language_code(language), engines)]
        return steps.json_result(self.live.model.name, clip, engines, answers, pending)

    def export(self):
        """The INT8 download (a zip built once per artifact set, in the cache), handed
        to gradio from a temp folder (gradio serves only what it copied)."""
        with tempfile.TemporaryDirectory(prefix="asrq-export-") as tmp:
            try:
                path = steps.int8_zip(self.live.snapshot(), self.settings, Path(tmp))
            except export.ExportError as exc:
                raise gr.Error(str(exc)) from None
            yield str(path)  # gradio copies it before it resumes us


class _LiveMode:
    """Streaming microphone: segments go to every ready engine as cut (stream.LivePages), columns show
    text and live RTF; on stop the recording goes into the clip input and runs as an upload."""

    def __init__(self, page: "_Page"):
        self.page, self.pages = page, stream.LivePages()
        with gr.Accordion("Live: speak, and every engine types along", open=True, elem_id="live-box"):
            self.mic = gr.Audio(sources=["microphone"], streaming=True, type="numpy", elem_id="live-mic",
                                label="Live microphone (cut at pauses; at the end the recording runs as one clip)")
            self.box = gr.Markdown("", elem_id="live-status", label="live status")

    def _show(self, shown) -> dict:
        cols = [] if shown is None else [c for c in self.page.cols if c.name in shown.columns]
        return {**({self.box: shown.box} if shown else {}),
                **{w: v for c in cols for w, v in zip((c.text, c.figures), shown.columns[c.name])}}

    def start(self, language, request: gr.Request):
        return self._show(self.pages.start(request.session_hash, self.page._ready()[0], language))

    def feed(self, chunk, request: gr.Request):
        return self._show(self.pages.feed(request.session_hash, chunk))

    def stop(self, request: gr.Request):
        with tempfile.TemporaryDirectory(prefix="asrq-live-") as tmp:
            shown, path = self.pages.stop(request.session_hash, Path(tmp))
            yield {**self._show(shown), self.page.clip: str(path) if path else None}  # gradio copies it first

    def wire(self, transcribe) -> None:
        outs, private = [self.box, *[w for c in self.page.cols for w in (c.text, c.figures)]], "private"
        self.mic.start_recording(self.start, inputs=[self.page.language], outputs=outs, api_visibility=private)
        self.mic.stream(self.feed, [self.mic], outs, stream_every=0.5, concurrency_limit=None, api_visibility=private)
        self.mic.stop_recording(self.stop, outputs=[*outs, self.page.clip], api_visibility=private).then(
            transcribe, inputs=self.page.inputs, outputs=self.page.outputs, concurrency_id="engines")


def build(engines: EngineSet | LiveEngines, settings: Settings, examples: Sequence[Example] | None = None) -> gr.Blocks:
    """The page for these engines (loaded, or still loading); call `launch` on the result."""
    if examples is None:
        examples = read_examples()
    live = engines if isinstance(engines, LiveEngines) else LiveEngines.loaded_set(engines)
    charts.warm_up()
    with gr.Blocks(title="asr-quant: one recognizer, three precisions", delete_cache=(1800, 3600)) as demo:
        page = _Page(live, settings, examples)

        def transcribe(clip_path, language, reference, hist: History, progress=gr.Progress()):
            try:
                yield from page.run(clip_path, language, reference, hist, progress)
            except Exception as exc:  # noqa: BLE001 - a bug of ours: say so briefly, log the rest
                log.exception("request failed")
                msg = f"Something went wrong on our side ({type(exc).__name__}); the details are in the log."
                gr.Warning(msg)
                yield {page.status: f"⚠️ {msg}"}

        def validate(clip, *others):
            """Before the queue (gradio runs an event's validator with queue=False):
            bad input is told at once instead of waiting behind transcriptions."""
            problem = page.input_problem(clip)
            return [gr.validate(problem is None, problem or ""), *[gr.validate(True, "") for _ in others]]

        def validate_run(clip, language, reference, hist):
            """`validate`, and the reference transcript's length."""
            told = validate(clip, language)
            problem = inputs.reference_problem(reference)
            return [*told, gr.validate(problem is None, problem or ""), gr.validate(True, "")]

        page.button.click(transcribe, inputs=page.inputs, outputs=page.outputs, api_name="transcribe",
                          concurrency_limit=settings.concurrency, concurrency_id="engines",
                          show_progress="minimal", validator=validate_run)
        page.api_button.click(page.run_json, inputs=[page.clip, page.language], outputs=page.api_json,
                              api_name="transcribe_json", concurrency_limit=settings.concurrency,
                              concurrency_id="engines", validator=validate)
        page.explain_btn.click(page.explain, inputs=[page.clip, page.language, page.explain_engine],
                               outputs=[page.explain_text, page.explain_plot], api_name="explain",
                               concurrency_limit=settings.concurrency, concurrency_id="engines", validator=validate)
        page.status_button.click(page.live.status, outputs=page.status_json, api_name="engine_status", queue=False)
        page.export_btn.click(page.export, outputs=page.export_file, api_name="export_int8", concurrency_limit=1)
        page.clip.change(page.new_clip, outputs=[page.status, *[w for c in page.cols for w in (c.state, *c.outputs)],
                                                 page.lat_plot, page.mem_plot],
                         queue=False, show_progress="hidden", api_visibility="private")
        page.live_mode.wire(transcribe)
        page.timer.tick(page.refresh, outputs=page.loading_outputs, queue=False, api_visibility="private")
        demo.load(page.refresh, outputs=page.loading_outputs, queue=False, api_visibility="private")
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
