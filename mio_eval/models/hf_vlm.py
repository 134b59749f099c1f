"""A Hugging Face image-text-to-text model (LLaVA, Qwen2-VL, Idefics, ...) from a local directory.

The model loads through ``AutoModelForImageTextToText`` (falling back to
``AutoModelForVision2Seq`` for older configs) with its ``AutoProcessor``. A request's ordered parts
become one user turn of the processor's chat template -- ``{"type": "image"}`` and ``{"type":
"text", "text": ...}`` items in the order given, so several images and interleaving are kept --
and the images are passed as RGB PIL images in the same order. A video part becomes N frames
sampled uniformly over the clip (PyAV; N = ``generation["video_frames"]``, default 8), each an
image item, as lmms-eval feeds video to image-only models.

Generation is batched and LEFT-padded and decodes only the new ids. Log-likelihood scores each
continuation appended after the assistant turn start (the template with
``add_generation_prompt=True``), with lm-eval's context/continuation split (see ``hf_lm``): the
continuation tokens are those of ``prompt + continuation`` past the encoded prompt; all
continuations of a batch go through one RIGHT-padded forward pass. An unreadable image or video
is a per-sample error; so is a prompt longer than the model's context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.errors import ConfigError, MediaError
from mio_eval.media import load_image, video_frames
from mio_eval.models.hf_base import (
    Decoding,
    HFAdapter,
    SampleError,
    accepts,
    continuation_score,
    generate_texts,
    split_trailing_space,
)
from mio_eval.types import Audio, Image, Modality, Output, Request, Text, Video

__all__ = ["HFVisionLM", "load_image", "video_frames", "DEFAULT_VIDEO_FRAMES"]

DEFAULT_VIDEO_FRAMES = 8


class HFVisionLM(HFAdapter):
    """A local image-text-to-text checkpoint: text, images and video frames in, text out."""

    inputs = frozenset({Modality.TEXT, Modality.IMAGE, Modality.VIDEO})
    outputs = frozenset({Modality.TEXT})
    supports_loglikelihood = True
    what = "HF vision-language model"

    def __init__(
        self,
        path: str,
        *,
        name: str = "hf_vlm",
        dtype: str = "auto",
        device: str = "cpu",
        max_length: int | None = None,
        trust_remote_code: bool = False,
    ) -> None:  # knobs spelled out (not **kwargs): the signature is the YAML's contract
        super().__init__(path, name=name, dtype=dtype, device=device, max_length=max_length,
                         trust_remote_code=trust_remote_code)
        self.processor = None

    def _load(self) -> None:
        import transformers
        from transformers import AutoProcessor

        self.processor = self._pretrained(AutoProcessor)
        self.tokenizer = getattr(self.processor, "tokenizer", None)
        if self.tokenizer is None:
            raise ConfigError(f"the processor in {self.path} has no tokenizer")
        if self.tokenizer.pad_token is None:  # batching needs one; EOS is what generate pads with
            self.tokenizer.pad_token = self.tokenizer.eos_token
        auto_classes = [getattr(transformers, n) for n in ("AutoModelForImageTextToText", "AutoModelForVision2Seq")
                        if hasattr(transformers, n)]
        errors = []
        for auto in auto_classes:
            try:  # a ValueError ("Unrecognized configuration class ...") falls through to the next class
                model = self._weights(auto, wrap=(OSError, KeyError, TypeError))
                break
            except ValueError as exc:
                errors.append(f"{auto.__name__}: {exc}")
        else:
            raise ConfigError(f"no image-text-to-text model class for {self.path}: {' | '.join(errors)}")
        self._loaded(model, self.tokenizer)

    @property
    def _pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    # -- building prompts --

    def _prompt(self, request: Request, settings: Decoding, frames: int) -> tuple[str, list]:
        """The chat-templated prompt (ending with the assistant turn start) and its images."""
        content: list[dict[str, Any]] = []
        images: list = []
        try:
            for part in request.parts:
                if isinstance(part, Text):
                    content.append({"type": "text", "text": part.text})
                elif isinstance(part, Image):
                    images.append(load_image(part.path))
                    content.append({"type": "image"})
                elif isinstance(part, Video):
                    sampled = video_frames(part.path, frames)
                    images.extend(sampled)
                    content.extend({"type": "image"} for _ in sampled)
                elif isinstance(part, Audio):
                    raise SampleError(f"{self.name}: a vision-language model cannot read audio parts")
        except MediaError as exc:
            raise SampleError(str(exc)) from None
        if not getattr(self.processor, "chat_template", None):
            raise SampleError(f"{self.name}: the processor has no chat template")
        # Processor templates expect list content in every turn (LLaVA's iterates it), system too.
        system = [{"role": "system", "content": [{"type": "text", "text": settings.system}]}] if settings.system else []
        prompt = self.processor.apply_chat_template([*system, {"role": "user", "content": content}],
                                                    tokenize=False, add_generation_prompt=True)
        return prompt, images

    def _encode(self, texts: list[str], images: list[list], side: str):
        """One processor call for the batch, padded on ``side``; BOS is not added twice when the
        template already writes it."""
        tok = self.tokenizer
        flat = [image for row in images for image in row]
        kwargs = {}
        if tok.bos_token and all(t.startswith(tok.bos_token) for t in texts):
            kwargs["add_special_tokens"] = False
        old, tok.padding_side = tok.padding_side, side
        try:
            encoded = self.processor(text=texts, images=flat or None, padding=True, return_tensors="pt", **kwargs)
        finally:
            tok.padding_side = old
        if "token_type_ids" in encoded and not accepts(self.model, "token_type_ids"):
            del encoded["token_type_ids"]  # a generic fast tokenizer returns them; LLaVA's forward rejects them
        return encoded.to(self.model.device)

    # -- answering --

    def generate(self, requests: Sequence[Request], *, media_dir: Path) -> list[Output]:
        self.load()
        outputs: list[Output | None] = [None] * len(requests)
        groups: dict[Decoding, list[tuple[int, str, list]]] = {}
        scored: list[tuple[int, str, list, tuple[str, ...]]] = []
        for i, request in enumerate(requests):
            try:
                settings = Decoding.of(request.generation)
                frames = int(request.generation.get("video_frames") or DEFAULT_VIDEO_FRAMES)
                prompt, images = self._prompt(request, settings, frames)
            except (SampleError, TypeError, ValueError) as exc:
                outputs[i] = Output.failure(str(exc))
                continue
            if request.continuations:
                scored.append((i, prompt, images, request.continuations))
            else:
                groups.setdefault(settings, []).append((i, prompt, images))
        for settings, members in groups.items():
            self._generate_group(settings, members, outputs)
        if scored:
            self._score(scored, outputs)
        return outputs  # type: ignore[return-value]

    def _generate_group(self, settings: Decoding, members: list[tuple[int, str, list]],
                        outputs: list[Output | None]) -> None:
        encoded = self._encode([m[1] for m in members], [m[2] for m in members], "left")
        lengths = encoded["attention_mask"].sum(dim=1).tolist()
        fits = [len_ + settings.max_new_tokens <= self.max_length for len_ in lengths]
        for (i, _, _), n, ok in zip(members, lengths, fits):
            if not ok:
                outputs[i] = Output.failure(
                    f"prompt is {n} tokens (images included); with max_new_tokens={settings.max_new_tokens} "
                    f"it exceeds the model's context of {self.max_length} tokens")
        if not all(fits):
            members = [m for m, ok in zip(members, fits) if ok]
            lengths = [n for n, ok in zip(lengths, fits) if ok]
            if not members:
                return
            encoded = self._encode([m[1] for m in members], [m[2] for m in members], "left")
        results = generate_texts(self.model, self.tokenizer, encoded, settings, pad_id=self._pad_id)
        for (i, _, _), n, (text, n_new) in zip(members, lengths, results):
            outputs[i] = Output(text=text, n_input_tokens=n, n_output_tokens=n_new)

    def _score(self, scored: list[tuple[int, str, list, tuple[str, ...]]], outputs: list[Output | None]) -> None:
        import torch

        # The context split is the same for every continuation of a request (it depends only on
        # the prompt's trailing whitespace), so each context is encoded once for its length.
        contexts = [split_trailing_space(prompt, "")[0] for _, prompt, _, _ in scored]
        ctx_lengths = self._encode(contexts, [s[2] for s in scored], "right")["attention_mask"].sum(dim=1).tolist()
        rows = []  # (request index, context length, whole text, images)
        for (i, prompt, images, continuations), n_ctx in zip(scored, ctx_lengths):
            for continuation in continuations:
                context, cont = split_trailing_space(prompt, continuation)
                rows.append((i, n_ctx, context + cont, images))
        encoded = self._encode([r[2] for r in rows], [r[3] for r in rows], "right")
        lengths = encoded["attention_mask"].sum(dim=1).tolist()
        bad: dict[int, str] = {}
        for (i, n_ctx, _, _), n in zip(rows, lengths):
            if n <= n_ctx:
                bad.setdefault(i, "a continuation encodes to no tokens")
            elif n - 1 > self.max_length:
                bad.setdefault(i, f"prompt + continuation is {n} tokens (images included), more than the "
                                  f"model's context of {self.max_length} tokens")
        for i, reason in bad.items():
            outputs[i] = Output.failure(reason)
        if bad:
            keep = [k for k, r in enumerate(rows) if r[0] not in bad]
            rows = [rows[k] for k in keep]
            lengths = [lengths[k] for k in keep]
            if not rows:
                return
            encoded = self._encode([r[2] for r in rows], [r[3] for r in rows], "right")
        first = min(r[1] - 1 for r in rows)
        width = encoded["input_ids"].shape[1]
        kwargs = {"logits_to_keep": width - first} if accepts(self.model, "logits_to_keep") else {}
        offset = first if kwargs else 0
        with torch.inference_mode():
            logits = self.model(**encoded, **kwargs).logits
        ids = encoded["input_ids"].tolist()
        scores: dict[int, list[tuple[float, bool]]] = {}
        for k, ((i, n_ctx, _, _), n) in enumerate(zip(rows, lengths)):
            # Right padding: the row's real tokens are its first n ids.
            scores.setdefault(i, []).append(continuation_score(logits[k], n_ctx - 1 - offset, ids[k][n_ctx:n]))
        n_context = {s[0]: n for s, n in zip(scored, ctx_lengths)}
        for i, pairs in scores.items():
            outputs[i] = Output(logprobs=[s for s, _ in pairs], greedy=[g for _, g in pairs],
                                n_input_tokens=n_context[i])

    def provenance(self) -> Mapping[str, Any]:
        from importlib.metadata import version

        return {
            "model": "transformers AutoModelForImageTextToText",
            **self._identity(),
            "class": type(self.model).__name__ if self.model is not None else None,
            "processor": type(self.processor).__name__ if self.processor is not None else None,
            "dtype": self.loaded_dtype,
            "max_length": self.max_length,
            "transformers": version("transformers"),
        }
