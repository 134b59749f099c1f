"""``metrics.json``: the typed result of a scored run, assembled and written here.

It records what was scored (n, errors split by stage, the sample set and data digests, whether
the split is complete or limited), the metrics with their metadata, the judges, the model's
provenance, the batching actually used, the package versions and commit, and the timings. A run
over the error budget, with every sample failed or with no metric, is written flagged
``failed`` and raises ``RunFailed`` (exit 1). A previous ``metrics.json`` moves to
``history/`` first.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval import samples as _samples
from mio_eval.adapter import output_summary
from mio_eval.atomic import atomic_write_json
from mio_eval.errors import RunFailed
from mio_eval.tasks.base import Generated, ScoreReport
from mio_eval.types import Sample

__all__ = ["now", "package_versions", "model_provenance", "metrics_record", "write_metrics", "run_failure"]

_VERSIONED = ("mio-eval", "torch", "transformers", "openai-whisper", "jiwer", "pocketsphinx", "hydra-core",
              "numpy", "scipy", "soundfile", "pycocoevalcap")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


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


def model_provenance(adapter: Any, group: Any, generated: Sequence[Generated]) -> dict[str, Any]:
    """The adapter's provenance (merged over the data-parallel ``group``'s ranks when there is one);
    for an adapter that reports per-sample provenance, ``outputs`` summed over the stored outputs
    of the run (``output_summary``), never taken from adapter state."""
    info = group.provenance(adapter) if group is not None else dict(adapter.provenance())
    if getattr(adapter, "reports_output_provenance", False):
        info["outputs"] = output_summary((g.sample.id, g.output) for g in generated)
    return info


def metrics_record(*, task: Any, adapter: Any, samples: Sequence[Sample], available: Sequence[Sample],
                   selection: Mapping[str, Any], stratum: str | None, digests: Mapping[str, str], store: Any,
                   report: ScoreReport, generated: Sequence[Generated], batching: Any, provenance: Mapping[str, Any],
                   artifacts: Sequence[str], settings: Any, fingerprint: str, run_info: Mapping[str, Any],
                   started_at: str, t0: float, times: Mapping[str, float]) -> dict[str, Any]:
    """The ``metrics.json`` content of a scored run (``settings``: its ``RunnerSettings``; ``t0``:
    its ``time.perf_counter()`` start; ``artifacts``: the task's files the store wrote, relative to
    the run dir), flagged ``failed`` when ``run_failure`` says so."""
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
        "model_provenance": dict(provenance),
        "fingerprint": fingerprint,
        "runner": asdict(settings),
        "versions": package_versions(),
        "mio_eval_commit": _git_commit(),
        "started_at": started_at,
        "finished_at": now(),
        "times": dict(times),
        "wall_time_s": round(time.perf_counter() - t0, 3),
        "config": run_info.get("config", {}),
    }
    if stratum:
        metrics["stratify_by"] = stratum
    if artifacts:
        metrics["artifacts"] = list(artifacts)  # names relative to run_dir (export reads these)
    failure = run_failure(metrics, settings)
    if failure:
        metrics["failed"] = failure
    return metrics


def _keep_history(run_dir: Path) -> None:
    """Move a previous metrics.json to ``history/metrics-<finished_at>.json`` before replacing it."""
    previous = run_dir / "metrics.json"
    if not previous.is_file() or previous.is_symlink():
        return
    try:
        stamp = json.loads(previous.read_text(encoding="utf-8")).get("finished_at") or now()
    except (OSError, ValueError, AttributeError):
        stamp = now()
    history = run_dir / "history"
    history.mkdir(exist_ok=True)
    target = history / f"metrics-{str(stamp).replace(':', '')}.json"
    n = 1
    while target.exists():
        target = history / f"metrics-{str(stamp).replace(':', '')}-{n}.json"
        n += 1
    os.replace(previous, target)


def write_metrics(run_dir: Path, metrics: Mapping[str, Any]) -> None:
    """Write ``metrics.json`` (the previous one kept in ``history/``); a run flagged ``failed``
    raises ``RunFailed`` once it is written."""
    _keep_history(run_dir)
    atomic_write_json(run_dir / "metrics.json", metrics)
    if metrics.get("failed"):
        raise RunFailed(f"{metrics['failed']}; metrics.json is written but flagged \"failed\" ({run_dir})")


def run_failure(metrics: Mapping[str, Any], settings: Any) -> str | None:
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
