"""Why two engines' transcripts differ, as data and as plain text.

A family computes a `Divergence` (whisper: engines/whisper/explain.py);
`explain` picks the engines and the family's hook for the page (app/explain.py
draws it), the CLI (prints `as_text`) and the benchmark (bench/divergences.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenChoice:
    token: str  # as text ("<|endoftext|>" for the end)
    id: int
    prob: float


@dataclass
class LayerGap:
    """How far one engine's hidden state is from the reference's at one layer."""

    part: str  # "encoder" (all frames) | "decoder" (the diverging step)
    layer: int
    rel_error: float  # ||other - ref|| / ||ref||
    cosine: float


@dataclass
class Divergence:
    """Why two engines' transcripts differ: the first token where their greedy
    decodes part, both top-5 there (on the common prefix), and per layer how far
    the other engine's hidden state is from the reference's."""

    reference: str  # engine names
    other: str
    same: bool  # the decodes agree: nothing to explain
    window: int = 0  # 30 s window of the clip where they part
    step: int = 0  # index of the first differing text token
    prefix: str = ""  # the text both produced before it
    reference_top: list[TokenChoice] = field(default_factory=list)
    other_top: list[TokenChoice] = field(default_factory=list)
    layers: list[LayerGap] = field(default_factory=list)
    token_kind: str = ""  # what the reference's token is: "word start", "word piece", "punctuation", ...
    note: str = ""


def worst_layer(d: Divergence) -> str:
    """Where the error grows most from one layer to the next."""
    best, prev, part_prev = None, 0.0, None
    for g in d.layers:
        if g.part != part_prev:
            prev, part_prev = 0.0, g.part
        jump = g.rel_error - prev
        if best is None or jump > best[0]:
            best = (jump, f"{g.part} layer {g.layer}")
        prev = g.rel_error
    return best[1] if best else "-"


def as_text(d: Divergence) -> str:
    """A divergence as plain text (the CLI's `transcribe --explain`)."""
    if d.same:
        return d.note
    a, b = d.reference_top[0], d.other_top[0]
    out = [f"{d.other} vs {d.reference}: first differing token at step {d.step} (window {d.window + 1}) "
           f"after {d.prefix[-60:]!r}: {d.reference} {a.token!r} p={a.prob:.3f}, {d.other} {b.token!r} "
           f"p={b.prob:.3f} ({d.token_kind})" + (f"; {d.note}" if d.note else "")]
    for i, (x, y) in enumerate(zip(d.reference_top, d.other_top)):
        out.append(f"  top-{i + 1}: {d.reference} {x.token!r:>16} {x.prob:.3f}   {d.other} {y.token!r:>16} {y.prob:.3f}")
    out.append("  layer        rel.error  cosine")
    out += [f"  {g.part[:3]} {g.layer:2d}     {g.rel_error:9.4f}  {g.cosine:.5f}" for g in d.layers]
    out.append(f"  error grows most at {worst_layer(d)}")
    return "\n".join(out)


def explain(engine_set, model: str, baseline: str, other: str, clip, language: str | None) -> Divergence:
    """Why `other`'s text differs from `baseline`'s on this clip. Every way it
    cannot be told is an `EngineError` with a sentence for people."""
    from . import family_hook
    from .base import EngineError, describe_error

    fn = family_hook(model, "explain_difference")
    if fn is None:
        raise EngineError("This model family cannot explain differences layer by layer.")
    try:
        ref, eng = engine_set.by_name(baseline), engine_set.by_name(other)
    except KeyError as exc:
        raise EngineError(f"No loaded engine {exc}.") from None
    if not (ref.info.available and eng.info.available):
        raise EngineError("Both engines must be loaded to compare them.")
    try:
        return fn(ref, eng, clip, language)
    except Exception as exc:  # noqa: BLE001 - an explanation that fails is a message, not a traceback
        raise EngineError(f"Could not explain the difference: {describe_error(exc)}") from exc
