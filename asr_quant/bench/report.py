"""results.md: the benchmark in the seed article's layout, with its claims
beside the measured figures, and the targets verdict. Charts are in
`bench.charts`, docs/benchmark.md in `bench.docs`.

Everything here reads the results dict that the benchmark writes as results.json,
so a report can be rebuilt from a saved run (`python -m asr_quant.bench
--report results.json`)."""
from __future__ import annotations

import re

from .. import units
from .shards import nodes_markdown
from . import divergences, quant_report
from . import targets as _targets
from .paired import recorded_rows
from .paired_report import paired_section

# The seed article's claims (Fun-ASR-MLT-Nano-2512, NVIDIA A100 40GB, batch 1,
# 100 clips of ~10 s), sections 5.1-5.3. WER in percent.
ARTICLE = {
    "setting": ("Fun-ASR-MLT-Nano-2512 (800M parameters) on an NVIDIA A100 40GB, PyTorch 2.1.0 / "
                "ONNX Runtime 1.16.0, batch 1, 100 clips of about 10 s"),
    "FP32": dict(size="2.0 GB", peak="~4.2 GB", compression=1.0, latency_ms=710, rtf=0.071, throughput=1.41,
                 wer={"zh": 6.2, "zh-noisy": 12.1, "en": 7.5, "yue": 14.3, "ja": 9.1, "ko": 9.8, "mean": 9.7}),
    "FP16": dict(size="1.0 GB", peak="~2.3 GB", compression=2.0, latency_ms=490, rtf=0.049, throughput=2.04,
                 wer={"zh": 6.3, "zh-noisy": 12.3, "en": 7.6, "yue": 14.5, "ja": 9.3, "ko": 10.0, "mean": 9.8}),
    "INT8": dict(size="520 MB", peak="~1.4 GB", compression=3.8, latency_ms=420, rtf=0.042, throughput=2.38,
                 wer={"zh": 6.8, "zh-noisy": 13.5, "en": 8.2, "yue": 15.9, "ja": 10.0, "ko": 10.7, "mean": 10.8}),
}
ARTICLE_ROWS = {"zh": "Mandarin (quiet)", "zh-noisy": "Mandarin (noisy)", "en": "English", "yue": "Cantonese",
                "ja": "Japanese", "ko": "Korean"}


# --- formatting --------------------------------------------------------------------

def mb(n) -> str:
    """units.fmt_bytes (MB = 10^6 bytes, as on the page and in the CLI); 0 or None: —."""
    return units.fmt_bytes(n or None)


def isa_text(m: dict) -> str:
    """The CPU's instruction-set label a run's INT8 figures depend on (results
    of older versions did not record it)."""
    isa = m.get("isa") or {}
    return isa.get("label") or "instruction set not recorded"


def cpu_text(m: dict) -> str:
    """'Intel(R) Xeon(R) Processor, AVX512-VNNI + AVX-VNNI + AMX'."""
    return f"{m['cpu']}, {isa_text(m)}"


def num(x, fmt="{:.0f}") -> str:
    return "—" if x is None else fmt.format(x)


def pct(rate) -> str:
    return "—" if rate is None else f"{100 * rate:.1f}"


def times(x) -> str:
    return "—" if x is None else f"{x:.2f}x"


def _table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _engines(res: dict, roles=("engine", "variant", "study", "peer")) -> list[dict]:
    return [e for e in res["engines"] if e["role"] in roles]


def _group_of(row: str) -> str:
    return row.split(" (", 1)[0]


def _source_of(row: str) -> str:
    return row[row.find("(") + 1:-1] if "(" in row else ""


# --- results.md ----------------------------------------------------------------------

