"""Compose a config, build the task and the model from it, and run: shared by CLI and ``mio_eval.run``."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.config import CONFIG_MODULE, ExperimentScope, fingerprint, group_choices, register_resolvers, validate_choices
from mio_eval.errors import ConfigError, MioEvalError

__all__ = ["compose", "execute", "run", "run_suite", "build", "build_task", "build_model", "portable", "data_roots"]


def compose(overrides: Sequence[str]):
    """The composed ``eval`` config for ``overrides`` (what ``mio-eval`` would run)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from mio_eval.trust import check_overrides

    register_resolvers()
    validate_choices(overrides)
    check_overrides(overrides)
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


def _instantiate(node, key: str):
    from hydra.utils import instantiate

    try:
        return instantiate(node, _convert_="all")
    except Exception as exc:  # noqa: BLE001 - every build failure is a config problem
        cause = _root_cause(exc)
        if isinstance(cause, MioEvalError):
            raise ConfigError(str(cause)) from None
        raise ConfigError(f"cannot build {key} from its config: {type(cause).__name__}: {_one_line(cause)}") from None


def _checked(cfg) -> None:
    from omegaconf import OmegaConf

    from mio_eval.trust import check_targets

    register_resolvers()
    if cfg.get("task") is None or "_target_" not in cfg.task:
        raise ConfigError(f"no task chosen: add task=<name>, one of: {', '.join(group_choices('task'))}")
    scope = ExperimentScope.of(cfg)
    if scope is not None:
        scope.check(str(cfg.task.get("name", "")))
    check_targets(OmegaConf.to_container(cfg, resolve=False))


def build_task(cfg) -> Any:
    """Instantiate ``cfg.task`` (``default_model``, CLI metadata, is not passed on)."""
    from omegaconf import OmegaConf

    _checked(cfg)
    node = cfg.task
    if "default_model" in node:  # resolved within the whole config, then detached without the key
        data = _container(node, "task")
        data.pop("default_model")
        node = OmegaConf.create(data)
    return _instantiate(node, "task")


def build_model(cfg) -> Any:
    """Instantiate ``cfg.model`` (cheap: weights load in ``load()``)."""
    _checked(cfg)
    return _instantiate(cfg.model, "model")


def _bind(task, model) -> None:
    """Give the task what it declared it needs of the model (``bind(Capabilities)``), never the model."""
    bind = getattr(task, "bind", None)
    if bind is not None:  # tasks that count tokens (MMLU) or score with the model (TTS round trip)
        from mio_eval.capabilities import Capabilities

        try:
            bind(Capabilities(model))
        except MioEvalError as exc:
            raise ConfigError(str(exc)) from None


def build(cfg) -> tuple[Any, Any]:
    """Instantiate ``cfg.task`` and ``cfg.model`` (cheap: no weights load here), after checking
    every ``_target_`` of the config against the allow-list (``mio_eval.trust``)."""
    task, model = build_task(cfg), build_model(cfg)
    _bind(task, model)
    return task, model


