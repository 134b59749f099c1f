"""Append-only prediction store for one run directory, with crash-safe resume.

Layout of ``results/<model>/<task>/``::

    run.json            fingerprint + resolved config of the run (atomic write)
    predictions.jsonl   one JSON line per finished sample, appended and fsynced per batch
    media/              generated files (wav, png, ...) referenced from predictions
    scores.jsonl        per-sample scores of the last scoring pass (atomic write)
    metrics.json        the typed result (atomic write)
    <artifacts>         files a task asked for (``ScoreReport.artifacts``: submission files...),
                        written by ``write_artifacts`` (atomic, confined to the run directory)
    .lock               held (flock) while a process works on the run

Resume skips ids already in ``predictions.jsonl``. A crash can leave only one kind of damage, a
last line without its newline, and that line is dropped on open. Resuming under a different
config fingerprint is refused.

A sample that failed may be tried again: its new record is appended as the next ``attempt`` and
the latest attempt wins; every attempt stays in the file for audit (``attempts(id)``). A second
record for a sample whose earlier record succeeded is corruption (a duplicated sample) and is
refused, unless it says it ``supersedes`` it (the sample's inputs changed and it was generated
again, ``runner.regenerate_changed``).

Store files are never followed through symbolic links (a ``predictions.jsonl`` that is a link
would let a crafted run dir truncate or append to any file), and ``media/`` must not lead out
of the run directory.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, KeysView, Mapping, Sequence

from mio_eval.atomic import atomic_path, atomic_write_json, atomic_write_text
from mio_eval.errors import StoreError, StoreWriteError
from mio_eval.fastjson import loads
from mio_eval.recordlines import load_records, no_gc, read_jsonl_records, succeeded_digest
from mio_eval.storeio import open_append, open_nofollow as _open_nofollow, write_lines, write_whole_lines

__all__ = ["PredictionStore", "repair", "read_jsonl_records", "write_whole_lines", "open_append", "artifact_name"]

_RUN_FILES = ("predictions.jsonl", "scores.jsonl", "metrics.json", "run.json")
# Names the store itself owns: an artifact may not replace them.
_RESERVED = frozenset({*_RUN_FILES, ".lock", "media", "shards", "history", "scoring"})


def _decoded(line: bytes, sample_id: str, path: Path) -> dict[str, Any]:
    """The record of a line kept undecoded (``append_lines``, ``recordlines.load_records``);
    StoreError if it is not one."""
    try:
        record = loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict) or record.get("id") != sample_id:
        raise StoreError(f"{path}: the line of sample {sample_id!r} is corrupt (not a JSON record with that id); "
                         f"`mio-eval repair {path.parent}` keeps every valid line")
    return record


def artifact_name(name: Any) -> str:
    """``name`` checked as an artifact's place in a run directory: a relative POSIX path
    (``"submission.json"``, ``"exports/a.json"``) with no ``..``, ``.`` or empty component, no
    backslash or NUL, not absolute, and not a file the store owns. StoreError otherwise."""
    if not isinstance(name, str) or not name:
        raise StoreError(f"artifact name must be a non-empty string, got {name!r}")
    parts = name.split("/")
    if (name.startswith("/") or "\\" in name or "\0" in name
            or any(p in ("", ".", "..") for p in parts) or parts[0] in _RESERVED):
        raise StoreError(f"artifact name {name!r} is not a plain relative path inside the run directory "
                         f"(no '..', no absolute path, not one of {', '.join(sorted(_RESERVED))})")
    return name


class PredictionStore:
    """Owns a run directory while open. Use as a context manager."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.predictions_path = self.run_dir / "predictions.jsonl"
        self.run_info_path = self.run_dir / "run.json"
        self.media_dir = self.run_dir / "media"
        self._pending: list[tuple[Sequence[str], Sequence[bytes]]] = []  # merged blocks not yet indexed
        self._records: dict[str, Any] = {}
        self._attempts: dict[str, int] = {}
        self._lock_fh = None
        self._fh = None
        self.dropped_partial_line = False

    # -- lifecycle -----------------------------------------------------------------------
    def open(
        self,
        *,
        fingerprint: str,
        run_info: Mapping[str, Any],
        resume: bool = True,
        overwrite: bool = False,
        create: bool = True,
        selection: Mapping[str, Any] | None = None,
    ) -> "PredictionStore":
        """Lock the run dir, check the fingerprint, load finished records.

        ``overwrite`` (or ``resume=False``) deletes the previous run's files first.
        ``create=False`` opens an existing run only (for re-scoring). ``selection`` (which
        samples the run evaluates: ``runner.limit`` and its mode) is recorded in ``run.json``.
        """
        if not create and not self.run_info_path.exists():
            raise StoreError(f"no run in {self.run_dir} (run.json missing): run stage=generate first")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._check_links()
        self._lock()
        try:
            if overwrite or not resume:
                # Before reading run.json, so an unreadable one can be overwritten as advised.
                self._clear()
                previous = None
            else:
                previous = self._read_run_info()
            if previous is not None and previous.get("fingerprint") != fingerprint:
                raise StoreError(
                    f"{self.run_dir} holds a run with config fingerprint {previous.get('fingerprint')} "
                    f"but this config is {fingerprint}; resuming would mix results. Use "
                    "runner.overwrite=true to start over, or another paths.results_dir"
                )
            if previous is None:
                info = {"fingerprint": fingerprint, **run_info}
                if selection is not None:
                    info["selection"] = dict(selection)
                atomic_write_json(self.run_info_path, info)
            self._load()
            # Unbuffered binary append: a failed write leaves nothing queued in a Python buffer
            # that a later flush could add after the file was cut back. Never through a link.
            fd = _open_nofollow(self.predictions_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            self._fh = os.fdopen(fd, "ab", buffering=0)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def __enter__(self) -> "PredictionStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- records -------------------------------------------------------------------------
    @property
    def _records(self) -> dict[str, Any]:
        """Sample id -> its latest record, or its line kept undecoded (bytes); the blocks of lines
        ``append_merged`` wrote are indexed here when first needed."""
        if self._pending:
            pending, self._pending = self._pending, []
            for ids, lines in pending:
                before = len(self._table)
                self._table.update(zip(ids, lines))
                if len(self._table) != before + len(ids):
                    raise StoreError(f"{self.predictions_path}: a merge wrote a sample twice (ids not distinct "
                                     f"or already stored); `mio-eval repair {self.run_dir}` keeps its first record")
        return self._table

    @_records.setter
    def _records(self, value: dict[str, Any]) -> None:
        self._table, self._pending = value, []

    @property
    def done_ids(self) -> KeysView[str]:
        """Ids of finished samples (a live, set-like view: O(1) membership)."""
        return self._records.keys()

    def get(self, sample_id: str) -> dict[str, Any] | None:
        """The latest attempt of a sample (None when it has none)."""
        record = self._records.get(sample_id)
        if type(record) is bytes:  # a line loaded or merged undecoded, decoded when first read
            record = self._records[sample_id] = _decoded(record, sample_id, self.predictions_path)
        return record

    def outcome(self, sample_id: str) -> tuple[bool, str | None] | None:
        """``(failed, input_digest)`` of the sample's latest record (None when it has none), what
        planning a resume needs: read from the last members of a line kept undecoded when they say
        it succeeded (``recordlines.succeeded_digest``), so only failed samples' lines are decoded."""
        record = self._records.get(sample_id)
        if type(record) is bytes:
            tail = succeeded_digest(record)
            if tail is not None:
                return False, tail[0]
            record = self.get(sample_id)
        return None if record is None else (bool(record.get("error")), record.get("input_digest"))

    def attempts(self, sample_id: str) -> int:
        """How many records the sample has (failed attempts that were retried count)."""
        return self._attempts.get(sample_id, 1 if sample_id in self._records else 0)  # no tally: 1

    @property
    def failed_ids(self) -> list[str]:
        """Ids whose latest attempt failed, in file order."""
        return [i for i in self._records if self.get(i).get("error")]

    def __len__(self) -> int:
        return len(self._table) + sum(len(ids) for ids, _ in self._pending)

    def append(self, records: Iterable[Mapping[str, Any]], *, encoded: Sequence[bytes] | None = None) -> None:
        """Append one batch of records as whole lines, then flush and fsync.

        A sample already stored may only be appended again when its latest attempt failed (a
        retry); the record gets ``attempt`` = its number (1 for the first). ``encoded``: each
        record's JSON line as read from a shard (no newline), written as is unless the record
        gets an ``attempt`` (a shard merge need not encode again)."""
        records = [dict(r) for r in records]
        lines = list(encoded) if encoded is not None else [None] * len(records)
        if len(lines) != len(records):
            raise ValueError("append: one encoded line per record")
        self.append_lines([r["id"] for r in records], lines, records)

    def append_lines(self, ids: Sequence[str], lines: Sequence[bytes | None],
                     records: Sequence[dict[str, Any] | None] | None = None) -> None:
        """``append`` for a shard merge, per record its id, its line and its record. A record None
        (``records`` None: all): the line, whose ``json.loads`` is a record of that sample, never
        stored before, is written as is and decoded only when first read (``get``). Otherwise as
        ``append`` (a line None: the record is encoded here)."""
        if self._fh is None:
            raise RuntimeError("store is not open")
        table = dict(zip(ids, lines)) if records is None else None  # the merge's common batch: C-level
        new = table.keys() if table is not None else [i for i, r in zip(ids, records) if r is None]
        if len(set(ids) if table is None else table) < len(ids) or not self._records.keys().isdisjoint(new):
            seen: set[str] = set()
            twice = next(i for i in ids if i in seen or seen.add(i) or (i in new and i in self._records))
            raise StoreError(f"sample {twice!r} is already stored in {self.predictions_path}")
        if records is not None:
            for sample_id, record in zip(ids, records):
                previous = None if record is None else self.get(sample_id)
                if previous is not None:
                    if not previous.get("error") and not record.get("supersedes"):
                        raise StoreError(f"sample {sample_id!r} is already stored in {self.predictions_path}")
                    record["attempt"] = self.attempts(sample_id) + 1
            lines = [line if r is None or (line is not None and "attempt" not in r)
                     else json.dumps(r, ensure_ascii=False).encode("utf-8") for line, r in zip(lines, records)]
        try:
            write_lines(self._fh.fileno(), lines)
        except OSError as exc:
            raise StoreWriteError(
                f"cannot save predictions to {self.predictions_path}: {exc.strerror or exc}; "
                f"the {len(self._records)} samples saved before are intact; fix the cause and rerun to resume"
            ) from None
        if table is not None:  # C-level (a copy of the table when the store is empty)
            self._records.update(table)  # one attempt each (``attempts``)
            return
        for sample_id, line, record in zip(ids, lines, records):
            self._attempts[sample_id] = self.attempts(sample_id) + 1
            self._records[sample_id] = line if record is None else record

    def append_merged(self, ids: Sequence[str], lines: Sequence[bytes]) -> None:
        """``append_lines`` for a block the caller vouches for: ``ids`` distinct and none stored
        (rank 0's planned merge: the runner refuses duplicate sample ids, and the plan holds no
        stored sample), each line a record of its sample. Written as is with one fsync; the block's
        id index is built when first needed (``_records``; a violated promise is a StoreError there)."""
        if self._fh is None:
            raise RuntimeError("store is not open")
        try:
            write_lines(self._fh.fileno(), lines)
        except OSError as exc:
            raise StoreWriteError(
                f"cannot save predictions to {self.predictions_path}: {exc.strerror or exc}; "
                f"the {len(self)} samples saved before are intact; fix the cause and rerun to resume") from None
        if ids:
            self._pending.append((list(ids), lines))

    def write_artifacts(self, artifacts: Mapping[str, Any]) -> list[str]:
        """Write a task's artifacts (``ScoreReport.artifacts``) into the run directory; their names.

        Each value is written atomically: ``bytes`` as is, ``str`` as UTF-8 text, anything else
        as JSON (``atomic_write_json``: indent 2, UTF-8, trailing newline). Every name is checked
        (``artifact_name``) before anything is written, and its folder must resolve inside the run
        directory (no symbolic link out of it); a bad name is a StoreError and nothing is written."""
        root = self.run_dir.resolve()
        targets = []
        for name in artifacts:
            target = self.run_dir / artifact_name(name)
            if not target.parent.resolve().is_relative_to(root) or target.is_symlink():
                raise StoreError(f"artifact {name!r} would be written outside the run directory {self.run_dir} "
                                 "(a symbolic link on its path); remove the link")
            targets.append((name, target))
        for name, target in targets:
            content = artifacts[name]
            if isinstance(content, (bytes, bytearray, memoryview)):
                with atomic_path(target) as tmp:
                    tmp.write_bytes(bytes(content))
            elif isinstance(content, str):
                atomic_write_text(target, content)
            else:
                atomic_write_json(target, content)
        return [name for name, _ in targets]

    # -- internals -----------------------------------------------------------------------
    def _check_links(self) -> None:
        """Refuse store files that are symbolic links and a media dir leading out of the run."""
        for name in (*_RUN_FILES, ".lock"):
            if (self.run_dir / name).is_symlink():
                raise StoreError(f"{self.run_dir / name} is a symbolic link; mio-eval never writes through "
                                 "links (replace it with a regular file or use another paths.results_dir)")
        if self.media_dir.is_symlink() or self.media_dir.exists():
            if not self.media_dir.resolve().is_relative_to(self.run_dir.resolve()):
                raise StoreError(f"{self.media_dir} leads outside the run directory "
                                 f"({self.media_dir.resolve()}); remove the link")

    def _lock(self) -> None:
        self._lock_fh = os.fdopen(_open_nofollow(self.run_dir / ".lock", os.O_RDWR | os.O_CREAT), "a+")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            self._lock_fh = None
            raise StoreError(f"{self.run_dir} is in use by another mio-eval process (lock held)") from None

    def _read_run_info(self) -> dict[str, Any] | None:
        if not self.run_info_path.exists():
            return None
        try:
            return json.loads(self.run_info_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise StoreError(f"{self.run_info_path} is not valid JSON ({exc}); use runner.overwrite=true") from None

    def _clear(self) -> None:
        for name in _RUN_FILES:
            (self.run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(self.media_dir, ignore_errors=True)
        shutil.rmtree(self.run_dir / "shards", ignore_errors=True)  # a data-parallel run's unmerged shards

    def _load(self) -> None:
        with no_gc():
            self._load_records()

    def _load_records(self) -> None:
        self._records, self._attempts = {}, {}
        if not self.predictions_path.is_symlink() and not self.predictions_path.exists():
            return
        fd = _open_nofollow(self.predictions_path, os.O_RDWR)
        with os.fdopen(fd, "rb+") as fh:
            data = fh.read()
            end = data.rfind(b"\n") + 1
            if end < len(data):
                # A crash during the last append: keep whole lines only.
                fh.truncate(end)
                os.fsync(fh.fileno())
                self.dropped_partial_line = True
        # Lines in the fast form are kept undecoded until first read (``get``), as merged ones.
        self._records, self._attempts = load_records(data[:end], self.predictions_path)


def repair(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``mio-eval repair RUN_DIR`` (``mio_eval.repair.repair``)."""
    from mio_eval.repair import repair as run_repair

    return run_repair(run_dir)
