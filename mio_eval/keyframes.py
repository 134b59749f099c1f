"""Video keyframes as MIO takes them, decoded streaming (never every frame in memory).

MIO's ``utils.extract_frames(video_path, output_dir, force_uniform=False)`` (MIO-7B repository,
``utils.py``; scenedetect 0.6.4 pinned in its ``requirements.txt``) runs PySceneDetect's
``ContentDetector`` with its defaults (threshold 27.0, ``min_scene_len`` 15 frames) through a
``SceneManager`` and saves one image per scene with ``save_images(num_images=1)``, which takes the
*middle* frame of each scene (``a[len(a) // 2]`` over the scene's frame range). When no scene cut
is found (an empty scene list) it keeps every ``max(1, total // 10)``-th frame instead.

* :func:`pyscenedetect_keyframes` does that with ``scenedetect`` (0.7 API: ``open_video`` with the
  PyAV backend, ``SceneManager``, ``ContentDetector``), frame indices only; the frames are then
  decoded in one streaming pass by :func:`frames_at`.
* :func:`approx_keyframes` is the labelled fallback (``keyframes_approx``): frame 0 plus each frame
  whose mean absolute grey difference to the previous one exceeds ``threshold`` (default 20), at
  most ``max_frames`` scenes; streaming too (one previous grey frame kept). It is not PySceneDetect
  (no HSV, no minimum scene length) and is named so in every result that uses it.

Two differences from MIO, both deliberate: MIO returns ``os.listdir(output_dir)`` (unsorted, plus
stale files); we return frames in time order. MIO keeps every scene; ``max_frames`` (when given)
keeps that many, evenly chosen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from mio_eval.errors import MediaError
from mio_eval.media import stride_indices, uniform_indices, video_frames

__all__ = ["CONTENT_DETECTOR_DEFAULTS", "pyscenedetect_keyframes", "approx_keyframes", "frames_at", "iter_frames",
           "stride_indices", "thin", "scene_changes", "scene_keyframes", "VIDEO_FRAME_MODES", "frame_indices",
           "select_video_frames"]

# PySceneDetect ContentDetector defaults, as MIO calls it (``ContentDetector()``).
CONTENT_DETECTOR_DEFAULTS = {"threshold": 27.0, "min_scene_len": 15}


def thin(indices: Sequence[int], max_frames: int | None) -> list[int]:
    """At most ``max_frames`` of ``indices``, evenly chosen (first and last kept)."""
    indices = list(indices)
    if max_frames is None or len(indices) <= max_frames:
        return indices
    return [indices[i] for i in uniform_indices(len(indices), max_frames)]


def _open(path: Path):
    import av

    if not path.is_file():
        raise MediaError(f"video not found: {path}")
    try:
        container = av.open(str(path))
        if not container.streams.video:
            container.close()
            raise MediaError(f"cannot decode video {path.name}: no video stream")
        return container
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001 - av.error.* and friends
        raise MediaError(f"cannot decode video {path}: {' '.join(str(exc).split())}") from None


def iter_frames(path: str | Path) -> Iterator[tuple[int, object]]:
    """``(index, av.VideoFrame)`` of every decoded frame, one at a time (PyAV)."""
    path = Path(path)
    container = _open(path)
    try:
        yield from enumerate(container.decode(video=0))
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise MediaError(f"cannot decode video {path}: {' '.join(str(exc).split())}") from None
    finally:
        container.close()


def frames_at(path: str | Path, indices: Sequence[int]) -> list:
    """RGB PIL frames at ``indices`` (in the order given, repeats allowed), one decoding pass that
    converts only the wanted frames; MediaError when one of them is not in the file."""
    wanted = set(indices)
    kept = {}
    for index, frame in iter_frames(path):
        if index in wanted:
            kept[index] = frame.to_image().convert("RGB")
            if len(kept) == len(wanted):
                break
    missing = sorted(wanted - set(kept))
    if missing:
        raise MediaError(f"video {Path(path).name} has no frame(s) {missing[:5]}")
    return [kept[i] for i in indices]


def pyscenedetect_keyframes(path: str | Path, *, threshold: float | None = None, min_scene_len: int | None = None,
                            max_frames: int | None = None) -> list[int]:
    """Frame indices MIO's ``extract_frames`` keeps: the middle frame of each scene PySceneDetect's
    ``ContentDetector`` finds (PyAV backend), MIO's stride fallback when it finds no cut."""
    try:
        from scenedetect import SceneManager, open_video
        from scenedetect.detectors import ContentDetector
    except ImportError as exc:
        raise MediaError(f"keyframes need PySceneDetect ({exc}); pip install 'scenedetect[pyav]', or use "
                         f"keyframes_approx (the labelled approximation)") from None
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"video not found: {path}")
    threshold = CONTENT_DETECTOR_DEFAULTS["threshold"] if threshold is None else float(threshold)
    min_scene_len = CONTENT_DETECTOR_DEFAULTS["min_scene_len"] if min_scene_len is None else int(min_scene_len)
    try:
        video = open_video(str(path), backend="pyav")
        manager = SceneManager()
        manager.add_detector(ContentDetector(threshold=threshold, min_scene_len=min_scene_len))
        manager.detect_scenes(video, show_progress=False)
        scenes = manager.get_scene_list()
        total = int(video.frame_number)
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001 - scenedetect / av raise many types on a bad file
        raise MediaError(f"cannot decode video {path.name}: {' '.join(str(exc).split())}") from None
    if total <= 0:
        raise MediaError(f"video has no frames: {path}")
    if not scenes:
        return stride_indices(total)
    middles = []
    for start, end in scenes:
        # [first, last): save_images' range; ``frame_num`` in scenedetect 0.7 (``get_frames()`` before)
        first, last = (int(getattr(t, "frame_num", None) if hasattr(t, "frame_num") else t.get_frames())
                       for t in (start, end))
        middles.append(first + (last - first) // 2)
    return thin(middles, max_frames)


def _grey(frame: np.ndarray) -> np.ndarray:
    # OpenCV's BGR2GRAY weights, rounded to integers
    return np.rint(np.asarray(frame, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])).astype(np.int16)


