"""`python -m asr_quant.loadtest`: many people at once against the real app.

The parts, one job each: `inputs` (what the clients send), `driver` (one
request, how its answer is judged, N clients), `app_process` (the app in its
own process, its memory and temp files), `probes` (security), `report`
(percentiles, memory growth, the verdict) and `cli` (the run and its flags).
Only 127.0.0.1 is ever contacted; nothing here imports gradio, torch or
onnxruntime (the app does, in its own process).
"""
from .app_process import HOST, AppProcess, Sampler, count_files, free_port
from .cli import build_parser, main, run
from .driver import BUSY_TEXT, Driver, Page, Request, classify, classify_exception
from .inputs import Input, bad_inputs, good_inputs
from .probes import probe_security
from .report import MEMORY_GROWTH_LIMIT, format_report, memory_report, percentiles, summarize, verdict

__all__ = ["HOST", "AppProcess", "Sampler", "count_files", "free_port", "build_parser", "main", "run", "BUSY_TEXT",
           "Driver", "Page", "Request", "classify", "classify_exception", "Input", "bad_inputs", "good_inputs",
           "probe_security", "MEMORY_GROWTH_LIMIT", "format_report", "memory_report", "percentiles", "summarize",
           "verdict"]
