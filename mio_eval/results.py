"""Runs under a results root as typed records and pandas tables: the one source the report, the
HTML viewer and the plots render from.

* :func:`find_runs` — every ``<root>/<model>/<task>/metrics.json`` (directories starting with ``_``,
  such as Hydra's ``_multirun``, are skipped) as a :class:`RunResult`: the one way the report, the
  regression gate, the exports and the leaderboard find runs. :func:`runs_at` also takes a single
  run dir or ``metrics.json`` file. ``strict=True`` reads each file with :func:`read_metrics_json`
  (a malformed run is a one-line ConfigError naming it, never a traceback).
* :func:`results` / :func:`long_table` — the long table: one row per model × task × metric with the
  raw value, the value at its reporting scale, n, errors, the 95% interval (from repeats when the
  run has them, else a seeded percentile bootstrap over ``scores.jsonl`` when the metric says how it
  is built from per-sample fields: ``extra.per_sample`` = ``{"mean": field}`` or
  ``{"ratio": [num, den]}``, as the regression gate reads it), and whether the run is limited.
* :func:`samples` — a run's per-sample scores (``scores.jsonl``) joined with its predictions.

JSONL files are read line by line (``for line in fh``), never with ``str.splitlines()``, which
also splits on U+2028 / U+2029 / U+0085 inside a JSON string. The fields ``complete``, ``limit``,
``n_available``, ``split_size``, ``sample_set`` and ``times`` are read with ``.get``: older runs
lack them.
"""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from mio_eval.errors import ConfigError

if TYPE_CHECKING:  # pandas stays out of ``import mio_eval``
    import pandas as pd

__all__ = ["RunResult", "find_runs", "runs_at", "metrics_files", "read_metrics_json", "read_scores", "sample_value", "read_jsonl", "long_table", "results", "samples", "bootstrap_ci95",
           "LONG_COLUMNS"]

LONG_COLUMNS = ("model", "task", "metric", "value", "reported", "scale", "higher_is_better", "variant", "n",
                "n_run", "n_errors", "ci95_low", "ci95_high", "ci_method", "complete", "limited", "status", "limit",
                "judge", "run_dir")


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSONL file, one per non-blank line; a half-written last line (a crash
    while appending) is dropped, a malformed line elsewhere raises ``ValueError`` naming it."""
    path = Path(path)
    with path.open(encoding="utf-8", newline="\n") as fh:
        pending: tuple[int, str] | None = None
        for number, line in enumerate(fh, 1):
            if pending is not None:
                raise ValueError(f"{path}:{pending[0]}: not JSON: {pending[1][:80]!r}")
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                pending = (number, line)  # tolerated only as the very last line


def read_scores(path: Path) -> dict[str, Mapping[str, Any]]:
    """``scores.jsonl`` rows by id, read line by line (a U+2028 inside a transcript is not a line
    break); a malformed file is a ConfigError naming the line."""
    rows: dict[str, Mapping[str, Any]] = {}
    try:
        with open(path, encoding="utf-8", newline="\n") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    raise ConfigError(f"{path}:{lineno} is not valid JSON ({exc})") from None
                if not isinstance(row, dict) or "id" not in row:
                    raise ConfigError(f"{path}:{lineno} is not a score row (a JSON object with an 'id')")
                rows[str(row["id"])] = row
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    return rows


def _is_count(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_metrics_json(path: Path) -> dict[str, Any]:
    """A ``metrics.json`` checked for the fields every consumer reads (gate, export, leaderboard):
    ConfigError, one line, for anything else — never a traceback."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a mio-eval metrics.json (a JSON object expected)")
    for key in ("task", "model", "metrics"):
        if key not in data:
            raise ConfigError(f"{path} is not a mio-eval metrics.json (no {key!r})")
    if not isinstance(data["task"], str) or not isinstance(data["model"], str):
        raise ConfigError(f"{path}: 'task' and 'model' must be strings")
    if not isinstance(data["metrics"], dict):
        raise ConfigError(f"{path}: 'metrics' must be an object of metric name -> result")
    for name, metric in data["metrics"].items():
        if not isinstance(metric, dict) or not isinstance(metric.get("higher_is_better"), bool):
            raise ConfigError(f"{path}: metric {name!r} must be an object with a boolean 'higher_is_better'")
        value = metric.get("value")
        if value is not None and not _is_count(value):
            raise ConfigError(f"{path}: metric {name!r} has a non-numeric value {value!r}")
        if "scale" in metric and not _is_count(metric["scale"]):
            raise ConfigError(f"{path}: metric {name!r} has a non-numeric scale")
    for key in ("n", "n_errors"):
        if key in data and (not isinstance(data[key], int) or isinstance(data[key], bool) or data[key] < 0):
            raise ConfigError(f"{path}: {key!r} must be a non-negative integer, got {data[key]!r}")
    return data


