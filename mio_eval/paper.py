"""The MIO paper's result tables beside our runs: ``mio-eval report --layout paper``.

The published rows (Wang et al., "MIO: A Foundation Model on Multimodal Tokens",
arXiv:2409.17692, Tables 2-8 and 13) live in one data file, ``mio_eval/data/published.yaml``, with
a citation per row and, per column, the (task, metric) our runs fill it from, the scale the paper
prints and the protocol its numbers assume (metric variant, judge, task config values).

Our rows ("ours: <model>") are in the same columns at the same scale. A cell is marked

* ``*`` the run is limited (``runner.limit`` or not the whole published split),
* ``†`` the run's protocol differs from the paper's (another metric variant, judge or config),
* ``‡`` a stand-in task filled the column (e.g. VQAv2 val for test-dev),

and each mark is explained under its table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Mapping, Sequence

from mio_eval.results import RunResult

__all__ = ["load_published", "PaperCell", "paper_rows", "render_paper"]

MARKS = {"limited": "*", "protocol": "†", "stand_in": "‡"}


def load_published() -> dict[str, Any]:
    """The parsed ``published.yaml`` (package data)."""
    import yaml

    text = resources.files("mio_eval.data").joinpath("published.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@dataclass
class PaperCell:
    """One of our values in a paper column, with the reasons it is marked."""

    value: float | None
    decimals: int
    notes: dict[str, str] = field(default_factory=dict)  # mark kind -> explanation

    def text(self) -> str:
        if self.value is None:
            return "–"
        marks = "".join(MARKS[k] for k in MARKS if k in self.notes)
        return f"{self.value:.{self.decimals}f}{marks}"


def _protocol_notes(run: RunResult, metric: Mapping[str, Any] | None, protocol: Mapping[str, Any],
                    variant: str | None = None) -> list[str]:
    notes = []
    want = protocol.get("variant")
    have = variant if variant is not None else (metric or {}).get("variant")
    if want is not None and have != want:
        notes.append(f"variant {have}, paper {want}")
    judge = protocol.get("judge")
    if judge is not None and judge.lower() not in run.judge.lower():
        notes.append(f"judge {run.judge or 'none'}, paper {judge}")
    task_config = ((run.data.get("config") or {}).get("task")) or {}
    for key, want_value in (protocol.get("config") or {}).items():
        if task_config.get(key) != want_value:
            notes.append(f"{key}={task_config.get(key)}, paper {want_value}")
    return notes


def _mme_unify_cell(runs: Sequence[RunResult], column: Mapping[str, Any], decimals: int) -> PaperCell | None:
    from mio_eval.metrics.mme_unify import scores_from_metrics

    family = [r for r in runs if r.task.startswith("mme_unify")]
    if not family:
        return None
    scores = scores_from_metrics([r.data for r in family])
    key = column["mme_unify"]
    if scores.get(key) is None:  # a family (or, for Overall, any of the three) has no run
        return None
    cell = PaperCell(scores[key], decimals)
    limited = [r.task for r in family if r.limited]
    if limited:
        cell.notes["limited"] = "limited run(s): " + ", ".join(limited)
    parts = ("US", "GS", "Unify") if key == "Overall" else (key,)
    missing = [p for p in parts if not scores["complete"].get(p)]
    if missing:
        cell.notes.setdefault("limited", "")
        cell.notes["limited"] = (cell.notes["limited"] + "; " if cell.notes["limited"] else "") + \
            "subtasks missing in " + ", ".join(missing)
    variant = scores.get("normalization") if key != "US" else None
    notes = _protocol_notes(family[0], None, column.get("protocol") or {}, variant=variant)
    if notes:
        cell.notes["protocol"] = "; ".join(notes)
    return cell


def _run_cell(runs: Sequence[RunResult], column: Mapping[str, Any], decimals: int) -> PaperCell | None:
    by_task = {r.task: r for r in runs}
    for index, (task, name) in enumerate(column.get("runs") or []):
        run = by_task.get(task)
        metric = run.metrics.get(name) if run else None
        if metric is None:
            continue
        value = metric.get("value")
        scale = float(column.get("scale", metric.get("scale", 1.0)))
        cell = PaperCell(value * scale if value is not None else None, decimals)
        if run.limited:
            from mio_eval.report import coverage

            cell.notes["limited"] = f"{task}: " + (coverage(run.data) or f"n={run.n}" + (
                f", runner.limit {run.limit}" if run.limit is not None else ""))
        notes = _protocol_notes(run, metric, column.get("protocol") or {})
        if notes:
            cell.notes["protocol"] = f"{task}·{name}: " + "; ".join(notes)
        if index > 0:
            cell.notes["stand_in"] = f"{task} stands in for {column['runs'][0][0]}"
        return cell
    return None


def paper_rows(table: Mapping[str, Any], runs: Sequence[RunResult]) -> list[tuple[str, list[PaperCell | None]]]:
    """Our rows for one paper table: (model, one cell or None per column), models with a value only."""
    by_model: dict[str, list[RunResult]] = {}
    for run in runs:
        by_model.setdefault(run.model, []).append(run)
    rows = []
    for model in sorted(by_model):
        cells = []
        for column in table["columns"]:
            decimals = int(column.get("decimals", table.get("decimals", 2)))
            maker = _mme_unify_cell if "mme_unify" in column else _run_cell
            cells.append(maker(by_model[model], column, decimals))
        if any(c is not None for c in cells):
            rows.append((model, cells))
    return rows


def _published_cell(value: float | None, decimals: int) -> str:
    return "–" if value is None else f"{value:.{decimals}f}"


def render_paper(runs: Sequence[RunResult], *, published: Mapping[str, Any] | None = None) -> str:
    """Markdown: each paper table with its published rows (source column) then ours, marked."""
    from mio_eval.report import _table

    published = published or load_published()
    blocks = [f"Published rows: {published['paper']}. Ours: rows `ours: <model>`. "
              f"Marks: {MARKS['limited']} limited run, {MARKS['protocol']} protocol differs from the paper's, "
              f"{MARKS['stand_in']} a stand-in task."]
    for table in published["tables"]:
        header = ["model", *[c["name"] for c in table["columns"]], "source"]
        body = []
        for row in table["rows"]:
            cells = [_published_cell(v, int(c.get("decimals", table.get("decimals", 2))))
                     for v, c in zip(row["values"], table["columns"])]
            body.append([row["model"], *cells, row.get("cite", table["cite"])])
        notes = []
        for model, cells in paper_rows(table, runs):
            body.append([f"**ours: {model}**", *[c.text() if c else "" for c in cells], "this run"])
            for column, cell in zip(table["columns"], cells):
                for kind, text in (cell.notes.items() if cell else ()):
                    notes.append(f"- {MARKS[kind]} {model} · {column['name']}: {text}")
        block = f"### {table['title']}\n\n_{table['cite']}_\n\n" + _table(header, body)
        if notes:
            block += "\n\n" + "\n".join(notes)
        blocks.append(block)
    return "\n\n".join(blocks) + "\n"
