"""Atomic file writes: write a temporary file beside the target, fsync, then rename over it.

A crash (or a full disk) at any point leaves either the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

__all__ = ["atomic_path", "atomic_write_text", "atomic_write_json", "file_mode"]


def file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file under the current umask.

    ``tempfile.mkstemp`` creates 0600 files; results must be readable by the teammates the umask
    lets read them, as any other file the user writes."""
    try:  # Linux: read without changing it (os.umask() to query would race with writer threads)
        with open("/proc/self/status", encoding="ascii") as fh:
            mask = next(int(line.split()[1], 8) for line in fh if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success rename it onto ``target``.

    The caller writes the file at the yielded path (by any library); if the block raises, the
    temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp" + target.suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fchmod(fh.fileno(), file_mode())
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(target: str | os.PathLike[str], data: Any) -> None:
    atomic_write_text(target, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")
