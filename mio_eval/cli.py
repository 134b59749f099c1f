"""The ``mio-eval`` command: a Hydra app, plus sub-commands (``mio-eval report ...``).

Exit codes: 0 success; 1 the run failed (error budget exceeded, a crash); 2 unusable input (an
unknown task or model, a bad override, a missing file), reported in one line before anything
is loaded or written.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

__all__ = ["main"]

SUBCOMMANDS = {
    "report": "mio_eval.report:main",
    "gate": "mio_eval.gate:main",
    "validate": "mio_eval.validate:main",
    "export": "mio_eval.export:main",
    "leaderboard": "mio_eval.export:leaderboard_main",
}

_state = {"entered": False, "exit": 0}


def _fail(message: str, code: int) -> None:
    print(f"mio-eval: error: {message}", file=sys.stderr)
    _state["exit"] = max(_state["exit"], code)


def _task_function(cfg) -> None:
    """Hydra's task function: run one job, turning run-level errors into exit codes."""
    from mio_eval.api import execute
    from mio_eval.errors import MioEvalError

    _state["entered"] = True
    try:
        metrics = execute(cfg)
    except MioEvalError as exc:
        _fail(str(exc), exc.exit_code)
        return
    except KeyboardInterrupt:
        _fail("interrupted; finished samples are saved, rerun the same command to resume", 130)
        raise
    if metrics is None:
        print(f"generated {cfg.task.name} with {cfg.model.name}; score with runner.stage=score")
        return
    from mio_eval.report import render_runs

    print(render_runs([metrics]))
    print(f"results: {cfg.paths.results_dir}/{metrics['model']}/{metrics['task']}/metrics.json")


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
        "usage: mio-eval task=<task> model=<model> [group.key=value ...]",
        "       mio-eval -m task=<a>,<b> model=<x>     sweep (one run per combination)",
        "       mio-eval task=<task> --help             the composed config of that task",
        "       mio-eval report [results_dir]           markdown tables of every metrics.json",
        "       mio-eval validate task=<task> model=<m>  check config, data and checkpoints; run nothing",
        "       mio-eval gate --baseline A --candidate B regression gate (exit 1 on a regression)",
        "       mio-eval export --format F RUN_DIR      submission file (vqav2, vizwiz, coco_captions, mme_unify)",
        "       mio-eval export --format leaderboard ROOT...   leaderboard JSON",
        "       mio-eval leaderboard ROOT...            markdown leaderboard, one table per task",
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


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in SUBCOMMANDS:
        import importlib

        module, function = SUBCOMMANDS[args[0]].split(":")
        sys.exit(getattr(importlib.import_module(module), function)(args[1:]))

    from mio_eval.config import group_choices, validate_choices
    from mio_eval.errors import ConfigError

    chooses_task = any(a.lstrip("+").split("=", 1)[0] in ("task", "experiment") for a in args if "=" in a)
    if not chooses_task and ({"-h", "--help"} & set(args) or not args):
        print(_usage())
        sys.exit(0)
    try:
        validate_choices(args)
        if not chooses_task and not {"--hydra-help", "--info", "-i"} & set(args):
            raise ConfigError(f"no task chosen: add task=<name>, one of: {', '.join(group_choices('task'))}")
    except ConfigError as exc:
        print(f"mio-eval: error: {exc}", file=sys.stderr)
        sys.exit(2)
    if argv is not None:
        sys.argv = [sys.argv[0] if sys.argv else "mio-eval", *args]
    _state.update(entered=False, exit=0)
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
    sys.exit(_state["exit"])


if __name__ == "__main__":
    main()
