"""The evaluation loop: capability check -> batches (length-sorted) -> store -> score -> metrics.json.

Knows nothing about Hydra: it takes a built task and adapter and typed settings, so it runs
the same from the CLI, the Python API and tests.
"""

from __future__ import annotations

import datetime as _dt
import json
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from mio_eval.adapter import ModelAdapter, check_capabilities
from mio_eval.atomic import atomic_write_json, atomic_write_text
from mio_eval.errors import ConfigError, ErrorBudgetExceeded, Interrupted, MediaError
from mio_eval.store import PredictionStore
from mio_eval.tasks.base import Generated, InvalidOutput, Task
from mio_eval.types import Output, Request, Sample, part_to_json

__all__ = ["RunnerSettings", "evaluate", "package_versions", "STAGES"]

STAGES = ("generate", "score", "all")
_VERSIONED = ("mio-eval", "torch", "transformers", "openai-whisper", "jiwer", "pocketsphinx", "hydra-core",
              "numpy", "scipy", "soundfile", "pycocoevalcap")


@dataclass(frozen=True)
class RunnerSettings:
    """``runner.*`` config. ``limit`` takes the first N samples in dataset order."""

    batch_size: int = 8
    limit: int | None = None
    stage: str = "all"
    max_error_rate: float = 0.1
    resume: bool = True
    overwrite: bool = False
    progress: bool = True
    repeats: int = 1

    def __post_init__(self) -> None:
        kinds = {"batch_size": int, "limit": (int, type(None)), "stage": str, "max_error_rate": (int, float),
                 "resume": bool, "overwrite": bool, "progress": bool, "repeats": int}
        for key, kind in kinds.items():
            value = getattr(self, key)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ConfigError(f"runner.{key} has the wrong type: {value!r}")
        if self.stage not in STAGES:
            raise ConfigError(f"runner.stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if self.batch_size < 1:
            raise ConfigError(f"runner.batch_size must be >= 1, got {self.batch_size}")
        if self.repeats < 1:
            raise ConfigError(f"runner.repeats must be >= 1, got {self.repeats}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"runner.limit must be >= 1 or null, got {self.limit}")
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


def _generate_batch(adapter: ModelAdapter, batch: Sequence[Request], media_dir: Path) -> list[Output]:
    """Run one batch; if the backend raises, retry request by request to isolate the culprit."""
    try:
        outputs = adapter.generate(batch, media_dir=media_dir)
        if len(outputs) != len(batch):
            raise RuntimeError(f"adapter returned {len(outputs)} outputs for {len(batch)} requests")
        return list(outputs)
    except Exception as batch_exc:  # noqa: BLE001 - any backend failure becomes per-sample data
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


def _record(task: Task, sample: Sample, request: Request, output: Output, seconds: float, run_dir: Path) -> dict:
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
    }


class _StopRequest:
    """First SIGINT/SIGTERM: finish and save the batch in flight, then stop (``Interrupted``).
    A second SIGINT interrupts at once (``KeyboardInterrupt``), as a user pressing Ctrl-C twice
    expects. Only installed in the main thread (signals cannot be handled elsewhere)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
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


def _generate(task: Task, adapter: ModelAdapter, samples: Sequence[Sample], store: PredictionStore,
              settings: RunnerSettings) -> None:
    pending = [s for s in samples if s.id not in store.done_ids]
    errors = sum(1 for s in samples if s.id in store.done_ids and store.get(s.id)["error"])
    budget = settings.max_error_rate * len(samples)
    if not pending:
        return
    adapter.load()
    requests = {s.id: task.request(s) for s in pending}
    by_id = {s.id: s for s in pending}
    # Longest first (as lm-eval): padding waste is smallest and an OOM shows up at once.
    order = sorted(pending, key=lambda s: -requests[s.id].size())
    progress = _Progress(len(pending), settings.progress, f"{task.name}/{adapter.name}")
    saved = len(samples) - len(pending)
    try:
        with _StopRequest() as stop:
            for batch_samples in _chunks(order, settings.batch_size):
                batch = [requests[s.id] for s in batch_samples]
                started = time.perf_counter()
                outputs = _generate_batch(adapter, batch, store.media_dir)
                per_sample = (time.perf_counter() - started) / len(batch)
                records = [_record(task, by_id[r.sample_id], r, o, per_sample, store.run_dir)
                           for r, o in zip(batch, outputs)]
                store.append(records)
                saved += len(records)
                errors += sum(1 for r in records if r["error"])
                progress.update(len(records), errors)
                if errors > budget:
                    examples = "; ".join(sorted({r["error"] for r in records if r["error"]})[:3])
                    raise ErrorBudgetExceeded(
                        f"{errors} of {len(samples)} samples failed, over runner.max_error_rate="
                        f"{settings.max_error_rate} (e.g. {examples}). Finished samples are saved in "
                        f"{store.predictions_path}; fix the cause and rerun the same command to resume"
                    )
                if stop.signal is not None and saved < len(samples):
                    raise Interrupted(
                        f"stopped by {signal.Signals(stop.signal).name} after {saved} of {len(samples)} samples; "
                        f"they are saved in {store.predictions_path}; rerun the same command to resume"
                    )
    finally:
        progress.close()


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
        except MediaError as exc:
            output, prediction, error = Output.failure(str(exc)), None, error or str(exc)
        generated.append(Generated(sample=sample, output=output, prediction=prediction, error=error))
    return task.score(generated, work_dir=store.run_dir / "scoring"), generated


def evaluate(
    task: Task,
    adapter: ModelAdapter,
    *,
    run_dir: str | Path,
    settings: RunnerSettings,
    fingerprint: str,
    run_info: Mapping[str, Any],
) -> dict[str, Any] | None:
    """Generate (resuming), then score. Returns the metrics.json content, or None for
    ``stage=generate``."""
    started_at, t0 = _now(), time.perf_counter()
    check_capabilities(adapter, needs_inputs=task.input_modalities, produces=task.output_modality,
                       needs_loglikelihood=bool(getattr(task, "needs_loglikelihood", False)))
    samples = task.samples()
    ids = [s.id for s in samples]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"task {task.name!r} has duplicate sample id {dup!r}")
    if settings.limit is not None:
        samples = samples[: settings.limit]
    preflight = getattr(task, "preflight", None)
    if settings.stage != "generate" and preflight is not None:
        preflight()
    run_dir = Path(run_dir).resolve()
    with PredictionStore(run_dir).open(
        fingerprint=fingerprint, run_info=run_info, resume=settings.resume, overwrite=settings.overwrite,
        create=settings.stage != "score",
    ) as store:
        if settings.stage in ("generate", "all"):
            _generate(task, adapter, samples, store, settings)
        if settings.stage == "generate":
            return None
        report, generated = _score(task, samples, store)
        atomic_write_text(run_dir / "scores.jsonl",
                          "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in report.per_sample))
        gen_errors = sum(1 for g in generated if g.error)
        score_errors = report.n_errors - gen_errors
        metrics = {
            "task": task.name,
            "model": adapter.name,
            "n": len(samples),
            "n_scored": len(samples) - report.n_errors,
            "n_errors": report.n_errors,
            "errors": {"generate": gen_errors, "score": score_errors},
            "metrics": {m.name: m.to_json() for m in report.metrics},
            "scoring": dict(report.settings),
            "judges": [dict(j) for j in report.judges],
            "model_provenance": dict(adapter.provenance()),
            "fingerprint": fingerprint,
            "runner": asdict(settings),
            "versions": package_versions(),
            "started_at": started_at,
            "finished_at": _now(),
            "wall_time_s": round(time.perf_counter() - t0, 3),
            "config": run_info.get("config", {}),
        }
        atomic_write_json(run_dir / "metrics.json", metrics)
        return metrics
