"""The helpers of issue #17 written once: the frame sampler, the image loader, a request's
recording, the task constructor basics and the loaders' text lists."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from PIL import Image as PILImage

from mio_eval import media
from mio_eval.errors import ConfigError, MediaError
from mio_eval.keyframes import scene_changes, thin
from mio_eval.media import CLIP_MEAN, load_image, request_audio, save_audio, uniform_indices
from mio_eval.tasks.base import TaskBase
from mio_eval.tasks.loaders._data import text_list
from mio_eval.types import Audio, Request, Text


def test_media_doctests():
    failed, attempted = doctest.testmod(media, raise_on_error=False)
    assert attempted and failed == 0


def test_uniform_indices_rounds_or_floors_and_repeats_short_clips():
    assert uniform_indices(8, 3) == [0, 4, 7] and uniform_indices(8, 3, rounding="floor") == [0, 3, 7]
    assert uniform_indices(3, 5) == [0, 0, 1, 2, 2]  # fewer frames than wanted: repeats
    assert uniform_indices(100, 1) == [0]
    with pytest.raises(ValueError, match="rounding must be one of nearest, floor"):
        uniform_indices(8, 3, rounding="ceil")
    assert thin([10, 20, 30, 40, 50], 3) == [10, 30, 50] and thin([1, 2], 5) == [1, 2]


def test_mme_unify_keyframes_use_the_floor_sampler():
    from mio_eval.metrics.image_quality import keyframe_indices, uniform_indices as reference_uniform

    flat = [np.zeros((4, 4, 3), np.uint8)] * 20  # one scene: fewer keys than wanted -> uniform, floored, unique
    assert keyframe_indices(flat, num_frames=6) == reference_uniform(20, 6) == [0, 3, 7, 11, 15, 19]
    cuts = [np.full((4, 4, 3), 255 * (i % 2), np.uint8) for i in range(10)]  # every frame a cut
    assert scene_changes(cuts, threshold=20.0) == (list(range(10)), 10)
    assert keyframe_indices(cuts, num_frames=4) == [0, 3, 6, 9]


def test_one_image_loader_for_paths_and_pil_images(tmp_path):
    palette = PILImage.new("P", (5, 3))
    path = tmp_path / "p.png"
    palette.save(path)
    assert load_image(path).mode == "RGB" and load_image(palette).mode == "RGB"
    assert load_image(path, rgb=False).mode == "P"  # CLIP converts only after cropping
    assert load_image(palette, rgb=False) is palette
    deep = PILImage.fromarray(np.full((2, 2), 65535, np.uint16))  # 16-bit grey: scaled, not clipped
    assert load_image(deep).getpixel((0, 0)) == (255, 255, 255)
    with pytest.raises(MediaError, match="image file not found"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(MediaError, match="cannot decode image bad.png"):
        load_image(tmp_path / "bad.png")


def test_clip_constants_have_one_home():
    from mio_eval.metrics.clip_score import CLIP_MEAN as metric_mean
    from mio_eval.models.mio.seed.config import CLIP_MEAN as seed_mean

    assert metric_mean is CLIP_MEAN and seed_mean is CLIP_MEAN and CLIP_MEAN[0] == 0.48145466


def test_request_audio_takes_exactly_one_recording(tmp_path):
    wav = save_audio(tmp_path / "a.wav", np.zeros(800, np.float32), 8000)
    one = Request(sample_id="a", parts=(Audio(str(wav)), Text("transcribe")))
    assert request_audio(one, label="asr", sample_rate=8000).shape == (800,)
    with pytest.raises(MediaError, match=r"^whisper: expected one audio part, got 2$"):
        request_audio(Request(sample_id="b", parts=(Audio(str(wav)), Audio(str(wav)))), label="whisper",
                      sample_rate=16000)
    with pytest.raises(MediaError, match="audio file not found"):
        request_audio(Request(sample_id="c", parts=(Audio(str(tmp_path / "no.wav")),)), label="x", sample_rate=16000)


class _Task(TaskBase):
    def __init__(self, *, prompt, generation=None):
        self._task(name="t", loader=lambda: ["s"], prompt=prompt, generation=generation,
                   placeholders=("video", "question"))


def test_task_base_checks_placeholders_and_generation():
    task = _Task(prompt="{video} Q: {question}", generation={"max_new_tokens": 3})
    assert task.samples() == ["s"] and task.generation["max_new_tokens"] == 3
    with pytest.raises(ConfigError, match=r"task t: prompt must contain \{video\} and \{question\}, got 'Q:'"):
        _Task(prompt="Q:")
    with pytest.raises(ConfigError):
        _Task(prompt="{video}{question}", generation={"max_new_tokenz": 3})


def test_text_list_reads_strings_or_keyed_objects():
    got = text_list([{"raw": "a"}, "b"], "f #1", field="sentences", key="raw", bad_item="x", nonempty=True)
    assert got == ["a", "b"]
    assert text_list(None, "f", field="answers", key="answer", bad_item="x", nonempty=False) == []
    with pytest.raises(ConfigError, match=r"^f: 'sentences' must be a non-empty list$"):
        text_list([], "f", field="sentences", key="raw", bad_item="x", nonempty=True)
    with pytest.raises(ConfigError, match=r"^f: an answer is not a string: \{'answer': 3\}$"):
        text_list([{"answer": 3}], "f", field="answers", key="answer", bad_item="an answer is not a string",
                  nonempty=False)
