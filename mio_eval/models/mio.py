"""MIO (MIO-7B-Instruct / MIO-7B-Base) from a local checkpoint directory: text, images, video
frames and speech in; text, images and speech out; continuations scored.

What is MIO's own behaviour (https://github.com/MIO-Team/MIO @ 6c0b5e6, ``infer.py`` and
``tokenization_mio.py``) and what is ours:

* LLM: ``AutoModelForCausalLM.from_pretrained(path)`` and MIO's slow ``LlamaTokenizer``. dtype
  and device are settings (MIO: fp16 everywhere; fp32 is the CPU default here).
* Prompts (MIO's, byte for byte, see ``mio_prompt``): media become ``<image_placeholder_j>`` /
  ``<speech_placeholder_j>`` and are then replaced by ``<image><img…>×32</image>`` and
  ``<spch><spch…>…</spch>`` (speech input = content codes only). Instruct wraps one user turn in
  ChatML with the BOS *string* first and the ``std`` or ``voice`` system prompt (voice when speech
  is the wanted output); Base uses MIO's raw templates (TTS ends with ``<spch>``, video generation
  with ``<image>``). The request's ``kind`` picks the template (table in ``mio_prompt``); a task
  that writes its own instruction text keeps it (the parts are laid out in order).
* Ids are looked up in the tokenizer, never hard-coded. Instruct stops at ``<|im_end|>`` (MIO's
  hard-coded 7), Base at the tokenizer's EOS. The prompt string already starts with the BOS string
  and is encoded with ``add_special_tokens=False``, so there is exactly one BOS even when the
  tokenizer adds one by default (MIO would then have two: it adds the BOS string by hand and
  encodes with ``add_special_tokens=True``, ``tokenization_mio.py``).
* A prompt longer than the model's context is that sample's error (MIO truncates on the right,
  losing the assistant starter: ``truncation_side="right"`` in ``tokenization_mio.py``);
  ``max_new_tokens`` is capped to what the context leaves (counted in provenance).
* Batched LEFT-padded ``generate``; only the new ids are parsed (MIO decodes prompt + output and
  splits the string on ``"<|im_start|>assistant\\n"``), with the tag a Base prompt ended with put back
  in front (MIO's Base TTS / video prompts end with ``<spch>`` / ``<image>``, ``infer.py``).
* Output parsing works on ids (``split_blocks``): an image block must hold exactly 32 codes, a
  speech block content + three timbre runs of equal length. Irregular blocks are repaired by a
  named policy or are an invalid output, never an exception (MIO's ``detokenize`` raises on them);
  see ``parse_speech`` / ``parse_image``. Modality tokens in a text answer are stripped and counted
  (the Instruct model drifts into modality tokens on text tasks). Repairs and counts are in
  ``provenance()["outputs"]`` (this process's samples).
* Decoding settings come from ``Request.generation`` (the tasks hold MIO's per-modality values:
  text 5 beams; speech sampling top-p 0.7...). As in MIO, ``top_k=0`` when sampling;
  ``length_penalty`` is passed when given.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mio_eval.errors import ConfigError, MediaError
from mio_eval.media import VIDEO_FRAME_MODES, load_audio, load_image, output_path, save_audio, select_video_frames
from mio_eval.models.hf_lm import (
    Decoding,
    SampleError,
    accepts,
    check_dtype,
    check_model_dir,
    config_name_or_path,
    context_length,
    continuation_score,
    cut_at_stop,
    split_trailing_space,
    torch_dtype,
    weights_digest,
)
from mio_eval.types import Audio, Image, Modality, Output, Request, Text, Video

__all__ = [
    "MIOAdapter",
    "MIOPrompt",
    "mio_prompt",
    "chat_prompt",
    "STD_SYSTEM",
    "VOICE_SYSTEM",
    "VARIANTS",
    "SPEECH_POLICIES",
    "split_blocks",
    "parse_speech",
    "parse_image",
    "Block",
    "Parsed",
]

VARIANTS = ("instruct", "base")
SPEECH_POLICIES = ("repair", "strict")
STD_SYSTEM = ("You are MIO, an AI assistant capable of understanding and generating images, text, videos, and speech, "
              "selecting the appropriate modality according to the context.")
VOICE_SYSTEM = ("You are MIO, an AI assistant capable of understanding images, text, videos, and speech, and generating "
                "speech. Please respond to the user with speech only, starting with <spch> and ending with </spch>.")
DEFAULT_BOS = "<|startoftext|>"
DEFAULT_VIDEO_FRAMES = 10  # MIO's uniform extraction keeps every (total // 10)-th frame: ~10 frames
SPEECH_RATE = 16000
CODEBOOK = 1024  # SpeechTokenizer codebook: speech token n is layer n // 1024, code n % 1024
IMAGE_CODES = 32
_PLACEHOLDER = re.compile(r"<(image|speech)_placeholder_(\d+)>")


# --- prompts ---------------------------------------------------------------------------------

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
    """MIO's prompt for ``request`` (MIO-Team/MIO @ 6c0b5e6 ``infer.py``, the per-task prompts).

    ``{text}`` = the request's text parts joined, ``{media}`` = its media placeholders joined,
    ``{parts}`` = everything in the request's order. Rows marked * apply only when the request
    has no text part (otherwise the task's own instruction is kept as ``{parts}``).

    ============  ================================================================  =====  ==========================================================
    kind          Instruct user turn                                                mode   Base prompt
    ============  ================================================================  =====  ==========================================================
    caption*      ``Please provide an accurate and detailed description of this     std    ``{media} The caption of this image is``
                  image.\\n{media}``
    asr*          ``Please transcribe this speech.\\n{media}``                       std    ``{media} The transcription of this speech is``
    vqa,          ``{text}\\n{media}`` (question first)                              std    ``{parts}``; video_qa*: ``Please describe the following
    video_qa                                                                               video: {media}``
    t2i           ``Please generate an image according to the caption.\\n{text}``   std    ````Please generate an image of ``{text}''````
    tts           ````The transcription is ``{text}''. Please generate a speech     voice  ````Please generate a speech of ``{text}'': <spch>````
                  according to the given transcription. Start with <spch>.````
    video_gen     ````Please generate a video for ``{text}''````                    std    ````Please generate a video for ``{text}'': <image>````
    text          ``{parts}``                                                       std    ``Question: {text} Answer:``
    others        ``{parts}`` (s2s with speech only: ``<speech_placeholder_0>``)    voice  ``{parts}``
                                                                                    if
                                                                                    audio
                                                                                    out
    ============  ================================================================  =====  ==========================================================

    A log-likelihood request (``continuations``) uses ``{parts}`` (chat-wrapped for Instruct).
    """
    if variant not in VARIANTS:
        raise ConfigError(f"MIO variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    parts, text, media, sources = _layout(request.parts, video_frames)
    kind = request.kind or ""
    has_text, has_media = bool(text), bool(media)
    scoring = bool(request.continuations)
    mode = "voice" if request.output_modality == Modality.AUDIO else "std"
    template = "parts"
    if variant == "instruct":
        user = parts
        if scoring:
            pass
        elif kind == "caption" and not has_text:
            user, template = f"Please provide an accurate and detailed description of this image.\n{media}", kind
        elif kind == "asr" and not has_text:
            user, template = f"Please transcribe this speech.\n{media}", kind
        elif kind in ("vqa", "video_qa") and has_text and has_media:
            user, template = f"{text}\n{media}", kind
        elif kind == "t2i" and has_text and not has_media:
            user, template = f"Please generate an image according to the caption.\n{text}", kind
        elif kind == "tts" and has_text and not has_media:
            user, template = (f"The transcription is ``{text}''. Please generate a speech according to the given "
                              f"transcription. Start with <spch>."), kind
            mode = "voice"
        elif kind == "video_gen" and has_text and not has_media:
            user, template = f"Please generate a video for ``{text}''", kind
        return MIOPrompt(chat_prompt(user, mode=mode, bos=bos), tuple(sources), template, mode)
    body = parts
    if scoring:
        pass
    elif kind == "caption" and not has_text:
        body, template = f"{media} The caption of this image is", kind
    elif kind == "asr" and not has_text:
        body, template = f"{media} The transcription of this speech is", kind
    elif kind == "video_qa" and not has_text:
        body, template = f"Please describe the following video: {media}", kind
    elif kind == "t2i" and has_text and not has_media:
        body, template = f"Please generate an image of ``{text}''", kind
    elif kind == "tts" and has_text and not has_media:
        body, template = f"Please generate a speech of ``{text}'': <spch>", kind
    elif kind == "video_gen" and has_text and not has_media:
        body, template = f"Please generate a video for ``{text}'': <image>", kind
    elif kind == "text" and has_text and not has_media:
        body, template = f"Question: {text} Answer:", kind
    return MIOPrompt(bos + body, tuple(sources), template, None)


# --- output parsing --------------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    """One ``<image>…</image>`` / ``<spch>…</spch>`` block of generated codes."""

    modality: Modality
    codes: tuple[int, ...]
    terminated: bool


@dataclass(frozen=True)
class Parsed:
    """What a decode of codes needs (``rows`` of codes, or ``None``) and the named repairs."""

    rows: tuple[tuple[int, ...], ...] | None
    repairs: tuple[str, ...] = ()
    error: str | None = None


def split_blocks(tokens: Sequence[str]) -> tuple[list[int], list[Block], int]:
    """Split generated token strings into (indices of text tokens, blocks, stray modality tokens).

    A block runs from its opening tag over consecutive codes of its kind to the closing tag; a
    block cut by the end of the output or by any other token is unterminated. Codes and tags
    outside a block are stray (not text)."""
    text, blocks, stray = [], [], 0
    open_kind: Modality | None = None
    codes: list[int] = []
    for i, token in enumerate(tokens):
        kind, value = _classify(token)
        if open_kind is not None:
            if kind == ("code", open_kind):
                codes.append(value)
                continue
            closed = kind == ("close", open_kind)
            blocks.append(Block(open_kind, tuple(codes), closed))
            open_kind, codes = None, []
            if closed:
                continue
        if kind is None:
            text.append(i)
        elif kind[0] == "open":
            open_kind, codes = kind[1], []
        else:
            stray += 1
    if open_kind is not None:
        blocks.append(Block(open_kind, tuple(codes), False))
    return text, blocks, stray


_TOKEN = re.compile(r"^<(/?)(image|spch)>$|^<(img|spch)(\d+)>$")


def _classify(token: str) -> tuple[tuple[str, Modality] | None, int]:
    match = _TOKEN.match(token)
    if match is None:
        return None, 0
    if match.group(2):
        modality = Modality.IMAGE if match.group(2) == "image" else Modality.AUDIO
        return ("close" if match.group(1) else "open", modality), 0
    modality = Modality.IMAGE if match.group(3) == "img" else Modality.AUDIO
    return ("code", modality), int(match.group(4))


def parse_speech(codes: Sequence[int], *, terminated: bool = True, policy: str = "repair") -> Parsed:
    """MIO's speech block: content (0-1023), then timbre0/1/2 (+1024/+2048/+3072), four runs of
    equal length (``check_speech_completeness``). Named repairs under ``policy="repair"``:
    ``truncate_to_shortest`` (four runs in order, unequal lengths), ``content_only`` (the block
    starts with content but its timbre runs are missing, disordered or extra; decoding RVQ
    layer 0 alone gives speech of the same length), ``unterminated`` (no ``</spch>``: MIO drops
    the audio). Anything else, or any irregularity under ``strict``, is an error."""
    if policy not in SPEECH_POLICIES:
        raise ConfigError(f"speech policy must be one of {', '.join(SPEECH_POLICIES)}, got {policy!r}")
    if not codes:
        return Parsed(None, error="empty speech block")
    runs: list[tuple[int, list[int]]] = []
    for code in codes:
        layer = code // CODEBOOK
        if runs and runs[-1][0] == layer:
            runs[-1][1].append(code - layer * CODEBOOK)
        else:
            runs.append((layer, [code - layer * CODEBOOK]))
    repairs = [] if terminated else ["unterminated"]
    layers, lengths = [r[0] for r in runs], [len(r[1]) for r in runs]
    if layers[0] != 0:
        return Parsed(None, error=f"speech block starts with timbre layer {layers[0]} codes, not content")
    if layers == [0, 1, 2, 3]:
        if len(set(lengths)) == 1:
            rows = tuple(tuple(r[1]) for r in runs)
        else:
            repairs.append("truncate_to_shortest")
            n = min(lengths)
            rows = tuple(tuple(r[1][:n]) for r in runs)
    else:
        repairs.append("content_only")
        rows = (tuple(runs[0][1]),)
    if repairs and policy == "strict":
        return Parsed(None, error=f"irregular speech block (runs {layers} of lengths {lengths}"
                                  f"{'' if terminated else ', unterminated'}); policy strict")
    return Parsed(rows, tuple(repairs))


def parse_image(codes: Sequence[int], *, terminated: bool = True, policy: str = "repair") -> Parsed:
    """An image block must hold exactly 32 codes (SEED's 32 queries; MIO crashes otherwise:
    its ``pos_embed_image`` has 32 rows, SEED ``qformer_quantizer.py``). Repairs under ``repair``:
    ``truncate_to_32`` (more codes), ``unterminated``.
    Fewer than 32 codes is an error (padding would invent content)."""
    if policy not in SPEECH_POLICIES:
        raise ConfigError(f"image policy must be one of {', '.join(SPEECH_POLICIES)}, got {policy!r}")
    repairs = [] if terminated else ["unterminated"]
    if len(codes) < IMAGE_CODES:
        return Parsed(None, error=f"image block has {len(codes)} codes, needs {IMAGE_CODES}")
    if len(codes) > IMAGE_CODES:
        repairs.append("truncate_to_32")
    if repairs and policy == "strict":
        return Parsed(None, error=f"irregular image block ({len(codes)} codes"
                                  f"{'' if terminated else ', unterminated'}); policy strict")
    return Parsed((tuple(codes[:IMAGE_CODES]),), tuple(repairs))


# --- the adapter -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Job:
    index: int
    ids: list[int]
    prompt: MIOPrompt


class MIOAdapter:
    """A MIO checkpoint directory (real or ``mio_tiny``); see the module docstring."""

    inputs = frozenset({Modality.TEXT, Modality.IMAGE, Modality.AUDIO, Modality.VIDEO})
    outputs = frozenset({Modality.TEXT, Modality.IMAGE, Modality.AUDIO})
    supports_loglikelihood = True

    def __init__(
        self,
        path: str,
        *,
        name: str = "mio",
        variant: str = "instruct",
        dtype: str = "float32",
        device: str = "cpu",
        attn_implementation: str | None = None,
        max_length: int | None = None,
        video_frames: int = DEFAULT_VIDEO_FRAMES,
        video_frame_mode: str = "uniform",
        speech_policy: str = "repair",
        image_policy: str = "repair",
        image_seed: int = 0,
    ) -> None:
        if variant not in VARIANTS:
            raise ConfigError(f"MIO variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        for what, policy in (("speech_policy", speech_policy), ("image_policy", image_policy)):
            if policy not in SPEECH_POLICIES:
                raise ConfigError(f"{what} must be one of {', '.join(SPEECH_POLICIES)}, got {policy!r}")
        if int(video_frames) < 1:
            raise ConfigError(f"video_frames must be >= 1, got {video_frames}")
        if video_frame_mode not in VIDEO_FRAME_MODES:
            raise ConfigError(f"video_frame_mode must be one of {', '.join(VIDEO_FRAME_MODES)}, got {video_frame_mode!r}")
        self.name = name
        self.path = Path(path)
        self.variant = variant
        self.dtype = check_dtype(dtype)
        self.device = device
        self.attn_implementation = attn_implementation
        self.max_length_override = max_length
        self.video_frames = int(video_frames)
        self.video_frame_mode = video_frame_mode
        self.speech_policy = speech_policy
        self.image_policy = image_policy
        self.image_seed = int(image_seed)
        self.model = None
        self.tokenizer = None
        self.max_length = 0
        self.stop_id: int | None = None
        self._speech = None
        self._image = None
        self._digest = ""
        self.stats: Counter = Counter()
        self.repairs: dict[str, list[str]] = {}

    # -- loading --

    def load(self) -> None:
        if self.model is not None:
            return
        check_model_dir(self.path, "MIO")
        from transformers import AutoModelForCausalLM, LlamaTokenizer

        try:  # the slow sentencepiece tokenizer MIO uses (the fast/5.x one tokenises differently)
            tokenizer = LlamaTokenizer.from_pretrained(str(self.path), local_files_only=True)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"MIO: cannot load the LlamaTokenizer of {self.path}: {exc}") from None
        tokenizer.padding_side = "left"
        unk = tokenizer.unk_token_id

        def single(token: str) -> int:
            ids = tokenizer.encode(token, add_special_tokens=False)
            if len(ids) != 1 or ids[0] == unk:
                raise ConfigError(f"MIO: the tokenizer of {self.path} has no single token {token!r}")
            return ids[0]

        im_end = single("<|im_end|>")
        single("<|im_start|>")
        for token in ("<image>", "</image>", "<spch>", "</spch>", "<img0>", "<img8191>", "<spch0>", "<spch4095>"):
            single(token)
        if tokenizer.bos_token is None or tokenizer.bos_token_id is None:
            raise ConfigError(f"MIO: the tokenizer of {self.path} has no BOS token")
        self.stop_id = im_end if self.variant == "instruct" else tokenizer.eos_token_id
        if self.variant == "instruct":  # MIO's infer.py hard-codes 7 as "the <|im_end|> token"
            assert self.stop_id == im_end, "Instruct generation must stop at <|im_end|>"
        kwargs = {"attn_implementation": self.attn_implementation} if self.attn_implementation else {}
        model = AutoModelForCausalLM.from_pretrained(str(self.path), dtype=torch_dtype(self.dtype),
                                                     local_files_only=True, **kwargs)
        if model.get_input_embeddings().num_embeddings < len(tokenizer):
            raise ConfigError(f"MIO: the model's vocabulary ({model.get_input_embeddings().num_embeddings}) is "
                              f"smaller than its tokenizer's ({len(tokenizer)})")
        self.tokenizer = tokenizer
        self.model = model.to(self.device).eval()
        self.max_length = context_length(model.config, tokenizer, self.max_length_override)
        self._digest = weights_digest(self.path)

    def _speech_codec(self):
        if self._speech is None:  # loaded on first use only (MIO loads every codec up front)
            from mio_eval.models.mio_codecs import SPEECH_DIR, SpeechTokenizerCodec

            self._speech = SpeechTokenizerCodec(self.path / SPEECH_DIR, device=self.device)
        return self._speech

    def _image_codec(self):
        if self._image is None:
            from mio_eval.models.mio_codecs import load_image_codec

            # The SEED tokenizer follows the LLM's dtype (bf16 on GPU); "auto" keeps it in fp32.
            codec_dtype = self.dtype if self.dtype in ("float16", "bfloat16") else "float32"
            self._image = load_image_codec(self.path, device=self.device, seed=self.image_seed, dtype=codec_dtype)
        return self._image

    @property
    def _pad_id(self) -> int:
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    # -- prompts --

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
                clips = {i: [c[k] for k in np.linspace(0, len(c) - 1, frames).round().astype(int)]
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
        codes = codec.encode(load_audio(path, sample_rate=codec.sample_rate).samples)
        return "<spch>" + "".join(f"<spch{c}>" for c in codes[0]) + "</spch>"  # content only (MIO's default)

    def _image_string(self, image: Any) -> str:
        codes = self._image_codec().encode(image)
        if len(codes) != IMAGE_CODES:
            raise SampleError(f"image codec returned {len(codes)} codes, expected {IMAGE_CODES}")
        return "<image>" + "".join(f"<img{c}>" for c in codes) + "</image>"

    def encode(self, text: str) -> list[int]:
        """Token ids of a prompt string; the BOS is the one the string starts with (no second)."""
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        bos = self.tokenizer.bos_token_id
        if ids[:2] == [bos, bos]:
            ids = ids[1:]
        return ids

    # -- answering --

    def generate(self, requests: Sequence[Request], *, media_dir: Path) -> list[Output]:
        self.load()
        outputs: list[Output | None] = [None] * len(requests)
        groups: dict[tuple, list[_Job]] = {}
        rows: list[tuple[int, tuple[int, ...], int]] = []
        for i, request in enumerate(requests):
            try:
                settings = Decoding.of(request.generation)
                prompt, text = self.render(request)
                if request.continuations:
                    rows.extend(self._rows(i, prompt, text, request.continuations))
                    continue
                ids = self.encode(text)
                if len(ids) >= self.max_length:
                    raise SampleError(f"prompt is {len(ids)} tokens, not shorter than the model's context of "
                                      f"{self.max_length} tokens")
                room = self.max_length - len(ids)
                if settings.max_new_tokens > room:
                    self.stats["max_new_tokens_capped"] += 1
                    settings = replace(settings, max_new_tokens=room)
                extra = tuple((k, request.generation[k]) for k in ("length_penalty", "top_k")
                              if request.generation.get(k) is not None)
                groups.setdefault((settings, extra), []).append(_Job(i, ids, prompt))
            except SampleError as exc:
                outputs[i] = Output.failure(str(exc))
        for (settings, extra), jobs in groups.items():
            for job, new_ids in zip(jobs, self._generate_ids([j.ids for j in jobs], settings, dict(extra))):
                outputs[job.index] = self._answer(requests[job.index], job, new_ids, settings, Path(media_dir))
        outputs_scored = self._score([r for r in rows if outputs[r[0]] is None])
        for i, output in outputs_scored.items():
            outputs[i] = output
        return outputs  # type: ignore[return-value]

    def _generate_ids(self, prompts: list[list[int]], settings: Decoding, extra: dict) -> list[list[int]]:
        import torch

        width = max(len(ids) for ids in prompts)
        pad = self._pad_id
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in prompts], dtype=torch.long)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts], dtype=torch.long)
        kwargs = settings.generate_kwargs()
        if settings.do_sample:
            kwargs["top_k"] = 0  # MIO's generation_config (HF's default would be top_k=50)
        kwargs.update(extra)
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids.to(self.model.device),
                                      attention_mask=mask.to(self.model.device), pad_token_id=pad,
                                      eos_token_id=self.stop_id, **kwargs)
        results = []
        for row in out[:, width:].tolist():  # only the new ids (not MIO's string split of prompt + output)
            end = next((k for k, t in enumerate(row) if t == self.stop_id), None)
            results.append(row if end is None else row[:end + 1])
        return results

    def _answer(self, request: Request, job: _Job, new_ids: list[int], settings: Decoding, media_dir: Path) -> Output:
        ids = [t for t in new_ids if t != self.stop_id]
        tokens = self.tokenizer.convert_ids_to_tokens(ids)
        if job.prompt.opened:  # the Base prompt opened the block (it ended with <spch> / <image>)
            tokens = [job.prompt.opened, *tokens]
        text_at, blocks, stray = split_blocks(tokens)
        wanted = {request.output_modality}
        if request.kind == "interleaved":
            wanted |= {Modality.IMAGE, Modality.AUDIO}
        stray += sum(len(b.codes) + 1 + b.terminated for b in blocks if b.modality not in wanted)
        if stray:
            self.stats["stray_modality_tokens"] += stray
            self.stats["samples_with_stray_tokens"] += 1
        text_ids = [ids[k - (1 if job.prompt.opened else 0)] for k in text_at]
        text = cut_at_stop(self.tokenizer.decode(text_ids, skip_special_tokens=True), settings.until).strip()
        media, problems, repairs = [], [], []
        for block in (b for b in blocks if b.modality in wanted and b.modality != Modality.TEXT):
            try:
                part, fixed = self._decode_block(block, request.sample_id, len(media), media_dir)
            except (SampleError, MediaError) as exc:
                problems.append(str(exc))
                continue
            except Exception as exc:  # a codec failure costs this block, never the batch
                problems.append(f"{type(exc).__name__}: {exc}")
                continue
            media.append(part)
            repairs.extend(fixed)
        for name in repairs:
            self.stats[f"repair_{name}"] += 1
        if repairs:
            self.repairs.setdefault(request.sample_id, []).extend(repairs)
        n_out = len(new_ids)
        if request.output_modality != Modality.TEXT and not any(p.modality == request.output_modality for p in media):
            self.stats["invalid_outputs"] += 1
            what = "speech" if request.output_modality == Modality.AUDIO else request.output_modality.value
            reason = "; ".join(problems) or f"no {what} block in {n_out} generated tokens"
            return Output(error=f"invalid output: {reason}", n_input_tokens=len(job.ids), n_output_tokens=n_out)
        if problems:
            self.stats["invalid_blocks"] += len(problems)
        return Output(text=text if (text or request.output_modality == Modality.TEXT) else None, media=tuple(media),
                      n_input_tokens=len(job.ids), n_output_tokens=n_out)

    def _decode_block(self, block: Block, sample_id: str, k: int, media_dir: Path):
        media_dir.mkdir(parents=True, exist_ok=True)
        suffix = "" if k == 0 else f"-{k}"
        if block.modality == Modality.AUDIO:
            parsed = parse_speech(block.codes, terminated=block.terminated, policy=self.speech_policy)
            if parsed.rows is None:
                raise SampleError(parsed.error)
            codec = self._speech_codec()
            path = save_audio(output_path(media_dir, sample_id, f"{suffix}.wav"), codec.decode(parsed.rows),
                              codec.sample_rate)
            return Audio(str(path), codec.sample_rate), parsed.repairs
        parsed = parse_image(block.codes, terminated=block.terminated, policy=self.image_policy)
        if parsed.rows is None:
            raise SampleError(parsed.error)
        image = self._image_codec().decode(parsed.rows[0])
        path = output_path(media_dir, sample_id, f"{suffix}.png")
        from mio_eval.atomic import atomic_path

        with atomic_path(path) as tmp:
            image.save(tmp, format="PNG")
        return Image(str(path)), parsed.repairs

    # -- log-likelihood --

    def _rows(self, i: int, prompt: MIOPrompt, text: str, continuations: Sequence[str]):
        rows = []
        for j, continuation in enumerate(continuations):
            # lm-eval moves a raw context's trailing space into the continuation; the chat
            # template's "assistant\n" is a template boundary and stays in the context.
            ctx, cont = (text, continuation) if prompt.mode else split_trailing_space(text, continuation)
            context = self.encode(ctx)
            whole = self.encode(ctx + cont)
            tail = whole[len(context):] if whole[:len(context)] == context else \
                self.tokenizer.encode(cont, add_special_tokens=False)
            if not tail:
                raise SampleError(f"continuation {j} ({continuation!r}) encodes to no tokens")
            if len(context) + len(tail) - 1 > self.max_length:
                raise SampleError(f"context ({len(context)} tokens) + continuation {j} ({len(tail)} tokens) exceeds "
                                  f"the model's context of {self.max_length} tokens")
            rows.append((i, tuple(context + tail), len(context)))
        return rows

    def _score(self, rows: list[tuple[int, tuple[int, ...], int]]) -> dict[int, Output]:
        """Every row in one RIGHT-padded forward pass (as ``hf_lm``)."""
        if not rows:
            return {}
        import torch

        width = max(len(ids) - 1 for _, ids, _ in rows)
        pad = self._pad_id
        input_ids = torch.tensor([list(ids[:-1]) + [pad] * (width - len(ids) + 1) for _, ids, _ in rows])
        mask = torch.tensor([[1] * (len(ids) - 1) + [0] * (width - len(ids) + 1) for _, ids, _ in rows])
        first = min(n - 1 for _, _, n in rows)
        kwargs = {"logits_to_keep": width - first} if accepts(self.model, "logits_to_keep") else {}
        offset = first if kwargs else 0
        with torch.inference_mode():
            logits = self.model(input_ids=input_ids.to(self.model.device),
                                attention_mask=mask.to(self.model.device), **kwargs).logits
        scores: dict[int, list[tuple[float, bool]]] = {}
        contexts: dict[int, int] = {}
        for (i, ids, n), row_logits in zip(rows, logits):
            scores.setdefault(i, []).append(continuation_score(row_logits, n - 1 - offset, ids[n:]))
            contexts.setdefault(i, n)
        return {i: Output(logprobs=[s for s, _ in pairs], greedy=[g for _, g in pairs], n_input_tokens=contexts[i])
                for i, pairs in scores.items()}

    def provenance(self) -> Mapping[str, Any]:
        from importlib.metadata import version

        tok = self.tokenizer
        info: dict[str, Any] = {
            "model": "MIO (transformers AutoModelForCausalLM + slow LlamaTokenizer)",
            "name": self.name,
            "variant": self.variant,
            "path": str(self.path),
            "name_or_path": config_name_or_path(self.path) if self.path.is_dir() else str(self.path),
            "weights_sha256": self._digest,
            "dtype": str(self.model.dtype).removeprefix("torch.") if self.model is not None else self.dtype,
            "device": self.device,
            "max_length": self.max_length,
            "transformers": version("transformers"),
            "video_frames": self.video_frames,
            "video_frame_mode": self.video_frame_mode,
            "policies": {"speech": self.speech_policy, "image": self.image_policy},
        }
        if tok is not None:
            info["tokens"] = {"bos": [tok.bos_token, tok.bos_token_id], "pad": self._pad_id,
                              "stop": [tok.convert_ids_to_tokens(self.stop_id), self.stop_id], "vocab": len(tok)}
        if self._speech is not None:
            info["speech_codec"] = self._speech.provenance()
        if self._image is not None:
            info["image_codec"] = self._image.provenance()
        info["outputs"] = {"counts": dict(sorted(self.stats.items())),
                           "repaired_samples": {k: v for k, v in list(self.repairs.items())[:1000]}}
        return info
