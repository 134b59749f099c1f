"""Progress bars for scoring passes (judges, CLIP, WavLM): tqdm on stderr, shown only once a
pass has lasted a second; off when the runner says so (``runner.progress=false``) or
``MIO_EVAL_PROGRESS=0``."""

from __future__ import annotations

import os
import sys
from typing import Any, Iterable

__all__ = ["progress", "set_enabled", "enabled"]

_state = {"enabled": True}


def set_enabled(value: bool) -> None:
    _state["enabled"] = bool(value)


def enabled() -> bool:
    return _state["enabled"] and os.environ.get("MIO_EVAL_PROGRESS", "1") != "0"


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "sample"):
    """A tqdm bar (``update(n)``, ``close()``, iterable) on stderr with ``delay=1``."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, delay=1.0,
                disable=not enabled())
