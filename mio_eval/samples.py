"""What a run evaluates: the sample subset (``runner.limit`` and its mode), each sample's input
digest (what the model saw, by content), and media confinement to the data roots.

Pure functions over ``Sample`` records; the runner calls them, ``validate`` reports with them.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from json.encoder import encode_basestring as _encode_string  # json.dumps's, ensure_ascii=False
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from mio_eval.errors import ConfigError
from mio_eval.types import Sample, Text

__all__ = ["LIMIT_MODES", "STRATA_KEYS", "select", "sample_digest", "sample_set_digest", "file_digest",
           "media_paths", "outside_roots", "loader_roots", "REFERENCE_KEYS"]

LIMIT_MODES = ("first", "random", "stratified")
# Metadata keys a stratified subset balances over, the first present wins (MMLU's subject,
# SEED-Bench's dimension, MME-Unify's subtask, OmniBench's task type, VQA's question type...).
STRATA_KEYS = ("subject", "dimension", "subtask", "task_type", "category", "question_type", "answer_type",
               "speaker")
# Metadata keys that name a file scoring reads (ground-truth image, reference recording...).
REFERENCE_KEYS = ("image", "reference_image", "reference_audio", "reference_video", "prompt_audio")


def _stratum_key(samples: Sequence[Sample], key: str | None) -> str | None:
    if key:
        if not any(key in s.metadata for s in samples):
            raise ConfigError(f"runner.stratify_by={key!r}: no sample has that metadata key")
        return key
    for candidate in STRATA_KEYS:
        if any(candidate in s.metadata for s in samples):
            return candidate
    return None


def select(samples: Sequence[Sample], *, limit: int | None, mode: str = "first", seed: int = 0,
           stratify_by: str | None = None) -> tuple[list[Sample], str | None]:
    """The evaluated subset, in dataset order, and the stratum key used (``stratified`` only).

    ``first``: the first ``limit`` samples. ``random``: a seeded uniform sample. ``stratified``:
    seeded, as equal as possible across strata (round robin over strata in sorted order, each
    stratum shuffled with the seed), so ``limit=100`` on MMLU covers the subjects instead of
    abstract algebra alone; without a stratum key it is ``random``.
    """
    if mode not in LIMIT_MODES:
        raise ConfigError(f"runner.limit_mode must be one of {', '.join(LIMIT_MODES)}, got {mode!r}")
    if limit is None or limit >= len(samples):
        return list(samples), None
    if mode == "first":
        return list(samples[:limit]), None
    rng = random.Random(seed)
    key = _stratum_key(samples, stratify_by) if mode == "stratified" else None
    if key is None:
        chosen = set(rng.sample(range(len(samples)), limit))
    else:
        strata: dict[str, list[int]] = {}
        for index, sample in enumerate(samples):
            strata.setdefault(str(sample.metadata.get(key)), []).append(index)
        queues = []
        for name in sorted(strata):
            members = strata[name][:]
            rng.shuffle(members)
            queues.append(members)
        chosen, depth = set(), 0
        while len(chosen) < limit:
            for queue in queues:
                if depth < len(queue) and len(chosen) < limit:
                    chosen.add(queue[depth])
            depth += 1
    return [s for i, s in enumerate(samples) if i in chosen], key


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes (memoised per path, size and mtime); ``missing`` if unreadable."""
    try:
        stat = os.stat(path)
    except OSError:
        return "missing"
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    digest = _DIGESTS.get(key)
    if digest is None:
        h = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        except OSError:
            return "unreadable"
        digest = _DIGESTS[key] = h.hexdigest()
    return digest


def sample_digest(sample: Sample) -> str:
    """What the model is shown, by content: text parts, media file digests (not their paths),
    choices. Moving a data set keeps it; editing a question or replacing an image changes it."""
    parts = []
    for part in sample.parts:
        if isinstance(part, Text):
            parts.append(["text", part.text])
        else:
            parts.append([part.modality.value, file_digest(part.path)])
    if all(type(x) is str for pair in parts for x in pair) and all(type(c) is str for c in sample.choices):
        # The bytes json.dumps(..., ensure_ascii=False, sort_keys=True) writes (its own string
        # encoder, its separators), built directly: 3x faster, and a resume digests every sample.
        quote = _encode_string
        blob = ('{"choices": [' + ", ".join(map(quote, sample.choices)) + '], "parts": ['
                + ", ".join(f"[{quote(kind)}, {quote(value)}]" for kind, value in parts) + "]}")
    else:
        blob = json.dumps({"parts": parts, "choices": list(sample.choices)}, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def sample_set_digest(ids: Iterable[str]) -> str:
    """Identity of the evaluated sample set (ids, order-free): runs compare only on equal sets."""
    return hashlib.sha256("\n".join(sorted(ids)).encode("utf-8")).hexdigest()[:16]


def media_paths(sample: Sample) -> list[str]:
    """Every file a sample makes the harness read: input media and scoring references."""
    paths = [p.path for p in sample.parts if getattr(p, "path", None)]
    # A metadata value is a file reference only when it is a path (a bare name such as VizWiz's
    # submission key "VizWiz_val_00000000.jpg" is an identifier, not a file to read).
    paths += [str(sample.metadata[k]) for k in REFERENCE_KEYS
              if isinstance(sample.metadata.get(k), str) and os.sep in sample.metadata[k]]
    return list(dict.fromkeys(paths))


def _lexical(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.normpath(os.path.abspath(path)))


def outside_roots(paths: Sequence[str], roots: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The paths that are not inside any root, compared lexically (``..`` collapsed, links not
    followed: a data set laid out with symlinks stays usable; ``../../etc/passwd`` does not)."""
    bases = [_lexical(r) for r in roots if r]
    return [p for p in paths if not any(_lexical(p).is_relative_to(b) for b in bases)]


def loader_roots(loader_config: Mapping[str, Any] | None) -> list[str]:
    """Directories a loader config names (``root``, ``annotations``' folder, ``image_dir``...):
    every path-like string value, a file's parent directory standing for the file."""
    roots: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        elif isinstance(value, str) and ("/" in value or os.path.exists(value)) and not value.startswith("_"):
            path = Path(value)
            roots.append(str(path if path.is_dir() or not path.suffix else path.parent))

    walk({k: v for k, v in (loader_config or {}).items() if k != "_target_"})
    return roots

