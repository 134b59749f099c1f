"""Data-parallel evaluation on torchrun / accelerate ranks: shard, generate, merge, score once.

Launch with ``torchrun --nproc-per-node N -m mio_eval ...``, ``accelerate launch -m mio_eval ...``
or ``mio-eval ... runner.nproc=N`` (which calls ``torch.distributed.run``'s elastic API in
process, ``launch`` below). Every rank runs the same command; with ``WORLD_SIZE`` > 1 (and
``runner.distributed=auto``) the runner hands generation to this module:

* rank 0 owns the run dir (its lock, ``run.json``, ``predictions.jsonl``). It first merges the
  shards a killed run left behind, then plans the pending samples and deals them to the ranks,
  longest request first to the least-loaded rank (greedy LPT on ``Request.size()``), so the
  ranks finish together; the plan is published in the launcher's TCPStore.
* each rank generates its samples into its own append-only shard ``shards/rank-<r>-<uuid>.jsonl``
  (the records and the fsync-per-batch discipline of ``predictions.jsonl``) and writes the media
  it makes; shards are keyed by sample id, never by rank, so a run killed at any point resumes
  with any number of ranks, losing and duplicating nothing (``merge_shards``).
* rank 0 waits for every rank, merges the shards into ``predictions.jsonl`` in the order a single
  process writes them (longest first, ties in dataset order), deletes them, and scores once: the
  merged predictions, ``scores.jsonl`` and ``metrics.json`` equal a one-process run's. The lines
  are placed by the plan rank 0 dealt, each rank vouching for its shard (``ShardWriter.voucher``)
  and rank 0 using its own shard's lines from memory (``merge_shards``'s ``dealt``/``vouched``/``held``).

Fail fast, never hang: a watchdog thread per rank beats a heartbeat counter in the store and
watches the others'. A rank that raises posts its error (one line: rank and reason) and exits
non-zero; a rank that is killed stops beating. Either way every other rank prints the failing
rank and its error in one line and exits 1 within ``runner.rank_timeout_s`` (at once for a
raise). Under torchrun the elastic agent also stops the job when a worker dies. Finished batches
stay in the shards for the next run. No collective of ``torch.distributed`` is used: every wait
is a poll of the store that also watches for failures.

References: torchrun and its elastic agent, https://pytorch.org/docs/stable/elastic/run.html;
c10d ``env://`` rendezvous and ``TCPStore``, https://pytorch.org/docs/stable/distributed.html;
lm-eval's data-parallel ``accelerate launch`` (EleutherAI/lm-evaluation-harness,
``lm_eval/models/huggingface.py``), whose ranks pad their shards and gather through collectives.
"""

from __future__ import annotations

import atexit
import contextlib
import heapq
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from mio_eval.errors import ConfigError, Interrupted, MioEvalError, RunFailed, Terminated
from mio_eval.shards import ShardWriter, merge_provenance, merge_shards, read_shard

__all__ = ["current", "balance", "merge_shards", "read_shard", "ShardWriter", "Group", "merge_provenance",
           "launch", "nullcontext", "is_worker"]

nullcontext = contextlib.nullcontext
_POLL_S = 0.05
_GROUP: "Group | None" = None


