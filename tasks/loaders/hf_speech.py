"""Speech corpora distributed as Hugging Face datasets or TSV, read from local copies.

* ``HFSpeechLoader``: a local Hugging Face dataset, either a hub snapshot of parquet shards
  (``data/<split>-*.parquet``, as GLOBE (``MushanW/GLOBE_V2``) and Common Voice's parquet
  exports are laid out) or a ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` folder.
  The audio column is read undecoded (``{"bytes", "path"}``: no torchcodec/torchaudio needed);
  embedded bytes are written once to a content-addressed cache file so adapters get a path.
* ``CommonVoiceLoader``: a Common Voice release folder (``<split>.tsv`` + ``clips/*.mp3``) read
  as the dataset's own loading script does (tab-separated, no quoting, every field a string).

Column names are configurable; the GLOBE defaults are ``transcript`` / ``speaker_id``.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any, Sequence

from mio_eval.atomic import atomic_path
from mio_eval.errors import ConfigError
from mio_eval.types import Audio, Sample

__all__ = ["HFSpeechLoader", "CommonVoiceLoader", "read_hf_table"]


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
        raise ConfigError(f"dataset not found: {root}")
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


def _materialize(value: Any, *, base: Path, cache_dir: Path) -> Path:
    """A local file for an undecoded audio value: its embedded bytes (cached) or its path."""
    if isinstance(value, str):
        value = {"path": value, "bytes": None}
    if not isinstance(value, dict):
        raise ConfigError(f"unexpected audio cell of type {type(value).__name__}")
    data, name = value.get("bytes"), value.get("path") or ""
    if data:
        suffix = Path(name).suffix or ".wav"
        target = cache_dir / f"{hashlib.sha1(data).hexdigest()[:20]}{suffix}"
        if not target.is_file():
            cache_dir.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                tmp.write_bytes(data)
        return target
    if not name:
        raise ConfigError("audio cell holds neither bytes nor a path")
    path = Path(name)
    return path if path.is_absolute() else base / path


class HFSpeechLoader:
    """Speech samples from a local HF dataset: audio + transcript (+ speaker and extra columns)."""

    def __init__(
        self,
        *,
        path: str,
        split: str = "test",
        text_column: str = "transcript",
        audio_column: str = "audio",
        speaker_column: str | None = "speaker_id",
        id_column: str | None = None,
        metadata_columns: Sequence[str] = (),
        cache_dir: str,
        max_samples: int | None = None,
        expected_size: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.split = split
        self.text_column = text_column
        self.audio_column = audio_column
        self.speaker_column = speaker_column
        self.id_column = id_column
        self.metadata_columns = tuple(metadata_columns)
        self.cache_dir = Path(cache_dir)
        self.max_samples = max_samples
        self.expected_size = expected_size

    def __call__(self) -> list[Sample]:
        wanted = [self.text_column, self.audio_column, *self.metadata_columns]
        for optional in (self.speaker_column, self.id_column):
            if optional:
                wanted.append(optional)
        rows = read_hf_table(self.path, self.split, columns=list(dict.fromkeys(wanted)),
                             undecoded=[self.audio_column])
        if self.max_samples is not None:
            rows = rows[: self.max_samples]
        if not rows:
            raise ConfigError(f"split {self.split!r} of {self.path} is empty")
        cache = self.cache_dir / hashlib.sha1(str(self.path.resolve()).encode()).hexdigest()[:12] / self.split
        base = self.path if self.path.is_dir() else self.path.parent
        samples = []
        for i, row in enumerate(rows):
            text = " ".join(str(row[self.text_column] or "").split())
            if self.id_column:
                sample_id = str(row[self.id_column])
            else:
                sample_id = f"{self.split}-{i:06d}"
            audio = _materialize(row[self.audio_column], base=base, cache_dir=cache)
            metadata = {c: row[c] for c in self.metadata_columns}
            metadata["reference_audio"] = str(audio)
            if self.speaker_column:
                metadata["speaker"] = str(row[self.speaker_column])
            samples.append(Sample(id=sample_id, parts=(Audio(str(audio)),), targets=(text,), metadata=metadata))
        return samples


class CommonVoiceLoader:
    """A Common Voice release folder: ``<root>/<split>.tsv`` + ``<root>/clips/<path>`` (mp3)."""

    def __init__(self, *, root: str, split: str = "test", max_samples: int | None = None) -> None:
        self.root = Path(root)
        self.split = split
        self.max_samples = max_samples

    def __call__(self) -> list[Sample]:
        tsv = self.root / f"{self.split}.tsv"
        if not tsv.is_file():
            raise ConfigError(f"Common Voice split file not found: {tsv}")
        with open(tsv, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            missing = {"path", "sentence"} - set(reader.fieldnames or ())
            if missing:
                raise ConfigError(f"{tsv}: missing column(s) {', '.join(sorted(missing))}")
            rows = list(reader)
        if self.max_samples is not None:
            rows = rows[: self.max_samples]
        if not rows:
            raise ConfigError(f"{tsv} holds no rows")
        samples = []
        for row in rows:
            clip = self.root / "clips" / row["path"]
            metadata = {k: row.get(k, "") for k in ("age", "gender", "accents", "locale") if k in row}
            metadata.update(speaker=row.get("client_id", ""), reference_audio=str(clip))
            samples.append(Sample(id=Path(row["path"]).stem, parts=(Audio(str(clip)),),
                                  targets=(" ".join(row["sentence"].split()),), metadata=metadata))
        return samples