def scene_changes(frames, *, threshold: float) -> tuple[list[int], int]:
    """``(scene starts, frame count)``: frame 0 plus each frame whose mean absolute grey difference
    to the previous frame exceeds ``threshold``. Shared by the approximation below and MME-Unify's
    ``extract_keyframes`` (``mio_eval.metrics.image_quality.keyframe_indices``)."""
    keys, prev, count = [], None, 0
    for i, frame in enumerate(frames):
        grey = _grey(frame)
        if prev is None or float(np.mean(np.abs(grey - prev))) > threshold:
            keys.append(i)
        prev, count = grey, i + 1
    return keys, count


def approx_keyframes(frames, *, threshold: float | None = None, max_frames: int | None = 10) -> list[int]:
    """The labelled approximation: frame 0 plus each frame whose mean absolute grey difference to
    the previous frame exceeds ``threshold`` (default 20); one scene only -> MIO's stride fallback.
    ``frames`` is any iterable of RGB arrays / PIL images (a generator keeps memory flat)."""
    keys, count = scene_changes(frames, threshold=20.0 if threshold is None else float(threshold))
    if count == 0:
        raise MediaError("video has no frames")
    if len(keys) <= 1:
        return stride_indices(count)
    return thin(keys, max_frames)


def approx_keyframes_of(path: str | Path, *, threshold: float | None = None, max_frames: int | None = 10) -> list[int]:
    """:func:`approx_keyframes` over a video file, decoded streaming."""
    return approx_keyframes((frame.to_ndarray(format="rgb24") for _, frame in iter_frames(path)),
                            threshold=threshold, max_frames=max_frames)


# The labelled approximation of PySceneDetect under the name the video-QA loader uses.
scene_keyframes = approx_keyframes

VIDEO_FRAME_MODES = ("uniform", "keyframes", "keyframes_approx", "mio_stride")


def frame_indices(path, *, mode: str, n: int, threshold: float | None = None,
                  min_scene_len: int | None = None) -> list[int]:
    """The frame indices a mode keeps, in time order: ``uniform`` (``n`` evenly spaced over the
    decoded frame count), ``keyframes`` (PySceneDetect, at most ``n``), ``keyframes_approx`` (the
    labelled approximation, at most ``n``) or ``mio_stride`` (every ``total // 10``-th frame)."""
    if mode not in VIDEO_FRAME_MODES:
        raise MediaError(f"unknown video frame mode {mode!r}; choose from {', '.join(VIDEO_FRAME_MODES)}")
    if mode == "keyframes":
        return pyscenedetect_keyframes(path, threshold=threshold, min_scene_len=min_scene_len, max_frames=n)
    if mode == "keyframes_approx":
        return approx_keyframes_of(path, threshold=threshold, max_frames=n)
    total = sum(1 for _ in iter_frames(path))
    if total == 0:
        raise MediaError(f"video has no frames: {path}")
    return uniform_indices(total, n) if mode == "uniform" else stride_indices(total)


def select_video_frames(path, *, mode: str, n: int, threshold: float | None = None) -> list:
    """A video's frames as PIL images, in time order, decoded streaming (see ``frame_indices``;
    ``uniform`` reads the frame count from the header when the container has it: MIO Instruct's
    keyframes, its Base captioning stride, or ``n`` evenly spaced frames)."""
    if mode == "uniform":
        return video_frames(path, n)
    return frames_at(path, frame_indices(path, mode=mode, n=n, threshold=threshold))
