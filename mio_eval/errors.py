"""Run-level errors. Per-sample failures are never exceptions: they are ``Output.error`` data."""

from __future__ import annotations

__all__ = ["MioEvalError", "ConfigError", "ErrorBudgetExceeded", "Interrupted", "Terminated", "RunFailed", "StoreError",
           "StoreWriteError", "MediaError"]


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
