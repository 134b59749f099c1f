"""Read JSON Lines files one physical line at a time (https://jsonlines.org/: lines end with ``\\n``).

``str.splitlines()`` also splits on U+2028 / U+2029 (line / paragraph separator) and U+0085
(NEL), which ``json.dumps(..., ensure_ascii=False)`` writes unescaped inside strings, so a model
output or a reference holding one of them would be cut in two and fail to parse. Here the file is read as bytes, split at ``b"\\n"`` only and each line
decoded as UTF-8 (so a decoding error names its line; a CRLF file's ``\\r`` is dropped).

Errors are one line naming ``file:line`` (a ``ConfigError``, exit code 2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from mio_eval.errors import ConfigError

__all__ = ["read_jsonl", "read_lines"]


def read_lines(path: str | Path, *, what: str = "file") -> Iterator[tuple[int, str]]:
    """``(line number from 1, line without its end-of-line)`` for each line of a UTF-8 text file,
    split at ``\\n`` only (U+2028, U+2029 and U+0085 stay inside the line). ConfigError when the
    file is missing, unreadable or not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    try:
        with open(path, "rb") as fh:  # binary lines end at b"\n" only; decoded one by one
            for n, raw in enumerate(fh, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ConfigError(f"{path}:{n}: not UTF-8 ({exc.reason})") from None
                if n == 1:
                    line = line.removeprefix("\ufeff")  # a UTF-8 byte order mark
                yield n, line.removesuffix("\n").removesuffix("\r")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {' '.join(str(exc).split())}") from None


def read_jsonl(path: str | Path, *, what: str = "JSONL file", objects: bool = True) -> Iterator[tuple[int, Any]]:
    """``(line number from 1, parsed value)`` for each non-blank line of a JSON Lines file.

    With ``objects=True`` (default) every value must be a JSON object. A line that is not valid
    JSON (or not an object) raises ConfigError ``"<path>:<line>: ..."``; reading is lazy, so the
    lines before a bad one have already been yielded.
    """
    for n, line in read_lines(path, what=what):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:  # json.JSONDecodeError
            raise ConfigError(f"{path}:{n}: malformed JSON ({exc})") from None
        if objects and not isinstance(value, dict):
            raise ConfigError(f"{path}:{n}: expected a JSON object, got {type(value).__name__}")
        yield n, value
