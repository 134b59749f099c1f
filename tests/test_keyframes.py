"""Keyframes as MIO takes them: PySceneDetect's ContentDetector (PyAV backend), the middle frame of
each scene, MIO's stride when no cut is found; the grey-difference approximation as a labelled
fallback; both decoded streaming."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image as PILImage

from mio_eval.errors import MediaError
from mio_eval.keyframes import approx_keyframes, approx_keyframes_of, frames_at, pyscenedetect_keyframes, thin
from mio_eval.keyframes import select_video_frames
from mio_eval.tasks.loaders.video_qa import VideoQALoader, extract_video_frames
from helpers import grey_frames, write_video

LEVELS = (0, 120, 240)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    return {
        # three scenes of 16 frames: ContentDetector (min_scene_len 15) cuts at 16 and 32
        "three": write_video(root / "three.mp4", grey_frames([g for g in LEVELS for _ in range(16)]), container_format="mp4"),
        # scenes of 6 frames: shorter than min_scene_len, so no cut -> MIO's stride fallback
        "short": write_video(root / "short.mp4", grey_frames([g for g in LEVELS for _ in range(6)]), container_format="mp4"),
        "broken": (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really") and root / "broken.mp4",
    }


def test_pyscenedetect_middle_frames_and_stride_fallback(clips):
    assert pyscenedetect_keyframes(clips["three"]) == [8, 24, 40]      # (0+16)//2, 16+(32-16)//2, 32+(48-32)//2
    assert pyscenedetect_keyframes(clips["three"], max_frames=2) == [8, 40]
    assert pyscenedetect_keyframes(clips["short"]) == list(range(18))   # 18 frames, every max(1, 18 // 10)-th
    assert pyscenedetect_keyframes(clips["short"], min_scene_len=2) == [3, 9, 15]
    # A higher threshold than the cuts' content score (|Δluma| / 3 ~ 40) finds no cut either.
    assert pyscenedetect_keyframes(clips["three"], threshold=60) == list(range(0, 48, 4))
    with pytest.raises(MediaError, match="cannot decode video broken.mp4"):
        pyscenedetect_keyframes(clips["broken"])
    with pytest.raises(MediaError, match="video not found"):
        pyscenedetect_keyframes(clips["three"].parent / "missing.mp4")


def test_frames_are_decoded_streaming(clips, monkeypatch):
    import mio_eval.media as media

    monkeypatch.setattr(media, "read_video_frames", lambda *a, **k: pytest.fail("decoded every frame into memory"))
    frames = select_video_frames(clips["three"], mode="keyframes", n=10)
    assert [round(f.getpixel((0, 0))[0] / 120) for f in frames] == [0, 1, 2]
    assert len(select_video_frames(clips["three"], mode="keyframes_approx", n=10)) == 3
    assert len(select_video_frames(clips["three"], mode="mio_stride", n=10)) == 12
    assert [f.getpixel((0, 0))[0] for f in frames_at(clips["three"], [40, 8, 8])][1:] == [frames[0].getpixel((0, 0))[0]] * 2
    with pytest.raises(MediaError, match="has no frame"):
        frames_at(clips["three"], [48])


def test_approximation_is_the_labelled_fallback(clips):
    frames = [np.asarray(f) for f in grey_frames([g for g in LEVELS for _ in range(6)])]
    assert approx_keyframes(frames) == approx_keyframes(iter(frames)) == [0, 6, 12]
    assert approx_keyframes_of(clips["short"]) == [0, 6, 12] != pyscenedetect_keyframes(clips["short"])
    assert thin(list(range(30)), 5) == [0, 7, 14, 22, 29] and thin([1, 2], None) == [1, 2]


def test_video_qa_loader_uses_pyscenedetect(clips, tmp_path):
    ann = tmp_path / "test_qa.json"
    ann.write_text(json.dumps([{"question": "what is shown?", "answer": "grey", "video": "three.mp4", "question_id": 1}]))
    samples = VideoQALoader(annotations=str(ann), video_dir=str(clips["three"].parent), dataset="msrvtt",
                            frames="keyframes", num_frames=10, cache_dir=str(tmp_path / "cache"))()
    assert samples[0].metadata["frame_indices"] == [8, 24, 40] and len(samples[0].parts) == 3
    assert abs(int(np.asarray(PILImage.open(samples[0].parts[1].path)).mean()) - 120) <= 3
    files, indices = extract_video_frames(clips["three"], mode="keyframes", num_frames=10, scene_threshold=None,
                                          cache_dir=tmp_path / "cache")
    index = json.loads((files[0].parent / "frames.json").read_text())
    assert indices == [8, 24, 40] and index["detector"] == "pyscenedetect.ContentDetector"
