"""The evaluation loop: capability check -> batches (length-sorted) -> store -> score -> metrics.json.

Knows nothing about Hydra: it takes a built task and adapter and typed settings, so it runs
the same from the CLI, the Python API and tests.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from mio_eval import samples as _samples
from mio_eval.adapter import ModelAdapter, check_capabilities, ensure_loaded, output_summary
from mio_eval.atomic import atomic_write_json, atomic_write_text
from mio_eval.errors import ConfigError, ErrorBudgetExceeded, Interrupted, MediaError, RunFailed, Terminated
from mio_eval.store import PredictionStore
from mio_eval.tasks.base import Generated, InvalidOutput, Task
from mio_eval.types import Output, Request, Sample, part_to_json

__all__ = ["RunnerSettings", "evaluate", "package_versions", "STAGES", "BatchSizer", "Plan", "plan", "run_batches",
           "is_out_of_memory"]

STAGES = ("generate", "score", "all")
_VERSIONED = ("mio-eval", "torch", "transformers", "openai-whisper", "jiwer", "pocketsphinx", "hydra-core",
              "numpy", "scipy", "soundfile", "pycocoevalcap")


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
    (killed, hung) rank goes unnoticed (``mio_eval.distributed``)."""

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

    def __post_init__(self) -> None:
        kinds = {"batch_size": (int, str), "max_batch_size": int, "distributed": str, "nproc": int,
                 "rank_timeout_s": (int, float), "limit": (int, type(None)), "limit_mode": str, "limit_seed": int,
                 "stratify_by": (str, type(None)), "stage": str, "max_error_rate": (int, float),
                 "resume": bool, "overwrite": bool, "progress": bool, "repeats": int, "retry_errors": bool,
                 "regenerate_changed": bool}
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


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _relative_media(output: Output, run_dir: Path) -> dict[str, Any]:
    data = output.to_json()
    for part in data["media"]:
        path = Path(part["path"])
        if path.is_absolute() and path.is_relative_to(run_dir):
            part["path"] = str(path.relative_to(run_dir))
    return data


def _absolute_media(data: Mapping[str, Any], run_dir: Path) -> Output:
    """The stored output with media paths made absolute. Media must lie inside the run dir (the
    runner stores them relative to it): a path leading elsewhere, as in a tampered or replayed
    predictions file, raises MediaError, which fails that sample."""
    output = Output.from_json(data)
    media = []
    for part in output.media:
        path = Path(part.path)
        full = (path if path.is_absolute() else run_dir / path).resolve()
        if not full.is_relative_to(run_dir):
            raise MediaError(f"media path outside the run directory: {part.path}")
        media.append(type(part)(**{**vars(part), "path": str(full)}))
    return Output(**{**vars(output), "media": tuple(media)})


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA (or other accelerator) out-of-memory, or host ``MemoryError``."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


