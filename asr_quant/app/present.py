"""Words for people: the model card, engine headers and per-engine figures.

Plain strings (Markdown) and (text, label) pairs, so the page stays a thin
layer of widgets and these can be tested without a browser.
"""
from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Sequence

from .. import host, units
from ..engines import EngineInfo, EngineSet

if TYPE_CHECKING:
    from .compare import EngineResult

# (label shown, code passed to the engines); None = let the model detect it.
LANGUAGES: list[tuple[str, str]] = [
    ("Auto-detect", "auto"), ("English", "en"), ("Chinese (Mandarin)", "zh"), ("Cantonese", "yue"),
    ("Japanese", "ja"), ("Korean", "ko"), ("German", "de"), ("French", "fr"), ("Spanish", "es"),
    ("Italian", "it"), ("Portuguese", "pt"), ("Russian", "ru"), ("Dutch", "nl"), ("Polish", "pl"),
    ("Turkish", "tr"), ("Ukrainian", "uk"), ("Arabic", "ar"), ("Hindi", "hi"), ("Vietnamese", "vi"),
    ("Thai", "th"), ("Indonesian", "id"),
]
MEMORY_SCOPE = {"cuda-allocator": "GPU allocator", "cuda-nvml": "whole GPU, NVML", "cpu-rss": "process"}
DIFF_COLORS = {"inserted": "#a6e3a1", "deleted": "#f5a3a3", "substituted": "#f9d77e"}


def model_languages(es: EngineSet) -> list[str]:
    """The codes the model lists (ModelInfo.languages is "en, zh, ..."); [] = not stated."""
    codes = [c.strip() for c in (es.model.languages or "").split(",") if c.strip()]
    return codes if all(len(c) <= 5 and c.replace("-", "").isalpha() for c in codes) else []


def language_choices(codes: Sequence[str], extra: Sequence[str] = ()) -> list[tuple[str, str]]:
    """Auto-detect, then the named common languages the model knows, then its
    other codes as they are; all of LANGUAGES when the model doesn't say."""
    if not codes:
        choices = list(LANGUAGES)
    else:
        known = set(codes)
        choices = [LANGUAGES[0]] + [(n, c) for n, c in LANGUAGES[1:] if c in known]
        named = {c for _, c in choices}
        choices += [(c, c) for c in codes if c not in named]
    have = {c for _, c in choices}
    choices += [(c, c) for c in extra if c and c not in have]  # e.g. an example's language
    return choices


def language_code(choice: str | None) -> str | None:
    """The dropdown's value to what engines take: "auto"/empty -> None."""
    if not choice or choice == "auto":
        return None
    return choice


def fmt_bytes(n: int | None) -> str:
    """The one byte formatter (asr_quant.units: MB = 10^6 bytes, as the CLI and
    the benchmark print); "not measured yet" for None."""
    return units.fmt_bytes(n, missing="not measured yet")


def isa_label(isa) -> str:
    """'AVX512-VNNI + AMX' for a table cell: each instruction set kept whole (no break at its hyphen)."""
    return " + ".join(num(_cell(part)) for part in isa.label.split(" + "))


def num(text: str) -> str:
    """A figure in a table cell that must not wrap (a narrow column would break
    "102.6 s" digit by digit)."""
    return f'<span style="white-space:nowrap">{text}</span>'


def fmt_params(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.1f} B"
    if n >= 1e6:
        return f"{n / 1e6:.0f} M"
    return str(n)


def model_card(es: EngineSet) -> str:
    """Which model is loaded, from where, and what each engine runs on."""
    m = es.model
    lines = [f"### Model: {m.name}"]
    facts = []
    if m.params:
        facts.append(f"{fmt_params(m.params)} parameters")
    if m.languages:
        codes = model_languages(es)
        facts.append(f"{len(codes)} languages" if len(codes) > 6 else f"languages: {escape(m.languages)}")
    facts.append(f"weights: {m.source}")
    lines.append(" · ".join(facts))
    if m.notes:
        lines.append(f"\n{m.notes}")
    isa = host.detect()
    where = escape(f"{isa.cpu}, ") if isa.cpu else ""
    lines.append(f"\nCPU: {where}{isa_label(isa)}. INT8's speed, and even its agreement with FP32, depend on "
                 "this instruction set: figures measured on another CPU do not carry over.")
    lines.append("")
    lines.append("| engine | precision · runtime · device | on disk | peak RSS alone (to provision) | "
                 "working memory of a call (alone) | weights as stored | load |")
    lines.append("|---|---|---|---|---|---|---|")
    how, notes = [], []
    for e in es.engines:
        i = e.info
        if not i.available:
            lines.append(f"| **{i.name}** | unavailable: {_cell(i.error or 'unknown reason')} | | | | | |")
            continue
        threads = f", {i.threads} threads" if i.threads else ""
        cpu = f" · for {isa_label(isa)}" if i.precision == "int8" else ""
        lines.append(f"| **{i.name}** | {_cell(i.label)}{threads}{cpu} | {num(fmt_bytes(i.disk_bytes))} | "
                     f"{peak_alone(i)} | {working(i)} | {num(fmt_bytes(i.weights_bytes))} | "
                     f"{num(f'{i.load_s:.1f} s')} |")
        how.append(what_runs_how(i))
        if placement(i):  # where the nodes run, and load warnings: in sight, not folded away
            notes.append(f"**{i.name}**{placement(i)}")
    lines.append("\n" + MEMORY_NOTE)
    lines += [*(["", "  \n".join(notes)] if notes else []), "", "\n\n".join(how)]
    return "\n".join(lines)


