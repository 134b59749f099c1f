"""MIO prompts: our token ids against MIO's own ``MIOTokenizer``, id by id (issue #14).

``tests/reference/mio_prompt_ids.json`` was written by ``scripts/reference/mio_fixture.py``: MIO-Team/MIO
@6c0b5e6 ``tokenization_mio.py`` (``apply_chat_template`` for Instruct, ``__call__`` for Base, its
own system prompts, BOS handling and media block strings) tokenising every ``infer.py`` template
over the tiny vocabulary ``mio_eval.models.mio_tiny`` builds, with fixed image / speech codes in
place of the codecs. Here the adapter renders the same requests (``MIOAdapter.render`` +
``encode``, with codec stand-ins returning the same codes) and must give the same ids.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sentencepiece")

import mio_eval.models.mio.inputs as mio_inputs_module  # noqa: E402
from mio_eval.models.mio import STD_SYSTEM, VOICE_SYSTEM, MIOAdapter  # noqa: E402
from mio_eval.types import Audio, Image, Request, Text, Video  # noqa: E402

FIXTURE = json.loads((Path(__file__).parent / "reference" / "mio_prompt_ids.json").read_text(encoding="utf-8"))
TTS = ("Mister Morton replied that far from making any claim upon his good opinion his only wish and the sole "
       "purpose of his visit was to find out the means of deserving it")


def _requests(image, speech, video):
    """Our request for each row of the fixture (same order as ``scripts/reference/mio_fixture.py`` ROWS)."""
    img, aud, vid = Image(str(image)), Audio(str(speech)), Video(str(video))
    audio_out, image_out = {"output_modality": "audio"}, {"output_modality": "image"}
    return {
        ("instruct", "text"): Request("s", (Text("What's the capital of France?"),), kind="text"),
        ("instruct", "caption"): Request("s", (img,), kind="caption"),
        ("instruct", "image_qa"): Request("s", (img, Text("What colour of clothes is the man wearing?")), kind="vqa"),
        ("instruct", "image_generation"): Request("s", (Text("A beautiful sunset over the ocean."),), kind="t2i", **image_out),
        ("instruct", "asr"): Request("s", (aud,), kind="asr"),
        ("instruct", "speech_understanding"): Request("s", (aud, Text("\nPlease continue the story."))),
        ("instruct", "tts"): Request("s", (Text(TTS),), kind="tts", **audio_out),
        ("instruct", "speech_generation"): Request("s", (Text("What abilities do you have?"),), **audio_out),
        ("instruct", "speech_to_speech"): Request("s", (aud,), kind="s2s", **audio_out),
        ("instruct", "video_qa"): Request("s", (vid, Text("What is this woman doing in this video?")), kind="video_qa"),
        ("instruct", "video_generation"): Request(
            "s", (Text("rush hour traffic jam and gridlock in the city streets"),), kind="video_gen", **image_out),
        ("instruct", "interleaved"): Request("s", (Text("Generate a visual story about Star Wars."),), kind="interleaved", **image_out),
        ("base", "text"): Request("s", (Text("1+1=?"),), kind="text"),
        ("base", "caption"): Request("s", (img,), kind="caption"),
        ("base", "image_generation"): Request("s", (Text("a tree in the middle of a meadow"),), kind="t2i", **image_out),
        ("base", "asr"): Request("s", (aud,), kind="asr"),
        ("base", "tts"): Request("s", (Text(TTS),), kind="tts", **audio_out),
        ("base", "video_captioning"): Request("s", (vid,), kind="video_qa"),
        ("base", "video_generation"): Request(
            "s", (Text("Bird eye panoramic view of busiest Asian cargo port"),), kind="video_gen", **image_out),
    }


class _ImageCodes:
    """Stand-in for the SEED codec: the fixture's codes for an image's (flat) grey level."""

    def encode(self, image):
        grey = round(float(np.asarray(image.convert("L")).mean()))
        return FIXTURE["media"]["image_codes"][str(grey)]


class _SpeechCodes:
    sample_rate = 16000

    def encode(self, samples):
        assert len(samples) == FIXTURE["media"]["speech_samples"]
        return FIXTURE["media"]["speech_codes"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import soundfile as sf
    from PIL import Image as PILImage
    from transformers import LlamaTokenizer

    from mio_eval.models.mio.tiny import _tokenizer

    root = tmp_path_factory.mktemp("mio_vocab")
    _tokenizer(root)
    sha = hashlib.sha256((root / "tokenizer.model").read_bytes()).hexdigest()
    assert sha == FIXTURE["vocabulary"]["tokenizer_model_sha256"], "the tiny vocabulary changed: rerun the script"
    greys = FIXTURE["media"]["image_greys"]
    PILImage.new("RGB", (40, 30), (greys["image"],) * 3).save(root / "image.png")
    sf.write(root / "speech.wav", np.linspace(-0.1, 0.1, FIXTURE["media"]["speech_samples"], dtype=np.float32), 16000)
    (root / "clip.mp4").write_bytes(b"")  # frames come from the stand-in below
    frames = [PILImage.new("RGB", (40, 30), (g,) * 3) for g in greys["frames"]]
    adapters = {}
    tokenizer = LlamaTokenizer.from_pretrained(str(root), local_files_only=True)  # as MIOAdapter.load does
    for variant in ("instruct", "base"):
        adapter = MIOAdapter(str(root), variant=variant, video_frames=len(frames))
        adapter.tokenizer = tokenizer
        adapter._image, adapter._speech = _ImageCodes(), _SpeechCodes()
        adapters[variant] = adapter
    return adapters, _requests(root / "image.png", root / "speech.wav", root / "clip.mp4"), frames


def test_fixture_holds_mio_system_prompts():
    # The reference's strings, as MIO's module defines them.
    assert FIXTURE["systems"] == {"std": STD_SYSTEM, "voice": VOICE_SYSTEM}


@pytest.mark.parametrize("row", FIXTURE["rows"], ids=[f"{r['variant']}-{r['name']}" for r in FIXTURE["rows"]])
def test_prompt_ids_equal_mio_tokenizer(setup, row, monkeypatch):
    adapters, requests, frames = setup
    monkeypatch.setattr(mio_inputs_module, "select_video_frames", lambda path, *, mode, n: frames[:n])
    adapter = adapters[row["variant"]]
    _, text = adapter.render(requests[(row["variant"], row["name"])])
    ours = adapter.encode(text)
    expected = row["ids"]
    first = next((i for i, (a, b) in enumerate(zip(ours, expected)) if a != b), min(len(ours), len(expected)))
    assert ours == expected, (f"{row['variant']} {row['name']}: first difference at id {first}: "
                              f"ours {adapter.tokenizer.convert_ids_to_tokens(ours[first:first + 5])} vs MIO's "
                              f"{adapter.tokenizer.convert_ids_to_tokens(expected[first:first + 5])}")