class BatchSizer:
    """The batch size of a run: ``runner.batch_size`` (``auto``: ``runner.max_batch_size``),
    halved whenever a batch runs out of memory and remembered for the rest of the run, as
    lm-eval's ``--batch_size auto`` (accelerate ``find_executable_batch_size``) finds the largest
    batch that fits on the first, longest, batches."""

    def __init__(self, settings: "RunnerSettings") -> None:
        self.requested = settings.batch_size
        self.size = settings.max_batch_size if settings.batch_size == "auto" else int(settings.batch_size)
        self.oom_retries = 0

    def shrink(self, failed: int) -> None:
        self.size = max(1, min(self.size, failed // 2))
        self.oom_retries += 1
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def summary(self) -> dict[str, Any]:
        return {"requested": self.requested, "used": self.size, "oom_retries": self.oom_retries}


def _generate_batch(adapter: ModelAdapter, batch: Sequence[Request], media_dir: Path,
                    sizer: BatchSizer | None = None) -> list[Output]:
    """Run one batch. Out of memory: halve the batch (remembered in ``sizer``) and run the halves,
    down to one request, which then fails with the reason. Another exception: retry request by
    request to isolate the culprit."""
    try:
        outputs = adapter.generate(batch, media_dir=media_dir)
        if len(outputs) != len(batch):
            raise RuntimeError(f"adapter returned {len(outputs)} outputs for {len(batch)} requests")
        return list(outputs)
    except Exception as batch_exc:  # noqa: BLE001 - any backend failure becomes per-sample data
        if is_out_of_memory(batch_exc) and sizer is not None:
            if len(batch) == 1:
                sizer.shrink(1)
                return [Output.failure(f"out of memory at batch size 1: {type(batch_exc).__name__}: {batch_exc}")]
            sizer.shrink(len(batch))
            outputs, rest = [], list(batch)
            while rest:  # the size may shrink again inside: re-read it for every part
                part, rest = rest[: sizer.size], rest[sizer.size :]
                outputs += _generate_batch(adapter, part, media_dir, sizer)
            return outputs
        if len(batch) == 1:
            return [Output.failure(f"{type(batch_exc).__name__}: {batch_exc}")]
    outputs = []
    for request in batch:
        try:
            single = list(adapter.generate([request], media_dir=media_dir))
            if len(single) != 1:
                raise RuntimeError(f"adapter returned {len(single)} outputs for 1 requests")
            outputs.append(single[0])
        except Exception as exc:  # noqa: BLE001
            outputs.append(Output.failure(f"{type(exc).__name__}: {exc}"))
    return outputs


def _record(task: Task, sample: Sample, request: Request, output: Output, seconds: float, run_dir: Path,
            digest: str | None = None) -> dict:
    prediction, error = None, output.error
    if error is None:
        try:
            prediction = task.prediction(sample, output)
        except InvalidOutput as exc:
            error = f"invalid output: {exc}"
        except Exception as exc:  # noqa: BLE001 - an extraction bug must not lose the sample
            error = f"prediction failed: {type(exc).__name__}: {exc}"
    if isinstance(prediction, str) and output.media and error is None:
        path = Path(prediction)
        if path.is_absolute() and path.is_relative_to(run_dir):
            prediction = str(path.relative_to(run_dir))
    return {
        "id": sample.id,
        "prompt": [part_to_json(p) for p in request.parts],
        "output": _relative_media(output, run_dir),
        "prediction": prediction,
        "error": error,
        "time_s": round(seconds, 6),
        "input_digest": digest,
    }


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


def _changed_inputs(samples: Sequence[Sample], store: PredictionStore, digests: Mapping[str, str]) -> list[str]:
    """Ids whose stored prediction was made from other inputs than the data holds now."""
    changed = []
    for s in samples:
        record = store.get(s.id)
        if record is not None and record.get("input_digest") not in (None, digests[s.id]):
            changed.append(s.id)
    return changed


def _refuse_changed(changed: Sequence[str], total: int, store: PredictionStore) -> None:
    raise ConfigError(
        f"{len(changed)} of {total} samples changed since they were generated in {store.run_dir} (first: "
        f"{changed[0]}): their inputs (text or media content) differ; use runner.regenerate_changed=true to "
        "generate them again, or runner.overwrite=true to start over"
    )


@dataclass
class Plan:
    """What a generate stage must do: ``order`` = pending samples, longest request first (as
    lm-eval: padding waste is smallest and an OOM shows up at once), ``errors`` = failed samples
    kept as they are, ``changed`` = ids regenerated because their inputs changed."""

    order: list[Sample]
    requests: dict[str, Request]
    changed: set[str]
    errors: int
    total: int
    budget: float


def plan(task: Task, samples: Sequence[Sample], store: PredictionStore, settings: RunnerSettings,
         digests: Mapping[str, str], refused: Mapping[str, str] | None = None, *,
         adapter: ModelAdapter | None = None) -> Plan:
    """The pending samples; samples whose media lie outside the data roots are stored as
    failures here and never reach the model. With work to do, ``adapter`` is loaded before the
    requests are rendered: a task may count prompt tokens with the model's tokenizer (MMLU's
    context fitting)."""
    refused = refused or {}
    changed = set(_changed_inputs(samples, store, digests))
    if changed and not settings.regenerate_changed:
        _refuse_changed(sorted(changed, key=[s.id for s in samples].index), len(samples), store)

    def wanted(s: Sample) -> bool:
        record = store.get(s.id)
        if record is None or s.id in changed:
            return True
        return bool(record["error"]) and settings.retry_errors and s.id not in refused

    pending = [s for s in samples if wanted(s)]
    pending_ids = {p.id for p in pending}
    errors = sum(1 for s in samples if s.id not in pending_ids and (store.get(s.id) or {}).get("error"))
    confined = [s for s in pending if s.id in refused]
    if confined:
        records = []
        for s in confined:
            request = Request(sample_id=s.id, parts=s.parts)
            record = _record(task, s, request, Output.failure(refused[s.id]), 0.0, store.run_dir, digests[s.id])
            if s.id in changed:
                record["supersedes"] = "input changed"
            records.append(record)
        store.append(records)
        errors += len(records)
        pending = [s for s in pending if s.id not in refused]
    if pending and adapter is not None:
        ensure_loaded(adapter)
    requests = {s.id: task.request(s) for s in pending}
    order = sorted(pending, key=lambda s: -requests[s.id].size())
    return Plan(order=order, requests=requests, changed=changed, errors=errors, total=len(samples),
                budget=settings.max_error_rate * len(samples))


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
    try:
        with _StopRequest() as stop:
            while index < len(work.order):
                batch_samples = work.order[index : index + sizer.size]
                index += len(batch_samples)
                batch = [work.requests[s.id] for s in batch_samples]
                started = time.perf_counter()
                outputs = _generate_batch(adapter, batch, media_dir, sizer)
                per_sample = (time.perf_counter() - started) / len(batch)
                records = [_record(task, by_id[r.sample_id], r, o, per_sample, run_dir, digests[r.sample_id])
                           for r, o in zip(batch, outputs)]
                for record in records:
                    if record["id"] in work.changed:
                        record["supersedes"] = "input changed"
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
    generated = []
    for sample in samples:
        record = store.get(sample.id)
        prediction, error = record["prediction"], record["error"]
        try:
            output = _absolute_media(record["output"], store.run_dir)
            if isinstance(prediction, str) and output.media:
                full = Path(prediction) if Path(prediction).is_absolute() else store.run_dir / prediction
                if not full.resolve().is_relative_to(store.run_dir):
                    raise MediaError(f"media path outside the run directory: {prediction}")
                prediction = str(full)
        except (MediaError, KeyError, TypeError, ValueError) as exc:
            reason = str(exc) if isinstance(exc, MediaError) else f"unreadable stored output: {type(exc).__name__}: {exc}"
            output, prediction, error = Output.failure(reason), None, error or reason
        generated.append(Generated(sample=sample, output=output, prediction=prediction, error=error))
    hint = (f"predictions are saved in {store.predictions_path}; rerun the same command (or runner.stage=score) "
            "to score them")
    with _StopRequest(immediate=True, hint=hint):
        return task.score(generated, work_dir=store.run_dir / "scoring"), generated


def _model_provenance(adapter: ModelAdapter, group: Any, generated: Sequence[Generated]) -> dict[str, Any]:
    """The adapter's provenance; for one that reports per-sample provenance, ``outputs`` summed
    over the stored outputs of the run (``output_summary``), never taken from adapter state."""
    info = group.provenance(adapter) if group is not None else dict(adapter.provenance())
    if getattr(adapter, "reports_output_provenance", False):
        info["outputs"] = output_summary((g.sample.id, g.output) for g in generated)
    return info


def _git_commit() -> str | None:
    """The commit of the mio-eval checkout this package runs from (``+dirty`` with local
    changes); None for an installed wheel."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def _keep_history(run_dir: Path) -> None:
    """Move a previous metrics.json to ``history/metrics-<finished_at>.json`` before replacing it."""
    previous = run_dir / "metrics.json"
    if not previous.is_file() or previous.is_symlink():
        return
    try:
        stamp = json.loads(previous.read_text(encoding="utf-8")).get("finished_at") or _now()
    except (OSError, ValueError, AttributeError):
        stamp = _now()
    history = run_dir / "history"
    history.mkdir(exist_ok=True)
    target = history / f"metrics-{str(stamp).replace(':', '')}.json"
    n = 1
    while target.exists():
        target = history / f"metrics-{str(stamp).replace(':', '')}-{n}.json"
        n += 1
    os.replace(previous, target)


def _confinement(samples: Sequence[Sample], data_roots: Sequence[str] | None,
                 allow_outside: bool) -> dict[str, str]:
    """Sample id -> reason, for samples whose files lie outside every data root."""
    if data_roots is None or allow_outside:
        return {}
    refused = {}
    for sample in samples:
        outside = _samples.outside_roots(_samples.media_paths(sample), data_roots)
        if outside:
            refused[sample.id] = (f"media path outside the data root: {outside[0]} (set "
                                  "paths.allow_outside_data=true to allow it)")
    return refused


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
    started_at, t0 = _now(), time.perf_counter()
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
    refused = _confinement(samples, data_roots, allow_outside_data)
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
        _refuse_shrinking(run_dir, {s.id for s in samples}, selection)
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
        changed = _changed_inputs(samples, store, digests)
        if changed:
            _refuse_changed(changed, len(samples), store)
        s0 = time.perf_counter()
        report, generated = _score(task, samples, store)
        times["score_s"] = round(time.perf_counter() - s0, 3)
        artifacts = store.write_artifacts(report.artifacts)  # the task's files, confined to run_dir
        atomic_write_text(run_dir / "scores.jsonl",
                          "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in report.per_sample))
        gen_errors = sum(1 for g in generated if g.error)
        score_errors = report.n_errors - gen_errors
        split_size = getattr(getattr(task, "loader", None), "expected_size", None)
        complete = len(samples) == len(available) and (split_size is None or len(available) == split_size)
        metrics = {
            "task": task.name,
            "model": adapter.name,
            "n": len(samples),
            "n_scored": len(samples) - report.n_errors,
            "n_errors": report.n_errors,
            "errors": {"generate": gen_errors, "score": score_errors},
            "complete": complete,
            "limit": selection["limit"],
            "limit_mode": settings.limit_mode if selection["limit"] is not None else None,
            "n_available": len(available),
            "split_size": split_size,
            "sample_set": _samples.sample_set_digest(s.id for s in samples),
            "data_digest": _samples.sample_set_digest(f"{i}:{d}" for i, d in digests.items()),
            "retried": sum(1 for s in samples if store.attempts(s.id) > 1),
            "batching": batching,
            "metrics": {m.name: m.to_json() for m in report.metrics},
            "scoring": dict(report.settings),
            "judges": [dict(j) for j in report.judges],
            "model_provenance": _model_provenance(adapter, group, generated),
            "fingerprint": fingerprint,
            "runner": asdict(settings),
            "versions": package_versions(),
            "mio_eval_commit": _git_commit(),
            "started_at": started_at,
            "finished_at": _now(),
            "times": times,
            "wall_time_s": round(time.perf_counter() - t0, 3),
            "config": run_info.get("config", {}),
        }
        if stratum:
            metrics["stratify_by"] = stratum
        if artifacts:
            metrics["artifacts"] = artifacts  # names relative to run_dir (export reads these)
        failure = _run_failure(metrics, settings)
        if failure:
            metrics["failed"] = failure
        _keep_history(run_dir)
        atomic_write_json(run_dir / "metrics.json", metrics)
        if failure:
            raise RunFailed(f"{failure}; metrics.json is written but flagged \"failed\" ({run_dir})")
        return metrics


def _refuse_shrinking(run_dir: Path, ids: set[str], selection: Mapping[str, Any]) -> None:
    """A rerun that would score fewer (or other) samples than the run dir's scored result is
    refused: a ``runner.limit=5`` rerun in a full run dir would silently replace its metrics and
    submission (n 30 -> 5). Raising the limit (a superset) resumes as usual."""
    scores = run_dir / "scores.jsonl"
    if not scores.is_file() or scores.is_symlink():
        return
    previous: set[str] = set()
    with open(scores, encoding="utf-8", newline="\n") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("id"), str):
                previous.add(row["id"])
    dropped = previous - ids
    if dropped:
        limit = selection.get("limit")
        asked = "every sample" if limit is None else f"runner.limit={limit} ({selection.get('limit_mode')})"
        raise ConfigError(
            f"{run_dir} holds a scored run of {len(previous)} samples; this run ({asked}) leaves out "
            f"{len(dropped)} of them (e.g. {sorted(dropped)[0]}) and would replace its metrics.json. Use "
            "runner.overwrite=true to start over, or another paths.results_dir"
        )


def _run_failure(metrics: Mapping[str, Any], settings: RunnerSettings) -> str | None:
    """Why a scored run must not count as a success (exit 1), or None."""
    n, n_errors = metrics["n"], metrics["n_errors"]
    if n and n_errors == n:
        return f"all {n} samples failed"
    if not metrics["metrics"] and not metrics["scoring"].get("submission_file"):
        return "no metric could be computed"
    if n_errors > settings.max_error_rate * n:
        return (f"{n_errors} of {n} samples failed (generation {metrics['errors']['generate']}, scoring "
                f"{metrics['errors']['score']}), over runner.max_error_rate={settings.max_error_rate}")
    return None