@dataclass(frozen=True)
class RunResult:
    """One run: its ``metrics.json`` content and its directory."""

    run_dir: Path
    data: Mapping[str, Any]

    @classmethod
    def load(cls, run_dir: str | Path, *, strict: bool = False) -> "RunResult":
        """The run in ``run_dir``; ``strict``: its metrics.json checked by :func:`read_metrics_json`."""
        run_dir = Path(run_dir)
        path = run_dir / "metrics.json"
        data = read_metrics_json(path) if strict else json.loads(path.read_text(encoding="utf-8"))
        return cls(run_dir=run_dir, data=data)

    @property
    def key(self) -> tuple[str, str]:
        return self.model, self.task

    model = property(lambda self: str(self.data["model"]))
    task = property(lambda self: str(self.data["task"]))
    n = property(lambda self: int(self.data.get("n", 0)))
    n_errors = property(lambda self: int(self.data.get("n_errors", 0)))
    metrics = property(lambda self: dict(self.data.get("metrics", {})))
    judges = property(lambda self: list(self.data.get("judges", [])))

    @property
    def limit(self) -> int | None:
        limit = self.data.get("limit", (self.data.get("runner") or {}).get("limit"))
        return int(limit) if limit is not None else None

    @property
    def complete(self) -> bool | None:
        """True when the whole published split was evaluated; None when the run does not say."""
        value = self.data.get("complete")
        return None if value is None else bool(value)

    @property
    def limited(self) -> bool:
        """A subset of the split ran: ``runner.limit`` was set or the run says it is incomplete."""
        return self.limit is not None or self.complete is False

    @property
    def status(self) -> str:
        """``limited`` (runner.limit), ``incomplete`` (a partial split, e.g. a fixture or a damaged
        copy), ``complete`` (the whole published split) or ``unknown`` (an older run)."""
        if self.limit is not None:
            return "limited"
        return "incomplete" if self.complete is False else "complete" if self.complete else "unknown"

    @property
    def judge(self) -> str:
        from mio_eval.report import judge_label

        return "; ".join(judge_label(j) for j in self.judges)

    @property
    def variants(self) -> dict[str, str]:
        return {name: str(m.get("variant", "")) for name, m in self.metrics.items()}

    def headline(self) -> list[str]:
        """The metrics worth a column in an index: those without a ``/`` breakdown."""
        return [name for name in self.metrics if "/" not in name]

    def scores(self) -> Iterator[dict[str, Any]]:
        """Rows of ``scores.jsonl`` (none when the run kept no per-sample scores)."""
        path = self.run_dir / "scores.jsonl"
        return read_jsonl(path) if path.is_file() else iter(())

    def predictions(self) -> Iterator[dict[str, Any]]:
        path = self.run_dir / "predictions.jsonl"
        return read_jsonl(path) if path.is_file() else iter(())

    def per_sample(self) -> dict[str, Mapping[str, Any]] | None:
        """``scores.jsonl`` rows by id, strictly read (:func:`read_scores`); None without the file."""
        path = self.run_dir / "scores.jsonl"
        return read_scores(path) if path.is_file() else None

    @cached_property
    def score_rows(self) -> dict[str, dict[str, Any]]:
        return {str(row["id"]): row for row in self.scores() if "id" in row}