MEMORY_NOTE = ("_Peak RSS alone_: the most memory a fresh process holding only that engine reached while it loaded "
               "and ran twice on the clip named beside it: what a machine must have to serve it. _Working memory of "
               "a call_: the largest rise during one call on that clip (a longer clip needs more). _Weights as "
               "stored_: bytes of the weight tensors at their stored types; ONNX Runtime may hold prepacked copies "
               "and an arena on top. Measured once per model and settings, then cached; MB = 10^6 bytes "
               "(docs/memory.md).")


def alone_clip(clip: str, seconds: float | None) -> str:
    """'on weather_en.flac, 6.1 s': the clip the alone figures are for."""
    if not clip:
        return ""
    return f"on {escape(clip)}" + (f", {seconds:.1f} s" if seconds is not None else ", length not recorded")


def peak_alone(info: EngineInfo) -> str:
    """Peak RSS of the engine alone (the figure to provision), or why there is none yet."""
    a = info.alone
    if not a:
        return "not measured yet"
    if a.get("error"):
        return f"not measured: {_cell(a['error'][:120])}"
    return num(fmt_bytes(a.get("peak_rss")))


def working(info: EngineInfo) -> str:
    """The working memory of a call measured alone, with its clip and date, or why there is none yet."""
    a = info.alone
    if not a:
        return "not measured yet"
    if a.get("error"):
        return "not measured"
    return (f"{num(fmt_bytes(a.get('working_bytes')))} ({alone_clip(a.get('clip') or '?', a.get('clip_s'))}, "
            f"{num((a.get('measured_at') or '?')[:10])})")


def what_runs_how(info: EngineInfo) -> str:
    """An engine's long account (which parts run in which precision, caveats)
    folded behind a toggle, so that the card stays short (its memory figures,
    with their clip and date, are in the table). HTML: Markdown is not read inside it."""
    return (f"<details class='how'><summary>{html.escape(info.name)}: what runs how</summary>"
            f"<p>{html.escape(info.details, quote=False)}</p></details>")


def placement(info: EngineInfo) -> str:
    """Where ONNX Runtime put the nodes of a GPU session, with any load
    warning; a nonzero count on the CPU is a warning (host round trips)."""
    text = ""
    if info.nodes_on_cpu is not None:
        text = (f" ⚠️ **{info.nodes_on_cpu} nodes on the CPU**" if info.nodes_on_cpu
                else " · all nodes on the GPU")
    return text + "".join(f" ⚠️ {_cell(w)}" for w in info.warnings)


def engine_header(info: EngineInfo) -> str:
    cpu = f" · for {host.detect().label}" if info.precision == "int8" else ""  # INT8's figures depend on it
    head = f"### {info.name}\n{info.runtime} · {info.device}{cpu}"
    if not info.available:
        head += f"\n\n**unavailable:** {escape(info.error or 'unknown reason')}"
    return head


def loading_header(name: str, message: str, seconds: float) -> str:
    """A column whose engine is still loading: what it is doing, for how long."""
    return f"### {name}\n_loading: {escape(message)}_ ({seconds:.0f} s)"


def still_loading(names: Sequence[str]) -> str:
    """The request line's note on engines that are not ready yet."""
    if not names:
        return ""
    verb = "is" if len(names) == 1 else "are"
    return f"{', '.join(names)} {verb} still loading and will join the next runs once ready."


STATE_WORDS = {"waiting": "○ waiting", "running": "▶ running…", "done": "✓ done"}  # no emoji: not every font has them


def column_state(state: str, info: EngineInfo | None = None, transcript=None) -> str:
    """The line under a column's header during a run: "waiting", "running" or
    "done" (with the latency, or that it gave no transcript); "" for no run."""
    if info is not None and not info.available:
        return "<span class='state state-off'>unavailable</span>"
    if state not in STATE_WORDS:
        return ""
    word, kind = STATE_WORDS[state], state
    if state == "done" and transcript is not None:
        if transcript.ok:
            word += f" in {transcript.latency_s:.2f} s"
        else:
            word, kind = "✗ done: no transcript", "error"
    return f"<span class='state state-{kind}'>{word}</span>"