def results_markdown(res: dict, level: int = 1) -> str:
    h = "#" * level
    m = res["machine"]
    gpu = m.get("gpu") or "none"
    eng = _engines(res)
    parts = [f"{h} Benchmark: {res['model']['name']}, " + " / ".join(e["name"] for e in eng), ""]
    parts.append(
        f"Measured {res['date']} on {cpu_text(m)} ({m['logical_cores']} logical cores, {m['ram_gb']:.0f} GB RAM), "
        f"GPU: {gpu}" + ("" if m.get("gpu") else " — CPU only") + f"; threads: {res['threads']['summary']}.")
    parts.append("")
    parts.append(f"INT8's figures here are for this CPU's instruction set, **{isa_text(m)}**: its speed, and even "
                 "its agreement with FP32, change with it (`asr_quant/host.py`).")
    parts.append("")
    parts.append(f"Command: `{res['command']}`")
    parts.append("")
    c = res["corpus"]
    parts.append(f"Corpus: {c['clips']} clips, {c['audio_s']:.0f} s of audio, in {len(c['rows'])} rows; "
                 f"{res['runs']} timed run(s) per clip after {res['warmup']} warm-up call(s) per engine, "
                 "engines interleaved clip by clip.")
    for note in c.get("notes", []):
        parts.append(f"- {note}")
    parts.append("")
    if res.get("nodes"):
        parts.append(nodes_markdown(res))
    parts.append("How to read this: the *article* columns are the seed article's claims for "
                 f"{ARTICLE['setting']}. They are another model on another machine, printed beside the "
                 "measured figures in the article's layout; compare ratios between precisions, not absolute "
                 "values. " + _synthetic_sentence(res) + "Rows of recorded speech (" + (", ".join(_real_rows(res)) or "none in this run") + ") carry the "
                 "verdict: it is judged on them alone, clip by clip against FP32 (see *Agreement with FP32*).")
    parts.append("")
    parts.append(_size_section(res, h))
    parts.append(_speed_section(res, h))
    parts.append(_error_section(res, h))
    parts.append(paired_section(res, h, _table))
    parts.append(_targets_section(res, h))
    if res.get("calibration"):
        parts.append(_calibration_section(res, h))
    if res.get("explain"):
        parts.append(divergences.section(res, h))
    parts.append(quant_report.front_section(res, h))
    parts.append(quant_report.section(res, h))
    parts.append(_machine_section(res, h))
    return "\n".join(parts).rstrip() + "\n"


def _synthetic_sentence(res: dict) -> str:
    """What the synthetic rows are, with FP32's error range on them taken from
    this run (nothing when the run has none)."""
    real = recorded_rows(res)
    synthetic = [r for r in res["corpus"]["rows"] if r not in real]
    if not synthetic:
        return ""
    fp32 = next((e for e in res["engines"] if e["name"] == "FP32"), None)
    rates = [t["rate"] for r in synthetic
             if (t := (((fp32 or {}).get("errors_by_row") or {}).get("rows") or {}).get(r)) and t.get("rate") is not None]
    measured = (f" (FP32's error rate on them in this run: {100 * min(rates):.0f}-{100 * max(rates):.0f} %)"
                if rates else "")
    return (f"Rows of synthetic (espeak-ng) speech ({', '.join(sorted(synthetic))}){measured} measure how far a "
            "precision moves the output, not recognition quality, and stay out of the accuracy verdict. ")


def _real_rows(res: dict) -> list[str]:
    return sorted(recorded_rows(res))


def _article(name: str) -> dict:
    return ARTICLE.get(name, {})


def ratio_cell(r: dict | None) -> str:
    """A head-to-head latency ratio: median of per-clip ratios [p10-p90], summed time beside, and the
    bootstrap interval of the median (the run's noise on it) where there are 2 clips or more."""
    if not r or r.get("median_paired") is None:
        return "—"
    ci = (f"; median's 95 % CI {times(r['ci_low'])}–{times(r['ci_high'])}" if r.get("ci_low") is not None
          else "")
    return (f"{times(r['median_paired'])} [{times(r['p10_paired'])}–{times(r['p90_paired'])}] "
            f"(summed {times(r['of_totals'])}, {r['pairs']} calls){ci}")


