"""Render ``metrics.json`` files as markdown tables: ``mio-eval report [results_dir]``.

Reads only typed ``metrics.json`` files. The summary table has one row per model and one column
per task·metric with its direction (↑ higher is better, ↓ lower); values are shown at the scale
the literature reports them (WER and accuracy ×100). A second table lists, per run, n, errors,
the judge models and the metric variants that ran. The long table (one row per model × task ×
metric, with n and the 95% interval where repeats or the bootstrap give one) follows; it is
:func:`mio_eval.results.results` as markdown, and ``--format csv|parquet`` exports it as data.
``--layout paper`` renders the MIO paper's tables instead (:mod:`mio_eval.paper`); ``--plots``
writes PNG plots (:mod:`mio_eval.plots`) beside the report and links them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from mio_eval.atomic import atomic_write_text

__all__ = ["load_runs", "render_runs", "render_ranked", "render_long", "judge_label", "coverage", "main"]


def load_runs(root: str | Path) -> list[dict[str, Any]]:
    """The ``metrics.json`` content of every run under ``root`` (:func:`mio_eval.results.find_runs`),
    sorted by model then task."""
    from mio_eval.results import find_runs

    return [dict(run.data) for run in find_runs(root)]


def judge_label(judge: Mapping[str, Any]) -> str:
    name = judge.get("model", "?")
    if judge.get("path"):
        name += f" {Path(judge['path']).name}"
    if judge.get("sha256"):
        name += f" ({judge['sha256'][:8]})"
    elif judge.get("package"):
        name = judge["package"]
    return name


def _format(value: float | None, scale: float, extra: Mapping[str, Any] | None = None) -> str:
    """A value at its reporting scale; ``± half-width`` of the 95% CI when repeats gave one."""
    if value is None:
        return "–"
    extra = extra or {}
    digits = int(extra.get("decimals", 2))  # e.g. speaker similarity: 3, as seed-tts-eval prints it
    half = extra.get("ci95_half_width")
    return f"{value * scale:.{digits}f}" + (f" ± {half * scale:.{digits}f}" if half is not None else "")


LIMITED_MARK = "⁽ˡ⁾"


def coverage(run: Mapping[str, Any]) -> str | None:
    """How a run that did not evaluate the whole published split falls short, or None when it did
    (or is too old to say): ``limited: 5 of 50`` (runner.limit), ``partial split: 48 of 5000``."""
    if run.get("complete", True) is not False:
        return None
    available, size = run.get("n_available"), run.get("split_size")
    if run.get("limit") is not None:
        return f"limited: {run['n']} of {available} ({run.get('limit_mode') or 'first'})"
    if size is not None and available is not None and available != size:
        return f"partial split: {available} of {size}"
    return "incomplete"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render_runs(runs: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: a summary table (models × task·metric) and a run table (n, errors, judges)."""
    if not runs:
        return "_No results yet._\n"
    columns: list[tuple[str, str]] = []
    for run in sorted(runs, key=lambda r: r["task"]):
        for name in run["metrics"]:
            if (run["task"], name) not in columns:
                columns.append((run["task"], name))
    by_cell = {(r["model"], r["task"]): r for r in runs}
    models = sorted({r["model"] for r in runs})
    header = ["model"]
    for task, name in columns:
        meta = next(r["metrics"][name] for r in runs if r["task"] == task and name in r["metrics"])
        header.append(f"{task}·{name} {'↑' if meta['higher_is_better'] else '↓'}")
    rows = []
    for model in models:
        row = [model]
        for task, name in columns:
            run = by_cell.get((model, task), {})
            metric = run.get("metrics", {}).get(name)
            cell = _format(metric["value"], metric.get("scale", 1.0), metric.get("extra")) if metric else ""
            if metric and (coverage(run) or run.get("failed")):
                cell += LIMITED_MARK
            row.append(cell)
        rows.append(row)
    details = []
    flagged = False
    for run in sorted(runs, key=lambda r: (r["model"], r["task"])):
        variants = ", ".join(f"{k}: {m['variant']}" for k, m in run["metrics"].items())
        judges = "; ".join(judge_label(j) for j in run.get("judges", [])) or "–"
        n = str(run["n"])
        notes = [note for note in (coverage(run), f"FAILED: {run['failed']}" if run.get("failed") else None) if note]
        if notes:
            flagged = True
            n += f" ({'; '.join(notes)})"
        details.append([run["model"], run["task"], n, str(run["n_errors"]), judges, variants,
                        f"{run.get('wall_time_s', 0):.1f}"])
    footnote = (f"\n{LIMITED_MARK} limited, partial or failed run: scored on a subset (see n), not comparable with "
                "full-split numbers\n" if flagged else "")
    return (
        _table(header, rows)
        + "\n\n"
        + _table(["model", "task", "n", "errors", "judge", "variants", "wall s"], details)
        + "\n"
        + footnote
    )