def _settings(cfg):
    from mio_eval.runner import RunnerSettings

    runner_cfg = _container(cfg.runner, "runner")
    known = {f.name for f in fields(RunnerSettings)}
    unknown = sorted(set(runner_cfg) - known)
    if unknown:
        raise ConfigError(f"unknown runner option(s): {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    return RunnerSettings(**runner_cfg)


def execute(cfg, *, model: Any = None, on_start=None) -> dict[str, Any] | None:
    """Run the evaluation a composed config describes; returns metrics.json (None for stage=generate).

    ``model``: an adapter already built (a suite shares one across its tasks, loaded once).
    ``on_start``: called once the config is known good, just before the run starts."""
    settings = _settings(cfg)
    from mio_eval import distributed

    if settings.nproc > 1 and not distributed.is_worker():
        raise ConfigError("runner.nproc starts ranks from the command line (mio-eval ... runner.nproc=N); from Python, "
                          "launch this process with torchrun or accelerate instead")
    if settings.repeats > 1:
        result = _execute_repeats(cfg, settings, model=model, on_start=on_start)
    else:
        result = _execute_once(cfg, settings, model=model, on_start=on_start)
    if result is not None and cfg.get("logger") is not None:  # logger=wandb|hf_hub (mio_eval.loggers)
        from mio_eval.loggers import log_run
        log_run(result, Path(cfg.paths.results_dir) / result["model"] / result["task"], _container(cfg, "run"))
    return result


def _execute_once(cfg, settings, *, subdir: str | None = None, model: Any = None,
                  on_start=None) -> dict[str, Any] | None:
    from mio_eval.runner import evaluate

    task_cfg = _container(cfg.task, "task") if cfg.get("task") is not None else None
    model_cfg = _container(cfg.model, "model")
    runner_cfg = _container(cfg.runner, "runner")
    paths_cfg = _container(cfg.paths, "paths")
    if model is None:
        task, adapter = build(cfg)
    else:
        task, adapter = build_task(cfg), model
        _bind(task, adapter)
    generation_cfg = {k: v for k, v in task_cfg.items() if k not in set(type(task).scoring_keys) | {"default_model"}}
    roots = _path_roots(paths_cfg)
    print_key = fingerprint({"task": portable(generation_cfg, roots, drop=("loader",)),
                             "model": portable(model_cfg, roots)})
    run_dir = Path(paths_cfg["results_dir"]) / adapter.name / task.name
    if subdir:
        run_dir = run_dir / subdir
    run_info = {
        "task": task.name,
        "model": adapter.name,
        "config": {"task": task_cfg, "model": model_cfg, "runner": runner_cfg, "paths": paths_cfg},
    }
    roots, allow_outside = data_roots(task_cfg, paths_cfg)
    return evaluate(task, adapter, run_dir=run_dir, settings=settings, fingerprint=print_key, run_info=run_info,
                    data_roots=roots, allow_outside_data=allow_outside, on_start=on_start)


def data_roots(task_cfg: Mapping[str, Any], paths_cfg: Mapping[str, Any]) -> tuple[list[str], bool]:
    """Where a task's data files may lie (the folders its loader config names, ``paths.data_dir``,
    ``paths.cache_dir``) and whether ``paths.allow_outside_data`` lifts the confinement."""
    from mio_eval.samples import loader_roots

    roots = [*loader_roots(task_cfg.get("loader")), paths_cfg.get("data_dir"), paths_cfg.get("cache_dir")]
    return [str(r) for r in roots if r], bool(paths_cfg.get("allow_outside_data", False))


def _path_roots(paths_cfg: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(placeholder, absolute root) pairs, longest first: where a config's paths are made relative."""
    from mio_eval.config import data_path

    roots = [(f"${{paths.{k}}}", str(paths_cfg[k])) for k in ("data_dir", "checkpoints_dir", "cache_dir", "results_dir")
             if isinstance(paths_cfg.get(k), str)]
    roots.append(("${mio_data:}", str(Path(data_path("tts_demo")).parent)))
    home = os.environ.get("HOME")
    if home:
        roots.append(("~", home))
    absolute = [(name, os.path.normpath(os.path.abspath(root))) for name, root in roots]
    # Relative roots (results, data) stay relative in configs: only absolute paths are rewritten.
    return sorted(absolute, key=lambda item: -len(item[1]))


def portable(node: Any, roots: Sequence[tuple[str, str]], *, drop: Sequence[str] = ()) -> Any:
    """The config with every path under a root written relative to it (``${paths.data_dir}/coco``),
    and the ``drop`` keys (the data loader: samples are checked by content) replaced by a
    marker, so the fingerprint survives moving data, checkpoints or ``$HOME``."""
    if isinstance(node, Mapping):
        return {k: ("<checked by content>" if k in drop else portable(v, roots)) for k, v in node.items()}
    if isinstance(node, list):
        return [portable(v, roots) for v in node]
    if isinstance(node, str) and os.path.isabs(node):
        path = os.path.normpath(node)
        for name, root in roots:
            if path == root or path.startswith(root + os.sep):
                return name + path[len(root):]
    return node


def _execute_repeats(cfg, settings, *, model: Any = None, on_start=None) -> dict[str, Any] | None:
    """``runner.repeats=N``: N runs with generation seeds seed..seed+N-1, each in
    ``<run dir>/seed_<s>/`` (resumable on its own), then mean ± 95% CI in ``<run dir>/metrics.json``."""
    import time
    from dataclasses import replace

    from omegaconf import OmegaConf, open_dict

    from mio_eval.atomic import atomic_write_json
    from mio_eval.repeats import aggregate_repeats

    task_cfg = _container(cfg.task, "task") if cfg.get("task") is not None else None
    if task_cfg is None or not isinstance(task_cfg.get("generation"), dict) or "seed" not in task_cfg["generation"]:
        name = task_cfg.get("name") if task_cfg else None
        raise ConfigError(f"runner.repeats={settings.repeats} reruns sampled generation with new seeds, but task "
                          f"{name!r} has no generation.seed (its decoding is deterministic)")
    base_seed = int(task_cfg["generation"]["seed"])
    t0 = time.perf_counter()
    runs = []
    for i in range(settings.repeats):
        seed = base_seed + i
        repeat_cfg = cfg.copy()
        with open_dict(repeat_cfg):
            OmegaConf.update(repeat_cfg, "task.generation.seed", seed, merge=False)
            OmegaConf.update(repeat_cfg, "runner.repeats", 1, merge=False)
        result = _execute_once(repeat_cfg, replace(settings, repeats=1), subdir=f"seed_{seed}", model=model,
                               on_start=on_start if i == 0 else None)
        runs.append((seed, result))
    if settings.stage == "generate" or any(result is None for _, result in runs):
        return None  # generate only, or a data-parallel rank other than 0 (rank 0 aggregates)
    metrics = aggregate_repeats([(seed, result) for seed, result in runs])
    metrics["runner"] = {**metrics["runner"], "repeats": settings.repeats}
    metrics["wall_time_s"] = round(time.perf_counter() - t0, 3)
    run_dir = Path(_container(cfg.paths, "paths")["results_dir"]) / metrics["model"] / metrics["task"]
    atomic_write_json(run_dir / "metrics.json", metrics)
    return metrics


def suite_tasks(name: str) -> tuple[list[str], list[str]]:
    """The tasks and the shared overrides of ``configs/suite/<name>.yaml``."""
    from importlib import resources

    from omegaconf import OmegaConf

    choices = group_choices("suite")
    if name not in choices:
        from mio_eval.config import did_you_mean

        raise ConfigError(f"unknown suite {name!r}{did_you_mean(name, choices)}; valid choices: {', '.join(choices)}")
    data = OmegaConf.to_container(OmegaConf.load(str(resources.files(CONFIG_MODULE) / "suite" / f"{name}.yaml")))
    return [str(t) for t in data.get("tasks") or []], [str(o) for o in data.get("overrides") or []]


def run_suite(tasks: Sequence[str], overrides: Sequence[str] = (), *,
              on_result=None) -> list[tuple[str, dict[str, Any] | None, MioEvalError | None]]:
    """Run several tasks in one process; the model is built (and its weights loaded) once and
    shared while the tasks' model configs are equal. Each task writes its own run dir. A task
    that fails (missing data, error budget) is recorded and the next one runs; an interrupt stops
    the suite. Returns (task, metrics or None, error or None) per task, in order."""
    from mio_eval.errors import Interrupted, Terminated

    validate_choices([f"task={t}" for t in tasks])
    results: list[tuple[str, dict[str, Any] | None, MioEvalError | None]] = []
    shared, shared_key = None, None
    for name in tasks:
        try:
            cfg = compose([f"task={name}", *overrides])
            key = fingerprint(_container(cfg.model, "model"))
            if shared is None or key != shared_key:
                shared, shared_key = build_model(cfg), key
            result = (name, execute(cfg, model=shared), None)
        except (Interrupted, Terminated):
            raise
        except MioEvalError as exc:
            result = (name, None, exc)
        results.append(result)
        if on_result is not None:
            on_result(*result)
    return results


def run(task: str, model: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Python API: ``run("tts_demo", "espeak", ["runner.limit=5"])`` -> metrics.json as a dict."""
    cfg = compose([f"task={task}", f"model={model}", *overrides])
    result = execute(cfg)
    if result is None:  # stage=generate: nothing scored yet
        return {"task": task, "model": model, "stage": "generate", "metrics": {}}
    return result
