"""MIO (MIO-7B-Instruct / MIO-7B-Base) from a local checkpoint directory: text, images, video
frames and speech in; text, images and speech out; continuations scored.

What is MIO's own behaviour (MIO-Team/MIO @ 6c0b5e6, ``infer.py`` and ``tokenization_mio.py``)
and what is ours:

* LLM: ``AutoModelForCausalLM.from_pretrained(path)`` and MIO's slow ``LlamaTokenizer``, offline
  through ``hf_base.HFAdapter``. dtype and device are settings (MIO: fp16 everywhere; fp32 is the
  CPU default here).
* Prompts (``prompts.mio_prompt``, MIO's byte for byte): one template row per (variant, kind);
  media placeholders are then replaced by ``<image><img…>×32</image>`` and ``<spch><spch…>…</spch>``
  (speech input = content codes only) from the codecs (``codecs``).
* Ids are looked up in the tokenizer, never hard-coded. Instruct stops at ``<|im_end|>`` (MIO's
  hard-coded 7), Base at the tokenizer's EOS. The prompt string already starts with the BOS string
  and is encoded with ``add_special_tokens=False``, so there is exactly one BOS even when the
  tokenizer adds one by default (MIO would then have two).
* A prompt longer than the model's context is that sample's error (MIO truncates on the right,
  losing the assistant starter); ``max_new_tokens`` is capped to what the context leaves (counted
  in provenance).
* Batched LEFT-padded ``generate``; only the new ids are parsed (MIO decodes prompt + output and
  splits strings), with the tag a Base prompt ended with put back in front.
* Output parsing on the generated tokens (``blocks``): irregular blocks are repaired by a named
  policy or are an invalid output, never an exception. Modality tokens in a text answer are
  stripped and counted. Repairs and counts travel with each output (``Output.provenance``:
  ``counts``, ``repairs``), so they are stored and survive a resume; ``metrics.json`` sums them
  over the run's stored outputs (``model_provenance.outputs``, ``reports_output_provenance``).
* Decoding settings come from ``Request.generation`` (the tasks hold MIO's per-modality values:
  text 5 beams; speech sampling top-p 0.7...). As in MIO, ``top_k=0`` when sampling;
  ``length_penalty`` is passed when given.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.errors import ConfigError, MediaError
from mio_eval.keyframes import VIDEO_FRAME_MODES
from mio_eval.media import output_path, save_audio
from mio_eval.models import padded_sdpa
from mio_eval.models.hf_base import (Decoding, HFAdapter, SampleError, ScoreRow, config_name_or_path, cut_at_stop,
                                     left_pad, score_rows, split_trailing_space)
from mio_eval.models.mio.blocks import Block, check_policy, output_provenance, parse_image, parse_speech, split_blocks
from mio_eval.models.mio.inputs import MIOInputs
from mio_eval.models.mio.prompts import DEFAULT_VIDEO_FRAMES, VARIANTS, MIOPrompt, request_kind
from mio_eval.types import Audio, Image, Modality, Output, Request

__all__ = ["MIOAdapter"]


@dataclass(frozen=True)
class _Job:
    index: int
    ids: list[int]
    prompt: MIOPrompt
    capped: bool = False  # max_new_tokens was cut to what the context leaves


class MIOAdapter(MIOInputs, HFAdapter):
    """A MIO checkpoint directory (real or ``mio_tiny``); see the module docstring."""

    inputs = frozenset({Modality.TEXT, Modality.IMAGE, Modality.AUDIO, Modality.VIDEO})
    outputs = frozenset({Modality.TEXT, Modality.IMAGE, Modality.AUDIO})
    supports_loglikelihood = True
    reports_output_provenance = True  # repairs and counts per sample, in Output.provenance
    what = "MIO"

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
    ) -> None:  # knobs spelled out (not **kwargs): the signature is the YAML's contract
        if variant not in VARIANTS:
            raise ConfigError(f"MIO variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        check_policy("speech_policy", speech_policy)
        check_policy("image_policy", image_policy)
        if int(video_frames) < 1:
            raise ConfigError(f"video_frames must be >= 1, got {video_frames}")
        if video_frame_mode not in VIDEO_FRAME_MODES:
            raise ConfigError(f"video_frame_mode must be one of {', '.join(VIDEO_FRAME_MODES)}, got {video_frame_mode!r}")
        super().__init__(path, name=name, dtype=dtype, device=device, max_length=max_length)
        self.variant = variant
        self.attn_implementation = attn_implementation
        self.video_frames = int(video_frames)
        self.video_frame_mode = video_frame_mode
        self.speech_policy = speech_policy
        self.image_policy = image_policy
        self.image_seed = int(image_seed)
        self.stop_id: int | None = None
        self._speech = None
        self._image = None
        self._codec_lock = threading.Lock()  # codecs load on first use, from either thread (prefetch)

    # -- loading --

    def _load(self) -> None:
        from transformers import AutoModelForCausalLM, LlamaTokenizer

        # the slow sentencepiece tokenizer MIO uses (the fast/5.x one tokenises differently)
        tokenizer = self._pretrained(LlamaTokenizer)
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
        # Unset: transformers' SDPA with a cheap padded causal mask (same mask, no per-step vmap).
        kwargs = {"attn_implementation": self.attn_implementation or padded_sdpa.register()}
        model = self._weights(AutoModelForCausalLM, **kwargs)
        if model.get_input_embeddings().num_embeddings < len(tokenizer):
            raise ConfigError(f"MIO: the model's vocabulary ({model.get_input_embeddings().num_embeddings}) is "
                              f"smaller than its tokenizer's ({len(tokenizer)})")
        self.tokenizer = tokenizer
        self._loaded(model, tokenizer)

    @property
    def _pad_id(self) -> int:
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    # -- answering --

    def generate(self, requests: Sequence[Request], *, media_dir: Path,
                 prepared: Sequence[Any] | None = None) -> list[Output]:
        """``prepared``: ``prepare(requests)``'s items (``mio_eval.prefetch``); else prepared here."""
        self.load()
        outputs: list[Output | None] = [None] * len(requests)
        groups: dict[tuple, list[_Job]] = {}
        rows: list[ScoreRow] = []
        for i, request in enumerate(requests):
            try:
                settings = Decoding.of(request.generation)
                prompt, text, ids = self.prepared(prepared[i] if prepared is not None else self._prepare_one(request))
                if request.continuations:
                    rows.extend(self._rows(i, prompt, text, request.continuations))
                    continue
                if len(ids) >= self.max_length:
                    raise SampleError(f"prompt is {len(ids)} tokens, not shorter than the model's context of "
                                      f"{self.max_length} tokens")
                room = self.max_length - len(ids)
                capped = settings.max_new_tokens > room
                if capped:
                    settings = replace(settings, max_new_tokens=room)
                extra = tuple((k, request.generation[k]) for k in ("length_penalty", "top_k")
                              if request.generation.get(k) is not None)
                groups.setdefault((settings, extra), []).append(_Job(i, ids, prompt, capped))
            except SampleError as exc:
                outputs[i] = Output.failure(str(exc))
        for (settings, extra), jobs in groups.items():
            for job, new_ids in zip(jobs, self._generate_ids([j.ids for j in jobs], settings, dict(extra))):
                outputs[job.index] = self._answer(requests[job.index], job, new_ids, settings, Path(media_dir))
        outputs_scored = self._score([r for r in rows if outputs[r.request] is None])
        for i, output in outputs_scored.items():
            outputs[i] = output
        return outputs  # type: ignore[return-value]

    def _generate_ids(self, prompts: list[list[int]], settings: Decoding, extra: dict) -> list[list[int]]:
        import torch

        pad = self._pad_id
        input_ids, mask = left_pad(prompts, pad)
        kwargs = settings.generate_kwargs()
        if settings.do_sample:
            kwargs["top_k"] = 0  # MIO's generation_config (HF's default would be top_k=50)
        kwargs.update(extra)
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        input_ids, mask = input_ids.to(self.model.device), mask.to(self.model.device)
        with torch.inference_mode():
            if settings.num_beams > 1 and input_ids.shape[1] > 1:
                kwargs["past_key_values"] = self._prefill(input_ids, mask, settings.num_beams)
            out = self.model.generate(input_ids=input_ids, attention_mask=mask, pad_token_id=pad,
                                      eos_token_id=self.stop_id, **kwargs)
        results = []
        for row in out[:, input_ids.shape[1]:].tolist():  # only the new ids (MIO decodes prompt + output)
            end = next((k for k, t in enumerate(row) if t == self.stop_id), None)
            results.append(row if end is None else row[:end + 1])
        return results

    def _prefill(self, input_ids, mask, beams: int):
        """The KV cache of every prompt but its last token, computed once per prompt and repeated
        for its ``beams`` beams. transformers' beam search repeats each prompt ``beams`` times and
        then runs the prefill on all copies (5x the prompt's compute for MIO's 5 beams); given this
        cache, ``generate`` feeds only the last prompt token. Positions are the ones ``generate``
        derives from the LEFT-padded mask (``prepare_inputs_for_generation``)."""
        from transformers import DynamicCache

        positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 1)
        cache = DynamicCache()
        self.model(input_ids=input_ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, :-1],
                   past_key_values=cache, use_cache=True, logits_to_keep=1)
        cache.batch_repeat_interleave(beams)
        return cache

    def _answer(self, request: Request, job: _Job, new_ids: list[int], settings: Decoding, media_dir: Path) -> Output:
        ids = [t for t in new_ids if t != self.stop_id]
        tokens = self.tokenizer.convert_ids_to_tokens(ids)
        if job.prompt.opened:  # the Base prompt opened the block
            tokens = [job.prompt.opened, *tokens]
        text_at, blocks, stray = split_blocks(tokens)
        wanted = {request.output_modality}
        if request_kind(request) == "interleaved":
            wanted |= {Modality.IMAGE, Modality.AUDIO}
        stray += sum(len(b.codes) + 1 + b.terminated for b in blocks if b.modality not in wanted)
        counts: Counter = Counter()
        if job.capped:
            counts["max_new_tokens_capped"] += 1
        if stray:
            counts["stray_modality_tokens"] += stray
            counts["samples_with_stray_tokens"] += 1
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
            counts[f"repair_{name}"] += 1
        n_out = len(new_ids)
        if request.output_modality != Modality.TEXT and not any(p.modality == request.output_modality for p in media):
            counts["invalid_outputs"] += 1
            what = "speech" if request.output_modality == Modality.AUDIO else request.output_modality.value
            reason = "; ".join(problems) or f"no {what} block in {n_out} generated tokens"
            return Output(error=f"invalid output: {reason}", n_input_tokens=len(job.ids), n_output_tokens=n_out,
                          provenance=output_provenance(counts, repairs))
        if problems:
            counts["invalid_blocks"] += len(problems)
        return Output(text=text if (text or request.output_modality == Modality.TEXT) else None, media=tuple(media),
                      n_input_tokens=len(job.ids), n_output_tokens=n_out, provenance=output_provenance(counts, repairs))

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
            rows.append(ScoreRow(i, tuple(context + tail), len(context)))
        return rows

    def _score(self, rows: list[ScoreRow]) -> dict[int, Output]:
        """Every row in one RIGHT-padded forward pass (as ``hf_lm``)."""
        return score_rows(self.model, rows, pad_id=self._pad_id)

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
            "dtype": self.loaded_dtype,
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
        return info
