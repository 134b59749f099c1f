"""The trust boundary of a config: what a YAML file or a command-line override may make run.

Hydra's ``instantiate`` imports and calls whatever ``_target_`` names, so a config is code.
mio-eval instantiates only:

* classes defined under ``mio_eval.models``, ``mio_eval.tasks`` and ``mio_eval.metrics``, and
  functions there that declare themselves config factories (``_mio_eval_config_target_ = True``,
  e.g. ``mio_eval.models.asr_judge.asr_judge``);
* targets under a prefix the operator of the machine registered explicitly: the entry point group
  ``mio_eval.targets`` of an installed package (``name = "my_pkg.adapters"``), or the environment
  variable ``MIO_EVAL_ALLOWED_TARGETS`` (comma-separated prefixes).

Every ``_target_`` of the composed config is checked before anything is instantiated, and a
module is imported only when its prefix is allowed (importing runs code). From the command line
(what a submission controls) a few more things are refused: ``trust_remote_code`` (a model
config file of the operator may set it), ``oc.env`` interpolations (they would copy the
server's environment into results), and Hydra callbacks.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from typing import Any, Iterable, Iterator, Mapping, Sequence

from mio_eval.errors import ConfigError

__all__ = ["check_targets", "check_overrides", "allowed_prefixes", "FACTORY_MARK"]

BUILTIN_PREFIXES = ("mio_eval.models.", "mio_eval.tasks.", "mio_eval.metrics.")
FACTORY_MARK = "_mio_eval_config_target_"
ENTRY_POINT_GROUP = "mio_eval.targets"
ENV_VAR = "MIO_EVAL_ALLOWED_TARGETS"


def allowed_prefixes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(built-in prefixes, operator-registered prefixes)."""
    extra: list[str] = [p.strip() for p in os.environ.get(ENV_VAR, "").split(",") if p.strip()]
    try:
        from importlib.metadata import entry_points

        extra += [ep.value.strip() for ep in entry_points(group=ENTRY_POINT_GROUP)]
    except Exception:  # noqa: BLE001 - a broken distribution must not open the boundary
        pass
    return BUILTIN_PREFIXES, tuple(extra)


def _targets(node: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            path = f"{where}.{key}" if where else str(key)
            if key == "_target_":
                yield path, value
            else:
                yield from _targets(value, path)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _targets(value, f"{where}[{i}]")


def _allowed(target: str) -> str | None:
    """None when ``target`` may be instantiated, else why not."""
    builtin, extra = allowed_prefixes()
    if any(target == p or target.startswith(p if p.endswith((".", ":")) else p + ".") for p in extra):
        return None
    if not target.startswith(builtin):
        return "not a mio-eval class (only mio_eval.models/tasks/metrics, or a prefix the operator registers)"
    module_name, _, attr = target.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        return f"cannot be imported ({type(exc).__name__}: {exc})"
    if inspect.isclass(obj) and obj.__module__.startswith("mio_eval."):
        return None
    if callable(obj) and getattr(obj, FACTORY_MARK, False):
        return None
    return "not a class or a declared config factory of mio-eval"


def check_targets(config: Mapping[str, Any], *, skip: Iterable[str] = ("hydra",)) -> None:
    """Raise ConfigError (one line, naming the key) for the first ``_target_`` not allowed."""
    skipped = set(skip)
    for key, value in config.items():
        if key in skipped:
            continue
        for path, target in _targets(value, str(key)):
            if not isinstance(target, str) or not re.fullmatch(r"[A-Za-z_][\w.]*", target):
                raise ConfigError(f"{path}={target!r} is not a dotted class path")
            reason = _allowed(target)
            if reason:
                raise ConfigError(f"{path}={target} refused: {reason}. See 'Trust and failure model' in the README")


_TRUTHY = {"true", "1", "yes", "on"}


def check_overrides(overrides: Sequence[str]) -> None:
    """Refuse command-line overrides that a submission must not control."""
    for arg in overrides:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        bare = key.lstrip("+~")
        if bare.split(".")[-1] == "trust_remote_code" and value.strip().lower() in _TRUTHY:
            raise ConfigError(f"{arg}: trust_remote_code runs the checkpoint's own Python code; it can be set only "
                              "in a model config file (see 'Trust and failure model' in the README)")
        if "trust_remote_code" in value and re.search(r"trust_remote_code\s*:\s*(true|1|yes|on)", value, re.I):
            raise ConfigError(f"{arg}: trust_remote_code can be set only in a model config file")
        if re.search(r"\$\{\s*oc\.(env|decode)\s*:", value):
            raise ConfigError(f"{arg}: oc.env/oc.decode interpolations are not accepted on the command line "
                              "(set the value itself)")
        if bare.startswith("hydra.callbacks") or bare.startswith("hydra/callbacks"):
            raise ConfigError(f"{arg}: Hydra callbacks cannot be set on the command line")
