"""mio-eval: evaluate any-to-any multimodal models on understanding and generation.

``import mio_eval`` stays light (no torch): ``run`` and the heavy modules load on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["run", "__version__"]


def run(task: str, model: str, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Run one evaluation like ``mio-eval task=<task> model=<model> [overrides]``.

    Returns the parsed ``metrics.json`` of the run. Raises ``mio_eval.errors.ConfigError`` for a
    bad config and ``ErrorBudgetExceeded`` when too many samples fail.
    """
    from mio_eval.api import run as _run

    return _run(task, model, overrides)
