"""The ``mio-eval`` command: a Hydra app, plus sub-commands (``mio-eval report ...``).

Exit codes: 0 success; 1 the run failed (error budget exceeded, a crash); 2 unusable input (an
unknown task or model, a bad override, a missing file), reported in one line before anything
is loaded or written.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

__all__ = ["main", "entry"]

SUBCOMMANDS = {
    "report": "mio_eval.report:main",
    "gate": "mio_eval.gate:main",
    "validate": "mio_eval.validate:main",
    "export": "mio_eval.export:main",
    "leaderboard": "mio_eval.export:leaderboard_main",
    "repair": "mio_eval.cli:repair_main",
    "view": "mio_eval.view:main",
    "data": "mio_eval.data_prepare:main",
}

_state: dict = {"entered": False, "exit": 0, "runs": []}


def _fail(message: str, code: int) -> None:
    print(f"mio-eval: error: {message}", file=sys.stderr)
    _state["exit"] = max(_state["exit"], code)


def _task_function(cfg) -> None:
    """Hydra's task function: run one job, turning run-level errors into exit codes."""
    from mio_eval.api import execute
    from mio_eval.errors import MioEvalError

    _state["entered"] = True
    from mio_eval import distributed

    nproc = cfg.get("runner", {}).get("nproc", 1)
    if isinstance(nproc, int) and nproc > 1 and not distributed.is_worker():
        _launch(cfg, nproc)
        return
    try:
        metrics = execute(cfg, on_start=_announce_model)
    except MioEvalError as exc:
        _fail(str(exc), exc.exit_code)
        return
    except KeyboardInterrupt:
        _fail("interrupted; finished samples are saved, rerun the same command to resume", 130)
        return
    if metrics is None and distributed.is_worker() and os.environ.get("RANK", "0") != "0":
        return  # a data-parallel rank other than 0: rank 0 reports
    if metrics is None:
        print(f"generated {cfg.task.name} with {cfg.model.name}; score with runner.stage=score")
        return
    from mio_eval.report import render_runs

    print(render_runs([metrics]))
    print(f"results: {cfg.paths.results_dir}/{metrics['model']}/{metrics['task']}/metrics.json")
    _state["runs"].append(metrics)


def _launch(cfg, nproc: int) -> None:
    """``runner.nproc=N``: this job's command as N data-parallel ranks (``mio_eval.distributed``)."""
    import json
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig

    from mio_eval import distributed

    code = distributed.launch(list(HydraConfig.get().overrides.task), nproc=nproc)
    if code:
        _state["exit"] = max(_state["exit"], code)
        return
    path = Path(cfg.paths.results_dir) / cfg.model.name / cfg.task.name / "metrics.json"
    if cfg.runner.get("stage") != "generate" and path.is_file():  # rank 0 printed it; a sweep ranks it
        _state["runs"].append(json.loads(path.read_text(encoding="utf-8")))


def _hydra_main() -> None:
    import hydra

    from mio_eval.config import register_resolvers

    register_resolvers()
    wrapped = hydra.main(config_path="pkg://mio_eval.configs", config_name="eval", version_base="1.3")(_task_function)
    wrapped()


def _usage() -> str:
    from mio_eval.config import CHECKED_GROUPS, group_choices

    lines = [
        "mio-eval: evaluate any-to-any multimodal models (MIO and baselines).",
        "",
        "usage: mio-eval task=<task> [model=<model>] [group.key=value ...]   (no model=: the task's default)",
        "       mio-eval task=<a>,<b> model=<x>        several tasks in one process, model loaded once",
        "       mio-eval suite=<suite> model=<x>       a named suite (e.g. a table of the MIO paper)",
        "       mio-eval -m task=<a>,<b> model=<x>,<y>  sweep (one run per combination, ranked at the end)",
        "       mio-eval task=<task> --help             the composed config of that task",
        "       mio-eval report [results_dir]           markdown tables of every metrics.json",
        "       mio-eval validate task=<task> model=<m>  check config, data and checkpoints; run nothing",
        "       mio-eval gate --baseline A --candidate B regression gate (exit 1 on a regression)",
        "       mio-eval export --format F RUN_DIR      submission file (vqav2, vizwiz, coco_captions, mme_unify)",
        "       mio-eval export --format leaderboard ROOT...   leaderboard JSON",
        "       mio-eval leaderboard ROOT...            markdown leaderboard, one table per task",
        "       mio-eval repair RUN_DIR                 keep every valid line of a damaged predictions.jsonl",
        "       mio-eval view ROOT --out DIR            static HTML site: runs, samples (listen and look), comparisons",
        "",
        "config groups (group=option):",
    ]
    lines += [f"  {group:<11} {', '.join(group_choices(group))}" for group in CHECKED_GROUPS]
    lines += [
        "",
        "common overrides: runner.limit=N runner.batch_size=N runner.stage=generate|score|all",
        "  runner.max_error_rate=0.1 runner.overwrite=true paths.results_dir=DIR",
        "results: <paths.results_dir>/<model>/<task>/; rerunning the same command resumes.",
        "exit codes: 0 ok, 1 run failed (error budget, crash), 2 unusable input (config, files).",
    ]
    return "\n".join(lines)


