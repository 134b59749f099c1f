"""Reading the record lines of ``predictions.jsonl`` and of shard files (``mio_eval.shards``).

Every record line mio-eval writes is ``json.dumps(record, ensure_ascii=False)`` of a record
whose first key is ``id`` (``predictions.record``), so it starts with ``{"id": "<id>", ``.
``fast_lines`` reads the ids of such lines without decoding the records (one regular
expression over the whole file; ~1 us a line against ~4 us for ``orjson.loads``): the shard
merge copies lines by id and decodes only the lines it must compare. A line is in the *fast
form* when it is ``{"id": "`` + an id with no backslash, quote or newline + ``", `` + anything
without a newline + ``}``; the id then reads as its UTF-8 bytes (JSON escapes nothing else in a
string ``json.dumps`` writes). Any other line (an older writer's key order, an escaped id, a
hand-edited line) is decoded in full (``decode_line``), so what is read never depends on which
path read it. What the fast form does not check is the rest of the line's syntax: a line damaged
in its middle (never written by mio-eval: a crash leaves only a torn *last* line, dropped) is
found when its record is first read (``PredictionStore.get``: StoreError, ``mio-eval repair``).
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
from pathlib import Path
from typing import Any, Iterator

from mio_eval.fastjson import loads

__all__ = ["fast_lines", "decode_line", "read_jsonl_records", "no_gc"]

# One line of the fast form, its id captured. Anchored at a line start, so a file whose lines
# are all in the fast form is read in one pass (a search restarts only after a line that is not).
_FAST = re.compile(rb'^\{"id": "([^"\\\n]*)", [^\n]*\}\n', re.M)


def fast_lines(body: bytes) -> tuple[list[str], list[bytes]] | None:
    """``(ids, lines)`` of ``body`` (whole lines, each ending with ``\\n``; lines without it)
    when every line is in the fast form, else None (the caller reads line by line)."""
    ids = _FAST.findall(body)
    lines = body.split(b"\n")
    lines.pop()  # after the last newline: empty
    if len(ids) != len(lines):
        return None
    try:
        text = b"\n".join(ids).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return (text.split("\n") if ids else []), lines


def decode_line(line: bytes) -> tuple[str | None, dict[str, Any] | None]:
    """``(id, None)`` for a line in the fast form (not decoded), ``(id, record)`` for another
    valid record line (decoded in full), ``(None, None)`` for a blank or damaged line or one that
    is not a JSON object with a string ``id``."""
    match = _FAST.fullmatch(line + b"\n")
    if match is not None:
        with contextlib.suppress(UnicodeDecodeError):
            return match.group(1).decode("utf-8"), None
    try:
        record = loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, None
    if isinstance(record, dict) and isinstance(record.get("id"), str):
        return record["id"], record
    return None, None


def read_jsonl_records(data: bytes, path: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[int]]:
    """Parse whole lines of a predictions file: ``([(lineno, record)], [bad line numbers])``.

    Lines are split on ``\n`` only: JSON escapes every control character, so U+2028, U+2029 or
    NEL inside a string (legal in JSON, line breaks for ``str.splitlines``) stay in their line.
    A record must be a JSON object with a string ``id``."""
    records, bad = [], []
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            record = loads(line)  # json.loads's result, by orjson when it can
        except (json.JSONDecodeError, UnicodeDecodeError):
            bad.append(lineno)
            continue
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            bad.append(lineno)
            continue
        records.append((lineno, record))
    return records, bad


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while parsing many records: JSON records hold no
    reference cycles, and each collection pass walks every record already loaded (quadratic; it
    cost 2.5x on a 200k-line merge)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
