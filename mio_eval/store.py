"""Append-only prediction store for one run directory, with crash-safe resume.

Layout of ``results/<model>/<task>/``::

    run.json            fingerprint + resolved config of the run (atomic write)
    predictions.jsonl   one JSON line per finished sample, appended and fsynced per batch
    media/              generated files (wav, png, ...) referenced from predictions
    scores.jsonl        per-sample scores of the last scoring pass (atomic write)
    metrics.json        the typed result (atomic write)
    .lock               held (flock) while a process works on the run

Resume skips ids already in ``predictions.jsonl``. A crash can leave only one kind of damage, a
last line without its newline, and that line is dropped on open. Resuming under a different
config fingerprint is refused.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, KeysView, Mapping

from mio_eval.atomic import atomic_write_json
from mio_eval.errors import StoreError, StoreWriteError

__all__ = ["PredictionStore"]

_RUN_FILES = ("predictions.jsonl", "scores.jsonl", "metrics.json", "run.json")


class PredictionStore:
    """Owns a run directory while open. Use as a context manager."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.predictions_path = self.run_dir / "predictions.jsonl"
        self.run_info_path = self.run_dir / "run.json"
        self.media_dir = self.run_dir / "media"
        self._records: dict[str, dict[str, Any]] = {}
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
    ) -> "PredictionStore":
        """Lock the run dir, check the fingerprint, load finished records.

        ``overwrite`` (or ``resume=False``) deletes the previous run's files first.
        ``create=False`` opens an existing run only (for re-scoring).
        """
        if not create and not self.run_info_path.exists():
            raise StoreError(f"no run in {self.run_dir} (run.json missing): run stage=generate first")
        self.run_dir.mkdir(parents=True, exist_ok=True)
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
                atomic_write_json(self.run_info_path, {"fingerprint": fingerprint, **run_info})
            self._load()
            # Unbuffered binary append: a failed write leaves nothing queued in a Python buffer
            # that a later flush could add after the file was cut back.
            self._fh = open(self.predictions_path, "ab", buffering=0)
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
    def done_ids(self) -> KeysView[str]:
        """Ids of finished samples (a live, set-like view: O(1) membership)."""
        return self._records.keys()

    def get(self, sample_id: str) -> dict[str, Any] | None:
        return self._records.get(sample_id)

    def __len__(self) -> int:
        return len(self._records)

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append one batch of records as whole lines, then flush and fsync."""
        if self._fh is None:
            raise RuntimeError("store is not open")
        records = [dict(r) for r in records]
        seen: set[str] = set()
        for record in records:
            if record["id"] in self._records or record["id"] in seen:
                raise StoreError(f"sample {record['id']!r} is already stored in {self.predictions_path}")
            seen.add(record["id"])
        payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
        fd = self._fh.fileno()
        start = os.fstat(fd).st_size
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as exc:
            # Disk full or an I/O error: cut the file back to its last whole batch so the store
            # stays readable and resumable, and stop the run with the reason.
            try:
                os.ftruncate(fd, start)
            except OSError:
                pass  # the reader drops a half-written last line in any case
            raise StoreWriteError(
                f"cannot save predictions to {self.predictions_path}: {exc.strerror or exc}; "
                f"the {len(self._records)} samples saved before are intact; fix the cause and rerun to resume"
            ) from None
        for record in records:
            self._records[record["id"]] = record

    # -- internals -----------------------------------------------------------------------
    def _lock(self) -> None:
        self._lock_fh = open(self.run_dir / ".lock", "a+")
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

    def _load(self) -> None:
        self._records = {}
        if not self.predictions_path.exists():
            return
        data = self.predictions_path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            # A crash during the last append: keep whole lines only.
            with open(self.predictions_path, "rb+") as fh:
                fh.truncate(end)
                os.fsync(fh.fileno())
            self.dropped_partial_line = True
        for lineno, line in enumerate(data[:end].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise StoreError(f"{self.predictions_path}:{lineno} is corrupt ({exc}); "
                                 "use runner.overwrite=true to start over") from None
            if record["id"] in self._records:
                raise StoreError(f"{self.predictions_path}:{lineno} repeats sample {record['id']!r}")
            self._records[record["id"]] = record
