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
from typing import Sequence

from mio_eval.errors import ConfigError
from mio_eval.tasks.loaders._data import data_not_found
from mio_eval.tasks.loaders.hf import materialize, read_hf_table
from mio_eval.types import Audio, Sample

__all__ = ["HFSpeechLoader", "CommonVoiceLoader", "read_hf_table"]


def _audio_suffix(data: bytes, name: str) -> str:
    return Path(name).suffix or ".wav"


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
    ) -> None:  # options spelled out (not **kwargs): the signature is the YAML's contract
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
            audio = materialize(row[self.audio_column], base=base, cache_dir=cache, what="audio",
                                suffix=_audio_suffix)
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
            raise data_not_found("Common Voice split file", tsv, key="root")
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