def sample_value(row: Mapping[str, Any], name: str, metric: Mapping[str, Any] | None) -> float | None:
    """The per-sample value behind metric ``name`` in a ``scores.jsonl`` row: the field of
    ``extra.per_sample.mean``, the ratio of the two ``extra.per_sample.ratio`` fields (e.g. a
    sample's edits / words), else a numeric field named as the metric; None for an error row."""
    if row.get("error"):
        return None
    spec = ((metric or {}).get("extra") or {}).get("per_sample") or {}
    if "mean" in spec:
        value = row.get(spec["mean"])
    elif "ratio" in spec:
        num, den = (row.get(k) for k in spec["ratio"])
        value = num / den if _number(num) and _number(den) and den else None
    else:
        value = next((row[k] for k in (name, *_FALLBACK_FIELDS) if _number(row.get(k))), None)
    return float(value) if _number(value) else None


# Per-sample fields tasks write when the metric name is not a row field (vqa_accuracy -> accuracy).
_FALLBACK_FIELDS = ("accuracy", "correct", "score")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and value == value


def metrics_files(root: str | Path) -> list[Path]:
    """Every ``<root>/<model>/<task>/metrics.json``, in path order; a model or task directory whose
    name starts with ``_`` (Hydra's ``_multirun``, scratch dirs) is not a run."""
    return sorted(p for p in Path(root).glob("*/*/metrics.json")
                  if not p.parts[-3].startswith("_") and not p.parts[-2].startswith("_"))


def find_runs(root: str | Path, *, strict: bool = False) -> list[RunResult]:
    """Every run under ``root`` (:func:`metrics_files`), sorted by model then task.

    ``strict=False`` (tables, viewer, plots) skips a file without ``model`` and ``task``;
    ``strict=True`` (gate, export, leaderboard) raises ConfigError for any malformed file."""
    found = []
    for path in metrics_files(root):
        run = RunResult.load(path.parent, strict=strict)
        if "model" in run.data and "task" in run.data:
            found.append(run)
    return sorted(found, key=lambda r: (r.model, r.task))


def runs_at(path: str | Path, *, strict: bool = True) -> tuple[list[RunResult], bool]:
    """The runs a command-line path names — a ``metrics.json`` file, a run dir, or a results root —
    and whether it was a root (several runs). Nothing found is a ConfigError saying what was expected."""
    path = Path(path)
    if path.is_file():  # any file name: a copied metrics.json (baseline.json) is read as it is
        data = read_metrics_json(path) if strict else json.loads(path.read_text(encoding="utf-8"))
        return [RunResult(run_dir=path.parent, data=data)], False
    if (path / "metrics.json").is_file():
        return [RunResult.load(path, strict=strict)], False
    if path.is_dir():
        runs = find_runs(path, strict=strict)
        if runs:
            return runs, True
        raise ConfigError(f"no metrics.json under {path} (expected <root>/<model>/<task>/metrics.json)")
    raise ConfigError(f"not found: {path}")


def bootstrap_ci95(rows: Sequence[Mapping[str, Any]], spec: Mapping[str, Any], *, n_resamples: int = 1000,
                   seed: int = 0) -> tuple[float, float, int] | None:
    """Seeded 95% percentile bootstrap interval of a metric built from per-sample fields (the mean
    of ``spec["mean"]`` or the ratio of the sums of ``spec["ratio"]``); None below 2 samples.
    Resamples are drawn one at a time so memory stays O(n) at 200k samples."""
    import numpy as np

    keys = [spec["mean"]] if "mean" in spec else list(spec.get("ratio", ()))
    if not keys:
        return None
    usable = [r for r in rows if not r.get("error") and all(isinstance(r.get(k), (int, float)) for k in keys)]
    if len(usable) < 2:
        return None
    num = np.array([float(r[keys[0]]) for r in usable])
    den = np.array([float(r[keys[1]]) for r in usable]) if len(keys) == 2 else None
    rng = np.random.default_rng(seed)
    stats = np.empty(n_resamples)
    for i in range(n_resamples):
        pick = rng.integers(0, len(usable), size=len(usable))
        if den is None:
            stats[i] = num[pick].mean()
        else:
            d = den[pick].sum()
            stats[i] = num[pick].sum() / d if d else np.nan
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return None
    low, high = np.percentile(stats, [2.5, 97.5])
    return float(low), float(high), len(usable)


