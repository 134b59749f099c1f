"""MIO's prompts, byte for byte: one template table keyed by (variant, request kind).

Source: MIO-Team/MIO @ 6c0b5e6, ``infer.py`` (the per-task templates) and
``tokenization_mio.py`` L365-416 (``apply_chat_template``). Media become ``<image_placeholder_j>``
/ ``<speech_placeholder_j>`` here; the adapter replaces them by the encoded blocks.

Instruct wraps one user turn in ChatML with the BOS *string* first and the ``std`` or ``voice``
system prompt (voice when speech is the wanted output, and always for TTS); Base uses MIO's raw
templates (TTS ends with ``<spch>``, video generation with ``<image>``: the adapter puts that
opened tag back in front of the generated ids). A request whose parts do not fit a row's
condition, or a log-likelihood request, keeps its own parts in order (``{parts}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from mio_eval.errors import ConfigError
from mio_eval.models.hf_base import SampleError
from mio_eval.types import Audio, Image, Modality, Request, RequestKind, Text, Video

__all__ = [
    "MIOPrompt",
    "Template",
    "TEMPLATES",
    "VARIANTS",
    "STD_SYSTEM",
    "VOICE_SYSTEM",
    "DEFAULT_BOS",
    "DEFAULT_VIDEO_FRAMES",
    "chat_prompt",
    "mio_prompt",
    "request_kind",
]

VARIANTS = ("instruct", "base")
STD_SYSTEM = ("You are MIO, an AI assistant capable of understanding and generating images, text, videos, and speech, "
              "selecting the appropriate modality according to the context.")
VOICE_SYSTEM = ("You are MIO, an AI assistant capable of understanding images, text, videos, and speech, and generating "
                "speech. Please respond to the user with speech only, starting with <spch> and ending with </spch>.")
DEFAULT_BOS = "<|startoftext|>"
DEFAULT_VIDEO_FRAMES = 10  # MIO's uniform extraction keeps every (total // 10)-th frame: ~10 frames

# When a row applies: (has a text part, has a media part); None = either.
NO_TEXT = (False, None)
TEXT_ONLY = (True, False)
TEXT_AND_MEDIA = (True, True)


@dataclass(frozen=True)
class Template:
    """One row: ``body`` formats ``{text}`` (the text parts joined), ``{media}`` (the media
    placeholders joined); ``when`` is the condition on the parts; ``mode`` forces the Instruct
    system prompt (else voice exactly when audio is the wanted output)."""

    body: str
    when: tuple[bool | None, bool | None]
    mode: str | None = None

    def applies(self, has_text: bool, has_media: bool) -> bool:
        want_text, want_media = self.when
        return (want_text is None or want_text == has_text) and (want_media is None or want_media == has_media)


_K = RequestKind
TEMPLATES: dict[tuple[str, RequestKind], Template] = {
    ("instruct", _K.CAPTION): Template("Please provide an accurate and detailed description of this image.\n{media}",
                                       NO_TEXT),
    ("instruct", _K.ASR): Template("Please transcribe this speech.\n{media}", NO_TEXT),
    ("instruct", _K.VQA): Template("{text}\n{media}", TEXT_AND_MEDIA),  # question first
    ("instruct", _K.VIDEO_QA): Template("{text}\n{media}", TEXT_AND_MEDIA),
    ("instruct", _K.T2I): Template("Please generate an image according to the caption.\n{text}", TEXT_ONLY),
    ("instruct", _K.TTS): Template("The transcription is ``{text}''. Please generate a speech according to the given "
                                   "transcription. Start with <spch>.", TEXT_ONLY, mode="voice"),
    ("instruct", _K.VIDEO_GEN): Template("Please generate a video for ``{text}''", TEXT_ONLY),
    ("base", _K.CAPTION): Template("{media} The caption of this image is", NO_TEXT),
    ("base", _K.ASR): Template("{media} The transcription of this speech is", NO_TEXT),
    ("base", _K.VIDEO_QA): Template("Please describe the following video: {media}", NO_TEXT),
    ("base", _K.T2I): Template("Please generate an image of ``{text}''", TEXT_ONLY),
    ("base", _K.TTS): Template("Please generate a speech of ``{text}'': <spch>", TEXT_ONLY),
    ("base", _K.VIDEO_GEN): Template("Please generate a video for ``{text}'': <image>", TEXT_ONLY),
    ("base", _K.TEXT): Template("Question: {text} Answer:", TEXT_ONLY),
}


def request_kind(request: Request) -> str:
    """The request's kind as a plain string ('' when unset)."""
    return request.kind.value if request.kind is not None else ""


