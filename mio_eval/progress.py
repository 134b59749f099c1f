"""Progress bars for scoring passes (ASR judges, CLIP, WavLM, LLM judges): one small API.

``progress(iterable, total=..., desc=...)`` returns a ``tqdm`` bar on stderr that appears only
once the pass has run for ``DELAY_S`` seconds (tqdm's ``delay``), so fast passes print nothing and
slow ones show rate and ETA. Bars are off when ``set_enabled(False)`` was called (the runner
passes ``runner.progress``) or when the environment has ``MIO_EVAL_PROGRESS=0``; a disabled bar
still iterates and accepts ``update`` / ``close``, so callers never branch.

>>> set_enabled(False)
>>> bar = progress(range(3), desc="demo")
>>> sum(bar), bar.disable
(3, True)
>>> set_enabled(True)
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterable, Iterator

__all__ = ["DELAY_S", "enabled", "progress", "set_enabled", "enabled_within"]

DELAY_S = 1.0  # a pass shorter than this prints nothing
ENV_VAR = "MIO_EVAL_PROGRESS"

_enabled = True


def set_enabled(value: bool) -> None:
    """Switch every later bar on or off (process-wide; the runner calls it with ``runner.progress``)."""
    global _enabled
    _enabled = bool(value)


@contextlib.contextmanager
def enabled_within(value: bool) -> Iterator[None]:
    """``set_enabled(value)`` for the duration of a block (one run), then the previous setting."""
    global _enabled
    previous = _enabled
    _enabled = bool(value)
    try:
        yield
    finally:
        _enabled = previous


def enabled() -> bool:
    """Whether bars are shown: ``set_enabled`` not turned off and ``MIO_EVAL_PROGRESS`` not ``0``."""
    return _enabled and os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off")


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str,
             unit: str = "sample") -> Any:
    """A ``tqdm`` bar on stderr over ``iterable`` (or a manual one: call ``update(n)``), shown only
    after ``DELAY_S`` seconds; use it as a context manager or ``close()`` it."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, delay=DELAY_S,
                disable=not enabled(), dynamic_ncols=True, leave=True)
