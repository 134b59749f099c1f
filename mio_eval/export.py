"""Leaderboard exports: the evaluation servers' submission files and a mio-eval leaderboard.

    mio-eval export --format vqav2|vizwiz|coco_captions|mme_unify RUN_DIR [--out FILE] [--force]
    mio-eval export --format leaderboard ROOT [ROOT ...] [--out FILE]
    mio-eval leaderboard ROOT [ROOT ...] [--out FILE.md]

A submission file is the artifact a task returned when it scored a split without public answers,
written by the store and recorded in ``metrics.json`` (``scoring.submission_file``, listed in
``artifacts``). Export validates it against its server's
expectations — every row has the format's fields with the right types, ids unique, one row per
sample of the run — and refuses an incomplete run (failed samples have no row) unless
``--force``, which fills each missing row with an empty answer and names them on stderr.

The leaderboard JSON holds, per model × task: metric values (raw and at the reporting scale), the
95% interval where repeats gave one, n, errors, the variant, the judge models with their paths and
digests, the config fingerprint and the package versions. ``mio-eval leaderboard`` renders one
markdown table per task, models ranked by the task's first metric in its own direction.

Exit codes: 0 written, 2 unusable or incomplete input.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.atomic import atomic_write_json, atomic_write_text
from mio_eval.errors import ConfigError
from mio_eval.results import RunResult, read_metrics_json, read_scores, runs_at
from mio_eval.submission import FORMATS, SubmissionFormat, submission_format

__all__ = ["FORMATS", "validate_submission", "export_submission", "leaderboard_json", "render_leaderboard", "main"]

SCHEMA = "mio-eval-leaderboard/1"
LEADERBOARD = "leaderboard"


def _metrics_json(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise ConfigError(f"no metrics.json in {run_dir}: score the run first (runner.stage=score)")
    return read_metrics_json(path)


def _scores(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "scores.jsonl"
    if not path.is_file():
        raise ConfigError(f"no scores.jsonl in {run_dir}")
    return [dict(row) for row in read_scores(path).values()]


def validate_submission(rows: Any, fmt: str | Mapping[str, Any] | SubmissionFormat) -> list[str]:
    """Problems with ``rows`` as a submission of ``fmt`` (a name, a ``_target_`` spec or a format;
    empty list = valid)."""
    return submission_format(fmt).validate(rows)


def _recorded_submission(metrics: Mapping[str, Any]) -> str | None:
    """The submission file the run recorded: ``scoring.submission_file`` (captioning, VQA) or, for
    MME-Unify, ``scoring.submission``; both name a file of the run's ``artifacts`` (the files the
    store wrote for the task, listed in ``metrics.json``). A run from before artifacts were
    recorded has no ``artifacts`` list and its recorded path is taken as is. Nothing is globbed."""
    scoring = metrics.get("scoring") or {}
    source = scoring.get("submission_file") or scoring.get("submission")
    artifacts = metrics.get("artifacts")
    if source and artifacts is not None and source not in artifacts:
        raise ConfigError(f"the run records submission file {source!r} but wrote only {artifacts}; rerun its scoring")
    return source


def export_submission(run_dir: str | Path, fmt: str | Mapping[str, Any] | SubmissionFormat, *,
                      out: str | Path | None = None, force: bool = False) -> Path:
    """Validate the submission file a run wrote and copy it to ``out`` (default
    ``<run dir>/<format>_submission.json``); ``fmt`` as :func:`mio_eval.submission.submission_format`."""
    run_dir = Path(run_dir)
    spec = submission_format(fmt)
    fmt = spec.name
    metrics = _metrics_json(run_dir)
    if metrics.get("complete") is False and not force:
        from mio_eval.report import coverage

        raise ConfigError(f"{run_dir} is not a whole split ({coverage(metrics)}): a server would score the missing "
                          "samples as wrong; rerun without runner.limit, or --force to export it anyway")
    if metrics.get("failed") and not force:
        raise ConfigError(f"{run_dir} is a failed run ({metrics['failed']}); --force to export it anyway")
    source = _recorded_submission(metrics)
    if source and not Path(source).is_absolute():
        source = str(run_dir / source)
    if not source or not Path(source).is_file():
        raise ConfigError(f"{run_dir} has no submission file (task {metrics['task']!r} writes one only for a split "
                          "without public answers, or an MME-Unify task)")
    try:
        rows = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"cannot read submission file {source}: {' '.join(str(exc).split())}") from None
    problems = spec.validate(rows)
    if problems:
        raise ConfigError(f"{source} is not a valid {fmt} submission: {problems[0]} ({len(problems)} problem(s))")
    failed = [r for r in _scores(run_dir) if r.get("error")]
    if len(rows) + len(failed) != metrics["n"]:
        raise ConfigError(f"{source} holds {len(rows)} rows and {len(failed)} samples failed, but the run has "
                          f"{metrics['n']} samples; rerun the task's scoring")
    if failed:
        if not force:
            raise ConfigError(f"incomplete run: {len(failed)} of {metrics['n']} samples failed (first: "
                              f"{failed[0]['id']}: {failed[0]['error']}); rerun to resume them, or --force to "
                              "submit them with empty answers")
        filled = [spec.missing_row(r) for r in failed]
        if any(f is None for f in filled):
            raise ConfigError(f"cannot fill the {len(failed)} failed samples of a {fmt} submission; rerun them")
        rows = rows + filled
        print(f"mio-eval export: --force: {len(failed)} failed samples submitted with empty answers: "
              f"{', '.join(str(r['id']) for r in failed[:10])}", file=sys.stderr)
    target = Path(out) if out else run_dir / f"{fmt}_submission.json"
    atomic_write_json(target, rows)
    return target


def _runs(roots: Sequence[str | Path]) -> list[tuple[Path, RunResult]]:
    """(root, run) of every run under the roots (each a run dir or a results root; :func:`runs_at`)."""
    return [(Path(root), run) for root in roots for run in runs_at(root, strict=True)[0]]


def _finite(value: Any) -> Any:
    """JSON has no NaN: a NaN or infinite value is written as null (and flagged by the caller)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _private(value: Any) -> Any:
    """No absolute machine paths in a published leaderboard: a path becomes its last component
    plus a digest of the whole (``MIO-7B-Instruct#1a2b3c4d``), recursively in mappings/lists."""
    if isinstance(value, Mapping):
        return {k: _private(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_private(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        return f"{Path(value).name}#{hashlib.sha256(value.encode()).hexdigest()[:8]}"
    return _finite(value)


def leaderboard_json(roots: Sequence[str | Path]) -> dict[str, Any]:
    entries = []
    for root, run in _runs(roots):
        run_dir, m = run.run_dir, run.data
        metrics, flags = {}, []
        for name, data in m["metrics"].items():
            extra = data.get("extra") or {}
            scale = data.get("scale", 1.0)
            value = data.get("value")
            if isinstance(value, float) and not math.isfinite(value):
                flags.append(f"{name} is {value}")
                value = None
            metrics[name] = {
                "value": value,
                "reported": None if value is None else value * scale,
                "scale": scale,
                "higher_is_better": data["higher_is_better"],
                "variant": data.get("variant"),
                "n": data.get("n"),
                "ci95": _private(extra.get("ci95")),
            }
        complete = m.get("complete") is True and not m.get("failed")
        if m.get("complete") is None:
            flags.append("coverage unknown (a run older than the complete field)")
        if m.get("failed"):
            flags.append(f"failed: {m['failed']}")
        try:
            run_path = str(run_dir.relative_to(root))
        except ValueError:
            run_path = run_dir.name
        entries.append({
            "model": m["model"],
            "task": m["task"],
            "metrics": metrics,
            "n": m.get("n"),
            "n_errors": m.get("n_errors"),
            "complete": complete,
            "limit": m.get("limit"),
            "n_available": m.get("n_available"),
            "split_size": m.get("split_size"),
            "sample_set": m.get("sample_set"),
            "flags": flags,
            "judges": [_private({k: j.get(k) for k in ("model", "name", "path", "sha256", "package", "role") if j.get(k)})
                       for j in m.get("judges", []) if isinstance(j, Mapping)],
            "model_provenance": _private(m.get("model_provenance", {})),
            "fingerprint": m.get("fingerprint"),
            "versions": m.get("versions", {}),
            "run_dir": run_path,
            "finished_at": m.get("finished_at"),
        })
    entries.sort(key=lambda e: (e["task"], e["model"]))
    return {"schema": SCHEMA, "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "entries": entries}


def render_leaderboard(board: Mapping[str, Any]) -> str:
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for entry in board["entries"]:
        by_task.setdefault(entry["task"], []).append(entry)
    parts = []
    for task, task_entries in sorted(by_task.items()):
        # Runs scored on different sample sets (a limit, another split) are never ranked together.
        groups: dict[Any, list[Mapping[str, Any]]] = {}
        for entry in task_entries:
            groups.setdefault(entry.get("sample_set") or ("n", entry.get("n")), []).append(entry)
        for entries in sorted(groups.values(), key=lambda g: (not g[0].get("complete"), -(g[0].get("n") or 0))):
            parts.append(_task_table(task, entries))
    return "\n\n".join(parts) + "\n" if parts else "_No results._\n"


def _task_table(task: str, entries: Sequence[Mapping[str, Any]]) -> str:
    names = list(dict.fromkeys(n for e in entries for n in e["metrics"]))
    primary = names[0] if names else None

    def rank_key(entry, primary=primary):
        metric = entry["metrics"].get(primary) or {}
        value = metric.get("value")
        if value is None:
            return (1, 0.0)
        return (0, -value if metric.get("higher_is_better") else value)

    header = ["#", "model"] + [f"{n} {'↑' if entries[0]['metrics'].get(n, {}).get('higher_is_better', True) else '↓'}"
                               for n in names] + ["n", "errors", "judge", "flags"]
    title = f"### {task}"
    first = entries[0]
    if not first.get("complete"):
        if first.get("limit") is not None:
            title += f" (limited: {first.get('n')} of {first.get('n_available')} samples; not comparable with full runs)"
        else:
            title += " (incomplete or unverified coverage; not comparable with full runs)"
    lines = [title, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, entry in enumerate(sorted(entries, key=rank_key), 1):
        cells = [str(rank), entry["model"]]
        for name in names:
            metric = entry["metrics"].get(name)
            if not metric or metric["reported"] is None:
                cells.append("–")
                continue
            text = f"{metric['reported']:.2f}"
            if metric.get("ci95"):
                text += f" ± {(metric['ci95'][1] - metric['ci95'][0]) / 2 * metric['scale']:.2f}"
            cells.append(text)
        judge = "; ".join(j.get("package") or j.get("name") or j.get("model", "") for j in entry["judges"]) or "–"
        flags = "; ".join(entry.get("flags") or []) or ("" if entry.get("complete") else "incomplete")
        cells += [str(entry["n"]), str(entry["n_errors"]), judge, flags or "–"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, *, prog: str = "mio-eval export") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", required=True, choices=[*FORMATS, LEADERBOARD])
    parser.add_argument("paths", nargs="+", help="a run dir (submission formats) or result roots (leaderboard)")
    parser.add_argument("--out", help="file to write (default: in the run dir / leaderboard.json)")
    parser.add_argument("--force", action="store_true", help="export an incomplete run (failed samples empty)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        if args.format == LEADERBOARD:  # result roots in, not a run dir: no submission format
            target = Path(args.out or "leaderboard.json")
            board = leaderboard_json(args.paths)
            atomic_write_text(target, json.dumps(board, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        else:
            if len(args.paths) != 1:
                raise ConfigError("a submission is exported from exactly one run dir")
            target = export_submission(args.paths[0], args.format, out=args.out, force=args.force)
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {target}")
    return 0


def leaderboard_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mio-eval leaderboard",
                                     description="markdown leaderboard (one table per task) from result roots")
    parser.add_argument("roots", nargs="+")
    parser.add_argument("--out", help="markdown file to write as well")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        body = render_leaderboard(leaderboard_json(args.roots))
    except ConfigError as exc:
        print(f"mio-eval leaderboard: error: {exc}", file=sys.stderr)
        return 2
    print(body, end="")
    if args.out:
        atomic_write_text(Path(args.out), "# Leaderboard\n\n" + body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