def chat_prompt(user: str, *, mode: str, bos: str = DEFAULT_BOS) -> str:
    """MIO's ``apply_chat_template`` for one user turn with ``add_generation_prompt=True`` and
    the BOS string (``tokenization_mio.py`` L365-416)."""
    system = {"std": STD_SYSTEM, "voice": VOICE_SYSTEM}[mode]
    return (f"{bos}<|im_start|>system\n{system}<|im_end|>\n"
            f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")


@dataclass(frozen=True)
class MIOPrompt:
    """A rendered prompt before media encoding: ``text`` holds MIO's placeholders, ``media``
    the parts they stand for (in placeholder order per kind), ``template`` names the row used."""

    text: str
    media: tuple[Image | Audio | Video, ...]
    template: str
    mode: str | None  # std | voice for Instruct, None for Base

    @property
    def opened(self) -> str:
        """The block tag the prompt leaves open (Base TTS / video generation), else ''."""
        for tag in ("<spch>", "<image>"):
            if self.text.endswith(tag):
                return tag
        return ""


def _layout(parts: Sequence[Any], video_frames: int) -> tuple[str, str, str, list]:
    """(parts in order, text parts joined, media placeholders joined, media parts)."""
    inline, texts, media, sources = [], [], [], []
    n_image = n_speech = 0
    for part in parts:
        if isinstance(part, Text):
            inline.append(part.text)
            texts.append(part.text)
            continue
        if isinstance(part, Image):
            marks = [f"<image_placeholder_{n_image}>"]
            n_image += 1
        elif isinstance(part, Video):  # each frame is one image block, no separator (infer.py L264-284)
            marks = [f"<image_placeholder_{n_image + k}>" for k in range(video_frames)]
            n_image += video_frames
        elif isinstance(part, Audio):
            marks = [f"<speech_placeholder_{n_speech}>"]
            n_speech += 1
        else:
            raise SampleError(f"MIO cannot read a {type(part).__name__} part")
        inline.extend(marks)
        media.extend(marks)
        sources.append(part)
    return "".join(inline), "".join(texts), "".join(media), sources


def mio_prompt(request: Request, *, variant: str, bos: str = DEFAULT_BOS,
               video_frames: int = DEFAULT_VIDEO_FRAMES) -> MIOPrompt:
    """MIO's prompt for ``request``: the ``TEMPLATES`` row of (variant, kind) when the request's
    parts fit its condition, else ``{parts}`` (everything in the request's order); a
    log-likelihood request (``continuations``) always uses ``{parts}``. Instruct wraps the
    result in ``chat_prompt``; Base prefixes the BOS string."""
    if variant not in VARIANTS:
        raise ConfigError(f"MIO variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    parts, text, media, sources = _layout(request.parts, video_frames)
    kind = request_kind(request)
    row = None if request.continuations or request.kind is None else TEMPLATES.get((variant, request.kind))
    if row is not None and not row.applies(bool(text), bool(media)):
        row = None
    body = parts if row is None else row.body.format(text=text, media=media)
    template = "parts" if row is None else kind
    if variant == "base":
        return MIOPrompt(bos + body, tuple(sources), template, None)
    mode = (row.mode if row is not None else None) or ("voice" if request.output_modality == Modality.AUDIO else "std")
    return MIOPrompt(chat_prompt(body, mode=mode, bos=bos), tuple(sources), template, mode)
