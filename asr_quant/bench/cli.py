"""The benchmark CLI: the seed article's table, measured on this machine.

    python -m asr_quant.bench --model base --out bench_out
    python -m asr_quant.bench --quick            # 2 clips per row, 1 run
    python -m asr_quant.bench --corpus builtin --corpus ../shared/speech --calib-sizes 2,8,32

Every engine (FP32, FP16, INT8, and faster-whisper peers for Whisper models)
runs in this one process on the same decoded clips, interleaved clip by clip
(FP32, FP16, INT8, peers, FP32, ...), so that the drift of a shared machine
hits all of them alike; ratios to FP32 are taken within the run. Outputs:
results.json (every figure and every call), results.md (the article's layout
with its claims beside the measured figures), and plotly charts.

Talks only to the Engine interface; the model-family specifics (peers, INT8
variants for the calibration study) come from optional functions of the family package
(`engines.family_hook`), never from its internals.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shlex
import sys
from pathlib import Path

from ..audio import AudioError
from ..engines import EngineError
from ..settings import Settings
from . import corpus as _corpus
from . import docs, layouts, merge, paired, prompts, report, shards
from .run import BenchError, run_model, write_outputs

DEFAULT_PEERS = "float32,int8"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m asr_quant.bench",
        description="Measure FP32/FP16/INT8 (and faster-whisper peers) on the same clips, interleaved, "
                    "and print the seed article's table beside the measured one.")
    p.add_argument("--model", default=None,
                   help="base | tiny.en | CT2 Whisper folder | Fun-ASR-Nano id/folder; comma-separate to run "
                        "several in turn (default: ASRQ_MODEL or base)")
    p.add_argument("--corpus", action="append", default=None,
                   help="'builtin' (espeak-ng, made once and cached), 'prompts-es' (recorded Spanish telephone "
                        "prompts, Debian asterisk-core-sounds-es), a folder of audio + same-named .txt (or "
                        "manifest.tsv), a folder of prompts with a 'name: text' index (prompts.txt[.gz]), a Hugging Face "
                        "audio folder (metadata.csv/.jsonl), a Common Voice folder (test.tsv or validated.tsv + "
                        "clips/) or LibriSpeech (*.trans.txt); "
                        "repeat to combine (default: builtin)")
    p.add_argument("--language", default=None, help="language of folder clips whose name/folder doesn't say it")
    p.add_argument("--languages", default=None, help="only these languages, e.g. zh,en (zh includes zh-noisy)")
    p.add_argument("--engines", default="fp32,fp16,int8,ort-fp32",
                   help="precisions to load (default fp32,fp16,int8,ort-fp32: ORT-FP32 is the same-runtime "
                        "reference for INT8)")
    p.add_argument("--peers", default=DEFAULT_PEERS,
                   help="peer rows on the same weights (Whisper only): faster-whisper compute types (float32, "
                        "int8, ...) and torch-int8, openai-whisper, whispercpp-q8_0, whispercpp-f16, "
                        f"openvino-fp32, openvino-int8, openvino-int8-sq (docs/peers.md); or 'none' (default {DEFAULT_PEERS})")
    p.add_argument("--runs", type=int, default=3, help="timed runs per clip and engine (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up calls per engine (default 1)")
    p.add_argument("--threads", type=int, default=None, help="threads for torch, ONNX Runtime and CTranslate2")
    p.add_argument("--device", default=None, help="auto | cpu | cuda[:N]")
    p.add_argument("--cache-dir", default=None, help="where converted weights and the corpus are cached")
    p.add_argument("--out", default="bench_out", help="output folder (default bench_out)")
    p.add_argument("--quick", action="store_true", help="2 clips per row, 1 run: a smoke test")
    p.add_argument("--max-per-row", type=int, default=None, help="at most this many clips per row")
    p.add_argument("--every", type=int, default=1,
                   help="keep every Nth clip of each row of the built-in corpora (builtin, prompts-es; folders "
                        "are kept whole): a smaller corpus that still spans each row")
    p.add_argument("--calib-sizes", default=None,
                   help="calibration study: rebuild INT8 static with these calibration-set sizes (e.g. 2,8,32) "
                        "and dynamic, and compare (for the first --model only)")
    p.add_argument("--calib-runs", type=int, default=1, help="timed runs per clip in the calibration study")
    p.add_argument("--calib-max-per-row", type=int, default=None,
                   help="at most this many clips per row in the calibration study (default: all of the run's)")
    p.add_argument("--int8-plan", default=None, metavar="PLAN",
                   help="the plan of the run's own INT8 row, the one the targets judge: recipe (default), search "
                        "or blockwise (else ASRQ_INT8_PLAN)")
    p.add_argument("--int8-plans", default=None, metavar="PLAN[:BUDGET],...",
                   help="also run INT8 engines of these plans beside the set's own, e.g. 'search' or "
                        "'search:kl=0.002' (a plan's sensitivity table and search path go into the report)")
    p.add_argument("--rounded-weights", action="store_true",
                   help="also run a study row: PyTorch FP32 arithmetic on weights rounded to INT8's grid, so the "
                        "report splits INT8's distance from FP32 into what 8-bit weights alone cost and what its "
                        "activation quantization adds (its time and memory are FP32's)")
    p.add_argument("--explain", action="store_true",
                   help="explain every clip (at most 40 per engine) whose text differs from FP32's: first "
                        "differing token, its kind, the layer where the error grows most; summarized in results.md")
    p.add_argument("--profile", type=int, default=0, help="cProfile each engine on this many clips")
    p.add_argument("--docs", default=None, help="also write this markdown page (e.g. docs/benchmark.md)")
    p.add_argument("--report", default=None, metavar="RESULTS_JSON",
                   help="rebuild results.md and charts from a saved results.json, without running")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="run only shard K of N of the clips (fixed by clip id; e.g. a Slurm array task), each "
                        "clip's engines rotated as in the whole run; combine the shards with --merge")
    p.add_argument("--merge", nargs="+", default=None, metavar="DIR",
                   help="merge shards' results (folders or results.json files) into one results.json and "
                        "report in --out, every statistic recomputed on all their clips; runs nothing")
    p.add_argument("--ray", default=None, metavar="auto|local|ADDRESS",
                   help="shard the clips over a Ray cluster (auto: the running one; local: start one for this "
                        "run): one actor per node holds the engines and runs its clips interleaved and rotated; "
                        "the results merge into one report naming each node (docs/scale.md)")
    p.add_argument("--ray-nodes", type=int, default=None,
                   help="with --ray: this many actors (default: one per alive node)")
    p.add_argument("--no-memory-probe", action="store_true",
                   help="skip re-loading each engine alone in a fresh process to measure its own memory")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--isolated", action="store_true",
                   help="also time each engine alone in its own process on the same clips, to check that "
                        "sharing one process does not move the ratios")
    return p


def _progress_factory(disabled: bool):
    from tqdm import tqdm

    def make(total: int, desc: str):
        return tqdm(total=total, desc=desc, unit="call", disable=disabled, dynamic_ncols=True, file=sys.stderr)

    return make


def gather_corpus(args, cache_dir: str, log) -> tuple[list[_corpus.Utterance], list[str]]:
    sources = args.corpus or ["builtin"]
    utts: list[_corpus.Utterance] = []
    notes: list[str] = []
    for src in sources:
        if src == "builtin":
            c = _corpus.builtin(cache_dir)
            utts += _corpus.thin(c.test, args.every)
            notes += c.notes
        elif src == prompts.BUILTIN:
            found = _corpus.thin(prompts.builtin_es(), args.every)
            utts += found
            notes.append(prompts.note(found) + (f"; every {args.every}th prompt" if args.every > 1 else ""))
        elif prompts.is_prompt_folder(src):
            found = prompts.read_prompts(src, language=args.language)
            utts += found
            notes.append(f"{len(found)} recorded prompt(s) from the folder {Path(src).name} and its index")
        elif layouts.detect(src):
            found = layouts.read(src, args.language)
            utts += found
            notes.append(f"{len(found)} clip(s) from the {layouts.detect(src)} layout in {Path(src).name}")
        else:
            folder = _corpus.read_folder(src, args.language)
            utts += folder
            notes.append(f"{len(folder)} clip(s) from the folder {Path(src).name} (recorded speech as given)")
    langs = [x.strip() for x in args.languages.split(",")] if args.languages else None
    per_row = 2 if args.quick and args.max_per_row is None else args.max_per_row
    utts = _corpus.select(utts, langs, per_row)
    if not utts:
        raise BenchError("no clips left after --languages / --max-per-row")
    seen: dict[str, str] = {}
    for u in utts:
        if u.id in seen and seen[u.id] != u.source:
            raise BenchError(f"two clips are called {u.id!r}; rename one")
        seen[u.id] = u.source
    return utts, notes


def portable_args(argv: list[str], cwd: str | Path | None = None) -> list[str]:
    """The command's paths as a clean clone can run them: an absolute path
    inside the repository (the working folder) or beside it (e.g. the
    recordings folder ../shared/speech) becomes relative to it; others stay."""
    root = Path(cwd or Path.cwd()).resolve()

    def one(arg: str) -> str:
        key, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        if not value.startswith("/"):
            return arg
        path = Path(value).resolve()
        for base, prefix in ((root, ""), (root.parent, "../")):
            if path == base or base in path.parents:
                rel = prefix + str(path.relative_to(base)) if path != base else (prefix.rstrip("/") or ".")
                return f"{key}{eq}{rel}" if eq else rel
        return arg

    return [one(a) for a in argv]


def main(argv: list[str] | None = None) -> int:
    from ..engines.runtime_policy import prepare

    prepare()  # before anything imports torch
    args = build_parser().parse_args(argv)
    argv_list = sys.argv[1:] if argv is None else list(argv)
    command = "python -m asr_quant.bench " + shlex.join(portable_args(argv_list))
    log = (lambda m: print(m, file=sys.stderr, flush=True))
    if args.quick:
        args.runs = 1
    try:
        if args.report:
            res = json.loads(Path(args.report).read_text(encoding="utf-8"))
            if res.get("records"):  # pure functions of the records: recomputed by this version's code
                res["paired"] = paired.from_results(res)
                res["targets"] = report.targets(res)
            out = Path(args.out) if args.out != "bench_out" else Path(args.report).parent
            write_outputs(res, out)
            if args.docs:
                docs.write_docs(Path(args.docs), [res], res["command"], res["date"])
            print(report.results_markdown(res))
            return 0
        if args.merge:
            res = merge.merge(merge.load(args.merge), command)
            write_outputs(res, Path(args.out))
            if args.docs:
                docs.write_docs(Path(args.docs), [res], res["command"], res["date"])
            print(report.results_markdown(res))
            log(f"wrote {Path(args.out) / 'results.json'} and {Path(args.out) / 'results.md'}")
            return 0
        if args.shard:
            shards.parse(args.shard)  # a bad spec fails before any model loads
        if args.runs < 1 or args.warmup < 0:
            raise BenchError("--runs must be >= 1 and --warmup >= 0")
        settings = Settings.from_env()
        models = [m.strip() for m in (args.model or settings.model).split(",") if m.strip()]
        cache_dir = args.cache_dir or settings.cache_dir
        utts, notes = gather_corpus(args, cache_dir, log)
        date = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        results = []
        progress = _progress_factory(args.no_progress)
        for model in models:
            out = Path(args.out) / report.slug(model) if len(models) > 1 else Path(args.out)
            if args.ray:
                from . import ray_run  # lazy: ray is optional

                res = ray_run.run_model_ray(model, args, utts, notes, out, command, date, log)
            else:
                res = run_model(model, args, utts, notes, out, command, date, log, progress)
            results.append(res)
            print(report.results_markdown(res))
            log(f"wrote {out / 'results.json'}, {out / 'results.md'} and charts")
        if args.docs:
            docs.write_docs(Path(args.docs), results, command, date)
            log(f"wrote {args.docs}")
        return 0
    except (BenchError, _corpus.CorpusError, EngineError, AudioError, shards.ShardError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


