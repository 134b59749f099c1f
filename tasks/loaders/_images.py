"""Shared pieces of the image-dataset loaders: JSON files with one-line errors, missing-file
reports, HF image cells written to a content-addressed cache, split-size checks.

Kept private (``_images``): the public surface is each dataset's loader class.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Iterable, Sequence

from mio_eval.errors import ConfigError
from mio_eval.tasks.loaders._data import data_not_found
from mio_eval.tasks.loaders.hf import materialize

__all__ = ["read_json", "missing_files_error", "check_files", "materialize_image", "hf_cache_dir",
           "check_size", "IMAGE_SUFFIXES"]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
# Magic numbers of the formats HF image cells hold, for a cell with bytes but no file name.
_MAGIC = ((b"\xff\xd8\xff", ".jpg"), (b"\x89PNG\r\n\x1a\n", ".png"), (b"GIF8", ".gif"), (b"BM", ".bmp"))


def read_json(path: str | Path, what: str, *, key: str = "annotations") -> Any:
    """A JSON file's content; ConfigError naming the file when it is missing (with the
    ``paths.data_dir`` / ``task.loader.<key>`` fix) or malformed."""
    path = Path(path)
    if not path.is_file():
        raise data_not_found(what, path, key=key)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {' '.join(str(exc).split())}") from None


def missing_files_error(missing: Sequence[str | Path], total: int, what: str) -> ConfigError:
    shown = ", ".join(str(p) for p in missing[:3])
    return ConfigError(f"{len(missing)} of {total} {what} missing (e.g. {shown})")


def check_files(paths: Iterable[str | Path], what: str) -> None:
    """ConfigError naming the first few absent files (used with ``require_images=True``)."""
    paths = list(paths)
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise missing_files_error(missing, len(paths), what)


def hf_cache_dir(cache_dir: str | Path, source: str | Path, split: str) -> Path:
    """Where images embedded in a local HF dataset are unpacked: one folder per dataset path and split."""
    key = hashlib.sha1(str(Path(source).resolve()).encode()).hexdigest()[:12]
    return Path(cache_dir) / "images" / key / split


def _suffix(data: bytes, name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix:
        return suffix
    for magic, ext in _MAGIC:
        if data.startswith(magic):
            return ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".img"  # PIL sniffs the content; the suffix is only a hint


def materialize_image(value: Any, *, base: Path, cache_dir: Path) -> Path:
    """A local file for an undecoded HF image cell (``{"bytes", "path"}``): the embedded bytes
    written once to ``<cache_dir>/<sha1>.<ext>`` (suffix sniffed from the bytes when the cell
    has no name), or the stored path (relative to ``base``)."""
    return materialize(value, base=base, cache_dir=cache_dir, what="image", suffix=_suffix)


def check_size(n: int, expected: int | None, what: str, *, limited: bool) -> None:
    """Log (never fail) when a full split does not have its published size: a partial copy
    gives numbers that are not comparable with the literature."""
    if expected is not None and not limited and n != expected:
        logger.warning("%s has %d samples; the published split has %d", what, n, expected)
