"""Run-level errors. Per-sample failures are never exceptions: they are ``Output.error`` data."""

from __future__ import annotations

from typing import Any, Mapping, TypeVar

__all__ = ["MioEvalError", "ConfigError", "ErrorBudgetExceeded", "Interrupted", "Terminated", "RunFailed", "StoreError",
           "StoreWriteError", "MediaError", "check_target", "named"]


class MioEvalError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with (1 unless a subclass says otherwise)."""

    exit_code = 1


class ConfigError(MioEvalError):
    """A bad config, a missing file or an impossible pairing: one clear line, exit code 2."""

    exit_code = 2


class StoreError(ConfigError):
    """The run directory cannot be used as asked (fingerprint mismatch, locked, corrupt)."""


class ErrorBudgetExceeded(MioEvalError):
    """More samples failed than ``runner.max_error_rate`` allows; the run stops, exit code 1."""


class StoreWriteError(MioEvalError):
    """Saving results failed (disk full, I/O error); what was saved before stays intact. Exit 1."""


class Interrupted(MioEvalError):
    """SIGINT/SIGTERM: the batch in flight was finished and saved; exit code 130, resumable."""

    exit_code = 130


class MediaError(Exception):
    """A media file cannot be read or written; becomes a per-sample error with this reason."""


class Terminated(MioEvalError):
    """SIGTERM where nothing was in flight to finish (scoring): exit code 143, resumable."""

    exit_code = 143


class RunFailed(MioEvalError):
    """The run finished but cannot be trusted: over the error budget after scoring, every sample
    failed, or no metric could be computed. metrics.json is written (flagged); exit code 1."""


_T = TypeVar("_T")


def check_target(value: Any, base: type[_T], *, what: str, kind: str, choices: str, module: str, hint: str) -> _T:
    """``value`` if it is a ``base`` (a behaviour the YAML selects by ``_target_``), else a one-line
    ConfigError naming the ``_target_`` form: a bare string such as ``lmms`` is the string knob of
    earlier versions, which is refused rather than looked up.

    For example ``task.normalizer=lmms`` gives: ``task.normalizer must be a VQA normaliser given by
    _target_ (Lmms, LmmsTokenized, ... in mio_eval.metrics.vqa; e.g.
    task.normalizer._target_=mio_eval.metrics.vqa.LmmsTokenized), got 'lmms'``.
    """
    if not isinstance(value, base):
        raise ConfigError(f"{what} must be a {kind} given by _target_ ({choices} in {module}; {hint}), got {value!r}")
    return value


def named(value: Any, base: type[_T], table: Mapping[str, type[_T]], *, kind: str) -> _T:
    """The behaviour a recorded variant name stands for (``table``: name -> class, instantiated
    with no arguments); a ``base`` instance is returned as is. Library callers and the parity
    tests use names; YAMLs use ``_target_`` (``check_target``). ValueError for an unknown name."""
    if isinstance(value, base):
        return value
    if value not in table:
        raise ValueError(f"unknown {kind} {value!r}; choose one of {tuple(table)}")
    return table[value]()
