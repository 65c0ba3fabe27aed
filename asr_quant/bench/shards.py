"""Splitting a benchmark's clips into N deterministic shards, for Slurm arrays
(`--shard K/N`) and Ray actors, and the report's line naming each node.

A clip's shard depends on its id alone (SHA-1 of the id, modulo N), so shard
K of N is the same set on every machine whatever order or subset of the
corpus it was given (a filter such as an English-only model's keeps each
clip's shard), and the N shards are disjoint and together the whole corpus;
their sizes are equal on average, not exactly. Each
shard keeps the corpus's order; the clip's place in the whole corpus drives
its engine rotation (`run.interleave(positions=...)`), so a clip meets its
engines in the order it would in one run.
"""
from __future__ import annotations

import hashlib


class ShardError(ValueError):
    """A --shard or --merge that cannot work as asked; the message is for people."""


def parse(spec: str) -> tuple[int, int]:
    """'K/N' (1 <= K <= N) -> (K, N)."""
    k, sep, n = str(spec).partition("/")
    try:
        k_, n_ = int(k), int(n)
    except ValueError:
        k_ = n_ = 0
    if not sep or n_ < 1 or not 1 <= k_ <= n_:
        raise ShardError(f"--shard takes K/N with 1 <= K <= N, e.g. 1/4; got {spec!r}")
    return k_, n_


def _key(clip_id: str) -> str:
    return hashlib.sha1(clip_id.encode("utf-8")).hexdigest()


def shard_of(clip_id: str, n: int) -> int:
    """The shard (1..n) of one clip."""
    return 1 + int(_key(clip_id), 16) % n


def assign(ids: list[str], n: int) -> dict[str, int]:
    """clip id -> its shard (1..n)."""
    return {cid: shard_of(cid, n) for cid in ids}


def take(utts: list, k: int, n: int) -> list:
    """The utterances of shard k of n, in the given order."""
    owner = assign([u.id for u in utts], n)
    return [u for u in utts if owner[u.id] == k]


def split(utts: list, n: int) -> list[list]:
    """All n shards (some empty when there are fewer clips than shards)."""
    owner = assign([u.id for u in utts], n)
    return [[u for u in utts if owner[u.id] == k] for k in range(1, n + 1)]


def nodes_markdown(res: dict) -> str:
    """One line per shard: which node ran which clips, for a merged report."""
    nodes = res.get("nodes") or []
    if not nodes:
        return ""
    lines = [f"Merged from {len(nodes)} shard(s); every per-clip ratio pairs engines on the one node that ran "
             "that clip:"]
    for d in nodes:
        lines.append(f"- {d['name']}: shard {d.get('spec') or '?'}, {d['clips']} clip(s), {d['cpu']} "
                     f"({d['logical_cores']} logical cores), wall {d['wall_s']:.0f} s")
    return "\n".join(lines) + "\n"
