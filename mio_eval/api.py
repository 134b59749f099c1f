"""Compose a config, build the task and the model from it, and run: shared by CLI and ``mio_eval.run``."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence

from mio_eval.config import CONFIG_MODULE, fingerprint, group_choices, register_resolvers, validate_choices
from mio_eval.errors import ConfigError, MioEvalError

__all__ = ["compose", "execute", "run", "build"]


def compose(overrides: Sequence[str]):
    """The composed ``eval`` config for ``overrides`` (what ``mio-eval`` would run)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_resolvers()
    validate_choices(overrides)
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            return hydra_compose(config_name="eval", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(_one_line(exc)) from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _container(node: Any, what: str) -> dict[str, Any]:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{what} config is incomplete: {_one_line(exc)}") from None


def build(cfg) -> tuple[Any, Any]:
    """Instantiate ``cfg.task`` and ``cfg.model`` (cheap: no weights load here)."""
    from hydra.utils import instantiate

    register_resolvers()
    if cfg.get("task") is None or "_target_" not in cfg.task:
        raise ConfigError(f"no task chosen: add task=<name>, one of: {', '.join(group_choices('task'))}")
    built = []
    for key in ("task", "model"):
        try:
            built.append(instantiate(cfg[key], _convert_="all"))
        except Exception as exc:  # noqa: BLE001 - every build failure is a config problem
            cause = _root_cause(exc)
            if isinstance(cause, MioEvalError):
                raise ConfigError(str(cause)) from None
            raise ConfigError(f"cannot build {key} from its config: {type(cause).__name__}: {_one_line(cause)}") from None
    task, model = built
    attach = getattr(task, "attach_model", None)
    if attach is not None:  # tasks that score with the model itself (TTS round trip)
        try:
            attach(model)
        except MioEvalError as exc:
            raise ConfigError(str(exc)) from None
    return task, model


def execute(cfg) -> dict[str, Any] | None:
    """Run the evaluation a composed config describes; returns metrics.json (None for stage=generate)."""
    from mio_eval.runner import RunnerSettings, evaluate

    task_cfg = _container(cfg.task, "task") if cfg.get("task") is not None else None
    model_cfg = _container(cfg.model, "model")
    runner_cfg = _container(cfg.runner, "runner")
    paths_cfg = _container(cfg.paths, "paths")
    known = {f.name for f in fields(RunnerSettings)}
    unknown = sorted(set(runner_cfg) - known)
    if unknown:
        raise ConfigError(f"unknown runner option(s): {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    settings = RunnerSettings(**runner_cfg)
    task, adapter = build(cfg)
    generation_cfg = {k: v for k, v in task_cfg.items() if k not in set(type(task).scoring_keys)}
    print_key = fingerprint({"task": generation_cfg, "model": model_cfg})
    run_dir = Path(paths_cfg["results_dir"]) / adapter.name / task.name
    run_info = {
        "task": task.name,
        "model": adapter.name,
        "config": {"task": task_cfg, "model": model_cfg, "runner": runner_cfg, "paths": paths_cfg},
    }
    return evaluate(task, adapter, run_dir=run_dir, settings=settings, fingerprint=print_key, run_info=run_info)


def run(task: str, model: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Python API: ``run("tts_demo", "espeak", ["runner.limit=5"])`` -> metrics.json as a dict."""
    cfg = compose([f"task={task}", f"model={model}", *overrides])
    result = execute(cfg)
    if result is None:  # stage=generate: nothing scored yet
        return {"task": task, "model": model, "stage": "generate", "metrics": {}}
    return result
