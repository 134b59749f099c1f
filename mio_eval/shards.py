"""Shard files of a data-parallel run (``mio_eval.distributed``): one append-only file per rank
process, ``<run dir>/shards/rank-<r>-<uuid>.jsonl``, with the records and the fsync-per-batch
discipline of ``predictions.jsonl``, keyed by sample id (never by rank), and their idempotent
merge into the run's ``PredictionStore``."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.errors import StoreError, StoreWriteError

__all__ = ["SHARDS", "ShardWriter", "read_shard", "merge_shards", "merge_provenance"]

SHARDS = "shards"


class ShardWriter:
    """One rank's append-only shard file: whole JSON lines, fsynced per batch (as the store)."""

    def __init__(self, run_dir: Path, rank: int) -> None:
        from mio_eval.store import open_append

        directory = run_dir / SHARDS
        if directory.is_symlink():
            raise StoreError(f"{directory} is a symbolic link; mio-eval never writes through links")
        directory.mkdir(parents=True, exist_ok=True)
        self.predictions_path = directory / f"rank-{rank}-{uuid.uuid4().hex[:12]}.jsonl"
        self._fh = open_append(self.predictions_path)

    def append(self, records: Sequence[Mapping[str, Any]]) -> None:
        from mio_eval.store import write_whole_lines

        payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
        try:
            write_whole_lines(self._fh.fileno(), payload)
        except OSError as exc:
            raise StoreWriteError(f"cannot save predictions to {self.predictions_path}: {exc.strerror or exc}; "
                                  "the batches saved before are intact; rerun to resume") from None

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
    from mio_eval.store import _open_nofollow

    with os.fdopen(_open_nofollow(path, os.O_RDONLY), "rb") as fh:
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


def merge_shards(store: Any, order: Sequence[str]) -> int:
    """Move every shard of ``store``'s run dir into ``predictions.jsonl``, ids in ``order`` first
    (others after, by id), then delete the shards. Idempotent: a record already merged (a merge
    cut short before the delete) or a second success of a sample is skipped, so a merge can be
    repeated after any crash. Returns the number of records appended.

    The shards' lines are written as read (never encoded again); each is decoded once (orjson,
    ``mio_eval.fastjson``) because the store keeps the records for scoring."""
    directory = store.run_dir / SHARDS
    if directory.is_symlink():
        raise StoreError(f"{directory} is a symbolic link; remove it")
    files = sorted(directory.glob("rank-*.jsonl")) if directory.is_dir() else []
    if not files:
        return 0
    from mio_eval.store import no_gc

    with no_gc():
        return _merge(store, files, order)


def _merge(store: Any, files: Sequence[Path], order: Sequence[str]) -> int:
    directory = store.run_dir / SHARDS
    first: dict[str, tuple[dict[str, Any], bytes]] = {}
    more: dict[str, list[tuple[dict[str, Any], bytes]]] = {}  # a sample's later records (rare)
    for path in files:
        for item in read_shard(path):
            sample_id = item[0]["id"]
            if sample_id in first:
                more.setdefault(sample_id, []).append(item)
            else:
                first[sample_id] = item
    ids = [i for i in order if i in first]  # dataset order without a sort
    if len(ids) < len(first):
        known = set(order)
        ids += sorted(i for i in first if i not in known)
    rounds: list[list[tuple[dict[str, Any], bytes]]] = [[]]
    plain, get = rounds[0], store.get
    for sample_id in ids:
        item = first[sample_id]
        latest = get(sample_id)
        if latest is None and sample_id not in more and "attempt" not in item[0]:
            plain.append(item)  # the common case: a sample's only record, not yet merged
            continue
        k = 0
        for record, line in [item, *more.get(sample_id, ())]:
            if "attempt" in record:
                record.pop("attempt")
                line = json.dumps(record, ensure_ascii=False).encode("utf-8")
            if latest is not None and (_same(latest, record)
                                       or (not latest.get("error") and not record.get("supersedes"))):
                continue
            if k == len(rounds):
                rounds.append([])
            rounds[k].append((record, line))
            latest, k = record, k + 1
    appended = 0
    for batch in rounds:  # one record per sample and round: a retry follows its failed attempt
        for start in range(0, len(batch), 50_000):
            chunk = batch[start : start + 50_000]
            store.append([r for r, _ in chunk], encoded=[line for _, line in chunk])
        appended += len(batch)
    for path in files:
        path.unlink()
    with contextlib.suppress(OSError):
        os.rmdir(directory)
    return appended


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
