"""MSVD-QA and MSRVTT-QA (Xu et al. 2017) as released, as LAVIS stores them, or as local HF copies;
video frames extracted once per video with PyAV and cached as PNG.

Released files (xudejing/video-question-answering): ``{train,val,test}_qa.json`` = a list of
``{"answer", "id", "question", "video_id"}`` (MSRVTT-QA adds ``"category_id"``).

* MSVD: ``video_id`` N is the clip named on the ``youtube_mapping.txt`` line ``<youtube clip>
  vid<N>``; the clip is ``<video_dir>/<youtube clip>.avi`` (the YouTubeClips release; ``.mp4``,
  ``.webm``, ``.mkv`` are tried too).
* MSRVTT: ``video_id`` N is ``<video_dir>/video<N>.mp4``.
* LAVIS annotation files (``{"question", "answer", "video", "question_id"}``) are read by the same
  loader: ``video`` is the file name under ``video_dir``.

HF form (a local parquet / ``save_to_disk`` copy): columns ``question``, ``answer``, a video column
(a file name under ``video_dir``, a path, or an undecoded ``{"bytes", "path"}`` cell, written once
to the cache), an id column; the names are configurable.

Frames (``frames``): ``uniform`` = ``num_frames`` frames at ``linspace(0, n - 1, num_frames)``
rounded (:func:`mio_eval.media.video_frames`); ``mio_stride`` = every ``max(1, n // 10)``-th frame
(MIO ``utils.extract_frames(force_uniform=True)``: ~10 frames, sometimes 11); ``keyframes`` = MIO
Instruct's frames: PySceneDetect's ``ContentDetector`` (PyAV backend; ``scene_threshold`` null =
its default 27, ``scene_min_len`` 15 frames), the middle frame of each scene, MIO's stride when no
cut is found, at most ``num_frames`` (:mod:`mio_eval.keyframes`); ``keyframes_approx`` = the
labelled fallback (frame 0 plus each frame whose mean absolute grey difference to the previous one
exceeds ``scene_threshold``, default 20; not PySceneDetect). Frames are decoded streaming, only the
kept ones converted. ``video`` passes the clip itself to the model (its own frame reader decides).
Frames are cached per video under ``<cache_dir>/video_frames/<key>/`` (key = resolved path, size,
mtime and the frame settings), in order, so every question on a clip shares them and a stale
frame can never leak in (MIO ``utils.py`` pitfall). A clip that cannot be decoded stays a
``Video`` part with ``metadata["frames_error"]``, so the model's reader reports it as that
sample's error.

Samples: ``parts`` = the frames (or the video), ``targets`` = (answer,), ``metadata`` = question,
question type (first word: what / who / how / when / where, else ``other``), video id and name,
``category_id`` when present, the frame indices used.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from mio_eval.atomic import atomic_path
from mio_eval.errors import ConfigError, MediaError
from mio_eval.jsonl import read_lines
from mio_eval.keyframes import frame_indices, frames_at, scene_keyframes
from mio_eval.tasks.loaders._data import data_not_found
from mio_eval.tasks.loaders._images import check_size, read_json
from mio_eval.tasks.loaders.hf import materialize, read_hf_table
from mio_eval.types import Image, Part, Sample, Video

__all__ = ["VideoQALoader", "FRAME_MODES", "VIDEO_QA_SIZES", "QUESTION_TYPES", "question_type", "scene_keyframes",
           "read_youtube_mapping", "extract_video_frames"]

logger = logging.getLogger(__name__)

FRAME_MODES = ("uniform", "mio_stride", "keyframes", "keyframes_approx", "video")
QUESTION_TYPES = ("what", "who", "how", "when", "where")
# Questions per test split as commonly reported (UNVERIFIED against the release here).
VIDEO_QA_SIZES = {"msvd": {"test": 13157}, "msrvtt": {"test": 72821}}
VIDEO_SUFFIXES = (".avi", ".mp4", ".webm", ".mkv", ".mov")
_CACHE_VERSION = 2   # 2: keyframes by PySceneDetect


def question_type(question: str) -> str:
    """``"what is the man doing?"`` -> ``"what"``; anything else -> ``"other"``."""
    words = question.strip().lower().split()
    return words[0] if words and words[0] in QUESTION_TYPES else "other"


def read_youtube_mapping(path: str | Path) -> dict[int, str]:
    """MSVD ``youtube_mapping.txt``: ``-4wsuPCjDBc_5_15 vid1`` -> ``{1: "-4wsuPCjDBc_5_15"}``."""
    path = Path(path)
    if not path.is_file():
        raise data_not_found("MSVD youtube_mapping.txt", path, key="mapping")
    mapping: dict[int, str] = {}
    for n, line in read_lines(path, what="MSVD youtube_mapping.txt"):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].startswith("vid") or not fields[1][3:].isdigit():
            raise ConfigError(f"{path}:{n}: expected '<youtube clip> vid<N>', got {line!r}")
        mapping[int(fields[1][3:])] = fields[0]
    return mapping


def extract_video_frames(path: str | Path, *, mode: str, num_frames: int, scene_threshold: float | None,
                         cache_dir: str | Path, scene_min_len: int | None = None) -> tuple[list[Path], list[int]]:
    """The cached frame files of one clip (extracted on first use) and their frame indices."""

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"video not found: {path}")
    stat = path.stat()
    key = hashlib.sha1(json.dumps([_CACHE_VERSION, str(path.resolve()), stat.st_size, stat.st_mtime_ns, mode,
                                   num_frames, scene_threshold, scene_min_len]).encode()).hexdigest()[:16]
    folder = Path(cache_dir) / "video_frames" / key
    index_file = folder / "frames.json"
    if index_file.is_file():
        indices = json.loads(index_file.read_text())["indices"]
        files = [folder / f"frame_{k:03d}.png" for k in range(len(indices))]
        if all(f.is_file() for f in files):
            return files, indices
    # Streaming: a first pass finds the indices (scene detection or a frame count), a second
    # decodes and converts only the kept frames. MediaError when undecodable or empty.
    indices = frame_indices(path, mode=mode, n=num_frames, threshold=scene_threshold, min_scene_len=scene_min_len)
    frames = frames_at(path, indices)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for k, frame in enumerate(frames):
        target = folder / f"frame_{k:03d}.png"
        with atomic_path(target) as tmp:
            frame.save(tmp, format="PNG")
        files.append(target)
    with atomic_path(index_file) as tmp:
        tmp.write_text(json.dumps({"video": str(path), "mode": mode, "indices": indices,
                                   "detector": {"keyframes": "pyscenedetect.ContentDetector",
                                                "keyframes_approx": "grey-difference approximation"}.get(mode)}))
    return files, indices


class VideoQALoader:
    """One sample per question of an MSVD-QA / MSRVTT-QA split (see module doc)."""

    def __init__(self, *, annotations: str, video_dir: str, dataset: str, split: str = "test",
                 mapping: str | None = None, frames: str = "uniform", num_frames: int = 10,
                 scene_threshold: float | None = None, scene_min_len: int | None = None,
                 cache_dir: str | None = None, max_samples: int | None = None,
                 question_column: str = "question", answer_column: str = "answer", video_column: str = "video",
                 id_column: str | None = None) -> None:
        if dataset not in ("msvd", "msrvtt"):
            raise ConfigError(f"video QA dataset must be msvd or msrvtt, got {dataset!r}")
        if frames not in FRAME_MODES:
            raise ConfigError(f"frames must be one of {', '.join(FRAME_MODES)}, got {frames!r}")
        if frames != "video" and not cache_dir:
            raise ConfigError("extracting frames needs the loader's cache_dir")
        self.annotations = Path(annotations)
        self.video_dir = Path(video_dir)
        self.dataset = dataset
        self.split = split
        self.mapping = Path(mapping) if mapping else None
        self.frames = frames
        self.num_frames = int(num_frames)
        self.scene_threshold = None if scene_threshold is None else float(scene_threshold)
        self.scene_min_len = None if scene_min_len is None else int(scene_min_len)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.max_samples = max_samples
        self.columns = {"question": question_column, "answer": answer_column, "video": video_column,
                        "id": id_column}

    @property
    def expected_size(self) -> int | None:
        return VIDEO_QA_SIZES[self.dataset].get(self.split)

    def _find(self, stem: str) -> Path:
        for suffix in VIDEO_SUFFIXES:
            candidate = self.video_dir / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
        return self.video_dir / f"{stem}{'.avi' if self.dataset == 'msvd' else '.mp4'}"

    def _rows(self) -> list[dict[str, Any]]:
        """Rows as ``{"question", "answer", "video" (path), "video_id", "qid", "category_id"?}``."""
        if self.annotations.suffix == ".json":
            data = read_json(self.annotations, f"{self.dataset} QA file")
            if not isinstance(data, list):
                raise ConfigError(f"{self.annotations}: expected a list of questions")
            mapping = None
            rows = []
            for n, item in enumerate(data):
                if "video_id" in item:  # the original release
                    vid = item["video_id"]
                    if self.dataset == "msvd":
                        if mapping is None:
                            mapping = read_youtube_mapping(self.mapping
                                                           or self.annotations.parent / "youtube_mapping.txt")
                        if int(vid) not in mapping:
                            raise ConfigError(f"{self.annotations} question #{n}: video_id {vid} not in "
                                              "youtube_mapping.txt")
                        name = mapping[int(vid)]
                    else:
                        name = f"video{int(vid)}"
                    video = self._find(name)
                    qid = item.get("id", n)
                elif "video" in item:  # LAVIS
                    name = Path(str(item["video"])).stem
                    video = self.video_dir / str(item["video"])
                    vid, qid = name, item.get("question_id", n)
                else:
                    raise ConfigError(f"{self.annotations} question #{n}: neither 'video_id' nor 'video'")
                answer = item["answer"][0] if isinstance(item.get("answer"), list) else item.get("answer")
                rows.append({"question": str(item["question"]), "answer": str(answer), "video": video,
                             "video_id": vid, "video_name": name, "qid": qid, "category_id": item.get("category_id")})
            return rows
        cols = self.columns
        wanted = [c for c in (cols["question"], cols["answer"], cols["video"], cols["id"]) if c]
        if not self.annotations.exists():
            raise data_not_found(f"{self.dataset} QA data", self.annotations, key="annotations")
        table = read_hf_table(self.annotations, self.split, columns=wanted, undecoded=[cols["video"]])
        base = self.annotations if self.annotations.is_dir() else self.annotations.parent
        cache = (self.cache_dir or base) / "videos"
        rows = []
        for n, row in enumerate(table):
            cell = row[cols["video"]]
            if isinstance(cell, str) and not Path(cell).is_absolute():
                video = self.video_dir / cell
            else:
                video = materialize(cell, base=base, cache_dir=cache, what="video")
            answer = row[cols["answer"]]
            answer = answer[0] if isinstance(answer, list) else answer
            rows.append({"question": str(row[cols["question"]]), "answer": str(answer), "video": Path(video),
                         "video_id": Path(video).stem, "video_name": Path(video).stem,
                         "qid": row[cols["id"]] if cols["id"] else n, "category_id": row.get("category_id")})
        return rows

    def _parts(self, video: Path, memo: dict[Path, Any]) -> tuple[tuple[Part, ...], dict[str, Any]]:
        if self.frames == "video":
            return (Video(str(video)),), {"frames": "video"}
        if video not in memo:
            try:
                files, indices = extract_video_frames(video, mode=self.frames, num_frames=self.num_frames,
                                                      scene_threshold=self.scene_threshold, cache_dir=self.cache_dir,
                                                      scene_min_len=self.scene_min_len)
                memo[video] = ((tuple(Image(str(f)) for f in files)), {"frame_indices": indices})
            except MediaError as exc:
                logger.warning("video QA: %s", exc)
                memo[video] = ((Video(str(video)),), {"frames_error": str(exc)})
        return memo[video]

    def __call__(self) -> list[Sample]:
        rows = self._rows()
        if not rows:
            raise ConfigError(f"no questions in {self.annotations}")
        if self.max_samples is not None:
            rows = rows[: self.max_samples]
        memo: dict[Path, Any] = {}
        samples = []
        seen: dict[str, int] = {}
        for row in rows:
            sid = str(row["qid"])
            if sid in seen:  # ids repeat in some copies: keep every question, make the id unique
                seen[sid] += 1
                sid = f"{sid}-{seen[sid]}"
            else:
                seen[sid] = 0
            parts, frame_meta = self._parts(Path(row["video"]), memo)
            meta = {"question": row["question"], "question_type": question_type(row["question"]),
                    "video_id": row["video_id"], "video_name": row["video_name"], "dataset": self.dataset,
                    **frame_meta}
            if row.get("category_id") is not None:
                meta["category_id"] = row["category_id"]
            samples.append(Sample(id=sid, parts=parts, targets=(row["answer"],), metadata=meta))
        check_size(len(samples), self.expected_size, f"{self.dataset}-QA {self.split}",
                   limited=self.max_samples is not None)
        return samples
