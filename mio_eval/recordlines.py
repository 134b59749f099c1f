"""Reading the record lines of ``predictions.jsonl`` and of shard files (``mio_eval.shards``).

Every record line mio-eval writes is ``json.dumps(record, ensure_ascii=False)`` of a record
whose first key is ``id`` (``predictions.record``), so it starts with ``{"id": "<id>", ``.
``fast_ids`` reads the ids of such lines without decoding the records (a regular expression that
reads only each line's first bytes, and a C-level check of each line's last byte; ~0.3 us a line
against ~4 us for ``orjson.loads``): the shard merge copies lines by id, the store loads
``predictions.jsonl`` as lines keyed by id, and both decode only the lines they must compare.
A line is in the *fast form* when it is ``{"id": "`` + an id with no backslash, quote or newline
+ ``", `` + anything without a newline + ``}``; the id then reads as its UTF-8 bytes (JSON
escapes nothing else in a string ``json.dumps`` writes). Any other line (an older writer's key
order, an escaped id, a hand-edited line) is decoded in full (``decode_line``), so what is read
never depends on which path read it. ``planned`` checks lines against the ids they should hold
(a data-parallel rank's dealt samples) without reading any id. What the fast form does not check
is the rest of the line's syntax: a line damaged in its middle (never written by mio-eval: a
crash leaves only a torn *last* line, dropped) is found when its record is first read
(``PredictionStore.get``: StoreError, ``mio-eval repair``).
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
from collections import Counter
from itertools import repeat
from pathlib import Path
from typing import Any, Iterator, Sequence

from mio_eval.errors import StoreError
from mio_eval.fastjson import loads

__all__ = ["whole_lines", "fast_ids", "fast_lines", "planned", "plain_record", "succeeded_digest", "decode_line",
           "read_jsonl_records", "load_records", "no_gc"]

# One line of the fast form, its id captured (``decode_line``, line by line).
_FAST = re.compile(rb'^\{"id": "([^"\\\n]*)", [^\n]*\}\n', re.M)
# The fast form's first bytes: of the first line, and of every line after a newline. A search
# for the literal newline-and-brace prefix skips the rest of each line.
_FIRST = re.compile(rb'\{"id": "([^"\\\n]*)", ')
_NEXT = re.compile(rb'\n\{"id": "([^"\\\n]*)", ')
# The last members of the line of a sample that succeeded, as ``predictions.record`` writes them
# (``error`` null, ``time_s``, ``input_digest``, the ``supersedes`` a regenerated sample gets), up
# to the line's closing brace. Searched for in a line's last ``_TAIL_BYTES`` only.
_TAIL = re.compile(rb', "error": null, "time_s": [-+.0-9eE]+, "input_digest": (?:"([^"\\\n]*)"|null)'
                   rb'(?:, "supersedes": "[^"\\\n]*")?\}\Z')
_TAIL_BYTES = 256
_TAIL_START = b', "error": null, "time_s": '
# A character ``json.dumps`` escapes in a string (so an id holding one is never in the fast form).
_ESCAPED = re.compile(r'["\\\x00-\x1f]')


def whole_lines(data: bytes) -> tuple[bytes, list[bytes]]:
    """``(body, lines)``: ``data`` up to its last newline (a torn last line is dropped) and the
    lines of that body, without their newlines."""
    body = data[: data.rfind(b"\n") + 1]
    lines = body.split(b"\n")
    lines.pop()  # after the last newline: empty
    return body, lines


def fast_ids(body: bytes, lines: Sequence[bytes]) -> list[str] | None:
    """The ids of ``lines`` (``whole_lines(body)``) when every line is in the fast form, else None
    (the caller reads line by line)."""
    if not lines:
        return []
    first = _FIRST.match(body)
    if first is None:
        return None
    ids = _NEXT.findall(body)  # at most one a line (an id holds no newline): one for each line but the first
    if len(ids) != len(lines) - 1 or not all(map(bytes.endswith, lines, repeat(b"}"))):
        return None
    ids.insert(0, first.group(1))
    try:
        return b"\n".join(ids).decode("utf-8").split("\n")
    except UnicodeDecodeError:
        return None


def fast_lines(body: bytes) -> tuple[list[str], list[bytes]] | None:
    """``(ids, lines)`` of ``body`` (whole lines, each ending with ``\\n``; lines without it)
    when every line is in the fast form, else None."""
    _, lines = whole_lines(body)
    ids = fast_ids(body, lines)
    return None if ids is None else (ids, lines)


def planned(lines: Sequence[bytes], ids: Sequence[str]) -> bool:
    """True when ``lines`` are, one for one, lines in the fast form of the records of ``ids``
    (``fast_ids(...) == ids``), checked without reading the ids: each line must start with the
    prefix its id gives and end with ``}`` (C-level ``bytes.startswith``/``endswith``). An id that
    ``json.dumps`` would escape, or that is not valid UTF-8, is never planned (False)."""
    if len(lines) != len(ids):
        return False
    if not ids:
        return True
    if _ESCAPED.search("".join(ids)):  # (a newline among them: the split below stays one a line)
        return False
    try:
        prefixes = ('{"id": "' + '", \n{"id": "'.join(ids) + '", ').encode("utf-8").split(b"\n")
    except UnicodeEncodeError:  # a lone surrogate: never written by json.dumps + encode
        return False
    return all(map(bytes.startswith, lines, prefixes)) and all(map(bytes.endswith, lines, repeat(b"}")))


def plain_record(record: Any) -> bool:
    """True when ``json.dumps(record, ensure_ascii=False)`` is a line in the fast form without an
    ``attempt`` key (a shard writer's check, ``ShardWriter.voucher``): a dict whose first key is
    a string ``id`` that JSON does not escape, with more keys, none of them ``attempt``."""
    if not isinstance(record, dict) or len(record) < 2 or "attempt" in record or next(iter(record)) != "id":
        return False
    return type(record["id"]) is str and _ESCAPED.search(record["id"]) is None


def succeeded_digest(line: bytes) -> tuple[str | None] | None:
    """``(input_digest,)`` of a record line whose record succeeded (``error`` null), read from its
    last members without decoding it; None when the line does not end as ``_TAIL`` (a failure, an
    ``attempt`` key, another writer: the caller decodes it). For a valid JSON line this is what
    ``json.loads`` reads: the line ends with the top-level object's ``}``, and the members before
    it hold no quote, backslash or bracket, so they are that object's last members (its values of
    those keys, a repeated key's last one included)."""
    start = line.rfind(_TAIL_START, max(0, len(line) - _TAIL_BYTES))  # (the last one: the members
    match = _TAIL.match(line, start) if start >= 0 else None  # after it cannot hold another)
    if match is None:
        return None
    try:
        return (None if match.group(1) is None else match.group(1).decode("utf-8"),)
    except UnicodeDecodeError:
        return None


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


def load_records(body: bytes, path: Path, *, fast: bool = True) -> tuple[dict[str, Any], dict[str, int]]:
    """``predictions.jsonl``'s whole lines ``body`` as the store keeps them: ``(records,
    attempts)``, ``records`` mapping each sample id, in file order, to its latest record and
    ``attempts`` each id with more than one record to their number. When every line is in the fast
    form a sample's only line is kept undecoded (bytes, decoded when first read); the lines of a
    sample with several records are decoded and checked in file order. StoreError on a line that
    is not a record and on a record after its sample's success (not ``supersedes``). ``fast=False``
    decodes every line (``read_jsonl_records``)."""
    _, lines = whole_lines(body)
    ids = fast_ids(body, lines) if fast else None
    attempts: dict[str, int] = {}
    if ids is None:
        rows, bad = read_jsonl_records(body, path)
        records: dict[str, Any] = {}
    else:
        records = dict(zip(ids, lines))
        if len(records) == len(ids):
            return records, attempts
        several = {i for i, n in Counter(ids).items() if n > 1}
        rows, bad = [], []
        for k, sample_id in enumerate(ids):
            if sample_id in several:
                try:
                    record = loads(lines[k])
                except (json.JSONDecodeError, UnicodeDecodeError):
                    record = None
                if not isinstance(record, dict) or record.get("id") != sample_id:
                    return load_records(body, path, fast=False)  # the full read's message and count
                rows.append((k + 1, record))
        records.update((i, None) for i in several)  # their place stays the first record's
    if bad:
        raise StoreError(
            f"{path}:{bad[0]} is corrupt ({len(bad)} bad line(s): not a JSON record with an 'id'); "
            f"`mio-eval repair {path.parent}` keeps every valid line (the file is backed up), "
            "or runner.overwrite=true starts over")
    for lineno, record in rows:
        sample_id = record["id"]
        previous = records.get(sample_id)
        if previous is not None and not previous.get("error") and not record.get("supersedes"):
            raise StoreError(f"{path}:{lineno} repeats sample {sample_id!r}; "
                             f"`mio-eval repair {path.parent}` keeps its first successful record")
        attempts[sample_id] = attempts.get(sample_id, 0) + 1
        records[sample_id] = record
    return records, attempts


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
