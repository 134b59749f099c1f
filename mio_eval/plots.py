"""PNG plots of a results root (matplotlib, Agg backend, no display needed).

* ``heatmap.png`` — model × task of each task's first headline metric at its reporting scale;
  colour is the rank within the column in the metric's own direction (green best), so tasks with
  different units share one colour scale; limited runs are marked ``*``.
* ``dist_<task>.png`` — per-task distributions of the per-sample score, one histogram per model
  (the field the metric is built from: ``extra.per_sample`` mean field, or the ratio of its two
  fields per sample, or a numeric ``scores.jsonl`` column named as the metric).
* ``wer_by_length_<task>.png`` — corpus WER (summed edits / summed words) per reference-length bin.
* ``by_type_<task>.png`` — accuracy per question / answer type (metrics ``name/<key>`` whose
  ``extra`` names the group), one bar per model.

Every plot is computed from :mod:`mio_eval.results` (the long table and the per-sample rows).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.results import RunResult, sample_value

__all__ = ["write_plots", "per_sample_values", "heatmap", "distributions", "wer_by_length", "by_type"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _label(ax, *, xlabel: str | None, ylabel: str, title: str) -> None:
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def per_sample_values(run: RunResult, metric: str) -> list[float]:
    """The per-sample values behind ``metric`` (see the module docstring); [] when unknown."""
    entry = run.metrics.get(metric)
    values = (sample_value(row, metric, entry) for row in run.score_rows.values())
    return [v for v in values if v is not None]


def _primary(run: RunResult) -> str | None:
    names = run.headline()
    return names[0] if names else None


def heatmap(runs: Sequence[RunResult], path: Path) -> Path | None:
    import numpy as np

    tasks = sorted({r.task for r in runs})
    models = sorted({r.model for r in runs})
    if not tasks:
        return None
    cells = {(r.model, r.task): r for r in runs}
    values = np.full((len(models), len(tasks)), np.nan)
    colours = np.full_like(values, np.nan)
    labels = [["" for _ in tasks] for _ in models]
    metric_of = {}
    for j, task in enumerate(tasks):
        metric_of[task] = next((_primary(cells[(m, task)]) for m in models if (m, task) in cells), None)
        for i, model in enumerate(models):
            run = cells.get((model, task))
            entry = run.metrics.get(metric_of[task]) if run and metric_of[task] else None
            if entry and entry.get("value") is not None:
                values[i, j] = entry["value"] * float(entry.get("scale", 1.0))
                sign = 1.0 if entry.get("higher_is_better", True) else -1.0
                colours[i, j] = sign * values[i, j]
                labels[i][j] = f"{values[i, j]:.1f}" + ("*" if run.limited else "")
        column = colours[:, j]
        finite = np.isfinite(column)
        if finite.sum() > 1:
            order = column[finite].argsort().argsort()
            column[finite] = order / (finite.sum() - 1)
        elif finite.any():
            column[finite] = 0.5
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 + 1.3 * len(tasks)), 1.4 + 0.5 * len(models)))
    ax.imshow(np.ma.masked_invalid(colours), cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(tasks)), [f"{t}\n{metric_of[t] or ''}" for t in tasks], fontsize=7, rotation=30, ha="right")
    ax.set_yticks(range(len(models)), models, fontsize=8)
    for i in range(len(models)):
        for j in range(len(tasks)):
            ax.text(j, i, labels[i][j], ha="center", va="center", fontsize=8)
    ax.set_title("model × task\n(colour: rank in the metric's direction; * limited run)", fontsize=8)
    return _save(plt, fig, path)


def distributions(runs: Sequence[RunResult], out: Path) -> list[Path]:
    by_task: dict[str, list[RunResult]] = {}
    for run in runs:
        by_task.setdefault(run.task, []).append(run)
    written = []
    plt = _pyplot()
    for task, group in sorted(by_task.items()):
        metric = _primary(group[0])
        series = [(r.model, per_sample_values(r, metric)) for r in group] if metric else []
        series = [(m, v) for m, v in series if v]
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(5, 3))
        low = min(min(v) for _, v in series)
        high = max(max(v) for _, v in series)
        if high - low < 1e-6 * max(1.0, abs(high)):  # all equal (e.g. an oracle): one bar around it
            low, high = low - 0.5, high + 0.5
        for model, values in series:
            ax.hist(values, bins=min(30, max(5, len(values) // 2)), range=(low, high), alpha=0.5,
                    label=f"{model} (n={len(values)})")
        _label(ax, xlabel=f"per-sample {metric}", ylabel="samples", title=f"{task}: score distribution")
        written.append(_save(plt, fig, out / f"dist_{_slug(task)}.png"))
    return written


def wer_by_length(runs: Sequence[RunResult], out: Path, *, bins: Sequence[int] = (0, 5, 10, 15, 20, 30, 50)) -> list[Path]:
    import numpy as np

    by_task: dict[str, list[RunResult]] = {}
    for run in runs:
        rows = [r for r in run.score_rows.values() if not r.get("error") and isinstance(r.get("ref_words"), (int, float))
                and isinstance(r.get("edits"), (int, float))]
        if rows:
            by_task.setdefault(run.task, []).append(run)
    written = []
    plt = _pyplot()
    edges = list(bins) + [float("inf")]
    names = [f"{a}-{b - 1}" if b != float("inf") else f"{a}+" for a, b in zip(edges[:-1], edges[1:])]
    for task, group in sorted(by_task.items()):
        fig, ax = plt.subplots(figsize=(5, 3))
        width = 0.8 / len(group)
        for k, run in enumerate(group):
            edits = np.zeros(len(names))
            words = np.zeros(len(names))
            for row in run.score_rows.values():
                if row.get("error") or not isinstance(row.get("ref_words"), (int, float)):
                    continue
                b = next(i for i in range(len(names)) if edges[i] <= row["ref_words"] < edges[i + 1])
                edits[b] += row["edits"]
                words[b] += row["ref_words"]
            with np.errstate(divide="ignore", invalid="ignore"):
                wer = np.where(words > 0, 100.0 * edits / words, np.nan)
            ax.bar(np.arange(len(names)) + k * width, wer, width=width, label=run.model)
        ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names)
        _label(ax, xlabel="reference length (words)", ylabel="corpus WER (%)", title=f"{task}: WER by utterance length")
        written.append(_save(plt, fig, out / f"wer_by_length_{_slug(task)}.png"))
    return written


def _group_of(name: str, extra: Mapping[str, Any]) -> tuple[str, str]:
    """(grouping, label) of a breakdown metric, as each metric family records it."""
    prefix, label = name.split("/", 1)
    if "grouping" in extra:  # ChoiceAccuracy: grouping = the kind, group = the label
        return f"{prefix} by {extra['grouping']}", str(extra.get("group", label))
    if "key" in extra:  # VQAAccuracy: group = the kind, key = the label
        return f"{prefix} by {extra.get('group', 'type')}", str(extra["key"])
    for kind in ("question_type", "answer_type", "category_id"):  # video QA
        if kind in extra:
            return f"{prefix.split('/')[0]} by {kind}", str(extra[kind])
    return f"{prefix} by group", label


def _groups(run: RunResult) -> dict[str, dict[str, float]]:
    """Breakdown metrics (``<metric>/<label>`` of a metric the run reports) by grouping."""
    found: dict[str, dict[str, float]] = {}
    for name, entry in run.metrics.items():
        if "/" not in name or entry.get("value") is None or name.split("/", 1)[0] not in run.metrics:
            continue
        grouping, label = _group_of(name, entry.get("extra") or {})
        found.setdefault(grouping, {})[label] = entry["value"] * float(entry.get("scale", 1.0))
    return found


def by_type(runs: Sequence[RunResult], out: Path) -> list[Path]:
    import numpy as np

    by_task: dict[str, list[RunResult]] = {}
    for run in runs:
        if _groups(run):
            by_task.setdefault(run.task, []).append(run)
    written = []
    plt = _pyplot()
    for task, group in sorted(by_task.items()):
        tables = [(r.model, _groups(r)) for r in group]
        kinds = sorted({g for _, t in tables for g in t})
        fig, axes = plt.subplots(len(kinds), 1, figsize=(6, 2.6 * len(kinds)), squeeze=False)
        for ax, kind in zip(axes[:, 0], kinds):
            keys = sorted({k for _, t in tables for k in t.get(kind, {})})
            width = 0.8 / len(tables)
            for m, (model, t) in enumerate(tables):
                ax.bar(np.arange(len(keys)) + m * width, [t.get(kind, {}).get(k, np.nan) for k in keys], width=width,
                       label=model)
            ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, keys, fontsize=7, rotation=20, ha="right")
            _label(ax, xlabel=None, ylabel="accuracy (%)", title=f"{task}: {kind}")
        written.append(_save(plt, fig, out / f"by_type_{_slug(task)}.png"))
    return written


def write_plots(runs: Sequence[RunResult], out: str | Path) -> list[Path]:
    """Every plot above for ``runs`` into ``out`` (created); the PNG paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [p for p in [heatmap(runs, out / "heatmap.png")] if p]
    written += distributions(runs, out)
    written += wer_by_length(runs, out)
    written += by_type(runs, out)
    return written
