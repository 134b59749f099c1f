"""Config plumbing shared by the CLI and the Python API: resolvers, group choices, fingerprints.

``_target_`` is the only registry: the valid choices of a config group are the YAML files in
``mio_eval/configs/<group>/``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any, Iterable, Mapping

from mio_eval.errors import ConfigError

__all__ = ["CONFIG_MODULE", "group_choices", "validate_choices", "register_resolvers", "fingerprint", "data_path",
           "did_you_mean", "default_model", "ExperimentScope"]

CONFIG_MODULE = "mio_eval.configs"
CHECKED_GROUPS = ("task", "model", "runner", "paths", "experiment", "suite", "logger")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'tts'?"`` for the closest valid choice, or ``""``."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def default_model(task: str) -> str | None:
    """The ``default_model`` a task's YAML names (the model ``mio-eval task=<task>`` runs)."""
    from omegaconf import OmegaConf

    path = resources.files(CONFIG_MODULE) / "task" / f"{task}.yaml"
    if not path.is_file():
        return None
    data = OmegaConf.load(str(path))
    value = data.get("default_model")
    if value:
        return str(value)
    # Inherited from another task of the group (tts_demo: defaults [tts, _self_]).
    for entry in reversed(list(data.get("defaults") or [])):
        if isinstance(entry, str) and entry != "_self_" and "/" not in entry and entry != task:
            inherited = default_model(entry)
            if inherited:
                return inherited
    return None


@dataclass(frozen=True)
class ExperimentScope:
    """The tasks an experiment's overrides are meant for, from its ``experiment_scope`` key.

    An experiment (``configs/experiment/<name>.yaml``, ``# @package _global_``) chooses its default
    task with Hydra's ``override /task: <name>`` in its defaults list and declares where its other
    overrides make sense::

        defaults:
          - override /task: tts_vctk
        experiment_scope:
          experiment: paper_tts
          tasks: [tts_*]          # fnmatch patterns over task names

    ``mio-eval task=mmlu experiment=paper_tts`` is then a one-line ConfigError naming the tasks the
    experiment applies to, before anything is built (instead of a TypeError about ``judge``).
    An experiment without the key (``smoke``) applies to every task."""

    experiment: str
    tasks: tuple[str, ...]

    KEY = "experiment_scope"

    @classmethod
    def of(cls, cfg: Any) -> "ExperimentScope | None":
        """The scope in a composed config (None when the chosen experiment declares none)."""
        node = cfg.get(cls.KEY) if hasattr(cfg, "get") else None
        if node is None:
            return None
        from omegaconf import DictConfig, OmegaConf

        data = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
        if not isinstance(data, dict) or set(data) != {"experiment", "tasks"}:
            raise ConfigError(f"{cls.KEY} must have exactly the keys 'experiment' and 'tasks', got {data!r}")
        tasks = data["tasks"]
        if isinstance(tasks, str) or not isinstance(tasks, (list, tuple)) or not tasks \
                or not all(isinstance(t, str) and t for t in tasks):
            raise ConfigError(f"{cls.KEY}.tasks must be a non-empty list of task-name patterns, got {tasks!r}")
        return cls(experiment=str(data["experiment"]), tasks=tuple(tasks))

    def matches(self, task: str) -> bool:
        return any(fnmatch.fnmatchcase(task, pattern) for pattern in self.tasks)

    def check(self, task: str) -> None:
        """ConfigError (one line) when ``task`` is outside the experiment's scope."""
        if not self.matches(task):
            inside = [t for t in group_choices("task") if self.matches(t)]
            raise ConfigError(f"experiment={self.experiment} applies to tasks {', '.join(self.tasks)} "
                              f"({', '.join(inside) or 'none shipped'}), not task={task}")


def data_path(name: str) -> str:
    """Absolute path of a data set shipped inside the package (``${mio_data:tts_demo}``)."""
    path = resources.files("mio_eval.data") / name
    if not path.is_dir():
        raise ConfigError(f"no embedded data set named {name!r}")
    return str(path)


def run_name(base: str, path: Any = None) -> str:
    """The model's run-dir name: ``base`` plus the checkpoint's folder or file name
    (``${mio_run_name:hf_lm,${.path}}`` -> ``hf_lm-Llama-3.2-1B``), so two checkpoints of one
    backend never share a run dir. ``model.name=...`` overrides it."""
    import re

    if path in (None, "", "None"):
        return base
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(path).rstrip("/").rsplit("/", 1)[-1]).strip("._") or "checkpoint"
    return f"{base}-{stem}"


def register_resolvers() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("mio_data"):
        OmegaConf.register_new_resolver("mio_data", data_path)
    if not OmegaConf.has_resolver("mio_run_name"):
        OmegaConf.register_new_resolver("mio_run_name", run_name)


def group_choices(group: str) -> list[str]:
    folder = resources.files(CONFIG_MODULE) / group
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _split_values(value: str) -> list[str] | None:
    """Values of a simple override (``a`` or a ``-m`` sweep ``a,b``); None for sweep syntax we
    leave to Hydra (``choice(...)``, ``glob(...)``, ranges, quoted strings)."""
    if any(ch in value for ch in "()[]{}'\"$"):
        return None
    return [v.strip() for v in value.split(",")]


def validate_choices(args: Iterable[str]) -> None:
    """Check ``group=option`` overrides against the shipped configs, before Hydra loads anything."""
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        group = key.lstrip("+~")
        if group not in CHECKED_GROUPS:
            continue
        if value.strip().startswith("[") and group in ("task", "model", "suite"):
            raise ConfigError(f"{arg}: a list would merge the {group} configs into one; run several with "
                              f"{group}=a,b (a suite in one process) or -m {group}=a,b (a sweep)")
        values = _split_values(value)
        if values is None or (group == "experiment" and values == ["null"]):
            continue
        choices = group_choices(group)
        unknown = [v for v in values if v not in choices]
        if unknown:
            raise ConfigError(f"unknown {group} {unknown[0]!r}{did_you_mean(unknown[0], choices)}; "
                              f"valid choices: {', '.join(choices)}")


def fingerprint(data: Mapping[str, Any]) -> str:
    """A short stable hash of a JSON-able mapping."""
    blob = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