def _size_section(res: dict, h: str) -> str:
    rows = []
    for e in _engines(res):
        a, r, mem = _article(e["name"]), res["ratios"].get(e["name"], {}), e["memory"]
        alone = mem.get("alone") or {}
        rows.append([e["name"], e["runtime"], mb(mem["disk_bytes"]), a.get("size", "—"),
                     times(r.get("compression")), mb(alone.get("peak_rss")), times(r.get("peak_alone")),
                     a.get("peak", "—"), mb(alone.get("working_bytes")), mb(mem.get("weights_bytes")),
                     mb(mem["resident_bytes"])])
    kind = next((e["memory"]["kind"] for e in _engines(res) if e["memory"]["kind"]), "cpu-rss")
    errs = [f"{e['name']}: {(e['memory'].get('alone') or {}).get('error')}" for e in _engines(res)
            if (e["memory"].get("alone") or {}).get("error")]
    clips = sorted({f"{a['clip']}" + (f", {a['clip_s']:.1f} s" if a.get("clip_s") is not None else "")
                    for a in ((e["memory"].get("alone") or {}) for e in _engines(res)) if a.get("clip")})
    on = f"on {'; '.join(clips)}" if clips else "on the run's first clip"
    note = ("Definitions: docs/memory.md. *Alone* = the engine loaded by itself in a fresh process "
            f"(`asr_quant.engines.alone`, runtime libraries included) and run twice {on}: *peak RSS* is the "
            "kernel's high-water mark of that process (VmHWM), what a machine must have to serve that engine "
            "alone (the figure to provision, and the closest to the article's peak); *working memory of a call* "
            "is the largest rise of RSS during a call above RSS just before it (sampled every 5 ms), for that "
            "clip. *Weights as stored* = bytes of the weight tensors at their stored types (torch parameters and "
            "buffers; ONNX initializers as the file stores them): not what the runtime holds, since ONNX "
            "Runtime may keep prepacked copies and an arena beside them. *Load growth in the shared run* is kept "
            "for the record: it depends on what loaded before." if kind == "cpu-rss"
            else "Peak = torch.cuda.max_memory_allocated during inference (after reset_peak_memory_stats); "
                 "NVML's device memory in use, which differs, is in results.json (nvml_used_bytes_max).")
    if errs:
        note += " Memory probe failures: " + "; ".join(errs) + "."
    return (f"{h}# Size and memory (article 5.1)\n\n" + _table(
        ["engine", "runtime", "size on disk", "article", "compression vs FP32", "alone: peak RSS (to provision)",
         "peak vs FP32", "article (GPU peak)", "alone: working memory of a call", "weights as stored",
         "shared run: load growth"], rows) + f"\n\n{note} MB = 10^6 bytes.\n")


def _speed_section(res: dict, h: str) -> str:
    rows, detail = [], []
    ort = res.get("ratios_ort") or {}
    for e in _engines(res):
        a, r = _article(e["name"]), res["ratios"].get(e["name"], {})
        lat = e["latency_ms"]
        rows.append([e["name"], num(lat["median"]), num(a.get("latency_ms")),
                     num(e["rtf"], "{:.3f}"), num(a.get("rtf"), "{:.3f}"),
                     num(e["throughput_clips_per_s"], "{:.2f}"),
                     ratio_cell(r.get("latency")), ratio_cell((ort.get(e["name"]) or {}).get("latency")),
                     times(_article_ratio(e["name"]))])
        st = e.get("stages")
        detail.append([e["name"], num(lat["median"]), num(lat["p90"]), num(lat["min"]), num(lat["max"]),
                       num(st and st["features_ms"]["median"], "{:.0f}"),
                       num(st and st["encoder_ms"]["median"], "{:.0f}"),
                       num(st and st["decoding_ms"]["median"], "{:.0f}"),
                       num(st and st["decoding_per_token_ms"], "{:.1f}"),
                       _shares(st)])
    pairs = [[k, ratio_cell(v)] for k, v in (res.get("pairs") or {}).items()]
    iso = res.get("isolated") or {}
    if iso.get("pairs"):
        pairs = [[k, c, ratio_cell(iso["pairs"].get(k))] for k, c in pairs]
    threads = (res.get("threads") or {}).get("summary", "")
    text = (f"{h}# Speed (article 5.2, batch 1)\n\n" + _table(
        ["engine", "latency median (ms)", "article mean (ms)", "RTF", "article", "throughput (clips/s)",
         "vs PyTorch FP32", "vs ORT-FP32 (same runtime)", "article vs FP32"], rows)
        + "\n\nRatios: the median of per-clip ratios over the same clips and runs, [p10–p90] of those ratios, "
          "and the ratio of summed times beside; the *median's 95 % CI* is the run's noise on that median "
          "(percentile interval of a seeded bootstrap over clips, 1000 resamples). Engines ran interleaved in one "
          "process, their order the next row of a balanced Latin square (Williams design) at every clip and run, "
          "so each engine runs in each position and after each other engine equally often; "
          f"threads: {threads}; no runtime spins while idle (ONNX Runtime "
          "allow_spinning=0, PyTorch OMP_WAIT_POLICY=PASSIVE). *vs PyTorch FP32* mixes runtime and precision "
          "(what the seed article compared); *vs ORT-FP32* is INT8 against the same exported graph in the same "
          "runtime: precision alone. RTF = total compute time / total audio time.\n\n")
    if pairs:
        head = ["A / B", "this run (shared process)"] + (["each engine in its own process"] if iso.get("pairs")
                                                          else [])
        text += f"{h}## Head to head\n\n" + _table(head, pairs) + "\n\n"
    text += (f"{h}## Where the time goes\n\n" + _table(
            ["engine", "median (ms)", "p90", "min", "max", "features (ms, median)", "encoder", "decoding",
             "decoding per token (ms)", "share feat/enc/dec"], detail)
             + "\n\nStage times come from the engine's own timings (peers report only the total).\n")
    return text


