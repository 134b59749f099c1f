"""Local copies of Hugging Face datasets as the Hub ships them: parquet shards of a Hub snapshot
(found by the Hub's data-file conventions) or a ``save_to_disk`` folder, read through ``datasets``
without network, lazily (streamed / memory-mapped, never one whole table in memory) and with
media columns undecoded (no torchcodec/torchaudio); media cells are unpacked one sample at a time
to content-addressed cache files so adapters get paths and decode them when they read them.
Shared by every loader that reads an HF copy.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterator

from mio_eval.atomic import atomic_path
from mio_eval.errors import ConfigError
from mio_eval.tasks.loaders._data import data_not_found

__all__ = ["HFRows", "materialize", "read_hf_table"]


def _parquet_files(root: Path, split: str) -> list[Path]:
    """The parquet shards of ``split``: first by the Hub's own data-file conventions
    (``datasets.data_files.get_data_patterns``: ``data/<split>-00000-of-00001.parquet``,
    ``<split>/...``, ``<split>.parquet``... for the split names it knows), then by name, here or
    in a config sub-folder (the Hub resolves those through the card's ``configs``: cais/mmlu
    ``<subject>/test-*.parquet``)."""
    from datasets.data_files import DataFilesDict, get_data_patterns
    from datasets.exceptions import DataFilesNotFoundError

    try:
        patterns = get_data_patterns(str(root))
        if split in patterns:
            resolved = DataFilesDict.from_patterns({split: patterns[split]}, base_path=str(root))[split]
            # The conventions also map synonyms (dev/eval -> validation): read only the split named.
            named = re.compile(rf"(^|[/._ -]){re.escape(split)}([/._ 0-9-]|$)")
            found = sorted(Path(f) for f in resolved if str(f).endswith(".parquet")
                           and named.search(Path(f).relative_to(root.resolve()).as_posix()
                                            if Path(f).is_relative_to(root.resolve()) else Path(f).name))
            if found:
                return found
    except (DataFilesNotFoundError, FileNotFoundError, ValueError):
        pass   # no files the Hub conventions recognise: try the names directly
    # Split names the conventions do not know (cais/mmlu's "dev", "auxiliary_train") and config
    # sub-folders: <split>-*.parquet, <split>.parquet, <split>/*.parquet, here or one level down.
    for pattern in (f"{split}-*.parquet", f"{split}.parquet", f"{split}/*.parquet", f"*/{split}-*.parquet",
                    f"*/{split}/*.parquet", f"*/{split}.parquet"):
        found = sorted(root.glob(pattern))
        if found:
            return found
    return []


class HFRows(Sequence):
    """The rows of one split of a local HF dataset, read through ``datasets`` lazily: iteration
    streams them (parquet through an ``IterableDataset``, a ``save_to_disk`` folder memory-mapped),
    so embedded media are never all in memory; ``len`` comes from the files' metadata. Prefix
    slices stay lazy (``take`` / ``select``); other indexing reads up to the index."""

    def __init__(self, dataset: Any, length: int) -> None:
        self._dataset = dataset
        self._length = length

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._dataset)

    def __getitem__(self, index):  # type: ignore[override]
        import datasets

        if isinstance(index, slice):
            start, stop, step = index.indices(self._length)
            if start == 0 and step == 1:
                if isinstance(self._dataset, datasets.Dataset):
                    return HFRows(self._dataset.select(range(stop)), stop)
                return HFRows(self._dataset.take(stop), stop)
            return list(islice(iter(self), start, stop, step))
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(index)
        if isinstance(self._dataset, datasets.Dataset):
            return self._dataset[index]
        return next(islice(iter(self), index, None))


def _prepare(dataset: Any, *, where: Path, columns: Sequence[str] | None, undecoded: Sequence[str]) -> Any:
    features = dataset.features or {}
    for name in undecoded:
        feature = features.get(name)
        if feature is not None and hasattr(feature, "decode"):
            dataset = dataset.cast_column(name, type(feature)(decode=False))
    if columns is not None:
        names = list(features)
        absent = sorted(set(columns) - set(names))
        if absent:
            raise ConfigError(f"{where}: no column(s) {', '.join(absent)} (has {', '.join(names)})")
        dataset = dataset.select_columns(list(columns))
    return dataset


def read_hf_table(path: str | Path, split: str, *, columns: Sequence[str] | None = None,
                  undecoded: Sequence[str] = ()) -> HFRows:
    """Rows of ``split`` from a local HF dataset (parquet shards of a Hub snapshot, or a
    save_to_disk folder), through ``datasets``, as a lazy :class:`HFRows` sequence of dicts.

    Media columns named in ``undecoded`` are returned as stored (``{"bytes", "path"}``): nothing
    is decoded here (no torchcodec / PIL at load time); loaders write each cell to a cache file
    (:func:`materialize`) and the model decodes it when it reads the sample."""
    import datasets

    root = Path(path)
    if not root.exists():
        raise data_not_found("dataset", root, key="path")
    if (root / "dataset_dict.json").is_file() or (root / "state.json").is_file():
        loaded = datasets.load_from_disk(str(root))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise ConfigError(f"split {split!r} not in {root} (has {', '.join(loaded)})")
            loaded = loaded[split]
        return HFRows(_prepare(loaded, where=root, columns=columns, undecoded=undecoded), len(loaded))
    files = _parquet_files(root, split) if root.is_dir() else ([root] if root.suffix == ".parquet" else [])
    if not files:
        raise ConfigError(f"no parquet shards for split {split!r} under {root} (looked for data/{split}-*.parquet "
                          f"and {split}/*.parquet) and no save_to_disk folder")
    import pyarrow.parquet as pq

    length = 0
    for file in files:   # metadata only: the row count and a readable footer
        try:
            length += pq.ParquetFile(file).metadata.num_rows
        except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid / OSError
            raise ConfigError(f"cannot read parquet shard {file}: {' '.join(str(exc).split())}") from None
    dataset = datasets.load_dataset("parquet", data_files={split: [str(f) for f in files]}, split=split,
                                    streaming=True)
    return HFRows(_prepare(dataset, where=files[0], columns=columns, undecoded=undecoded), length)


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
