"""Shard files of a data-parallel run (``mio_eval.distributed``): one append-only file per rank
process, ``<run dir>/shards/rank-<r>-<uuid>.jsonl``, with the records and the fsync-per-batch
discipline of ``predictions.jsonl``, keyed by sample id (never by rank), and their idempotent
merge into the run's ``PredictionStore``."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.errors import StoreError, StoreWriteError

__all__ = ["SHARDS", "ShardWriter", "read_shard", "merge_shards", "merge_provenance"]

SHARDS = "shards"


class ShardWriter:
    """One rank's append-only shard file: whole JSON lines, fsynced per batch (as the store).
    Each line is ``json.dumps(record, ensure_ascii=False)``, the bytes a one-process run writes;
    the runner's records start with ``id`` (``predictions.record``), so a line starts with
    ``{"id": "<id>", `` and the merge reads its id without decoding it (``mio_eval.recordlines``).

    The writer keeps what rank 0's merge would otherwise check by reading the file back: the ids
    written, in order, whether every line was in the fast form without an ``attempt`` key, and the
    bytes written (``voucher``). ``keep``: also keep the lines written (``lines``; rank 0's own
    shard, which its merge then need not read back)."""

    def __init__(self, run_dir: Path, rank: int, *, keep: bool = False) -> None:
        from mio_eval.storeio import open_append

        directory = run_dir / SHARDS
        if directory.is_symlink():
            raise StoreError(f"{directory} is a symbolic link; mio-eval never writes through links")
        directory.mkdir(parents=True, exist_ok=True)
        self.predictions_path = directory / f"rank-{rank}-{uuid.uuid4().hex[:12]}.jsonl"
        self._fh = open_append(self.predictions_path)
        self._ids: list[Any] = []
        self._plain = True  # every line in the fast form (``recordlines``), none with an ``attempt`` key
        self._bytes = 0
        self.lines: list[bytes] | None = [] if keep else None

    def append(self, records: Sequence[Mapping[str, Any]]) -> None:
        from mio_eval.storeio import write_whole_lines

        lines = [json.dumps(r, ensure_ascii=False).encode("utf-8") for r in records]
        payload = b"\n".join(lines) + b"\n" if lines else b""
        try:
            write_whole_lines(self._fh.fileno(), payload)
        except OSError as exc:
            self._plain = False
            raise StoreWriteError(f"cannot save predictions to {self.predictions_path}: {exc.strerror or exc}; "
                                  "the batches saved before are intact; rerun to resume") from None
        from mio_eval.recordlines import plain_record

        self._bytes += len(payload)
        if self.lines is not None:
            self.lines += lines
        self._ids += [r.get("id") for r in records]
        self._plain = self._plain and all(map(plain_record, records))

    def voucher(self, ids: Sequence[str]) -> dict[str, Any] | None:
        """``{"name", "bytes"}`` of this shard when it holds exactly ``ids``' records, in that
        order, every line in the fast form without an ``attempt`` key (what ``merge_shards`` with
        ``vouched`` then need not read back); None otherwise."""
        if not self._plain or self._ids != list(ids):
            return None
        return {"name": self.predictions_path.name, "bytes": self._bytes}

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_shard(path: Path) -> list[tuple[dict[str, Any], bytes]]:
    """(record, its line) for every whole valid line of a shard (a JSON object with a string
    ``id``; ``store.read_jsonl_records``'s rule; other lines are skipped). A killed rank can leave
    a last line without its newline: it is dropped (that sample is generated again)."""
    from mio_eval.fastjson import loads
    from mio_eval.storeio import open_nofollow

    with os.fdopen(open_nofollow(path, os.O_RDONLY), "rb") as fh:
        data = fh.read()
    out = []
    for line in data[: data.rfind(b"\n") + 1].split(b"\n"):
        try:
            record = loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue  # blank or damaged
        if isinstance(record, dict) and isinstance(record.get("id"), str):
            out.append((record, line))
    return out


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return {k: v for k, v in a.items() if k != "attempt"} == {k: v for k, v in b.items() if k != "attempt"}


def merge_shards(store: Any, order: Sequence[str], *, dealt: Sequence[Sequence[int]] | None = None,
                 vouched: Mapping[str, int] | None = None, held: Mapping[str, list[bytes]] | None = None) -> int:
    """Move every shard of ``store``'s run dir into ``predictions.jsonl``, ids in ``order`` first
    (others after, by id), then delete the shards. Idempotent: a record already merged (a merge
    cut short before the delete) or a second success of a sample is skipped, so a merge can be
    repeated after any crash. Returns the number of records appended.

    Lines are copied as read, never encoded again, and not decoded: the ids are read from the
    lines' fast form (``mio_eval.recordlines``) and the store keeps each line as it is until its
    record is first read (``PredictionStore.append_lines``). Decoded in full are only the lines
    that need a decision: a sample with more than one record (across the shards or already in
    the store: duplicates, retries, latest attempt wins) and lines not in the fast form (an older
    writer's, or one with an ``attempt`` key).

    ``dealt`` (rank 0 of a data-parallel run, ``distributed.balance``): rank r's samples as
    indices into ``order`` (whose ids are then distinct, as the runner's samples are), in the
    order that rank generated them. When the shards are exactly that (one ``rank-<r>-*`` file
    per rank with samples, each holding its samples' lines in the fast form, in that order, none
    stored before), their lines are placed by the plan, no id read or looked up
    (``recordlines.planned``); anything else merges by id, as without ``dealt``. Both give the
    same bytes. ``vouched`` (the ranks' ``ShardWriter.voucher``s for the ids ``dealt`` gave them:
    file name -> bytes written): a shard whose whole lines are exactly the bytes its writer
    vouched for is not read back for those checks (only its line count is compared with the
    plan); its writer checked each record as it wrote it, in parallel with the other ranks.
    ``held`` (file name -> the lines its
    writer in this process kept, ``ShardWriter.lines``): a vouched shard whose file is exactly as
    long as vouched is not read at all, its lines taken from there."""
    directory = store.run_dir / SHARDS
    if directory.is_symlink():
        raise StoreError(f"{directory} is a symbolic link; remove it")
    files = sorted(directory.glob("rank-*.jsonl")) if directory.is_dir() else []
    if not files:
        return 0
    from mio_eval.store import no_gc

    with no_gc():
        shards = [_read(path, (held or {}).get(path.name), (vouched or {}).get(path.name)) for path in files]
        lines = None if dealt is None else _by_plan(files, shards, order, dealt, vouched or {})
        if lines is not None and not (len(store) and not store.done_ids.isdisjoint(order)):
            store.append_merged(order, lines)  # (order's ids are distinct: the runner refuses duplicates)
            appended = len(order)
        else:  # (a shard taken from ``held`` is read after all)
            appended = _merge(store, [_read(p) if body is None else (body, part)
                                      for p, (body, part) in zip(files, shards)], order)
    for path in files:
        path.unlink()
    with contextlib.suppress(OSError):
        os.rmdir(directory)
    return appended


def _read(path: Path, held: list[bytes] | None = None, size: int | None = None) -> tuple[bytes | None, list[bytes]]:
    """``(body, lines)``: a shard's whole lines (``recordlines.whole_lines``: a killed rank's torn
    last line is dropped), or ``(None, held)`` when the file is ``size`` bytes long (all that its
    writer in this process wrote and kept: ``merge_shards``'s ``held``)."""
    from mio_eval.recordlines import whole_lines
    from mio_eval.storeio import open_nofollow

    with os.fdopen(open_nofollow(path, os.O_RDONLY), "rb") as fh:
        if held is not None and size is not None and os.fstat(fh.fileno()).st_size == size:
            return None, held
        return whole_lines(fh.read())


def _by_plan(files: Sequence[Path], shards: Sequence[tuple[bytes | None, list[bytes]]], order: Sequence[str],
             dealt: Sequence[Sequence[int]], vouched: Mapping[str, int]) -> list[bytes] | None:
    """The shards' lines in ``order`` when they hold exactly what ``dealt`` gave each rank (see
    ``merge_shards``), else None."""
    from mio_eval.recordlines import planned

    try:
        ranks = [int(path.name.split("-")[1]) for path in files]  # rank-<r>-<uuid>.jsonl
    except (IndexError, ValueError):
        return None
    if sorted(ranks) != [r for r, mine in enumerate(dealt) if mine] or sum(map(len, dealt)) != len(order):
        return None
    for path, rank, (body, lines) in zip(files, ranks, shards):
        if (body is None or vouched.get(path.name) == len(body)) and len(lines) == len(dealt[rank]):
            continue  # the lines its writer vouched for (a torn or extra line changes the size)
        if body is None or _ATTEMPT in body or not planned(lines, list(map(order.__getitem__, dealt[rank]))):
            return None
    import numpy as np

    positions = [np.array(dealt[r], dtype=np.intp) for r in ranks]
    every = np.concatenate(positions)
    if every.min() < 0 or every.max() >= len(order) or np.bincount(every, minlength=len(order)).max() > 1:
        return None  # not each position of ``order`` dealt once
    placed = np.empty(len(order), dtype=object)  # each shard's lines scattered to their positions (C-level)
    for where, (_, lines) in zip(positions, shards):
        placed[where] = lines
    return placed.tolist()


def _ids(body: bytes, lines: list[bytes]) -> tuple[list[str], list[bytes], dict[int, dict[str, Any] | None]]:
    """``(ids, lines, decoded)`` of a shard's whole valid lines (``read_shard``'s rule): ``decoded``
    maps the index of a line that was decoded in full to its record, and of a line that must be
    (it has an ``attempt`` key) to None."""
    from mio_eval.recordlines import decode_line, fast_ids

    ids = fast_ids(body, lines)
    decoded: dict[int, dict[str, Any] | None] = {}
    if ids is None:
        ids, valid = [], []
        for line in lines:
            sample_id, record = decode_line(line)
            if sample_id is not None:
                if record is not None:
                    decoded[len(valid)] = record
                ids.append(sample_id)
                valid.append(line)
        lines = valid
    if _ATTEMPT in body:  # a key the store sets: such a line is decoded and written again without it
        decoded.update((k, decoded.get(k)) for k, line in enumerate(lines) if _ATTEMPT in line)
    return ids, lines, decoded


_ATTEMPT = b'"attempt": '


def _merge(store: Any, shards: Sequence[tuple[bytes, list[bytes]]], order: Sequence[str]) -> int:
    from mio_eval.fastjson import loads

    ids_all: list[str] = []
    lines_all: list[bytes] = []
    decoded: dict[int, dict[str, Any] | None] = {}
    for body, lines in shards:
        ids, lines, marked = _ids(body, lines)
        decoded.update((len(ids_all) + k, r) for k, r in marked.items())
        ids_all += ids
        lines_all += lines
    table = dict(zip(ids_all, lines_all))
    special = {ids_all[k] for k in decoded}  # samples whose records are decided one by one (rare)
    if len(table) < len(ids_all):
        special.update(i for i, n in Counter(ids_all).items() if n > 1)
    if len(store):
        special.update(table.keys() & store.done_ids)
    ids = list(filter(table.__contains__, order))  # dataset order without a sort
    if len(ids) < len(table):
        known = set(order)
        ids += sorted(i for i in table if i not in known)
    if not special:  # the common case: every sample's only record, not yet merged
        store.append_lines(ids, list(map(table.__getitem__, ids)))
        return len(ids)
    records: dict[str, list[tuple[dict[str, Any], bytes | None]]] = {i: [] for i in special}
    for k, sample_id in enumerate(ids_all):
        if sample_id in special:
            record = decoded.get(k)
            if record is None:
                try:
                    record = loads(lines_all[k])
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue  # damaged (in the fast form only by its first bytes): as read_shard
                if not isinstance(record, dict) or record.get("id") != sample_id:
                    continue
            records[sample_id].append((record, lines_all[k]))
    return _decide(store, ids, table, special, records)


def _decide(store: Any, ids: Sequence[str], table: Mapping[str, bytes], special: set[str],
            records: Mapping[str, list[tuple[dict[str, Any], bytes | None]]]) -> int:
    """Append the merge's records when some samples need a decision: a sample's records are
    compared with its latest stored one (skip a copy or a second success, a retry follows its
    failed attempt), one record per sample and round."""
    rounds: list[list[tuple[str, bytes | None, dict[str, Any] | None]]] = [[]]
    for sample_id in ids:
        if sample_id not in special:
            rounds[0].append((sample_id, table[sample_id], None))
            continue
        latest, k = store.get(sample_id), 0
        for record, line in records[sample_id]:
            if "attempt" in record:
                record.pop("attempt")
                line = None  # encoded again without it
            if latest is not None and (_same(latest, record)
                                       or (not latest.get("error") and not record.get("supersedes"))):
                continue
            if k == len(rounds):
                rounds.append([])
            rounds[k].append((sample_id, line, record))
            latest, k = record, k + 1
    for batch in rounds:
        store.append_lines([i for i, _, _ in batch], [line for _, line, _ in batch], [r for _, _, r in batch])
    return sum(len(batch) for batch in rounds)


def merge_provenance(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Rank 0's provenance, with per-process tallies combined: every ``counts`` mapping of
    numbers is summed over the ranks and every ``repaired_samples`` mapping is united, so the
    merged value equals a one-process run's. (MIO's per-sample ``outputs`` tallies no longer come
    from here: the runner sums them from the stored ``Output.provenance``.)"""
    if not items:
        return {}

    def combine(values: list[Any], key: str | None) -> Any:
        first = values[0]
        if isinstance(first, Mapping) and all(isinstance(v, Mapping) for v in values):
            if key == "counts" and all(isinstance(x, (int, float)) for v in values for x in v.values()):
                total: dict[str, Any] = {}
                for v in values:
                    for k, x in v.items():
                        total[k] = total.get(k, 0) + x
                return dict(sorted(total.items()))
            if key == "repaired_samples":
                return {k: x for v in values for k, x in v.items()}
            return {k: combine([v[k] for v in values if k in v], k) for k in first}
        return first

    return combine([dict(i) for i in items], None)