def is_worker() -> bool:
    """True inside a process launched as one rank of several (torchrun, accelerate, runner.nproc)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def current(settings: Any) -> "Group | None":
    """The process's rank group for the next evaluation, or None for a one-process run. Every rank
    calls this once per evaluation (a suite runs several), which keeps their key spaces in step."""
    global _GROUP
    if settings.distributed == "off" or not is_worker():
        return None
    if _GROUP is None:
        _GROUP = Group.connect(timeout_s=float(settings.rank_timeout_s))
    _GROUP.begin()
    return _GROUP


# -- planning --------------------------------------------------------------------------------

def balance(sizes: Sequence[float], world: int) -> list[list[int]]:
    """Deal items (indices into ``sizes``, given longest first) to ``world`` ranks: each to the
    least-loaded rank (ties: lowest rank), the greedy longest-processing-time rule. Each rank's
    list keeps the input order.

    >>> balance([5, 4, 3, 3, 1], 2)
    [[0, 3], [1, 2, 4]]
    """
    heap = [(0.0, r) for r in range(world)]
    shards: list[list[int]] = [[] for _ in range(world)]
    for index, size in enumerate(sizes):
        load, rank = heapq.heappop(heap)
        shards[rank].append(index)
        heapq.heappush(heap, (load + max(float(size), 1.0), rank))
    return shards


# -- the rank group --------------------------------------------------------------------------

class Group:
    """This process's place among the ranks, their shared store and the watchdog."""

    def __init__(self, store: Any, rank: int, world: int, timeout_s: float) -> None:
        self.store, self.rank, self.world, self.timeout_s = store, rank, world, timeout_s
        self.is_main = rank == 0
        self.ns = ""
        self._count = 0
        self._failed_here = False
        self._stopped = threading.Event()
        self._provenance: list[Mapping[str, Any]] = []
        self._held: dict[str, list[bytes]] = {}  # rank 0's own shard lines (ShardWriter.lines)
        self._watchdog = threading.Thread(target=self._watch, name="mio-eval-watchdog", daemon=True)

    @classmethod
    def connect(cls, *, timeout_s: float) -> "Group":
        """Join the ranks through the ``env://`` rendezvous torchrun / accelerate set up (the
        agent's TCPStore when there is one), put this rank on ``LOCAL_RANK``'s GPU."""
        from datetime import timedelta

        import torch
        import torch.distributed as dist

        try:
            store, rank, world = next(dist.rendezvous("env://", timeout=timedelta(seconds=timeout_s)))
        except (RuntimeError, ValueError, OSError) as exc:
            raise ConfigError(f"cannot join the other ranks (env:// rendezvous): {' '.join(str(exc).split())}") from None
        store.set_timeout(timedelta(seconds=timeout_s))
        run = f"mio_eval/{os.environ.get('TORCHELASTIC_RUN_ID', 'run')}/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/"
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        group = cls(dist.PrefixStore(run, store), rank, world, timeout_s)
        group.store.add(f"hb/{rank}", 1)  # joined: from now on a silent rank is a dead one
        group._watchdog.start()
        atexit.register(group.close)
        return group

    def begin(self) -> None:
        self._count += 1
        self.ns = f"eval{self._count}/"

    def close(self) -> None:
        """At a normal exit: tell the others this rank is gone on purpose, stop the watchdog."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        with contextlib.suppress(Exception):
            self.store.set(f"exit/{self.rank}", "1")

    # failures --------------------------------------------------------------------------
    def _die(self, message: str) -> None:
        print(f"mio-eval: error: {message}", file=sys.stderr, flush=True)
        os._exit(1)

    def _failure(self) -> str | None:
        if self.store.add("nfail", 0) == 0:
            return None
        for r in range(self.world):
            if self.store.check([f"failed/{r}"]):
                return self.store.get(f"failed/{r}").decode("utf-8", "replace")
        return None

    def post_failure(self, exc: BaseException) -> MioEvalError:
        """Publish this rank's error; returns the error to raise (its message names the rank)."""
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, (Interrupted, Terminated)):  # stopped from outside: not the root cause
            return type(exc)(f"rank {self.rank} of {self.world} {reason}")
        if not isinstance(exc, MioEvalError):
            reason = f"{type(exc).__name__}: {reason}"
        message = f"rank {self.rank} of {self.world} failed: {reason}"
        self._failed_here = True
        with contextlib.suppress(Exception):
            self.store.set(f"failed/{self.rank}", message)
            self.store.add("nfail", 1)
        error = type(exc)(message) if isinstance(exc, MioEvalError) else RunFailed(message)
        with contextlib.suppress(Exception):  # torchrun's summary names the root-cause rank with it
            from torch.distributed.elastic.multiprocessing.errors import ErrorHandler

            ErrorHandler().record_exception(error)
        return error

    def _watch(self) -> None:
        interval = min(1.0, self.timeout_s / 10)
        seen = {r: (-1, time.monotonic()) for r in range(self.world) if r != self.rank}
        while not self._stopped.wait(interval):
            try:
                self.store.add(f"hb/{self.rank}", 1)
                failure = self._failure()
                if failure and not self._failed_here:
                    self._die(f"stopping rank {self.rank} of {self.world} (its finished batches are saved): {failure}")
                now = time.monotonic()
                for r, (beats, since) in list(seen.items()):
                    current_beats = self.store.add(f"hb/{r}", 0)
                    if current_beats != beats:
                        seen[r] = (current_beats, now)
                    # A rank not beating yet has not joined (the rendezvous times out on that).
                    elif current_beats and now - since > self.timeout_s and not self.store.check([f"exit/{r}"]):
                        self._die(f"rank {r} of {self.world} stopped responding for {self.timeout_s:g} s (killed or "
                                  f"hung; runner.rank_timeout_s); stopping rank {self.rank}, finished batches are saved")
            except Exception as exc:  # noqa: BLE001 - the store is gone: its host (rank 0 / the agent) died
                if self._stopped.is_set():
                    return
                self._die(f"rank {self.rank} of {self.world} lost contact with the other ranks "
                          f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); finished batches are saved")

    def _wait(self, ready, *, waiting_for: Sequence[int], what: str) -> None:
        """Poll until ``ready()``; raise when a rank failed or exited without doing its part."""
        while not ready():
            failure = self._failure()
            if failure:
                raise RunFailed(failure)
            for r in waiting_for:
                if self.store.check([f"exit/{r}"]):
                    raise RunFailed(f"rank {r} of {self.world} exited before {what}")
            time.sleep(_POLL_S)

    # the protocol ----------------------------------------------------------------------
    @contextlib.contextmanager
    def leading(self) -> Iterator[None]:
        """Rank 0's run: an error before the plan is published reaches the other ranks, which
        raise it too (a suite then goes on to its next task on every rank)."""
        try:
            yield
        except BaseException as exc:
            if not self.store.check([self.ns + "plan"]):
                code = exc.exit_code if isinstance(exc, MioEvalError) else 1
                self.store.set(self.ns + "plan", json.dumps({"error": " ".join(str(exc).split()), "exit_code": code}))
            raise

    def follow(self, task, adapter, samples, *, settings, digests, run_dir: Path) -> None:
        """A rank other than 0: load the model, wait for the plan, generate its shard, report.
        The model loads while rank 0 loads its own and plans (rank 0 loads before rendering the
        requests), never after: waiting for the plan first made the two loads run one after the
        other. (Should the plan leave this rank nothing to do, the load was in vain.)"""
        from mio_eval.adapter import ensure_loaded

        try:
            ensure_loaded(adapter)
        except BaseException as exc:
            raise self.post_failure(exc) from exc
        key = self.ns + "plan"
        self._wait(lambda: self.store.check([key]), waiting_for=[0], what="publishing the plan")
        plan = json.loads(self.store.get(key))
        if "error" in plan:
            raise (ConfigError if plan["exit_code"] == 2 else RunFailed)(plan["error"])
        self._report(self._work(task, adapter, samples, plan, settings, digests, run_dir), adapter,
                     bool(plan["ranks"][self.rank]))

    def _report(self, work: tuple[Any, Any], adapter, worked: bool) -> None:
        batching, shard = work  # the batch sizes, the shard's voucher (ShardWriter.voucher)
        provenance = dict(adapter.provenance()) if worked else None
        self.store.set(self.ns + f"result/{self.rank}",
                       json.dumps({"batching": batching, "provenance": provenance, "shard": shard}))
        self.store.add(self.ns + "done", 1)

    def lead(self, task, adapter, samples, store, *, settings, digests, refused) -> dict[str, Any] | None:
        """Rank 0 (the runner has merged a killed run's shards): plan, publish, generate its shard, wait, merge, report
        the batch sizes (as ``runner._generate``)."""
        from mio_eval.runner import plan as make_plan

        work = make_plan(task, samples, store, settings, digests, refused, adapter=adapter)
        dealt = balance([work.requests[s.id].size() for s in work.order], self.world)
        ranks = [[work.order[i].id for i in indices] for indices in dealt]
        self.store.add(self.ns + "errors", work.errors)
        self.store.set(self.ns + "plan", json.dumps({
            "ranks": ranks, "changed": sorted(work.changed), "total": work.total, "budget": work.budget,
            "done": work.total - len(work.order)}))
        if not work.order:
            self._provenance = [dict(adapter.provenance())]
            return None
        plan = json.loads(self.store.get(self.ns + "plan"))
        self._report(self._work(task, adapter, samples, plan, settings, digests, store.run_dir), adapter,
                     bool(ranks[0]))
        others = [r for r in range(1, self.world)]
        self._wait(lambda: self.store.add(self.ns + "done", 0) >= self.world, waiting_for=others,
                   what="finishing its shard")
        results = [json.loads(self.store.get(self.ns + f"result/{r}")) for r in range(self.world)]
        # Placed by the plan, no id looked up; a shard its rank vouched for is not read back for checks.
        vouched = {r["shard"]["name"]: r["shard"]["bytes"] for r in results if r.get("shard")}
        merge_shards(store, [s.id for s in work.order], dealt=dealt, vouched=vouched, held=self._held)
        self._held = {}
        self._provenance = [r["provenance"] for r in results if r["provenance"] is not None]
        summaries = [r["batching"] for r in results if r["batching"] is not None]
        if not summaries:
            return None
        return {"requested": summaries[0]["requested"], "used": min(s["used"] for s in summaries),
                "oom_retries": sum(s["oom_retries"] for s in summaries)}

    def provenance(self, adapter) -> dict[str, Any]:
        return merge_provenance(self._provenance) if self._provenance else dict(adapter.provenance())

    def _work(self, task, adapter, samples, plan, settings, digests, run_dir: Path) -> tuple[Any, Any]:
        """Generate this rank's samples into its shard; a failure is published, then raised.
        Returns the batch-size summary and the shard's voucher (None, None with nothing to do)."""
        from mio_eval.adapter import ensure_loaded
        from mio_eval.runner import BatchSizer, Plan, run_batches

        mine = plan["ranks"][self.rank]
        self._held = {}
        if not mine:
            return None, None
        try:
            by_id = {s.id: s for s in samples}
            order = [by_id[i] for i in mine]
            ensure_loaded(adapter)  # before rendering: a task may count tokens with the model's tokenizer
            requests = {s.id: task.request(s) for s in order}
            work = Plan(order=order, requests=requests, changed=set(plan["changed"]) & set(mine), errors=0,
                        total=plan["total"], budget=plan["budget"])
            sizer = BatchSizer(settings)
            with ShardWriter(run_dir, self.rank, keep=self.is_main) as sink:  # rank 0 merges its own from memory
                run_batches(task, adapter, work, sink, settings, run_dir=run_dir, media_dir=run_dir / "media",
                            digests=digests, count_errors=lambda n: self.store.add(self.ns + "errors", n),
                            sizer=sizer, done=plan["done"])
            self._held = {sink.predictions_path.name: sink.lines} if self.is_main else {}
            return sizer.summary(), sink.voucher(mine)
        except BaseException as exc:
            raise self.post_failure(exc) from exc


