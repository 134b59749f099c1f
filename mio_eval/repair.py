"""``mio-eval repair RUN_DIR``: rewrite a run's ``predictions.jsonl`` keeping every valid line
(``mio_eval.store`` refuses to load a file with a corrupt line or a repeated success)."""

from __future__ import annotations

import json
import os
from typing import Any

from mio_eval.errors import StoreError
from mio_eval.recordlines import read_jsonl_records
from mio_eval.storeio import open_nofollow

__all__ = ["repair"]


def repair(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``mio-eval repair RUN_DIR``: rewrite ``predictions.jsonl`` keeping every valid line.

    Drops lines that are not a JSON record with an ``id`` and any record of a sample after its
    first successful one (a duplicate); keeps failed attempts before it. The original file is
    kept beside it as ``predictions.jsonl.bak-<n>``. Takes the run's lock, so it never races a
    running evaluation. Returns counts: kept, dropped_corrupt, dropped_duplicates.
    """
    from mio_eval.store import PredictionStore

    store = PredictionStore(run_dir)
    path = store.predictions_path
    if path.is_symlink():
        raise StoreError(f"{path} is a symbolic link; refusing to repair through it")
    if not path.is_file():
        raise StoreError(f"no predictions.jsonl in {store.run_dir}")
    store._lock()
    try:
        data = path.read_bytes()
        records, bad = read_jsonl_records(data, path)
        kept_lines: list[bytes] = []
        succeeded: set[str] = set()
        duplicates = 0
        for _lineno, record in records:
            if record["id"] in succeeded and not record.get("supersedes"):
                duplicates += 1
                continue
            if not record.get("error"):
                succeeded.add(record["id"])
            kept_lines.append(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        n = 1
        while (backup := path.with_name(f"{path.name}.bak-{n}")).exists():
            n += 1
        fd = open_nofollow(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            os.fsync(fh.fileno())
        from mio_eval.atomic import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_bytes(b"".join(kept_lines))
        return {"kept": len(kept_lines), "dropped_corrupt": len(bad), "dropped_duplicates": duplicates,
                "backup": str(backup)}
    finally:
        store.close()
