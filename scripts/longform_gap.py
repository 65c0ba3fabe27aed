"""Long-form against clips, per engine, on tests/test_longform.py's recording.

    python scripts/longform_gap.py [--plans rows,costed:kl=0.004]

The recording: Debian's recorded Spanish prompts of 2-8 s back to back, 150 s,
a prompt across each of the 30/60/90/120 s marks (bench/prompt_stream.py).
Each engine decodes it whole (long-form, each piece after the previous text)
and as pieces cut at pauses under 30 s, and the script prints both WERs with
their edits. FP32's own gap is the yardstick for an INT8's: decoding after
the previous text changes words in both directions at any precision.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MARKS = (30.0, 60.0, 90.0, 120.0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--plans", default="", help="INT8 plans besides the default, e.g. rows,costed:kl=0.004")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)

    from asr_quant import metrics
    from asr_quant.audio import Clip
    from asr_quant.bench import prompt_stream, prompts
    from asr_quant.bench.run import int8_plan_variants
    from asr_quant.engines import load_engines
    from asr_quant.settings import Settings

    short = [u for u in prompts.builtin_es() if 2.0 <= u.duration_s <= 8.0]
    rec = prompt_stream.build(short, total_s=150.0, across=MARKS)
    settings = Settings.from_env()
    settings.model, settings.precisions, settings.device, settings.threads = "base", "fp32,int8", "cpu", a.threads
    engines = load_engines(settings)
    engines.engines.extend(int8_plan_variants(engines, settings, a.plans, print))
    pieces = rec.cut(25.0)
    for eng in engines.engines:
        if not eng.info.available:
            print(f"{eng.info.name}: unavailable: {eng.info.error}")
            continue
        whole = eng.transcribe(Clip(samples=rec.samples, name="stream.wav"), "es")
        clips = " ".join(eng.transcribe(Clip(samples=rec.slice(s, e), name=f"piece{i}.wav"), "es").text
                         for i, (s, e, _) in enumerate(pieces))
        w, c = metrics.error_rate(rec.text, whole.text, "es"), metrics.error_rate(rec.text, clips, "es")
        print(f"{eng.info.name}: long-form {w.rate:.3f} (S{w.substitutions} D{w.deletions} I{w.insertions}), "
              f"{len(pieces)} clips under 30 s {c.rate:.3f} (S{c.substitutions} D{c.deletions} I{c.insertions}), "
              f"{c.ref_len} words", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