# -- launching -------------------------------------------------------------------------------

def launch(overrides: Sequence[str], *, nproc: int) -> int:
    """``mio-eval ... runner.nproc=N``: run the same command as N local ranks through
    ``torch.distributed.run``'s elastic API (``elastic_launch``; on a multi-node Slurm
    allocation, one agent per node meeting at the first node, via submitit's job environment).
    Returns 0, or prints the failing rank and its error in one line and returns 1."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    nodes, node_rank, master = 1, 0, "localhost"
    with contextlib.suppress(Exception):
        import submitit

        env = submitit.JobEnvironment()
        if env.num_nodes > 1:
            nodes, node_rank, master = env.num_nodes, env.node, env.hostnames[0]
    args = [a for a in overrides if a.split("=", 1)[0].lstrip("+") != "runner.nproc"]
    # torchrun --standalone on one node (c10d rendezvous on a free port); on several nodes the
    # agents meet at the first node's c10d endpoint.
    config = LaunchConfig(min_nodes=nodes, max_nodes=nodes, nproc_per_node=nproc, run_id=f"mio-eval-{uuid.uuid4().hex[:8]}",
                          rdzv_backend="c10d", rdzv_endpoint=f"{master}:{29400 if nodes > 1 else 0}",
                          max_restarts=0, monitor_interval=0.1, start_method="spawn")
    env_cmd = [sys.executable, "-m", "mio_eval", *args]
    try:
        elastic_launch(config, entrypoint=env_cmd[0])(*env_cmd[1:])
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        how = f"exit code {failure.exitcode}" if failure.exitcode >= 0 else failure.signal_name()
        message = " ".join(str(failure.message).split())
        print(f"mio-eval: error: rank {rank} of {nodes * nproc} failed ({how}): {message}", file=sys.stderr)
        return 1
    return 0
