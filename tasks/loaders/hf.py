"""Local copies of Hugging Face datasets: parquet shards of a hub snapshot or a
``save_to_disk`` folder, read without network and with media columns undecoded (no
torchcodec/torchaudio), and media cells unpacked once to content-addressed cache files so
adapters get paths. Shared by every loader that reads an HF copy.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Sequence

from mio_eval.atomic import atomic_path
from mio_eval.errors import ConfigError
from mio_eval.tasks.loaders._data import data_not_found

__all__ = ["materialize", "read_hf_table"]


def _parquet_files(root: Path, split: str) -> list[Path]:
    patterns = (f"{split}-*.parquet", f"{split}.parquet", f"{split}/*.parquet", f"*/{split}-*.parquet",
                f"*/{split}/*.parquet", f"*/{split}.parquet")
    for pattern in patterns:
        found = sorted(root.glob(pattern))
        if found:
            return found
    return []


def read_hf_table(path: str | Path, split: str, *, columns: Sequence[str] | None = None,
                  undecoded: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows of ``split`` from a local HF dataset (parquet shards or a save_to_disk folder).

    Media columns named in ``undecoded`` are returned as stored (``{"bytes", "path"}``)."""
    root = Path(path)
    if not root.exists():
        raise data_not_found("dataset", root, key="path")
    if (root / "dataset_dict.json").is_file() or (root / "state.json").is_file():
        import datasets

        loaded = datasets.load_from_disk(str(root))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise ConfigError(f"split {split!r} not in {root} (has {', '.join(loaded)})")
            loaded = loaded[split]
        for name in undecoded:
            feature = loaded.features.get(name)
            if feature is not None and hasattr(feature, "decode"):
                loaded = loaded.cast_column(name, type(feature)(decode=False))
        if columns is not None:
            absent = sorted(set(columns) - set(loaded.column_names))
            if absent:
                raise ConfigError(f"{root}: no column(s) {', '.join(absent)} (has {', '.join(loaded.column_names)})")
            loaded = loaded.select_columns(list(columns))
        return loaded.to_list()
    files = _parquet_files(root, split) if root.is_dir() else ([root] if root.suffix == ".parquet" else [])
    if not files:
        raise ConfigError(f"no parquet shards for split {split!r} under {root} (looked for data/{split}-*.parquet "
                          f"and {split}/*.parquet) and no save_to_disk folder")
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for file in files:
        try:
            table = pq.read_table(file)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid / OSError
            raise ConfigError(f"cannot read parquet shard {file}: {' '.join(str(exc).split())}") from None
        if columns is not None:
            absent = sorted(set(columns) - set(table.column_names))
            if absent:
                raise ConfigError(f"{file}: no column(s) {', '.join(absent)} (has {', '.join(table.column_names)})")
            table = table.select(list(columns))
        rows.extend(table.to_pylist())
    return rows


def materialize(value: Any, *, base: Path, cache_dir: Path, what: str = "media",
                suffix: Callable[[bytes, str], str] | None = None) -> Path:
    """A local file for an undecoded HF media cell (``{"bytes", "path"}`` or a path string): the
    embedded bytes written once to ``<cache_dir>/<sha1><suffix>`` (content-addressed, atomic),
    or the stored path (relative to ``base``). ``suffix(data, name)`` picks the file suffix
    (default: the stored name's, else ``.bin``)."""
    if isinstance(value, str):
        value = {"path": value, "bytes": None}
    if not isinstance(value, dict):
        raise ConfigError(f"unexpected {what} cell of type {type(value).__name__}")
    data, name = value.get("bytes"), value.get("path") or ""
    if data:
        ext = suffix(data, name) if suffix is not None else (Path(name).suffix or ".bin")
        target = cache_dir / f"{hashlib.sha1(data).hexdigest()[:20]}{ext}"
        if not target.is_file():
            cache_dir.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                tmp.write_bytes(data)
        return target
    if not name:
        raise ConfigError(f"{what} cell holds neither bytes nor a path")
    path = Path(name)
    return path if path.is_absolute() else base / path
