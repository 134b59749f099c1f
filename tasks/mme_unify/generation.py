"""MME-Unify generation: image (FIR / TIE / TIG) or video (CIVG / TVG / VP) subtasks, each sample
measured against its reference (aba122/MME-Unify @ 0956091 ``evaluate/Evaluate_Generation_*.py``).

FIR: PSNR + LPIPS; TIE: CLIP-I vs the edited image + CLIP-T vs the instruction; TIG: CLIP-I + CLIP-T +
LPIPS; CIVG / TVG / VP: the FVD-style ResNet-50 feature distance (per-frame CLIP-T for CIVG and TVG,
as the reference logs it). The video scorer reads the generated key frames from JPEG files
(``extract_keyframes``); we read them from the video, ``frame_codec="jpeg_q95"`` replicates the JPEG
round trip. Image and video subtasks produce different modalities, so one run holds
either kind (two configs). The mapping to 0-100 scores and GS are the benchmark's rules in
:mod:`mio_eval.metrics.mme_unify`.

Two choices are classes selected in the YAML by ``_target_`` (their ``name`` is what the settings
and variants record): ``pair_resize`` how a generated image is paired with its reference for
CLIP-I / CLIP-T (:class:`MinSizePair`, the reference's; :class:`NoPairResize`) and
``video_frames`` which generated frames are scored (:class:`KeyFrames`, the reference's;
:class:`UniformFrames`); ``clip_t_variant`` is a ``metrics.clip_t`` rule (``ClipTUnclamped``, the
reference's; ``ClipTClamped``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from mio_eval.errors import ConfigError, MediaError, check_target
from mio_eval.generation import generation_settings
from mio_eval.metrics.base import MetricResult
from mio_eval.metrics.clip_t import ClipTRule, ClipTUnclamped, check_clip_t_rule
from mio_eval.metrics.mme_unify import (NORMALIZATION, family_partial, image_subtask_score, lpips_score, mean,
                                        psnr_score, result, video_subtask_score)
from mio_eval.progress import progress
from mio_eval.tasks.base import Generated, InvalidOutput, ScoreReport
from mio_eval.tasks.mme_unify.common import export_submission, first_media
from mio_eval.types import Image, Modality, Output, Request, Sample, Text, Video

__all__ = ["MMEUnifyGenerationTask", "IMAGE_SUBTASKS", "VIDEO_SUBTASKS", "PairResize", "MinSizePair", "NoPairResize",
           "FrameSampler", "KeyFrames", "UniformFrames"]

IMAGE_SUBTASKS = ("FIR", "TIE", "TIG")
VIDEO_SUBTASKS = ("CIVG", "TVG", "VP")


class PairResize:
    """How a generated image and its reference are paired for CLIP-I / CLIP-T: ``(gen, ref) ->
    (a, b)`` images; ``name`` is recorded (settings ``pair_resize``, the clip_i variant)."""

    name: ClassVar[str]

    def __call__(self, gen: str, ref: str):
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MinSizePair(PairResize):
    """MME-Unify: both resized to (min H, min W), then ``ToPILImage`` (``mul(255).byte()``: truncation)."""

    name = "min_size"

    def __call__(self, gen: str, ref: str):
        from PIL import Image as PILImage

        from mio_eval.metrics.image_quality import resize_pair

        a, b, _ = resize_pair(gen, ref, mode="min_size")
        return tuple(PILImage.fromarray((x * np.float32(255.0)).astype(np.uint8)) for x in (a, b))


class NoPairResize(PairResize):
    """Each image as read (the CLIP processor resizes it on its own)."""

    name = "none"

    def __call__(self, gen: str, ref: str):
        from mio_eval.metrics.image_quality import load_rgb

        return load_rgb(gen), load_rgb(ref)


class FrameSampler:
    """Which frames of a generated video are scored: ``(frames, num_frames) -> indices``;
    ``name`` is recorded (settings ``video_frames``, the fvd variant)."""

    name: ClassVar[str]

    def __call__(self, frames: Sequence[Any], num_frames: int) -> list[int]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class KeyFrames(FrameSampler):
    """MME-Unify ``extract_keyframes``: scene changes, else ``num_frames`` uniform frames."""

    name = "keyframes"

    def __call__(self, frames: Sequence[Any], num_frames: int) -> list[int]:
        from mio_eval.metrics.image_quality import keyframe_indices

        return list(keyframe_indices(frames, num_frames=num_frames))


class UniformFrames(FrameSampler):
    """``num_frames`` uniformly spaced frames."""

    name = "uniform"

    def __call__(self, frames: Sequence[Any], num_frames: int) -> list[int]:
        from mio_eval.metrics.image_quality import uniform_indices

        return list(uniform_indices(len(frames), num_frames))


_HERE = "mio_eval.tasks.mme_unify.generation"


class MMEUnifyGenerationTask:
    """Image (FIR / TIE / TIG) or video (CIVG / TVG / VP) generation, scored against the references."""

    scoring_keys: ClassVar[tuple[str, ...]] = ("clip", "lpips", "video_features", "clip_t_variant", "pair_resize",
                                               "psnr_resize", "video_frames", "num_frames", "all_equal_quirk",
                                               "frame_codec", "export")

    def __init__(self, *, name: str, loader, prompts: Mapping[str, str] | None = None,
                 generation: Mapping[str, Any] | None = None, clip=None, lpips=None, video_features=None,
                 clip_t_variant: ClipTRule | None = None, pair_resize: PairResize | None = None,
                 psnr_resize: str = "min_size", video_frames: FrameSampler | None = None, num_frames: int = 16,
                 all_equal_quirk: bool = True,
                 frame_codec: str = "none", export: bool = True) -> None:
        self.name = name
        self.loader = loader
        subtasks = tuple(getattr(loader, "subtasks", IMAGE_SUBTASKS))
        if set(subtasks) <= set(IMAGE_SUBTASKS):
            self.output_modality = Modality.IMAGE
        elif set(subtasks) <= set(VIDEO_SUBTASKS):
            self.output_modality = Modality.VIDEO
        else:
            raise ConfigError("one MME-Unify generation run holds image subtasks (FIR, TIE, TIG) or video subtasks "
                              f"(CIVG, TVG, VP), not both: got {', '.join(subtasks)}")
        if psnr_resize not in ("min_size", "reference"):
            raise ConfigError(f"psnr_resize must be min_size or reference, got {psnr_resize!r}")
        self.pairing = check_target(MinSizePair() if pair_resize is None else pair_resize, PairResize,
                                    what="task.pair_resize", kind="pair resize", choices="MinSizePair, NoPairResize",
                                    module=_HERE, hint=f"e.g. task.pair_resize._target_={_HERE}.NoPairResize")
        self.frame_sampler = check_target(KeyFrames() if video_frames is None else video_frames, FrameSampler,
                                          what="task.video_frames", kind="frame sampler",
                                          choices="KeyFrames, UniformFrames", module=_HERE,
                                          hint=f"e.g. task.video_frames._target_={_HERE}.UniformFrames")
        if frame_codec not in ("none", "jpeg_q95"):  # metrics.image_quality.FRAME_CODECS
            raise ConfigError(f"frame_codec must be none or jpeg_q95, got {frame_codec!r}")
        self.subtasks = subtasks
        self.prompts = {"FIR": "Reconstruct this image as faithfully as possible.", "TIE": "{prompt}",
                        "TIG": "{prompt}", "CIVG": "{prompt}", "TVG": "{prompt}", "VP": "{prompt}", **(prompts or {})}
        self.generation = generation_settings(generation)
        self.clip, self.lpips, self.video_features = clip, lpips, video_features
        self.clip_t_rule = check_clip_t_rule(ClipTUnclamped() if clip_t_variant is None else clip_t_variant)
        self.clip_t_variant, self.pair_resize, self.psnr_resize = self.clip_t_rule.name, self.pairing.name, psnr_resize
        self.video_frames, self.num_frames = self.frame_sampler.name, int(num_frames)  # the recorded names
        self.all_equal_quirk = bool(all_equal_quirk)
        self.frame_codec = frame_codec
        self.export = export
        reads_image = any(s in ("FIR", "TIE", "CIVG", "VP") for s in subtasks)
        self.input_modalities = frozenset({Modality.TEXT} | ({Modality.IMAGE} if reads_image else set()))

    def _needs(self) -> dict[str, Any]:
        needs = {}
        if {"TIE", "TIG", "CIVG", "TVG"} & set(self.subtasks):
            needs["clip"] = self.clip
        if {"FIR", "TIG"} & set(self.subtasks):
            needs["lpips"] = self.lpips
        if set(VIDEO_SUBTASKS) & set(self.subtasks):
            needs["video_features"] = self.video_features
        return needs

    def preflight(self) -> None:
        for key, scorer in self._needs().items():
            if scorer is None:
                raise ConfigError(f"task {self.name}: task.{key} is required to score {', '.join(self.subtasks)}")
            scorer.load()

    def samples(self) -> list[Sample]:
        return self.loader()

    def request(self, sample: Sample) -> Request:
        code = sample.metadata["subtask"]
        text = self.prompts[code].format(prompt=sample.metadata["prompt"])
        parts = tuple(p for p in sample.parts if not isinstance(p, Text)) + (Text(text),)
        return Request(sample_id=sample.id, parts=parts, output_modality=self.output_modality,
                       generation=self.generation)

    def prediction(self, sample: Sample, output: Output) -> str:
        kind = Image if self.output_modality is Modality.IMAGE else Video
        path = first_media(output, kind)
        if path is None:
            found = ", ".join(sorted(m.value for m in output.modalities())) or "nothing"
            raise InvalidOutput(f"expected a generated {self.output_modality.value}, got {found}")
        return path

    # -- per-sample scoring --------------------------------------------------------------------

    def _image_row(self, code: str, gen: str, ref: str, prompt: str) -> dict[str, Any]:
        from mio_eval.metrics.clip_score import clip_image_similarity, clip_text_similarity
        from mio_eval.metrics.image_quality import psnr

        row: dict[str, Any] = {}
        if code == "FIR":
            row["psnr"] = psnr(gen, ref, resize=self.psnr_resize)
            row["lpips"] = self.lpips(gen, ref)
            row["score"] = float(np.mean([psnr_score(row["psnr"]), lpips_score(row["lpips"])]))
            return row
        g, r = self.pairing(gen, ref)
        row["clip_i"] = clip_image_similarity([g], [r], self.clip)[0]
        row["clip_t"] = clip_text_similarity([g], [prompt], self.clip, variant=self.clip_t_rule)[0]
        parts = [row["clip_i"], row["clip_t"]]
        if code == "TIG":
            # the reference feeds LPIPS the resized float tensors, not the uint8 PIL copies made for CLIP
            row["lpips"] = self.lpips(gen, ref)
            parts.append(lpips_score(row["lpips"]))
        row["score"] = float(np.mean(parts))
        return row

    def _video_row(self, code: str, gen: str, ref: str | None, prompt: str) -> dict[str, Any]:
        from mio_eval.metrics.clip_score import clip_text_similarity
        from mio_eval.metrics.image_quality import (frame_codec, read_video_frames, uniform_indices,
                                                    video_feature_distance)

        frames = read_video_frames(gen)
        pick = self.frame_sampler(frames, self.num_frames)
        chosen = [frame_codec(frames[i], self.frame_codec) for i in pick]
        row: dict[str, Any] = {"n_frames": len(chosen)}
        if ref is None:  # the reference's _validate_t2v_item skips such items: no distance, no CLIP-T
            row["fvd"] = None
            row["note"] = "no reference video in the annotations: distance and CLIP-T not computed"
            return row
        if code in ("CIVG", "TVG"):
            # CLIPMetrics.calculate_similarity keeps the first 70 words before tokenizing (77 tokens)
            text = " ".join(prompt.split()[:70])
            row["clip_t"] = float(np.mean(clip_text_similarity(chosen, [text] * len(chosen), self.clip,
                                                               variant=self.clip_t_rule)))
        ref_frames = read_video_frames(ref)
        ref_chosen = [ref_frames[i] for i in uniform_indices(len(ref_frames), len(chosen))]
        row["fvd"] = video_feature_distance(chosen, ref_chosen, self.video_features)
        return row

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        rows, exported = [], []
        for g in progress(generated, desc="scoring: MME-Unify generation"):
            meta = g.sample.metadata
            code = meta["subtask"]
            item = dict(meta["item"])
            if g.error is not None:
                rows.append({"id": g.sample.id, "error": g.error, "stage": "generate", "subtask": code})
                exported.append({**item, "output": None, "error": g.error})
                continue
            gen = first_media(g.output, Image if self.output_modality is Modality.IMAGE else Video)
            exported.append({**item, "output": gen})
            ref = g.sample.targets[0] if g.sample.targets else None
            try:
                if self.output_modality is Modality.IMAGE:
                    if ref is None:
                        raise MediaError("no reference image in the annotations")
                    row = self._image_row(code, gen, ref, meta["prompt"])
                else:
                    row = self._video_row(code, gen, ref, meta["prompt"])
            except MediaError as exc:
                rows.append({"id": g.sample.id, "error": f"score: {exc}", "stage": "score", "subtask": code})
                continue
            rows.append({"id": g.sample.id, "error": None, "subtask": code, **row})

        metrics: list[MetricResult] = []
        for code in self.subtasks:
            ok = [r for r in rows if r["subtask"] == code and not r["error"]]
            for key, higher, scale, prov in (
                    ("psnr", True, 1.0, f"skimage PSNR, resize={self.psnr_resize} (min_size = MME-Unify torch bilinear, "
                                        "[0,1], data_range 1; reference = PIL bilinear to the reference, data_range 255)"),
                    ("lpips", False, 1.0, "lpips package LPIPS"),
                    ("clip_i", True, 1.0, "100*cos of CLIP image embeddings, unclamped"),
                    ("clip_t", True, 1.0, f"CLIP-T variant {self.clip_t_variant}"),
                    ("fvd", False, 1.0, "MME-Unify FVD-style: squared L2 of frame-mean ResNet-50 features")):
                values = [r[key] for r in ok if r.get(key) is not None]
                if values or any(key in r for r in ok):
                    metrics.append(result(f"{key}/{code}", mean(values), len(values), higher=higher, scale=scale,
                                           variant=self._variant(key), provenance=prov))
            if code in VIDEO_SUBTASKS:
                raw = [r["fvd"] for r in ok if r.get("fvd") is not None]
                metrics.append(video_subtask_score(code, raw, all_equal_quirk=self.all_equal_quirk))
            else:
                metrics.append(image_subtask_score(code, [r["score"] for r in ok]))
        metrics.append(family_partial("GS_partial", metrics, variant=NORMALIZATION,
                                      provenance="mean of this run's generation subtask scores; GS = mean over all six "
                                                 "(mme_unify_scores)", subtasks=list(self.subtasks)))
        judges = [dict(s.provenance()) for s in self._needs().values() if s is not None]
        settings: dict[str, Any] = {"clip_t_variant": self.clip_t_variant, "pair_resize": self.pair_resize,
                                    "psnr_resize": self.psnr_resize, "video_frames": self.video_frames,
                                    "num_frames": self.num_frames, "all_equal_quirk": self.all_equal_quirk,
                                    "frame_codec": self.frame_codec,
                                    "normalization": NORMALIZATION}
        artifacts = (export_submission(f"generation_{self.output_modality.value}", exported, settings)
                     if self.export else {})
        return ScoreReport(metrics=tuple(metrics), per_sample=tuple(rows), judges=tuple(judges), settings=settings,
                           artifacts=artifacts)

    def _variant(self, key: str) -> str:
        if key == "lpips" and self.lpips is not None:
            return self.lpips.variant
        return {"psnr": f"resize={self.psnr_resize}", "clip_i": f"cosine_x100/pair_resize={self.pair_resize}",
                "clip_t": self.clip_t_variant,
                "fvd": f"resnet50_sqeuclid/{self.video_frames}/{self.frame_codec}"}.get(key, key)

