"""MIO's input side (``MIOAdapter``): a request -> its prompt string with the media encoded by
the codecs -> token ids. ``prepare`` is the CPU-side part of a ``generate`` call (media read and
encoded, prompt tokenised); the runner calls it for the next batch in a background thread while
the current batch generates (``runner.prefetch``, ``mio_eval.prefetch``), so the codecs load
under a lock (either thread may ask first). The prompt templates are ``prompts``; the code
blocks ``blocks``; the codecs ``codecs``."""

from __future__ import annotations

import re
from typing import Any, Sequence

from mio_eval.errors import MediaError
from mio_eval.keyframes import select_video_frames
from mio_eval.media import load_audio, load_image, uniform_indices
from mio_eval.models.hf_base import SampleError
from mio_eval.models.mio.blocks import image_block, speech_block
from mio_eval.models.mio.codecs import SPEECH_DIR, SpeechTokenizerCodec, load_image_codec
from mio_eval.models.mio.prompts import MIOPrompt, mio_prompt
from mio_eval.types import Audio, Image, Request, Video

__all__ = ["MIOInputs"]

_PLACEHOLDER = re.compile(r"<(image|speech)_placeholder_(\d+)>")


class MIOInputs:
    """Mixed into ``MIOAdapter``: uses its tokenizer, variant, video settings, path, device,
    dtype, image seed, ``_speech`` / ``_image`` slots and ``_codec_lock``."""

    def prepare(self, requests: Sequence[Request]) -> list[Any]:
        """Per request, what ``generate`` starts from: ``(prompt, text, ids)`` (``ids`` None for
        scored continuations), or the ``SampleError`` that fails that sample."""
        self.load()
        return [self._prepare_one(request) for request in requests]

    def _prepare_one(self, request: Request) -> Any:
        try:
            prompt, text = self.render(request)
            return prompt, text, None if request.continuations else self.encode(text)
        except SampleError as exc:
            return exc

    @staticmethod
    def prepared(item: Any) -> tuple[MIOPrompt, str, list[int] | None]:
        if isinstance(item, SampleError):
            raise item
        return item

    def render(self, request: Request) -> tuple[MIOPrompt, str]:
        """The prompt with placeholders, and the string sent to the tokenizer (media encoded)."""
        frames = int(request.generation.get("video_frames") or self.video_frames)
        mode = request.generation.get("video_frame_mode") or self.video_frame_mode
        images, speeches = [], []
        try:
            # Frames first: with keyframes or MIO's stride the count (hence the placeholders) is
            # the video's own; several videos in one request share the smallest count.
            clips = {i: select_video_frames(p.path, mode=mode, n=frames)
                     for i, p in enumerate(request.parts) if isinstance(p, Video)}
            if clips:
                frames = min(len(c) for c in clips.values())
                clips = {i: [c[k] for k in uniform_indices(len(c), frames)]
                         for i, c in clips.items()}
            prompt = mio_prompt(request, variant=self.variant, bos=self.tokenizer.bos_token, video_frames=frames)
            videos = iter(clips[i] for i in sorted(clips))
            for part in prompt.media:
                if isinstance(part, Audio):
                    speeches.append(self._speech_string(part.path))
                elif isinstance(part, Image):
                    images.append(self._image_string(load_image(part.path)))
                else:
                    images.extend(self._image_string(frame) for frame in next(videos))
        except MediaError as exc:
            raise SampleError(str(exc)) from None
        except Exception as exc:  # ImageCodecError and codec failures: this sample only
            raise SampleError(f"{type(exc).__name__}: {exc}") from None
        strings = {"image": images, "speech": speeches}
        text = _PLACEHOLDER.sub(lambda m: strings[m.group(1)][int(m.group(2))], prompt.text)
        return prompt, text

    def _speech_string(self, path: str) -> str:
        codec = self._speech_codec()
        return speech_block(codec.encode(load_audio(path, sample_rate=codec.sample_rate).samples))

    def _image_string(self, image: Any) -> str:
        return image_block(self._image_codec().encode(image))

    def encode(self, text: str) -> list[int]:
        """Token ids of a prompt string; the BOS is the one the string starts with (no second)."""
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        bos = self.tokenizer.bos_token_id
        if ids[:2] == [bos, bos]:
            ids = ids[1:]
        return ids

    def _speech_codec(self):
        with self._codec_lock:
            if self._speech is None:  # loaded on first use only (MIO loads every codec up front)
                self._speech = SpeechTokenizerCodec(self.path / SPEECH_DIR, device=self.device)
            return self._speech

    def _image_codec(self):
        with self._codec_lock:
            if self._image is None:
                # The SEED tokenizer follows the LLM's dtype (bf16 on GPU); "auto" keeps it in fp32.
                codec_dtype = self.dtype if self.dtype in ("float16", "bfloat16") else "float32"
                self._image = load_image_codec(self.path, device=self.device, seed=self.image_seed,
                                               dtype=codec_dtype)
            return self._image
