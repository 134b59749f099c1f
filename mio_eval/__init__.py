"""mio-eval: evaluate any-to-any multimodal models on understanding and generation.

``import mio_eval`` stays light (no torch): ``run`` and the heavy modules load on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["run", "results", "sample_scores", "__version__"]


def __getattr__(name: str):
    """``mio_eval.results(root)`` (the long table as a pandas DataFrame; the module
    ``mio_eval.results`` is callable) and ``mio_eval.sample_scores(run_dir)`` (one run's per-sample
    scores as a DataFrame), imported on first use. (``mio_eval.samples`` is the sample-selection
    module.)"""
    if name in ("results", "sample_scores"):
        import importlib

        module = importlib.import_module("mio_eval.results")
        return module if name == "results" else module.samples
    raise AttributeError(f"module 'mio_eval' has no attribute {name!r}")


def run(task: str, model: str, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Run one evaluation like ``mio-eval task=<task> model=<model> [overrides]``.

    Returns the parsed ``metrics.json`` of the run. Raises ``mio_eval.errors.ConfigError`` for a
    bad config and ``ErrorBudgetExceeded`` when too many samples fail.
    """
    from mio_eval.api import run as _run

    return _run(task, model, overrides)