def render_ranked(runs: Sequence[Mapping[str, Any]]) -> str:
    """Per task, the runs ranked by the task's first metric in its own direction. Runs scored on
    different sample sets (a ``runner.limit``, another split size) are never ranked against each
    other: each sample set gets its own table, the largest first."""
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        by_task.setdefault(run["task"], []).append(run)
    parts = []
    for task, task_runs in sorted(by_task.items()):
        groups: dict[Any, list[Mapping[str, Any]]] = {}
        for run in task_runs:
            groups.setdefault(run.get("sample_set") or ("n", run["n"]), []).append(run)
        for members in sorted(groups.values(), key=lambda g: -g[0]["n"]):
            primary = next(iter(members[0]["metrics"]), None)
            meta = members[0]["metrics"].get(primary, {}) if primary else {}
            higher = bool(meta.get("higher_is_better", True))

            def key(run, primary=primary, higher=higher):
                value = (run["metrics"].get(primary) or {}).get("value")
                if value is None or value != value:  # None or NaN: last
                    return (1, 0.0)
                return (0, -value if higher else value)

            title = f"### {task} · ranked by {primary} {'↑' if higher else '↓'} (n = {members[0]['n']})"
            note = coverage(members[0])
            if note:
                title += f" {LIMITED_MARK} {note}"
            header = ["#", "model", *[f"{m} {'↑' if d.get('higher_is_better') else '↓'}"
                                      for m, d in members[0]["metrics"].items()], "errors"]
            rows = []
            for rank, run in enumerate(sorted(members, key=key), 1):
                cells = [str(rank), run["model"]]
                for name in members[0]["metrics"]:
                    metric = run["metrics"].get(name)
                    cells.append(_format(metric.get("value"), metric.get("scale", 1.0), metric.get("extra"))
                                 if metric else "")
                cells.append(str(run["n_errors"]))
                rows.append(cells)
            parts.append(title + "\n\n" + _table(header, rows))
    return "\n\n".join(parts) + "\n"


def render_long(frame) -> str:
    """Markdown of the long table (:func:`mio_eval.results.long_table`): values and intervals at
    the reporting scale; a limited run's rows say so in the ``run`` column."""
    if frame.empty:
        return "_No results yet._\n"
    rows = []
    for rec in frame.to_dict("records"):
        scale = rec["scale"]
        digits = 2
        value = "–" if rec["value"] != rec["value"] or rec["value"] is None else f"{rec['reported']:.{digits}f}"
        ci = ""
        if rec["ci95_low"] == rec["ci95_low"] and rec["ci95_low"] is not None:
            ci = f"[{rec['ci95_low'] * scale:.{digits}f}, {rec['ci95_high'] * scale:.{digits}f}]"
        status = rec["status"] if rec["status"] != "unknown" else "–"
        rows.append([rec["model"], rec["task"], f"{rec['metric']} {'↑' if rec['higher_is_better'] else '↓'}", value,
                     ci, str(rec["n"]), str(rec["n_errors"]), status, rec["variant"]])
    return _table(["model", "task", "metric", "value", "95% CI", "n", "errors", "run", "variant"], rows) + "\n"


def _write_frame(frame, fmt: str, out: Path | None) -> int:
    if out is None:
        if fmt == "parquet":
            print("mio-eval report: error: --format parquet needs --out FILE", file=sys.stderr)
            return 2
        print(frame.to_csv(index=False), end="")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        atomic_write_text(out, frame.to_csv(index=False))
    else:
        frame.to_parquet(out, index=False)
    print(f"wrote {out} ({len(frame)} rows)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mio-eval report", description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", nargs="?", default="results", help="results root (default: results)")
    parser.add_argument("--out", help="markdown file to write (default: <results_dir>/README.md, "
                                      "<results_dir>/PAPER.md for --layout paper)")
    parser.add_argument("--stdout", action="store_true", help="print only, write no file")
    parser.add_argument("--layout", choices=("wide", "long", "both", "paper"), default="both",
                        help="wide (models x task·metric), long (model x task x metric), both (default), "
                             "paper (the MIO paper's tables with their published rows)")
    parser.add_argument("--format", choices=("markdown", "csv", "parquet"), default="markdown",
                        help="csv / parquet: the long table as data (to --out, or csv to stdout)")
    parser.add_argument("--plots", action="store_true", help="also write PNG plots beside the report and link them")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for 95%% CIs (0: off)")
    args = parser.parse_args(argv)
    root = Path(args.results_dir)
    if not root.is_dir():
        print(f"mio-eval report: error: no results directory {root}", file=sys.stderr)
        return 2
    if args.format != "markdown":
        from mio_eval.results import results

        return _write_frame(results(root, bootstrap=args.bootstrap), args.format, Path(args.out) if args.out else None)
    if args.layout == "paper":
        from mio_eval.paper import render_paper
        from mio_eval.results import find_runs

        body = render_paper(find_runs(root))
    else:
        body = render_runs(load_runs(root)) if args.layout in ("wide", "both") else ""
        if args.layout in ("long", "both"):
            from mio_eval.results import results

            frame = results(root, bootstrap=args.bootstrap)
            if not frame.empty:
                body += ("\n" if body else "") + "### Long format\n\n" + render_long(frame)
    # The paper layout goes beside the usual report, not over it.
    out = Path(args.out) if args.out else root / ("PAPER.md" if args.layout == "paper" else "README.md")
    if args.plots and not args.stdout:
        from mio_eval.plots import write_plots
        from mio_eval.results import find_runs

        pngs = write_plots(find_runs(root), out.parent / "plots")
        if pngs:
            body += "\n### Plots\n\n" + "".join(
                f"![{p.stem}]({p.relative_to(out.parent).as_posix()})\n" for p in pngs)
    print(body, end="")
    if not args.stdout:
        atomic_write_text(out, f"# Results\n\nGenerated by `mio-eval report {root}`.\n\n{body}")
    return 0