def _interval(run: RunResult, metric: Mapping[str, Any], bootstrap: int, seed: int):
    extra = metric.get("extra") or {}
    if extra.get("ci95"):
        low, high = extra["ci95"]
        return low, high, extra.get("ci_method", f"repeats ({extra.get('repeats')})")
    spec = extra.get("per_sample")
    if bootstrap and spec and metric.get("value") is not None:
        ci = bootstrap_ci95(list(run.score_rows.values()), spec, n_resamples=bootstrap, seed=seed)
        if ci is not None:
            return ci[0], ci[1], f"bootstrap ({bootstrap} resamples, seed {seed})"
    return None, None, None


def long_table(runs: Sequence[RunResult], *, bootstrap: int = 1000, seed: int = 0) -> "pd.DataFrame":
    """One row per model × task × metric (columns :data:`LONG_COLUMNS`). ``value`` is raw,
    ``reported`` is ``value × scale`` (the literature's scale, e.g. WER in %), the interval is raw.
    ``bootstrap=0`` disables the bootstrap (intervals then come from repeats only)."""
    import pandas as pd

    records = []
    for run in runs:
        for name, metric in run.metrics.items():
            value = metric.get("value")
            scale = float(metric.get("scale", 1.0))
            low, high, method = _interval(run, metric, bootstrap, seed)
            records.append({
                "model": run.model, "task": run.task, "metric": name, "value": value,
                "reported": value * scale if value is not None else None, "scale": scale,
                "higher_is_better": bool(metric.get("higher_is_better", True)),
                "variant": str(metric.get("variant", "")), "n": metric.get("n", run.n), "n_run": run.n,
                "n_errors": run.n_errors, "ci95_low": low, "ci95_high": high, "ci_method": method,
                "complete": run.complete, "limited": run.limited, "status": run.status, "limit": run.limit,
                "judge": run.judge,
                "run_dir": str(run.run_dir),
            })
    frame = pd.DataFrame.from_records(records, columns=list(LONG_COLUMNS))
    for column in ("value", "reported", "ci95_low", "ci95_high"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def results(root: str | Path, *, bootstrap: int = 1000, seed: int = 0) -> "pd.DataFrame":
    """The long table of every run under ``root`` (see :func:`long_table`)."""
    return long_table(find_runs(root), bootstrap=bootstrap, seed=seed)


def samples(run_dir: str | Path) -> "pd.DataFrame":
    """Per-sample rows of one run: ``scores.jsonl`` joined on ``id`` with the prediction, the
    generation error and the time from ``predictions.jsonl`` (prefixed ``pred_`` where a name
    clashes). Runs that were only generated give their predictions alone."""
    import pandas as pd

    run_dir = Path(run_dir)
    run = RunResult(run_dir=run_dir, data={})
    scores = list(run.scores())
    preds = {}
    for row in run.predictions():
        output = row.get("output") or {}
        preds[str(row["id"])] = {"prediction": row.get("prediction"), "generate_error": row.get("error"),
                                 "time_s": row.get("time_s"), "output_text": output.get("text"),
                                 "media": [m.get("path") for m in output.get("media") or []]}
    if not scores:
        return pd.DataFrame.from_records([{"id": i, **p} for i, p in preds.items()])
    records = []
    for row in scores:
        record = dict(row)
        record["id"] = str(row.get("id"))
        for key, value in preds.get(record["id"], {}).items():
            record[key if key not in record else f"pred_{key}"] = value
        records.append(record)
    return pd.DataFrame.from_records(records)


class _CallableModule(types.ModuleType):
    """``mio_eval.results(root)`` is this module called: the module and the function share a name."""

    def __call__(self, root: str | Path, *, bootstrap: int = 1000, seed: int = 0) -> "pd.DataFrame":
        return results(root, bootstrap=bootstrap, seed=seed)


sys.modules[__name__].__class__ = _CallableModule