def figures(result: "EngineResult") -> str:
    """Latency, RTF, error rate and memory of one engine on one clip."""
    t = result.transcript
    if not t.ok:
        if t.error and t.error.startswith(f"{t.engine} is unavailable"):
            return ""  # the header already says why
        return f"**error:** {escape(t.error or '')}"
    rtf = f" · RTF {t.rtf:.3f}" if t.rtf is not None else ""
    lines = [f"**latency** {t.latency_s:.3f} s{rtf} · {t.tokens} tokens"]
    s = result.score
    if s is not None:
        unit = "characters" if s.kind == "cer" else "words"
        lines.append(f"**{s.kind.upper()}** {s.rate:.1%} (S {s.substitutions} · D {s.deletions} · "
                     f"I {s.insertions} of {s.ref_len} {unit})")
    m = t.memory
    where = alone_clip(m.alone_clip, m.alone_clip_s)
    work = (f"{fmt_bytes(m.working_bytes)} (alone, {where})" if m.working_bytes is not None and where
            else fmt_bytes(m.working_bytes))
    lines.append(f"**memory** peak RSS alone {fmt_bytes(m.peak_rss_alone)} · working memory of a call {work} · "
                 f"weights as stored {fmt_bytes(m.weights_bytes)} · disk {fmt_bytes(m.disk_bytes)} · "
                 f"{m.process_kind} now {fmt_bytes(m.process_bytes)} · peak +{fmt_bytes(m.peak_delta_bytes)} "
                 f"during this call ({MEMORY_SCOPE.get(m.kind, 'process')})")
    if t.language:
        lines.append(f"**language** {t.language}")
    for w in t.warnings:
        lines.append(f"⚠️ {escape(w)}")
    if result.diff_note and not result.is_baseline:
        lines.append(f"_diff: {escape(result.diff_note)}_")
    return "  \n".join(lines)


def summary(results: Sequence["EngineResult"], wall_s: float, clip_name: str, duration_s: float,
            notes: Sequence[str] = ()) -> str:
    answered = sum(1 for r in results if r.transcript.ok)
    engines_s = sum(r.transcript.latency_s for r in results)
    text = (f"**{escape(clip_name)}** · {duration_s:.1f} s of audio · {answered}/{len(results)} engines "
            f"answered · {wall_s:.2f} s in all, {max(0.0, wall_s - engines_s):.2f} s outside the engines")
    if notes:
        text += "  \n" + "; ".join(escape(n) for n in notes)
    return text


def escape(s: str) -> str:
    """User or engine text inside Markdown: no HTML, no accidental markup."""
    return html.escape(s, quote=False).replace("*", "\\*").replace("_", "\\_").replace("`", "\\`")


def _cell(s: str) -> str:
    return escape(s).replace("|", "\\|").replace("\n", " ")




def highlight(ops) -> list[tuple[str, str | None]]:
    """`metrics.DiffOp`s as (text, label) pairs for a highlighted-text widget:
    equal runs unlabelled, inserted/deleted runs labelled, a substitution as
    "fp32 text→this text". Separators between runs stay unlabelled."""
    pairs: list[tuple[str, str | None]] = []
    for op in ops:
        if op.lead:
            pairs.append((op.lead, None))
        if op.op == "equal":  # word by word, so that the widget wraps lines between words
            pairs += [(part, None) for part in re.split(r"(\s+)", op.other) if part]
        elif op.op == "insert":
            pairs.append((op.other, "inserted"))
        elif op.op == "delete":
            pairs.append((op.base, "deleted"))
        else:
            pairs.append((f"{op.base}→{op.other}", "substituted"))
    return pairs


# The page's fixed texts (ui.py lays them out).
PAGE_INTRO = ("# One recognizer at several precisions, side by side\n"
              "Record or upload a clip (or pick an example): every engine transcribes it, one after another, the "
              "baseline first and then the fastest, and each column fills in as soon as its engine is done.")
EXPORT_NOTE = ("The quantized encoder and decoder (ONNX), tokenizer, mel parameters, the manifest (plan, "
               "calibration, measured agreement with FP32, sizes) and a README with a numpy + onnxruntime script "
               "that transcribes a wav with those files alone.")


def explain_intro(baseline: str) -> str:
    return (f"Where an engine's text differs from {baseline}'s on the clip above: the first token where the two "
            "decodes part, both engines' top-5 there, and per layer how far its hidden state is from the "
            "baseline's. Computed only when you ask (two more decodes and one trace each).")


def live_model_card(engine_set, pending: Sequence[str]) -> str:
    """The model card, and which engines are still loading."""
    return model_card(engine_set) + (f"\n\n_{still_loading(list(pending))}_" if pending else "")
