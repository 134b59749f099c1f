"""What a generate stage must do in an existing run directory, and the reruns it refuses.

Resume = skip the samples whose prediction is stored. Failed samples are tried again
(``runner.retry_errors``); samples whose inputs changed since they were generated are refused
unless ``runner.regenerate_changed``; samples whose media lie outside the data roots fail here
without reaching the model; a rerun that would score fewer samples than the run dir's scored
result is refused (it would silently replace the metrics).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval import samples as _samples
from mio_eval.adapter import ModelAdapter, ensure_loaded
from mio_eval.errors import ConfigError
from mio_eval.predictions import record as _record
from mio_eval.store import PredictionStore, no_gc
from mio_eval.tasks.base import Task
from mio_eval.types import Output, Request, Sample

__all__ = ["Plan", "plan", "changed_inputs", "refuse_changed", "refuse_shrinking", "confinement"]


def changed_inputs(samples: Sequence[Sample], store: PredictionStore, digests: Mapping[str, str]) -> list[str]:
    """Ids whose stored prediction was made from other inputs than the data holds now."""
    changed = []
    with no_gc():  # a line kept undecoded is decoded here only for a failed sample: no GC passes meanwhile
        for s in samples:
            outcome = store.outcome(s.id)
            if outcome is not None and outcome[1] not in (None, digests[s.id]):
                changed.append(s.id)
    return changed


def refuse_changed(changed: Sequence[str], total: int, store: PredictionStore) -> None:
    raise ConfigError(
        f"{len(changed)} of {total} samples changed since they were generated in {store.run_dir} (first: "
        f"{changed[0]}): their inputs (text or media content) differ; use runner.regenerate_changed=true to "
        "generate them again, or runner.overwrite=true to start over"
    )


def confinement(samples: Sequence[Sample], data_roots: Sequence[str] | None,
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


def refuse_shrinking(run_dir: Path, ids: set[str], selection: Mapping[str, Any]) -> None:
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


def plan(task: Task, samples: Sequence[Sample], store: PredictionStore, settings: Any,
         digests: Mapping[str, str], refused: Mapping[str, str] | None = None, *,
         adapter: ModelAdapter | None = None) -> Plan:
    """The pending samples (``settings`` is the run's ``RunnerSettings``); samples whose media lie
    outside the data roots are stored as failures here and never reach the model. With work to
    do, ``adapter`` is loaded before the requests are rendered: a task may count prompt tokens
    with the model's tokenizer (MMLU's context fitting)."""
    refused = refused or {}
    with no_gc():
        outcomes = {s.id: store.outcome(s.id) for s in samples}  # (failed, input_digest): no record decoded
    changed = {i for i, o in outcomes.items() if o is not None and o[1] not in (None, digests[i])}  # changed_inputs
    if changed and not settings.regenerate_changed:
        refuse_changed(sorted(changed, key=[s.id for s in samples].index), len(samples), store)

    def wanted(s: Sample) -> bool:
        outcome = outcomes[s.id]
        if outcome is None or s.id in changed:
            return True
        return outcome[0] and settings.retry_errors and s.id not in refused

    pending = [s for s in samples if wanted(s)]
    pending_ids = {p.id for p in pending}
    errors = sum(1 for s in samples if s.id not in pending_ids and outcomes[s.id][0])
    confined = [s for s in pending if s.id in refused]
    if confined:
        records = []
        for s in confined:
            request = Request(sample_id=s.id, parts=s.parts)
            line = _record(task, s, request, Output.failure(refused[s.id]), 0.0, store.run_dir, digests[s.id])
            if s.id in changed:
                line["supersedes"] = "input changed"
            records.append(line)
        store.append(records)
        errors += len(records)
        pending = [s for s in pending if s.id not in refused]
    if pending and adapter is not None:
        ensure_loaded(adapter)
    requests = {s.id: task.request(s) for s in pending}
    order = sorted(pending, key=lambda s: -requests[s.id].size())
    return Plan(order=order, requests=requests, changed=changed, errors=errors, total=len(samples),
                budget=settings.max_error_rate * len(samples))