def _article_ratio(name: str):
    a, f = ARTICLE.get(name), ARTICLE["FP32"]
    return a["latency_ms"] / f["latency_ms"] if a else None


def _shares(st) -> str:
    if not st:
        return "—"
    s = st["share"]
    return "/".join("—" if s[k] is None else f"{100 * s[k]:.0f}%" for k in ("features", "encoder", "decoding"))


def _rows_in_order(res: dict) -> list[str]:
    order = {g: i for i, g in enumerate(ARTICLE_ROWS)}
    rows = list(res["corpus"]["rows"])
    return sorted(rows, key=lambda r: (_source_of(r) != "espeak-ng", order.get(_group_of(r), 99), r))


def _error_section(res: dict, h: str) -> str:
    eng = _engines(res)
    articled = [n for n in ("FP32", "FP16", "INT8") if any(e["name"] == n for e in eng)]
    header = ["row", "metric", "clips"] + [e["name"] for e in eng] + [f"article {n}" for n in articled]
    rows = []
    for row in _rows_in_order(res):
        cells, kind, clips = [], "—", "—"
        for e in eng:
            t = ((e.get("errors_by_row") or {}).get("rows") or {}).get(row)
            cells.append(pct(t and t["rate"]))
            if t:
                kind, clips = t["kind"], t["clips"]
        group = _group_of(row)
        label = f"{ARTICLE_ROWS.get(group, group)} — {_source_of(row)}"
        rows.append([label, kind, clips] + cells + [num(ARTICLE[n]["wer"].get(group), "{:.1f}") for n in articled])
    mean = [pct((e.get("errors_by_row") or {}).get("overall_mean")) for e in eng]
    rows.append(["**mean of rows**", "", ""] + mean + [num(ARTICLE[n]["wer"]["mean"], "{:.1f}") for n in articled])
    pooled = [pct(((e.get("errors_by_row") or {}).get("overall_pooled") or {}).get("rate")) for e in eng]
    rows.append(["pooled (all edits / all reference units)", "", ""] + pooled + ["" for _ in articled])
    sdi = []
    for row in _rows_in_order(res):
        for e in eng:
            t = ((e.get("errors_by_row") or {}).get("rows") or {}).get(row)
            if t:
                sdi.append([row, e["name"], t["kind"], pct(t["rate"]), t["substitutions"], t["deletions"],
                            t["insertions"], t["hits"], t["ref_len"], t["failed"]])
    unstable = {e["name"]: (e.get("errors_by_row") or {}).get("unstable_clips") for e in eng}
    unstable = {k: v for k, v in unstable.items() if v}
    text = (f"{h}# Error rate per language (article 5.3, %)\n\n" + _table(header, rows)
            + "\n\nWER for space-delimited languages, CER for Mandarin, Cantonese and Japanese, after the "
              "per-language normalization of `asr_quant.metrics`. The article's own mean (9.7 / 9.8 / 10.8) is "
              "not the mean of its rows (9.83 / 10.00 / 10.85).\n\n"
            + f"{h}## Substitutions, deletions, insertions\n\n"
            + _table(["row", "engine", "metric", "rate %", "S", "D", "I", "hits", "reference units", "failed clips"],
                     sdi) + "\n")
    if unstable:
        text += "\nClips whose text differed between runs: " + "; ".join(
            f"{k}: {', '.join(v)}" for k, v in unstable.items()) + "\n"
    return text


def targets(res: dict) -> list[dict]:
    """The INT8 targets (bench.targets.INT8_TARGETS), each with its measured
    value and verdict: the same table is printed and judged."""
    return _targets.judge(res)


