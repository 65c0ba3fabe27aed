"""`--shard K/N` + `--merge`: the shards of a run give the statistics of the
whole run. Fake engines (tests/fake_engines.py) keep it fast: their texts are
fixed per clip, their times are real sleeps."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr_quant.bench import cli, corpus, merge, shards
from asr_quant.engines import RawResult
from fake_engines import FakeEngine, fake_set

TEXTS = {f"en_{i}": t for i, t in enumerate(
    ["the cat sat on the mat", "a quick brown fox", "she sells sea shells", "good morning to you",
     "it is raining again", "where is the station", "please call me later", "one two three four"])}
WRONG = {"en_1", "en_4", "en_6"}  # INT8 drops the last word on these clips


class Scripted(FakeEngine):
    """Answers each clip's reference (or drops its last word on WRONG clips),
    and logs which clip it ran, to check the rotation."""

    def __init__(self, name, delay_s, wrong, log):
        super().__init__(name, delay_s=delay_s)
        self.wrong, self.log = wrong, log

    def _run(self, clip, language):
        import time

        time.sleep(self.delay_s)
        self.log.append((clip.name, self.info.name))
        text = TEXTS[clip.name]
        if clip.name in self.wrong:
            text = text.rsplit(" ", 1)[0]
        return RawResult(text=text, language="en", token_ids=list(range(len(text.split()))))


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "clips"
    root.mkdir()
    t = np.arange(8000) / 16000
    for name, text in TEXTS.items():
        sf.write(root / f"{name}.wav", (0.2 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)
        (root / f"{name}.txt").write_text(text, encoding="utf-8")
    return root


def _run(folder: Path, out: Path, log: list, *flags: str) -> dict:
    eng = fake_set(Scripted("FP32", 0.004, set(), log), Scripted("INT8", 0.002, WRONG, log),
                   Scripted("FP16", 0.003, {"en_1"}, log))
    argv = ["--model", "base", "--corpus", str(folder), "--runs", "2", "--warmup", "0", "--peers", "none",
            "--out", str(out), "--no-progress", "--no-memory-probe", *flags]
    args = cli.build_parser().parse_args(argv)
    utts, notes = cli.gather_corpus(args, str(out), lambda m: None)
    from asr_quant.bench.run import run_model

    return run_model("base", args, utts, notes, out, "cmd", "2026-01-01T00:00:00+00:00", lambda m: None,
                     cli._progress_factory(True), engine_set=eng)


def _orders(log: list) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for clip, name in log:
        out.setdefault(clip, []).append(name)
    return out


def test_shard_spec_and_assignment():
    for bad in ("0/2", "3/2", "2", "a/b", "1/0"):
        with pytest.raises(shards.ShardError, match="K/N"):
            shards.parse(bad)
    assert shards.parse("2/3") == (2, 3)
    utts = [corpus.Utterance(f"c{i}", "en", "en", "t", "p", "s") for i in range(11)]
    parts = shards.split(utts, 3)
    assert sorted(u.id for p in parts for u in p) == sorted(u.id for u in utts)  # disjoint, complete
    assert all(parts)
    assert [u.id for u in shards.take(list(reversed(utts)), 2, 3)] == [u.id for u in reversed(parts[1])]
    # a clip's shard is its own: a subset of the corpus keeps it
    assert [u.id for u in shards.take(utts[::2], 2, 3)] == [u.id for u in parts[1] if u in utts[::2]]


def test_two_shards_merged_equal_one_run(tmp_path, folder):
    whole_log, shard_log = [], []
    whole = _run(folder, tmp_path / "whole", whole_log)
    for k in (1, 2):
        _run(folder, tmp_path / f"s{k}", shard_log, "--shard", f"{k}/2")
    s1 = json.loads((tmp_path / "s1" / "results.json").read_text())
    assert 0 < s1["corpus"]["clips"] < len(TEXTS)
    assert cli.main(["--merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "m")]) == 0
    merged = json.loads((tmp_path / "m" / "results.json").read_text())
    # each clip met its engines in the same rotated order as in the whole run
    assert _orders(shard_log) == _orders(whole_log)
    # transcripts, identical shares, WER deltas and their bootstrap intervals: the same
    texts = lambda res: {n: [(r["clip"], r["run"], r["text"]) for r in v] for n, v in res["records"].items()}  # noqa: E731
    assert texts(merged) == texts(whole)
    assert merged["paired"] == whole["paired"]
    int8 = merged["paired"]["engines"]["INT8"]["rows"]["en (clips)"]
    assert int8["identical_clips"] == len(TEXTS) - len(WRONG) and int8["delta"] > 0
    assert [u["id"] for u in merged["corpus"]["utterances"]] == [u["id"] for u in whole["corpus"]["utterances"]]
    # latency: the shards are a different run on a shared machine, so their times are
    # not compared here (speed comes from benchmarks, not timed tests); every pair is
    # there, and the merge arithmetic on times is checked exactly in the next test
    a, b = whole["ratios"]["INT8"]["latency"], merged["ratios"]["INT8"]["latency"]
    assert a["pairs"] == b["pairs"] == 2 * len(TEXTS)
    md = (tmp_path / "m" / "results.md").read_text()
    assert "Merged from 2 shard(s)" in md and "shard 1/2" in md and "median's 95 % CI" in md


def test_merging_a_runs_own_shards_reproduces_every_figure(tmp_path, folder):
    """The merge arithmetic alone: the whole run's records cut in two by shard
    and merged give back its every statistic, latency included, exactly."""
    whole = _run(folder, tmp_path / "whole", [])
    parts = []
    for k in (1, 2):
        keep = {u.id for u in shards.take([corpus.Utterance(**u) for u in whole["corpus"]["utterances"]], k, 2)}
        part = json.loads(json.dumps(whole))
        part["records"] = {n: [r for r in v if r["clip"] in keep] for n, v in whole["records"].items()}
        part["corpus"]["utterances"] = [u for u in whole["corpus"]["utterances"] if u["id"] in keep]
        part["corpus"]["clips"] = len(keep)
        part["shard"]["spec"] = f"{k}/2"
        parts.append(part)
    m = merge.merge(list(reversed(parts)), "merge")
    for key in ("paired", "ratios", "pairs", "targets"):
        assert m[key] == whole[key], key
    for a, b in zip(m["engines"], whole["engines"]):
        assert a == b
    with pytest.raises(shards.ShardError, match="in two of the merged"):
        merge.merge([parts[0], parts[0]], "merge")
    bad = json.loads(json.dumps(parts[1]))
    bad["runs"] = 3
    with pytest.raises(shards.ShardError, match="runs per clip"):
        merge.merge([parts[0], bad], "merge")
    assert cli.main(["--shard", "3/2", "--out", str(tmp_path / "x")]) == 2