def repair_main(argv: Sequence[str]) -> int:
    """``mio-eval repair RUN_DIR``: keep every valid line of a damaged predictions.jsonl."""
    from mio_eval.errors import MioEvalError
    from mio_eval.store import repair

    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print("usage: mio-eval repair RUN_DIR   keep every valid line of RUN_DIR/predictions.jsonl "
              "(backed up first); then rerun to regenerate what was dropped")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    try:
        counts = repair(argv[0])
    except MioEvalError as exc:
        print(f"mio-eval repair: error: {exc}", file=sys.stderr)
        return 2
    print(f"kept {counts['kept']} records; dropped {counts['dropped_corrupt']} corrupt line(s) and "
          f"{counts['dropped_duplicates']} duplicate(s); original saved as {counts['backup']}; rerun the "
          "same command to regenerate the dropped samples")
    return 0


def _value_of(args: Sequence[str], key: str) -> str | None:
    for arg in args:
        if "=" in arg and arg.split("=", 1)[0].lstrip("+") == key:
            return arg.split("=", 1)[1]
    return None


def _with_default_model(args: list[str], tasks: Sequence[str]) -> list[str]:
    """Add ``model=<the task's default_model>`` when no model is chosen, and say which model runs."""
    from mio_eval.config import default_model

    if _value_of(args, "model") is not None or any(a.split("=", 1)[0].startswith("model._target_") for a in args):
        return args
    defaults = {default_model(t) for t in tasks}
    if len(defaults) == 1 and None not in defaults:
        model = defaults.pop()
        _state["note"] = (f"mio-eval: no model= given: running {', '.join(tasks)}'s default model {model!r} "
                          "(choose another with model=<name>)")
        return [*args, f"model={model}"]
    _state["note"] = ("mio-eval: no model= given: running model='dummy' (no weights: it echoes its input, so its "
                      "scores mean nothing; choose a real model with model=<name>, see mio-eval --help)")
    return args


def _announce_model() -> None:
    """Say which model runs when the user chose none, once the run has started (not before a
    config error, which stays the only line)."""
    note = _state.pop("note", None)
    if note:
        print(note, file=sys.stderr)


def _run_suite(tasks: list[str], overrides: list[str], label: str) -> int:
    from mio_eval.api import run_suite
    from mio_eval.errors import MioEvalError
    from mio_eval.report import render_runs

    def announce(name, metrics, error):
        if error is not None:
            print(f"mio-eval: error: {name}: {error}", file=sys.stderr)
        elif metrics is not None:
            print(f"{name}: done ({metrics['model']}), results in {_value_of(overrides, 'paths.results_dir') or 'results'}"
                  f"/{metrics['model']}/{metrics['task']}/", file=sys.stderr)

    print(f"mio-eval: {label}: {len(tasks)} tasks in one process ({', '.join(tasks)})", file=sys.stderr)
    _announce_model()
    try:
        results = run_suite(tasks, overrides, on_result=announce)
    except MioEvalError as exc:
        print(f"mio-eval: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mio-eval: error: interrupted; finished samples are saved, rerun the same command to resume",
              file=sys.stderr)
        return 130
    done = [m for _, m, e in results if m is not None]
    failed = [(name, e) for name, _, e in results if e is not None]
    if done:
        print(render_runs(done))
    for name, error in failed:
        print(f"- {name}: FAILED: {' '.join(str(error).split())}")
    print(f"{label}: {len(done)} of {len(tasks)} tasks scored" + (f", {len(failed)} failed" if failed else ""))
    return max([e.exit_code for _, e in failed], default=0)


