"""SEED-Bench (v1) multiple choice: ``SEED-Bench.json`` with its media, or lmms-eval's HF copy.

``SEED-Bench.json`` (AILab-CVC/SEED-Bench ``DATASET.md``, "SEED-Bench-1"): ``{"questions": [{
"answer": "A".."D", "choice_a".."choice_d", "data_id", "data_type": "image"|"video", "question",
"question_id", "question_type_id", "segment"?}], "question_type": {name: id}}``.

* Dimensions 1-9 (images, CC3M): ``<image_dir>/<data_id>`` (the official ``eval.py`` joins the
  two; a ``data_id`` without extension is also tried with ``.jpg``/``.png``...).
* Dimensions 10-12 (video) are read as frames, one of two ways:

  - ``frames_dir``: pre-extracted frames, either a folder per question
    (``<frames_dir>/<question_id>/*.png|jpg``, sorted by name with numbers compared as numbers) or
    files ``<frames_dir>/<question_id>_<k>.png|jpg`` (e.g. the 8 frames per question of the
    official ``v1_video.zip``, or LLaVA's single middle frame ``<question_id>.png``);
  - ``video_dirs``: the source videos, ``{10: <Something-Something v2 dir>, 11: <EPIC-KITCHENS dir>,
    12: <Breakfast dir>}`` joined with ``data_id`` as ``eval.py`` does. ``num_frames`` frames are
    sampled uniformly (``linspace(0, n-1, num_frames)`` rounded) over the question's ``segment``
    (dimension 11: seconds; dimension 12: frame numbers at 15 fps) or the whole clip (dimension
    10), decoded with PyAV and cached as PNG under ``cache_dir``. A video that cannot be decoded
    stays a ``Video`` part, so the model's reader reports it as that sample's error.

HF form (``lmms-lab/SEED-Bench``, split ``test``): the same fields, ``image`` a list of images (one
for image questions, the frames for video questions).

Samples: parts = the image(s), ``choices`` = the four option texts, ``targets`` = the answer
letter, ``metadata`` = ``question``, ``question_type_id``, ``dimension`` (its name), ``data_type``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.errors import ConfigError, MediaError
from mio_eval.media import uniform_indices
from mio_eval.tasks.loaders._data import data_not_found, entry_field, entry_id, malformed_entry
from mio_eval.tasks.loaders._images import (IMAGE_SUFFIXES, check_files, check_size, hf_cache_dir,
                                            materialize_image, read_json)
from mio_eval.tasks.loaders.hf import read_hf_table
from mio_eval.types import Image, Part, Sample, Video

__all__ = ["SEEDBenchLoader", "HFSEEDBenchLoader", "SEED_DIMENSIONS", "SEED_SIZES", "extract_frames"]

SEED_DIMENSIONS = {
    1: "Scene Understanding", 2: "Instance Identity", 3: "Instance Attributes", 4: "Instance Location",
    5: "Instances Counting", 6: "Spatial Relation", 7: "Instance Interaction", 8: "Visual Reasoning",
    9: "Text Understanding", 10: "Action Recognition", 11: "Action Prediction", 12: "Procedure Understanding",
}
# Questions per part of SEED-Bench.json (= the lmms-lab copy's 17,990 rows): UNVERIFIED against a
# download here, recorded so a partial copy is noticed.
SEED_SIZES = {"image": 14233, "video": 3757, "all": 17990}
BREAKFAST_FPS = 15  # DATASET.md: dimension-12 segments are frame numbers of the 15 fps videos
_LETTERS = ("A", "B", "C", "D")
_NUM = re.compile(r"(\d+)")


def _dimension_ids(dimensions: str | int | Sequence[int]) -> tuple[int, ...]:
    named = {"image": tuple(range(1, 10)), "video": (10, 11, 12), "all": tuple(range(1, 13))}
    if isinstance(dimensions, str):
        if dimensions not in named:
            raise ConfigError(f"SEED-Bench dimensions must be image, video, all or a list of ids, got {dimensions!r}")
        return named[dimensions]
    ids = (dimensions,) if isinstance(dimensions, int) else tuple(int(d) for d in dimensions)
    bad = [d for d in ids if d not in SEED_DIMENSIONS]
    if bad:
        raise ConfigError(f"SEED-Bench dimension ids are 1-12, got {bad}")
    return ids


def _natural(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in _NUM.split(path.name)]


def extract_frames(path: str | Path, n: int, *, start_s: float | None = None, end_s: float | None = None) -> list:
    """``n`` RGB PIL frames sampled uniformly over ``[start_s, end_s]`` of a video (the whole clip
    when both are None): ``linspace(0, k - 1, n)`` rounded over the k frames in range. Two decoding
    passes (count, then convert the chosen ones) keep memory flat on long videos. MediaError when
    the file cannot be decoded or the range holds no frame."""
    import av

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"video file not found: {path}")

    def frames_in_range():
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"no video stream in {path.name}")
            stream = container.streams.video[0]
            if start_s and stream.time_base:
                container.seek(int(start_s / float(stream.time_base)), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                t = frame.time
                if start_s is not None and t is not None and t < start_s:
                    continue
                if end_s is not None and t is not None and t > end_s:
                    break
                yield frame

    try:
        total = sum(1 for _ in frames_in_range())
        if total == 0:
            raise MediaError(f"no frames in {path.name} between {start_s} s and {end_s} s")
        wanted = uniform_indices(total, n)
        kept = {}
        for index, frame in enumerate(frames_in_range()):
            if index in wanted:
                kept[index] = frame.to_image().convert("RGB")
            if index >= wanted[-1]:
                break
        return [kept[i] for i in wanted]
    except MediaError:
        raise
    except Exception as exc:  # av.error.*: any decoding failure is this video's problem
        raise MediaError(f"cannot decode video {path.name}: {' '.join(str(exc).split())}") from None


def _sample(q: Mapping[str, Any], parts: Sequence[Part], names: Mapping[int, str], **metadata: Any) -> Sample:
    answer = str(q["answer"]).strip().upper()
    if answer not in _LETTERS:
        raise ConfigError(f"SEED-Bench question_id {q.get('question_id')}: answer {q['answer']!r} is not A-D")
    dim = int(q["question_type_id"])
    return Sample(
        id=str(q["question_id"]), parts=tuple(parts),
        choices=tuple(str(q[f"choice_{c}"]) for c in "abcd"), targets=(answer,),
        metadata={"question": str(q["question"]), "question_type_id": dim, "dimension": names.get(dim, str(dim)),
                  "data_type": q.get("data_type"), "data_id": q.get("data_id"), **metadata},
    )


class SEEDBenchLoader:
    def __init__(self, *, annotations: str, image_dir: str | None = None, dimensions: Any = "image",
                 frames_dir: str | None = None, video_dirs: Mapping[Any, str] | None = None, num_frames: int = 8,
                 cache_dir: str | None = None, require_images: bool = False, max_samples: int | None = None,
                 expected_size: int | None = None) -> None:
        self.annotations = Path(annotations)
        self.image_dir = Path(image_dir) if image_dir else None
        self.dimensions = _dimension_ids(dimensions)
        self.frames_dir = Path(frames_dir) if frames_dir else None
        self.video_dirs = {int(k): Path(v) for k, v in (video_dirs or {}).items() if v}
        self.num_frames = int(num_frames)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.require_images = require_images
        self.max_samples = max_samples
        part = next((k for k, v in {"image": range(1, 10), "video": (10, 11, 12), "all": range(1, 13)}.items()
                     if tuple(v) == self.dimensions), None)
        self.expected_size = expected_size or (SEED_SIZES.get(part) if part else None)

    # -- media --

    def _image(self, data_id: str) -> Path:
        if self.image_dir is None:
            raise ConfigError("SEED-Bench image questions need the loader's image_dir")
        path = self.image_dir / data_id
        if not path.is_file() and not Path(data_id).suffix:
            for suffix in IMAGE_SUFFIXES:
                if (self.image_dir / f"{data_id}{suffix}").is_file():
                    return self.image_dir / f"{data_id}{suffix}"
        return path

    def _pre_extracted(self, qid: str) -> list[Path]:
        folder = self.frames_dir / qid
        if folder.is_dir():
            files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        else:
            files = [p for p in self.frames_dir.glob(f"{qid}_*") if p.suffix.lower() in IMAGE_SUFFIXES]
            files += [self.frames_dir / f"{qid}{s}" for s in IMAGE_SUFFIXES if (self.frames_dir / f"{qid}{s}").is_file()]
        return sorted(files, key=_natural)

    def _segment(self, q: Mapping[str, Any]) -> tuple[float | None, float | None]:
        segment = q.get("segment")
        if not segment:
            return None, None
        start, end = float(segment[0]), float(segment[1])
        if int(q["question_type_id"]) == 12:
            start, end = start / BREAKFAST_FPS, end / BREAKFAST_FPS
        return start, end

    def _video_parts(self, q: Mapping[str, Any]) -> tuple[list[Part], dict]:
        qid, dim = str(q["question_id"]), int(q["question_type_id"])
        if self.frames_dir is not None:
            frames = self._pre_extracted(qid)
            if frames:
                return [Image(str(p)) for p in frames], {"frames": "pre-extracted"}
            if not self.video_dirs:
                # No frames: the model's image reader reports "not found" for this sample.
                return [Image(str(self.frames_dir / qid))], {"frames": "pre-extracted"}
        if dim not in self.video_dirs:
            raise ConfigError(f"SEED-Bench dimension {dim} is video: set the loader's frames_dir or video_dirs.{dim}")
        if self.cache_dir is None:
            raise ConfigError("SEED-Bench video questions read from videos need the loader's cache_dir")
        video = self.video_dirs[dim] / str(q["data_id"])
        start, end = self._segment(q)
        key = hashlib.sha1(f"{video.resolve()}|{start}|{end}|{self.num_frames}".encode()).hexdigest()[:20]
        folder = self.cache_dir / "seed_bench_frames" / key
        paths = [folder / f"{k:02d}.png" for k in range(self.num_frames)]
        info = {"frames": "sampled", "num_frames": self.num_frames, "segment_s": [start, end] if start is not None else None}
        if not all(p.is_file() for p in paths):
            try:
                images = extract_frames(video, self.num_frames, start_s=start, end_s=end)
            except MediaError as exc:
                return [Video(str(video))], {**info, "frame_error": str(exc)}
            folder.mkdir(parents=True, exist_ok=True)
            for image, path in zip(images, paths):
                image.save(path)
        return [Image(str(p)) for p in paths], info

    # -- loading --

    def __call__(self) -> list[Sample]:
        data = read_json(self.annotations, "SEED-Bench questions file", key="annotations")
        questions = data.get("questions") if isinstance(data, dict) else data
        if not isinstance(questions, list):
            raise ConfigError(f"{self.annotations} is not SEED-Bench.json (no 'questions' list)")
        names = dict(SEED_DIMENSIONS)
        if isinstance(data, dict) and isinstance(data.get("question_type"), dict):
            names.update({int(v): str(k) for k, v in data["question_type"].items()})
        wanted = set(self.dimensions)
        chosen = [(n, q) for n, q in enumerate(questions)
                  if entry_id(q, "question_type_id", f"{self.annotations} question #{n}") in wanted]
        if self.max_samples is not None:
            chosen = chosen[: self.max_samples]
        if not chosen:
            raise ConfigError(f"no SEED-Bench questions of dimensions {sorted(wanted)} in {self.annotations}")
        samples = []
        for n, q in chosen:
            where = f"{self.annotations} question #{n}"
            qid = entry_field(q, "question_id", (int, str), where)
            where = f"{where} (question_id {qid})"
            for key in ("question", "data_id", "answer"):
                entry_field(q, key, str, where)
            for key in (f"choice_{c}" for c in "abcd"):  # str(); a count may be stored as a number
                entry_field(q, key, (str, int, float), where)
            with malformed_entry(where):
                if int(q["question_type_id"]) <= 9:
                    parts, extra = [Image(str(self._image(str(q["data_id"]))))], {}
                else:
                    parts, extra = self._video_parts(q)
                samples.append(_sample(q, parts, names, **extra))
        if self.require_images:
            check_files((p.path for s in samples for p in s.parts if isinstance(p, Image)), "SEED-Bench images")
        check_size(len(samples), self.expected_size, "SEED-Bench", limited=self.max_samples is not None)
        return samples


class HFSEEDBenchLoader:
    """lmms-eval's ``lmms-lab/SEED-Bench`` parquet copy; ``image`` holds the image or the frames."""

    def __init__(self, *, path: str, cache_dir: str, split: str = "test", dimensions: Any = "image",
                 max_samples: int | None = None, expected_size: int | None = None) -> None:
        self.path = Path(path)
        self.cache_dir = Path(cache_dir)
        self.split = split
        self.dimensions = _dimension_ids(dimensions)
        self.max_samples = max_samples
        part = next((k for k, v in {"image": range(1, 10), "video": (10, 11, 12), "all": range(1, 13)}.items()
                     if tuple(v) == self.dimensions), None)
        self.expected_size = expected_size or (SEED_SIZES.get(part) if part else None)

    def __call__(self) -> list[Sample]:
        if not self.path.exists():
            raise data_not_found("SEED-Bench HF copy", self.path, key="path")
        rows = read_hf_table(self.path, self.split, undecoded=["image"])
        wanted = set(self.dimensions)
        cache = hf_cache_dir(self.cache_dir, self.path, self.split)
        base = self.path if self.path.is_dir() else self.path.parent
        samples = []
        for row in rows:   # streamed: one row's embedded images in memory at a time
            if int(row.get("question_type_id") or 0) not in wanted:
                continue
            if self.max_samples is not None and len(samples) >= self.max_samples:
                break
            n = len(samples)
            with malformed_entry(f"{self.path} row #{n} (question_id {row.get('question_id')})"):
                cells = row["image"] if isinstance(row["image"], list) else [row["image"]]
                parts = [Image(str(materialize_image(c, base=base, cache_dir=cache))) for c in cells]
                samples.append(_sample(row, parts, SEED_DIMENSIONS))
        if not samples:
            raise ConfigError(f"no SEED-Bench questions of dimensions {sorted(wanted)} in {self.path}")
        check_size(len(samples), self.expected_size, "SEED-Bench (HF)", limited=self.max_samples is not None)
        return samples
