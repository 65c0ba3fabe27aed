"""Tests-only: call the page's own request handler in-process, as gradio
would, and read what each widget ends up showing (by elem_id).

The handler is the function behind the "Transcribe" button (api_name
"transcribe"); calling it directly skips HTTP and gradio's queue, so a test
sees exactly what the page code does with an input. gr.Warning outside a
request becomes a Python UserWarning; it is captured as the toast text.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field


@dataclass
class PageResult:
    widgets: dict  # elem_id -> final value shown
    toasts: list[str] = field(default_factory=list)
    updates: int = 0  # yields: the page filled in step by step

    @property
    def status(self) -> str:
        return str(self.widgets.get("status", ""))

    def text(self, engine: str) -> str:
        return self.widgets.get(f"text-{engine.lower()}", "") or ""

    def figures(self, engine: str) -> str:
        return self.widgets.get(f"figures-{engine.lower()}", "") or ""


def handler(demo):
    """The Python function the page's button calls."""
    for fn in demo.fns.values():
        if fn.api_name == "transcribe":
            return fn.fn
    raise LookupError("the page has no 'transcribe' event")


def run_page(demo, clip_path, language: str = "auto", reference: str = "", history=None) -> PageResult:
    from asr_quant.app.history import History

    fn = handler(demo)
    widgets: dict = {}
    n = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for update in fn(clip_path, language, reference, history if history is not None else History()):
            n += 1
            for component, value in update.items():
                key = getattr(component, "elem_id", None) or type(component).__name__
                widgets[key] = value
    toasts = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    return PageResult(widgets=widgets, toasts=toasts, updates=n)
