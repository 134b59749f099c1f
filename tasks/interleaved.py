"""Interleaved output: visual storytelling on VIST (MIO §E.5; GILL's VIST protocol).

The model sees the first ``n_context`` steps of a story (each step's text, with its image when
``context_images``), then the text of each remaining step, and is asked to continue the story
with one image per remaining step (``Request.kind = "interleaved"``: MIO may interleave text and
images; its images are taken in order). GILL's setting is 5 captions + 4 images -> the 5th image
(``n_context: 4``); more target steps score each generated image against its own step.

Scores (CLIP, x100, unclamped unless said):

* ``clip_i`` — GILL ``evals/compute_clip_similarity_vist.py``: cosine of the CLIP image embeddings
  of generated image k and the ground-truth image of target step k, mean over steps then stories;
* ``step_alignment`` — per-step text-image alignment: ``100 * cos(generated image k, text of
  target step k)`` (CLIP-T, MME-Unify style; ``step_alignment_clamped``: ``max(., 0)``);
* ``image_consistency`` — cross-step consistency: mean cosine between consecutive images of the
  story as shown and generated (the last context image and the generated ones, or the generated
  ones alone without context images); descriptive, no published reference;
* ``steps_complete`` — fraction of stories with at least as many images as target steps (extra
  images are ignored; missing ones leave their step unscored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from mio_eval.errors import ConfigError, MediaError
from mio_eval.generation import generation_settings
from mio_eval.metrics.base import MetricResult
from mio_eval.tasks.base import Generated, InvalidOutput, ScoreReport
from mio_eval.types import Image, Modality, Output, Request, Sample, Text

__all__ = ["StoryTask", "DEFAULT_STORY_PROMPT"]

DEFAULT_STORY_PROMPT = "Continue the visual story. For each of the remaining steps, generate an image that shows it."


class StoryTask:
    output_modality = Modality.IMAGE
    scoring_keys: ClassVar[tuple[str, ...]] = ("clip",)

    def __init__(self, *, name: str, loader: Callable[[], list[Sample]], n_context: int = 4,
                 context_images: bool = True, prompt: str = DEFAULT_STORY_PROMPT,
                 generation: Mapping[str, Any] | None = None, clip=None) -> None:
        if n_context < 0:
            raise ConfigError(f"task {name}: n_context must be >= 0")
        self.name = name
        self.loader = loader
        self.n_context = int(n_context)
        self.context_images = bool(context_images)
        self.prompt = prompt
        self.generation = generation_settings(generation)
        self.clip = clip
        shows_images = context_images and n_context > 0
        self.input_modalities = frozenset({Modality.TEXT} | ({Modality.IMAGE} if shows_images else set()))

    def preflight(self) -> None:
        if self.clip is None:
            raise ConfigError(f"task {self.name}: task.clip is required to score")
        self.clip.load()

    def samples(self) -> list[Sample]:
        samples = self.loader()
        short = [s.id for s in samples if len(s.metadata["steps"]) <= self.n_context]
        if short:
            raise ConfigError(f"task {self.name}: story {short[0]} has no step after the "
                              f"{self.n_context} context steps")
        return samples

    def request(self, sample: Sample) -> Request:
        steps = sample.metadata["steps"]
        parts: list[Any] = [Text(self.prompt + "\n")]
        for k, step in enumerate(steps[: self.n_context], 1):
            parts.append(Text(f"Step {k}: {step['text']}\n"))
            if self.context_images:
                parts.append(Image(step["image"]))
        for k, step in enumerate(steps[self.n_context:], self.n_context + 1):
            parts.append(Text(f"Step {k}: {step['text']}\n"))
        return Request(sample_id=sample.id, parts=tuple(parts), output_modality=Modality.IMAGE,
                       generation=self.generation, kind="interleaved")

    def prediction(self, sample: Sample, output: Output) -> dict[str, Any]:
        images = [p.path for p in output.media if isinstance(p, Image)]
        if not images:
            raise InvalidOutput("expected generated images, got " + (
                ", ".join(sorted(m.value for m in output.modalities())) or "nothing"))
        return {"n_images": len(images), "text": output.text}

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        from mio_eval.media import load_image
        from mio_eval.metrics.clip_score import cosine_rows

        if self.clip is None:
            raise ConfigError(f"task {self.name}: task.clip is required to score")
        rows: list[dict[str, Any]] = []
        clip_i, align, align_c, consistency, complete = [], [], [], [], []
        for g in generated:
            steps = g.sample.metadata["steps"]
            targets = steps[self.n_context:]
            row: dict[str, Any] = {"id": g.sample.id, "error": g.error, "n_target_steps": len(targets)}
            rows.append(row)
            if g.error is not None:
                row["stage"] = "generate"
                continue
            paths = [p.path for p in g.output.media if isinstance(p, Image)][: len(targets)]
            try:
                gen = [load_image(p) for p in paths]
                refs = [load_image(t["image"]) for t in targets[: len(gen)]]
                shown = ([load_image(steps[self.n_context - 1]["image"])]
                         if self.context_images and self.n_context else [])
            except MediaError as exc:
                row.update(error=f"score: {exc}", stage="score")
                continue
            feats = self.clip.encode_images(gen)
            ci = cosine_rows(feats, self.clip.encode_images(refs))
            ct = cosine_rows(feats, self.clip.encode_texts([t["text"] for t in targets[: len(gen)]]))
            chain = np.concatenate([self.clip.encode_images(shown), feats]) if shown else feats
            row.update(n_images=len(gen), clip_i=[100.0 * float(x) for x in ci],
                       step_alignment=[100.0 * float(x) for x in ct])
            clip_i.append(float(np.mean(ci)))
            align.append(float(np.mean(ct)))
            align_c.append(float(np.mean(np.maximum(ct, 0.0))))
            complete.append(len(gen) >= len(targets))
            if len(chain) > 1:
                pair = cosine_rows(chain[:-1], chain[1:])
                row["image_consistency"] = 100.0 * float(np.mean(pair))
                consistency.append(float(np.mean(pair)))
        model = self.clip.model_id

        def result(name, values, variant, provenance, scale=100.0):
            return MetricResult(name=name, value=float(np.mean(values)) if values else None, higher_is_better=True,
                                variant=variant, provenance=provenance, scale=scale, n=len(values),
                                extra={"model": model})

        metrics = (
            result("clip_i", clip_i, "cosine_unclamped", "GILL compute_clip_similarity_vist.py: CLIP image cosine "
                   "of generated vs ground-truth step image; mean over steps, then stories"),
            result("step_alignment", align, "mme_unify", "100*cos(generated image, its step text), unclamped"),
            result("step_alignment_clamped", align_c, "torchmetrics", "max(100*cos(generated image, step text), 0)"),
            result("image_consistency", consistency, "consecutive_clip_i",
                   "mean CLIP-I cosine of consecutive story images (last context image + generated)"),
            result("steps_complete", [float(c) for c in complete], "count", "stories with an image for every target "
                   "step", scale=100.0),
        )
        settings = {"n_context": self.n_context, "context_images": self.context_images, "prompt": self.prompt,
                    "text_field": getattr(self.loader, "text_field", None),
                    "stories_dropped_for_missing_images": getattr(self.loader, "dropped", None), "clip_model": model}
        judge = {"model": self.clip.model_id, **dict(self.clip.provenance())}
        return ScoreReport(metrics=metrics, per_sample=tuple(rows), judges=(judge,),
                           settings=settings)
