"""OmniBench (multimodal-art-projection/OmniBench) from a local copy: the GitHub layout or the HF copy.

* **GitHub layout**: ``<root>/dataset/batch-5_1142_20240817.jsonl`` (one JSON object a line; a
  ``.json`` file holding a list is read too) and the media under ``<root>/mm_data/image/`` and
  ``<root>/mm_data/audio/``. Items: ``index``, ``task type``, ``audio type`` (speech | sound event |
  music), ``question``, ``options`` (4 strings), ``answer`` (the correct option's *text*),
  ``audio_path`` / ``image_path`` (bare file names; the reference ``demo_api_call.py`` prefixes
  ``mm_data/audio/`` / ``mm_data/image/``; a path already starting with ``mm_data/`` is used as is),
  ``audio content`` (human transcript), ``image content`` (VLM caption).
* **HF copy** ``m-a-p/OmniBench``: ``<root>/data/train-*.parquet`` (split ``train``) or a
  save_to_disk folder, the same columns plus ``audio`` / ``image`` cells (``{"bytes", "path"}``),
  read undecoded; embedded bytes are written once to a content-addressed file under
  ``cache_dir`` so adapters get paths.

Gold: ``options.index(answer)`` (as lmms-eval). The reference ``calculate_metrics.py`` instead
parses the gold *text* with its response parser, which reads an option such as "A man is answering
some questions" as letter A; that bug is not replicated. ``options`` given as one string
(``"A. ..\\nB. .."``, the reference's spreadsheet column) are split on the letters.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.errors import ConfigError
from mio_eval.jsonl import read_jsonl
from mio_eval.metrics.choice import choice_letter
from mio_eval.tasks.loaders._data import data_not_found, entry_field, malformed_entry
from mio_eval.tasks.loaders._images import read_json
from mio_eval.tasks.loaders.hf import materialize, read_hf_table
from mio_eval.types import Audio, Image, Sample

__all__ = ["OmniBenchLoader", "ANNOTATIONS", "TOTAL", "slug", "gold_index"]

ANNOTATIONS = "dataset/batch-5_1142_20240817.jsonl"
TOTAL = 1142
_OPTIONS = re.compile(r"\s*A\.(.*?)B\.(.*?)C\.(.*?)D\.(.*)", re.DOTALL)


def slug(label: str) -> str:
    """``"Sound Event"`` -> ``sound_event`` (the leaderboard's keys)."""
    return re.sub(r"[^0-9a-z]+", "_", label.strip().lower()).strip("_")


def _options(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        match = _OPTIONS.fullmatch(value)
        if not match:
            raise ConfigError(f"{where}: cannot split options string {value[:80]!r} into A.-D.")
        return tuple(m.strip() for m in match.groups())
    if not isinstance(value, (list, tuple)) or len(value) < 2 or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: 'options' must be a list of strings, got {value!r}")
    return tuple(value)


def gold_index(options: Sequence[str], answer: str, where: str = "item") -> int:
    """``options.index(answer)``; whitespace-insensitive if the exact text is absent."""
    if answer in options:
        return list(options).index(answer)
    squashed = [" ".join(o.split()) for o in options]
    target = " ".join(str(answer).split())
    if squashed.count(target) == 1:
        return squashed.index(target)
    raise ConfigError(f"{where}: answer {answer!r} is not one of its options {list(options)!r}")


class OmniBenchLoader:
    """OmniBench items as samples with an image and an audio part (the task picks per setting)."""

    def __init__(
        self,
        *,
        root: str,
        annotations: str = ANNOTATIONS,
        media_dir: str = "mm_data",
        split: str = "train",
        cache_dir: str | None = None,
        max_samples: int | None = None,
        expected_size: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.annotations = annotations
        self.media_dir = media_dir
        self.split = split
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.max_samples = max_samples
        self.expected_size = expected_size

    # -- the two layouts --

    def _annotation_file(self) -> Path | None:
        if self.root.is_file() and self.root.suffix in (".jsonl", ".json"):
            return self.root
        path = self.root / self.annotations
        return path if path.is_file() else None

    def _read_json(self, path: Path) -> list[dict[str, Any]]:
        if path.suffix == ".jsonl" and not _starts_with_list(path):
            # one object a line, split at "\n" only (U+2028 may be inside a string)
            return [item for _, item in read_jsonl(path, what="OmniBench annotations")]
        items = read_json(path, "OmniBench annotations", key="annotations")
        if not isinstance(items, list):
            raise ConfigError(f"{path}: a .json annotation file must hold a list of items")
        return items

    def _media_path(self, name: str, kind: str, base: Path) -> Path:
        path = Path(name)
        if path.is_absolute():
            return path
        if path.parts and path.parts[0] == self.media_dir:
            return base / path
        return base / self.media_dir / kind / path

    def _rows(self) -> tuple[list[dict[str, Any]], str]:
        annotation = self._annotation_file()
        if annotation is not None:
            return self._read_json(annotation), "json"
        if not self.root.exists():
            raise data_not_found("OmniBench data", self.root, key="root",
                                 expected=f"<root>/{self.annotations} + mm_data/, or an m-a-p/OmniBench copy "
                                          "with data/train-*.parquet")
        if self.cache_dir is None:
            raise ConfigError("OmniBench HF copy: task.loader.cache_dir is needed to unpack its media")
        try:
            rows = read_hf_table(self.root, self.split, undecoded=["audio", "image"])
        except ConfigError as exc:
            raise ConfigError(f"no OmniBench data in {self.root}: neither {self.annotations} (GitHub layout) "
                              f"nor an HF copy ({exc})") from None
        return rows, "hf"

    # -- samples --

    def __call__(self) -> list[Sample]:
        rows, kind = self._rows()
        if self.max_samples is not None:
            rows = rows[: self.max_samples]
        if not rows:
            raise ConfigError(f"no OmniBench items in {self.root}")
        if self.expected_size is not None and self.max_samples is None and len(rows) != self.expected_size:
            raise ConfigError(f"OmniBench at {self.root} has {len(rows)} items, expected {self.expected_size}; "
                              "set task.loader.expected_size=null to accept it")
        base = self.root  # media paths are relative to the repository root
        if self.root.is_file():  # root names the annotation file itself: <repo>/dataset/x.jsonl
            base = self.root.parent.parent if self.root.parent.name == "dataset" else self.root.parent
        cache = None
        if kind == "hf":
            cache = self.cache_dir / hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:12] / self.split
        samples, seen = [], set()
        for n, row in enumerate(rows):
            where = f"{self.root} item #{n}"
            if not isinstance(row, dict):
                raise ConfigError(f"{where}: expected a JSON object, got {type(row).__name__}")
            missing = [f for f in ("question", "options", "answer") if f not in row]
            if missing:
                raise ConfigError(f"{where}: missing field(s) {', '.join(missing)}")
            index = entry_field(row, "index", (int, str), where, optional=True)
            sample_id = str(n if index is None else index)
            where = f"{where} (index {sample_id})"
            entry_field(row, "question", str, where)
            options = _options(row["options"], where)
            gold = gold_index(options, entry_field(row, "answer", str, where), where)
            if sample_id in seen:
                raise ConfigError(f"{where}: duplicate index {sample_id}")
            seen.add(sample_id)
            with malformed_entry(where):
                samples.append(self._sample(row, sample_id, options, gold, kind=kind, base=base, cache=cache))
        return samples

    def _sample(self, row: dict, sample_id: str, options: tuple[str, ...], gold: int, *, kind: str, base: Path,
                cache: Path | None) -> Sample:
        """One item as a sample with an image and an audio part (paths; HF cells unpacked)."""
        if kind == "hf":
            image = materialize(_named(row.get("image"), row.get("image_path"), ".png"), base=base, cache_dir=cache)
            audio = materialize(_named(row.get("audio"), row.get("audio_path"), ".mp3"), base=base, cache_dir=cache)
        else:
            image = self._media_path(str(row.get("image_path") or ""), "image", base)
            audio = self._media_path(str(row.get("audio_path") or ""), "audio", base)
        return Sample(
            id=sample_id,
            parts=(Image(str(image)), Audio(str(audio))),
            targets=(choice_letter(gold),),
            choices=options,
            metadata={
                "question": str(row["question"]),
                "answer": gold,
                "answer_text": row["answer"],
                "task_type": str(row.get("task type", "")),
                "audio_type": str(row.get("audio type", "")).strip().lower(),
                "audio_content": str(row.get("audio content") or ""),
                "image_content": str(row.get("image content") or ""),
            },
        )


def _starts_with_list(path: Path) -> bool:
    """Whether a file's first non-blank character is ``[`` (a JSON list under a .jsonl name)."""
    with open(path, "rb") as fh:
        return fh.read(4096).lstrip().startswith(b"[")


def _named(cell: Any, name: Any, suffix: str) -> Mapping[str, Any]:
    """An undecoded HF media cell with a file name (its own, the row's *_path, or a default)."""
    if cell is None:
        raise ConfigError("OmniBench HF row has no media cell")
    if isinstance(cell, str):
        return {"path": cell, "bytes": None}
    cell = dict(cell)
    if not cell.get("path") and cell.get("bytes"):
        cell["path"] = str(name) if name else f"media{suffix}"
    return cell
