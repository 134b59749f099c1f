"""File primitives of the prediction store and of shard files (``mio_eval.store``,
``mio_eval.shards``): open never through a symbolic link, append whole lines and fsync, and cut
the file back to its previous end when a write fails, so it stays readable and resumable."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from mio_eval.atomic import file_mode
from mio_eval.errors import StoreError

__all__ = ["open_nofollow", "open_append", "write_whole_lines", "write_lines"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# Lines joined per write() by ``write_lines``: a few MB at a time (one payload of every line
# would double the memory of a 200k-sample merge; one write per line would cost a syscall each).
_CHUNK_LINES = 4096


def open_nofollow(path: Path, flags: int) -> int:
    """``os.open`` that refuses a symbolic link at ``path`` (StoreError, never followed)."""
    try:
        return os.open(path, flags | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0), file_mode())
    except OSError as exc:
        if path.is_symlink():
            raise StoreError(f"{path} is a symbolic link; mio-eval never writes through links "
                             "(replace it with a regular file or use another paths.results_dir)") from None
        raise StoreError(f"cannot open {path}: {exc.strerror or exc}") from None


def open_append(path: Path):
    """An unbuffered binary append handle on ``path``, never through a symbolic link."""
    return os.fdopen(open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "ab", buffering=0)


def write_whole_lines(fd: int, payload: bytes) -> None:
    """Append ``payload`` (whole lines) to ``fd`` and fsync. On disk full or an I/O error the file
    is cut back to its previous end, so it stays readable and resumable, and OSError propagates."""
    _append(fd, (payload,))


def write_lines(fd: int, lines: Sequence[bytes]) -> None:
    """Append ``lines`` (each without its newline) to ``fd``, each followed by ``\\n``, with one
    fsync at the end; as ``write_whole_lines`` on a failure (the file is cut back to its end)."""
    _append(fd, (b"\n".join(lines[k : k + _CHUNK_LINES]) + b"\n" for k in range(0, len(lines), _CHUNK_LINES)))


def _append(fd: int, chunks: Iterable[bytes]) -> None:
    start = os.fstat(fd).st_size
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError:
        try:
            os.ftruncate(fd, start)
        except OSError:
            pass  # the reader drops a half-written last line in any case
        raise
