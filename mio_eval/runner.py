"""The evaluation loop: capability check -> batches (length-sorted) -> store -> score -> metrics.json.

Knows nothing about Hydra: it takes a built task and adapter and typed settings, so it runs
the same from the CLI, the Python API and tests. Its parts live beside it: the batched model
call with OOM back-off and per-request retry in ``batching``, the pending samples of a resumed
run and the reruns it refuses in ``resume``, the ``predictions.jsonl`` line in ``predictions``,
and ``metrics.json`` in ``run_summary``; this module holds the settings, the loop (signals,
error budget, progress) and the order of the stages.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval import samples as _samples
from mio_eval.adapter import ModelAdapter, check_capabilities
from mio_eval.atomic import atomic_write_text
from mio_eval.batching import BatchSizer, generate_batch, is_out_of_memory
from mio_eval.errors import ConfigError, ErrorBudgetExceeded, Interrupted, Terminated
from mio_eval.predictions import generated_from, record
from mio_eval.prefetch import Prefetcher
from mio_eval.resume import Plan, changed_inputs, confinement, plan, refuse_changed, refuse_shrinking
from mio_eval.run_summary import metrics_record, model_provenance, now, package_versions, write_metrics
from mio_eval.store import PredictionStore
from mio_eval.tasks.base import Generated, Task
from mio_eval.types import Sample

# BatchSizer, is_out_of_memory (mio_eval.batching), Plan, plan (mio_eval.resume) and package_versions
# (mio_eval.run_summary) are re-exported: the data-parallel ranks and older callers import them from here.
__all__ = ["RunnerSettings", "evaluate", "package_versions", "STAGES", "BatchSizer", "Plan", "plan", "run_batches",
           "is_out_of_memory"]

STAGES = ("generate", "score", "all")


@dataclass(frozen=True)
class RunnerSettings:
    """``runner.*`` config. ``limit`` takes N samples: the first in dataset order
    (``limit_mode=first``), a seeded random subset (``random``) or one balanced over the data
    set's strata (``stratified``; the key is ``stratify_by`` or found in the metadata).
    ``retry_errors`` retries, on resume, the samples whose last attempt failed;
    ``regenerate_changed`` regenerates samples whose inputs changed since they were generated
    (otherwise such a run is refused).

    ``batch_size=auto`` starts at ``max_batch_size`` and halves on out-of-memory (any batch size
    backs off the same way, see ``BatchSizer``). ``distributed=auto`` runs data parallel when
    launched by torchrun / accelerate (``WORLD_SIZE`` > 1); ``nproc=N`` launches N local ranks
    itself through ``torch.distributed.run``; ``rank_timeout_s`` bounds how long a silent
    (killed, hung) rank goes unnoticed (``mio_eval.distributed``). ``prefetch`` prepares the next
    batch (media encoding, tokenisation) while the current one generates, for adapters with
    ``prepare`` (``mio_eval.prefetch``)."""

    batch_size: int = 8
    limit: int | None = None
    limit_mode: str = "first"
    limit_seed: int = 0
    stratify_by: str | None = None
    stage: str = "all"
    max_error_rate: float = 0.1
    resume: bool = True
    overwrite: bool = False
    progress: bool = True
    repeats: int = 1
    retry_errors: bool = True
    regenerate_changed: bool = False
    max_batch_size: int = 64
    distributed: str = "auto"
    nproc: int = 1
    rank_timeout_s: float = 120.0
    prefetch: bool = False

    def __post_init__(self) -> None:
        kinds = {"batch_size": (int, str), "max_batch_size": int, "distributed": str, "nproc": int,
                 "rank_timeout_s": (int, float), "limit": (int, type(None)), "limit_mode": str, "limit_seed": int,
                 "stratify_by": (str, type(None)), "stage": str, "max_error_rate": (int, float),
                 "resume": bool, "overwrite": bool, "progress": bool, "repeats": int, "retry_errors": bool,
                 "regenerate_changed": bool, "prefetch": bool}
        for key, kind in kinds.items():
            value = getattr(self, key)
            if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                raise ConfigError(f"runner.{key} has the wrong type: {value!r}")
        if self.stage not in STAGES:
            raise ConfigError(f"runner.stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if self.batch_size != "auto" and (isinstance(self.batch_size, str) or self.batch_size < 1):
            raise ConfigError(f"runner.batch_size must be >= 1 or auto, got {self.batch_size!r}")
        if self.max_batch_size < 1 or self.nproc < 1 or self.rank_timeout_s <= 0:
            raise ConfigError("runner.max_batch_size and runner.nproc must be >= 1, runner.rank_timeout_s > 0")
        if self.distributed not in ("auto", "off"):
            raise ConfigError(f"runner.distributed must be auto or off, got {self.distributed!r}")
        if self.repeats < 1:
            raise ConfigError(f"runner.repeats must be >= 1, got {self.repeats}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"runner.limit must be >= 1 or null, got {self.limit}")
        if self.limit_mode not in _samples.LIMIT_MODES:
            raise ConfigError(f"runner.limit_mode must be one of {', '.join(_samples.LIMIT_MODES)}, "
                              f"got {self.limit_mode!r}")
        if not 0.0 <= self.max_error_rate <= 1.0:
            raise ConfigError(f"runner.max_error_rate must be within [0, 1], got {self.max_error_rate}")


class _Progress:
    """tqdm bar on stderr with samples/s and ETA; silent when disabled."""

    def __init__(self, total: int, enabled: bool, desc: str) -> None:
        self.bar = None
        if enabled and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="sample", desc=desc, file=sys.stderr, dynamic_ncols=True)

    def update(self, n: int, errors: int) -> None:
        if self.bar is not None:
            self.bar.set_postfix(errors=errors, refresh=False)
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _StopRequest:
    """First SIGINT/SIGTERM: finish and save the batch in flight, then stop (``Interrupted``).
    A second SIGINT interrupts at once (``KeyboardInterrupt``), as a user pressing Ctrl-C twice
    expects. Only installed in the main thread (signals cannot be handled elsewhere)."""

    def __init__(self, *, immediate: bool = False, hint: str = "") -> None:
        self.signal: int | None = None
        self.immediate = immediate
        self.hint = hint
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        if self.immediate:  # scoring: nothing to finish, stop now with the resume hint
            error = Interrupted if signum == signal.SIGINT else Terminated
            raise error(f"stopped by {signal.Signals(signum).name} while scoring; {self.hint}")
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum
        print(f"\nmio-eval: {signal.Signals(signum).name} received: finishing the current batch, then stopping "
              "(press Ctrl-C again to stop at once)", file=sys.stderr)

    def __enter__(self) -> "_StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def run_batches(task: Task, adapter: ModelAdapter, work: Plan, sink: Any, settings: RunnerSettings, *,
                run_dir: Path, media_dir: Path, digests: Mapping[str, str], count_errors,
                sizer: BatchSizer, done: int) -> None:
    """Generate ``work.order`` batch by batch into ``sink`` (a PredictionStore or a shard file:
    ``append(records)`` writes whole lines and fsyncs). ``count_errors(n)`` adds n failures and
    returns the run's total; over the budget the run stops (ErrorBudgetExceeded). ``done``:
    samples of the run saved before (for the stop message)."""
    by_id = {s.id: s for s in work.order}
    progress = _Progress(len(work.order), settings.progress, f"{task.name}/{adapter.name}")
    saved, errors, index = done, 0, 0
    prefetch = Prefetcher(adapter, enabled=settings.prefetch)
    try:
        with _StopRequest() as stop:
            prefetch.submit([work.requests[s.id] for s in work.order[: sizer.size]])
            while index < len(work.order):
                batch_samples = work.order[index : index + sizer.size]
                index += len(batch_samples)
                batch = [work.requests[s.id] for s in batch_samples]
                started = time.perf_counter()
                prepared = prefetch.take(batch)
                prefetch.submit([work.requests[s.id] for s in work.order[index : index + sizer.size]])
                outputs = generate_batch(adapter, batch, media_dir=media_dir, sizer=sizer, prepared=prepared)
                per_sample = (time.perf_counter() - started) / len(batch)
                records = [record(task, by_id[r.sample_id], r, o, per_sample, run_dir, digests[r.sample_id])
                           for r, o in zip(batch, outputs)]
                for line in records:
                    if line["id"] in work.changed:
                        line["supersedes"] = "input changed"
                sink.append(records)
                saved += len(records)
                errors = count_errors(sum(1 for r in records if r["error"]))
                progress.update(len(records), errors)
                if errors > work.budget:
                    examples = "; ".join(sorted({r["error"] for r in records if r["error"]})[:3])
                    raise ErrorBudgetExceeded(
                        f"{errors} of {work.total} samples failed, over runner.max_error_rate="
                        f"{settings.max_error_rate} (e.g. {examples}). Finished samples are saved in "
                        f"{sink.predictions_path}; fix the cause and rerun the same command to resume"
                    )
                if stop.signal is not None and saved < work.total:
                    raise Interrupted(
                        f"stopped by {signal.Signals(stop.signal).name} after {saved} of {work.total} samples; "
                        f"they are saved in {sink.predictions_path}; rerun the same command to resume"
                    )
    finally:
        prefetch.close()
        progress.close()


def _generate(task: Task, adapter: ModelAdapter, samples: Sequence[Sample], store: PredictionStore,
              settings: RunnerSettings, digests: Mapping[str, str],
              refused: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """Generate the pending samples in this process; returns the batch-size summary."""
    work = plan(task, samples, store, settings, digests, refused, adapter=adapter)
    if not work.order:
        return None
    sizer = BatchSizer(settings)
    total = [work.errors]

    def count(n: int) -> int:
        total[0] += n
        return total[0]

    run_batches(task, adapter, work, store, settings, run_dir=store.run_dir, media_dir=store.media_dir,
                digests=digests, count_errors=count, sizer=sizer, done=len(samples) - len(work.order))
    return sizer.summary()


def _score(task: Task, samples: Sequence[Sample], store: PredictionStore) -> tuple[Any, list[Generated]]:
    missing = [s.id for s in samples if s.id not in store.done_ids]
    if missing:
        raise ConfigError(f"{len(missing)} of {len(samples)} samples have no prediction in "
                          f"{store.predictions_path} (first: {missing[0]}); run runner.stage=generate first")
    generated = [generated_from(sample, store.get(sample.id), store.run_dir) for sample in samples]
    hint = (f"predictions are saved in {store.predictions_path}; rerun the same command (or runner.stage=score) "
            "to score them")
    with _StopRequest(immediate=True, hint=hint):
        return task.score(generated, work_dir=store.run_dir / "scoring"), generated


def evaluate(
    task: Task,
    adapter: ModelAdapter,
    *,
    run_dir: str | Path,
    settings: RunnerSettings,
    fingerprint: str,
    run_info: Mapping[str, Any],
    data_roots: Sequence[str] | None = None,
    allow_outside_data: bool = False,
    on_start: Any = None,
) -> dict[str, Any] | None:
    """Generate (resuming), then score. Returns the metrics.json content, or None for
    ``stage=generate``.

    ``data_roots``: directories the data set's files must lie in (lexically); a sample whose
    media lie elsewhere fails without reaching the model, unless ``allow_outside_data``.
    ``on_start``: called once the data and scorers are found usable, before the run starts.
    """
    started_at, t0 = now(), time.perf_counter()
    check_capabilities(adapter, needs_inputs=task.input_modalities, produces=task.output_modality,
                       needs_loglikelihood=bool(getattr(task, "needs_loglikelihood", False)))
    from mio_eval.progress import enabled_within

    with enabled_within(settings.progress):
        return _evaluate(task, adapter, run_dir=run_dir, settings=settings, fingerprint=fingerprint,
                         run_info=run_info, data_roots=data_roots, allow_outside_data=allow_outside_data,
                         on_start=on_start, started_at=started_at, t0=t0)


def _evaluate(task: Task, adapter: ModelAdapter, *, run_dir, settings: RunnerSettings, fingerprint: str,
              run_info: Mapping[str, Any], data_roots, allow_outside_data: bool, on_start, started_at: str,
              t0: float) -> dict[str, Any] | None:
    available = task.samples()
    ids = [s.id for s in available]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))
        raise ConfigError(f"task {task.name!r} has duplicate sample id {dup!r}")
    samples, stratum = _samples.select(available, limit=settings.limit, mode=settings.limit_mode,
                                       seed=settings.limit_seed, stratify_by=settings.stratify_by)
    selection = {"limit": settings.limit if settings.limit is not None and settings.limit < len(available) else None,
                 "limit_mode": settings.limit_mode, "limit_seed": settings.limit_seed, "stratify_by": stratum}
    digests = {s.id: _samples.sample_digest(s) for s in samples}
    refused = confinement(samples, data_roots, allow_outside_data)
    preflight = getattr(task, "preflight", None)
    if settings.stage != "generate" and preflight is not None:
        preflight()
    if on_start is not None:
        on_start()
    run_dir = Path(run_dir).resolve()
    times: dict[str, float] = {}
    batching = None
    from mio_eval import distributed as _distributed

    group = _distributed.current(settings)
    if group is not None and not group.is_main:  # a data-parallel rank other than 0: generate its shard
        if settings.stage != "score":
            group.follow(task, adapter, samples, settings=settings, digests=digests, run_dir=run_dir)
        return None
    with (group.leading() if group is not None else _distributed.nullcontext()), PredictionStore(run_dir).open(
        fingerprint=fingerprint, run_info=run_info, resume=settings.resume, overwrite=settings.overwrite,
        create=settings.stage != "score", selection=selection,
    ) as store:
        refuse_shrinking(run_dir, {s.id for s in samples}, selection)
        # A data-parallel run killed mid-way leaves shards: they hold finished samples, whatever
        # the number of ranks now (one process included).
        _distributed.merge_shards(store, [s.id for s in samples])
        if settings.stage in ("generate", "all"):
            g0 = time.perf_counter()
            if group is not None:
                batching = group.lead(task, adapter, samples, store, settings=settings, digests=digests,
                                      refused=refused)
            else:
                batching = _generate(task, adapter, samples, store, settings, digests, refused)
            times["generate_s"] = round(time.perf_counter() - g0, 3)
        if settings.stage == "generate":
            return None
        changed = changed_inputs(samples, store, digests)
        if changed:
            refuse_changed(changed, len(samples), store)
        s0 = time.perf_counter()
        report, generated = _score(task, samples, store)
        times["score_s"] = round(time.perf_counter() - s0, 3)
        artifacts = store.write_artifacts(report.artifacts)  # the task's files, confined to run_dir
        atomic_write_text(run_dir / "scores.jsonl",
                          "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in report.per_sample))
        metrics = metrics_record(task=task, adapter=adapter, samples=samples, available=available, selection=selection,
                                 stratum=stratum, digests=digests, store=store, report=report, generated=generated,
                                 batching=batching, provenance=model_provenance(adapter, group, generated),
                                 artifacts=artifacts, settings=settings, fingerprint=fingerprint, run_info=run_info,
                                 started_at=started_at, t0=t0, times=times)
        write_metrics(run_dir, metrics)
        return metrics