def _suite_args(args: list[str]) -> tuple[list[str], list[str], str] | None:
    """(tasks, other overrides, label) when the command runs a suite in one process: ``suite=NAME``
    or ``task=a,b`` without ``-m`` (with ``-m`` it is a Hydra sweep, one job per task)."""
    from mio_eval.api import suite_tasks
    from mio_eval.errors import ConfigError

    if {"-m", "--multirun"} & set(args):
        return None
    suite = _value_of(args, "suite")
    task = _value_of(args, "task")
    rest = [a for a in args if "=" not in a or a.split("=", 1)[0].lstrip("+") not in ("suite", "task")]
    if suite is not None:
        if task is not None:
            raise ConfigError(f"give suite={suite} or task=..., not both")
        tasks, shared = suite_tasks(suite)
        return tasks, [*shared, *rest], f"suite {suite}"
    if task is not None and "," in task and not any(ch in task for ch in "()[]{}"):
        tasks = [t.strip() for t in task.split(",") if t.strip()]
        return tasks, rest, "tasks"
    return None


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    _state.pop("note", None)
    if args and args[0] in SUBCOMMANDS:
        import importlib

        module, function = SUBCOMMANDS[args[0]].split(":")
        sys.exit(getattr(importlib.import_module(module), function)(args[1:]))

    from mio_eval.config import group_choices, validate_choices
    from mio_eval.errors import ConfigError

    chooses_task = any(a.lstrip("+").split("=", 1)[0] in ("task", "experiment", "suite") for a in args if "=" in a)
    if not chooses_task and ({"-h", "--help"} & set(args) or not args):
        print(_usage())
        sys.exit(0)
    try:
        validate_choices(args)
        from mio_eval.trust import check_overrides

        check_overrides(args)
        if not chooses_task and not {"--hydra-help", "--info", "-i"} & set(args):
            raise ConfigError(f"no task chosen: add task=<name>, one of: {', '.join(group_choices('task'))}")
        suite = _suite_args(args)
        if suite is not None:
            tasks, overrides, label = suite
            validate_choices([f"task={t}" for t in tasks])
            overrides = _with_default_model(overrides, tasks)
        else:
            task = _value_of(args, "task")
            if task is not None and "=" not in task and not {"--help", "-h"} & set(args):
                args = _with_default_model(args, [t for t in task.split(",") if t])
    except ConfigError as exc:
        print(f"mio-eval: error: {exc}", file=sys.stderr)
        sys.exit(2)
    if suite is not None:
        from mio_eval import distributed

        nproc = _value_of(args, "runner.nproc")
        if nproc is not None and nproc.isdigit() and int(nproc) > 1 and not distributed.is_worker():
            sys.exit(distributed.launch(args, nproc=int(nproc)))  # every rank runs the suite
        sys.exit(_run_suite(tasks, overrides, label))
    sys.argv = [sys.argv[0] if sys.argv else "mio-eval", *args]  # Hydra parses sys.argv
    _state.update(entered=False, exit=0, runs=[])  # "note" survives: said once the run starts
    # Hydra prints its own errors (a bad override) over several lines; HYDRA_FULL_ERROR makes it
    # raise them instead, so they are reported below in one line (unless the user set it).
    user_full_error = "HYDRA_FULL_ERROR" in os.environ
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        _hydra_main()
    except Exception as exc:  # noqa: BLE001 - only Hydra's own errors, before the task function
        if _state["entered"] or user_full_error:
            raise
        cause = f" ({str(exc.__cause__).splitlines()[0]})" if exc.__cause__ and str(exc.__cause__) else ""
        print(f"mio-eval: error: {' '.join(str(exc).split())}{cause}", file=sys.stderr)
        sys.exit(2)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        # Hydra exits 1 on its own errors (a bad override, an unknown key, a missing `task`),
        # all of them before our task function runs: unusable input, so exit code 2.
        if code == 1 and not _state["entered"]:
            code = 2
        sys.exit(max(code, _state["exit"]))
    finally:
        if not user_full_error:
            os.environ.pop("HYDRA_FULL_ERROR", None)
    if len(_state["runs"]) > 1:  # a sweep: the runs ranked, per task and sample set
        from mio_eval.report import render_ranked

        print(render_ranked(_state["runs"]))
    sys.exit(_state["exit"])


def entry() -> None:
    """The ``mio-eval`` console script and ``python -m mio_eval``: ``main``, then the process ends
    without the interpreter's teardown (``mio_eval.quick_exit``; ~2 s per process with torch)."""
    from mio_eval.quick_exit import run

    run(main)


if __name__ == "__main__":
    entry()