def _targets_section(res: dict, h: str) -> str:
    rows = _targets.markdown_rows(targets(res))
    lines = [f"{h}# Targets of the default INT8 (benchmark goals, not tests)\n",
             f"Judged on this run, on {cpu_text(res['machine'])}: INT8's figures depend on the instruction set. "
             "A target whose row this run lacks is not judged.\n",
             _table(["target", "measured", "verdict"], rows), ""]
    r16 = res["ratios"].get("FP16")
    if r16:
        lines.append(f"FP16/FP32 latency: {times((r16.get('latency') or {}).get('median_paired'))}; "
                     f"INT8/FP32: {times((res['ratios'].get('INT8', {}).get('latency') or {}).get('median_paired'))}"
                     " (median of per-clip ratios).")
    r8 = res["ratios"].get("INT8") or {}
    if r8.get("stages_median"):
        s = r8["stages_median"]
        lines.append(f"INT8/FP32 by stage (medians): features {times(s['features_ms'])}, encoder "
                     f"{times(s['encoder_ms'])}, decoding {times(s['decoding_ms'])}, decoding per token "
                     f"{times(r8.get('decoding_per_token'))}.")
    for name, op in (res.get("op_profiles") or {}).items():
        if "error" in op:
            lines.append(f"ONNX Runtime operator profile of {name} failed: {op['error']}")
            continue
        for sess in ("encoder", "decoder"):
            top = ", ".join(f"{o['op']} {100 * o['share']:.0f}%" for o in op[sess]["ops"][:5])
            lines.append(f"{name} {sess}, time by operator (ONNX Runtime profiler, {op[sess]['total_ms']:.0f} ms "
                         f"in kernels): {top}.")
    prof = res.get("profiles") or {}
    if prof:
        lines.append("")
        lines.append("Profiles (cProfile, top functions by cumulative time): " + ", ".join(
            f"[{k}]({v})" for k, v in prof.items()) + ".")
    return "\n".join(lines) + "\n"


def op_profile_text(label: str, op: dict, clips: int) -> str:
    if "error" in op:
        return f"# {label}: {op['error']}\n"
    lines = [f"# {label}: ONNX Runtime operator profile over {clips} clip(s)"]
    for sess in ("encoder", "decoder"):
        lines += ["", f"## {sess}: {op[sess]['total_ms']:.1f} ms in kernels", "",
                  _table(["operator", "ms", "share", "calls"],
                         [[o["op"], f"{o['ms']:.1f}", f"{100 * o['share']:.1f}%", o["calls"]]
                          for o in op[sess]["ops"]])]
    return "\n".join(lines) + "\n"


def _calibration_section(res: dict, h: str) -> str:
    cal = res["calibration"]
    rows_order = [r for r in _rows_in_order(res)]
    header = ["INT8 variant", "calibration clips", "latency vs FP32", "latency median (ms)", "mean of rows %",
              "vs FP32 (points)"] + rows_order
    rows = []
    for v in cal["variants"]:
        s = v["summary"]
        e = s.get("errors_by_row") or {}
        rows.append([v["label"], v["calib_size"] if v["mode"] != "dynamic" else "—",
                     times((v["ratio"].get("latency") or {}).get("median_paired")), num(s["latency_ms"]["median"]),
                     pct(e.get("overall_mean")),
                     num(None if (v["ratio"].get("error_rate_delta") or {}).get("overall_mean") is None
                         else 100 * v["ratio"]["error_rate_delta"]["overall_mean"], "{:+.2f}")]
                    + [pct(((e.get("rows") or {}).get(r) or {}).get("rate")) for r in rows_order])
    notes = "\n".join(f"- {n}" for n in cal.get("notes", []))
    return (f"{h}# Calibration study: static vs dynamic INT8\n\n" + _table(header, rows)
            + f"\n\nEach variant was run interleaved with FP32 on the same {cal.get('clips', '')} clips "
              f"({cal['runs']} run(s) each); latency vs FP32 is from that pass. The main table's INT8 is the "
              "engine the app loads (its own quantization settings).\n"
            + (notes + "\n" if notes else ""))


def _machine_section(res: dict, h: str) -> str:
    m = res["machine"]
    lines = [f"{h}# Machine, versions, engines\n",
             f"- CPU: {cpu_text(m)} (level {(m.get('isa') or {}).get('level') or '?'}), {m['logical_cores']} logical / {m.get('physical_cores') or '?'} physical cores, "
             f"RAM {m['ram_gb']:.1f} GB, GPU: {m.get('gpu') or 'none'}, OS: {m.get('os', '')}",
             f"- threads: {res['threads']['summary']}",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in res["versions"].items() if v)]
    for e in res["engines"]:
        lines.append(f"- **{e['name']}** ({e['role']}): {e['runtime']}, {e['device']}, {e['threads']} threads, "
                     f"loaded in {e['load_s']:.1f} s. {e['details']}"
                     + (f" Unavailable: {e['load_error']}" if not e["available"] else "")
                     + (f" Errors: {'; '.join(e['errors'])}" if e["errors"] else "")
                     + (f" Warnings: {'; '.join(e['warnings'][:5])}" if e["warnings"] else ""))
    return "\n".join(lines) + "\n"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()
