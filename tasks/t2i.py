"""Text-to-image on caption datasets (MIO Table 4 and Table 13): caption in, image out, scored
against the dataset's own image.

Data: any image-caption loader (Karpathy's COCO / Flickr30k splits, COCO captions files, their
local HF copies) wrapped by :class:`CaptionToImageSamples`, which turns each image with its
references into one text-to-image sample: the prompt is **one** of the image's captions and the
target is the image. Which caption (``caption="first"`` by default, ``"index"`` with
``caption_index``, or ``"random"`` seeded per image) and which images form the split are both
UNVERIFIED for MIO / SEED-LLaMA / GILL (none of their papers or repositories states them; GILL's
``evals/compute_clip_similarity_vist.py``, kohjingyu/gill @ 4600b71, covers VIST only), so both
are recorded: the caption index
and text on every per-sample row, and the whole split as the artifact ``t2i_split.json`` with its
SHA-256 in ``metrics.json`` (``scoring.split_sha256``).

The task hands the bare caption to the model (``prompt: "{caption}"``) with ``Request.kind =
"t2i"``: an adapter with native templates (MIO: "Please generate an image according to the
caption.\\n{caption}") adds its own. The generated image is saved as PNG under the run
directory with a content-addressed name (``media/t2i/<sha256 of the PNG bytes, 16 hex>.png``;
an adapter that already writes ``<digest>.png`` is kept as is); predictions point at that file.

Metrics (all per sample in ``scores.jsonl``; means in ``metrics.json``):

* ``clip_i``: GILL / SEED-LLaMA CLIP-I, cosine of the CLIP image embeddings of the generated and
  the ground-truth image, **unclamped**, ``value`` = mean cosine, ``scale`` 100 (ViT-L/14 by
  default; GILL uses HF ``openai/clip-vit-large-patch14`` through ``CLIPProcessor``).
* ``clip_t`` (``100 * cos(image, caption)``, unclamped, MME-Unify) and ``clip_t_clamped``
  (``max(100 * cos, 0)``, torchmetrics ``CLIPScore``), both against the prompt caption.
* ``ssim``: :func:`mio_eval.metrics.ssim.ssim` with its pinned settings (generated resized to the
  reference, bilinear; RGB; data_range 255; ``ssim_variant`` by ``_target_``: ``SkimageWindow`` or
  ``GaussianWindow`` (Wang 2004), recorded as skimage / wang2004).
* ``aesthetic`` (optional, ``score_aesthetic: true``): Aesthetic Predictor V2.5 on the generated image.

A generation failure or an unreadable image on either side is that sample's error (GILL skips
such pairs, which changes the denominator: ``n`` says how many entered each mean).
"""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from mio_eval.atomic import atomic_path
from mio_eval.errors import ConfigError, MediaError
from mio_eval.metrics.base import MetricResult
from mio_eval.tasks.base import Generated, InvalidOutput, ScoreReport, TaskBase, media_path
from mio_eval.types import Image, Modality, Output, Request, Sample, Text

__all__ = ["CaptionToImageSamples", "TextToImageTask", "CAPTION_POLICIES", "png_copy", "image_clip_scores"]

SPLIT_FILE = "t2i_split.json"  # the artifact recording the evaluated split (record_split)
CAPTION_POLICIES = ("first", "index", "random")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class CaptionToImageSamples:
    """Wrap an image-caption loader (image part + reference captions) into text-to-image samples.

    Each sample: ``parts = (Text(caption),)``, ``targets = (image path,)``, metadata with the
    image id, file name, the caption's index and text and how many captions the image has."""

    def __init__(self, *, source: Callable[[], list[Sample]], caption: str = "first", caption_index: int = 0,
                 seed: int = 0, max_samples: int | None = None) -> None:
        if caption not in CAPTION_POLICIES:
            raise ConfigError(f"caption must be one of {', '.join(CAPTION_POLICIES)}, got {caption!r}")
        self.source = source
        self.caption = caption
        self.caption_index = int(caption_index)
        self.seed = int(seed)
        self.max_samples = max_samples
        self.expected_size = getattr(source, "expected_size", None)

    @property
    def policy(self) -> str:
        return {"first": "first caption (index 0)", "index": f"caption index {self.caption_index}",
                "random": f"one caption per image, random.Random('{self.seed}:<id>')"}[self.caption]

    def _pick(self, sample: Sample) -> int:
        n = len(sample.targets)
        if self.caption == "first":
            return 0
        if self.caption == "index":
            if self.caption_index >= n:
                raise ConfigError(f"image {sample.id} has {n} captions; caption_index={self.caption_index}")
            return self.caption_index
        return random.Random(f"{self.seed}:{sample.id}").randrange(n)

    def __call__(self) -> list[Sample]:
        images = self.source()
        if self.max_samples is not None:
            images = images[: self.max_samples]
        samples = []
        for s in images:
            pictures = [p for p in s.parts if isinstance(p, Image)]
            if len(pictures) != 1 or not s.targets:
                raise ConfigError(f"sample {s.id}: a caption sample needs one image and at least one caption")
            k = self._pick(s)
            caption = " ".join(str(s.targets[k]).split())
            samples.append(Sample(id=s.id, parts=(Text(caption),), targets=(pictures[0].path,), metadata={
                **{key: s.metadata[key] for key in ("image_id", "file_name", "dataset") if key in s.metadata},
                "caption_index": k, "caption": caption, "n_captions": len(s.targets), "image": pictures[0].path}))
        return samples


def png_copy(path: str | Path) -> str:
    """The generated image as a content-addressed PNG: ``<dir>/t2i/<sha256[:16]>.png`` (the file
    itself when it already is ``<digest>.png``). Unreadable -> MediaError."""
    from mio_eval.media import load_image

    src = Path(path)
    data = src.read_bytes() if src.is_file() else b""
    if not data.startswith(_PNG_MAGIC):
        image = load_image(src)  # MediaError when missing or undecodable
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        data = buf.getvalue()
    else:
        load_image(src)  # a truncated PNG is an error, not a prediction
    digest = hashlib.sha256(data).hexdigest()[:16]
    if src.stem == digest and src.suffix == ".png":
        return str(src)
    target = (src.parent if src.parent.name == "t2i" else src.parent / "t2i") / f"{digest}.png"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
    return str(target)


def image_clip_scores(encoder, generated: Sequence[Any], references: Sequence[Any] | None,
                      texts: Sequence[str] | None) -> dict[str, np.ndarray]:
    """Cosines (not x100) of generated images with reference images and/or texts, encoding the
    generated images once: ``{"clip_i": (n,), "clip_t": (n,)}``."""
    from mio_eval.metrics.clip_score import cosine_rows

    out: dict[str, np.ndarray] = {}
    if not generated:
        return {"clip_i": np.zeros(0), "clip_t": np.zeros(0)}
    gen = encoder.encode_images(list(generated))
    if references is not None:
        out["clip_i"] = cosine_rows(gen, encoder.encode_images(list(references)))
    if texts is not None:
        out["clip_t"] = cosine_rows(gen, encoder.encode_texts(list(texts)))
    return out


def _mean(name: str, values: Sequence[float], *, variant: str, provenance: str, scale: float = 1.0,
          **extra: Any) -> MetricResult:
    n = len(values)
    return MetricResult(name=name, value=float(np.mean(values)) if n else None, higher_is_better=True,
                        variant=variant, provenance=provenance, scale=scale, n=n, extra=extra)


def split_record(samples: Sequence[Sample]) -> tuple[list[dict[str, Any]], str]:
    """The split as written to ``t2i_split.json`` and the SHA-256 of its ids and captions."""
    rows = [{"id": s.id, "image_id": s.metadata.get("image_id"), "file_name": s.metadata.get("file_name"),
             "reference": s.targets[0] if s.targets else None, "caption_index": s.metadata.get("caption_index"),
             "caption": s.metadata.get("caption")} for s in samples]
    key = "\n".join(f"{r['id']}\t{r['caption_index']}\t{r['caption']}" for r in rows)
    return rows, hashlib.sha256(key.encode()).hexdigest()


class TextToImageTask(TaskBase):
    """Caption -> image; CLIP-I / CLIP-T (both variants) / SSIM / optional aesthetics."""

    output_modality = Modality.IMAGE
    input_modalities = frozenset({Modality.TEXT})
    scoring_keys: ClassVar[tuple[str, ...]] = ("clip", "ssim_variant", "ssim_color", "aesthetic", "score_aesthetic",
                                               "record_split")

    def __init__(self, *, name: str, loader: Callable[[], list[Sample]], prompt: str = "{caption}",
                 generation: Mapping[str, Any] | None = None, clip=None, ssim_variant: Any = None,
                 ssim_color: str = "rgb", aesthetic=None, score_aesthetic: bool | None = None,
                 record_split: bool = True) -> None:
        from mio_eval.metrics.ssim import SSIM
        from mio_eval.metrics.ssim_windows import SkimageWindow, check_ssim_window

        self._task(name=name, loader=loader, prompt=prompt, generation=generation, placeholders=("caption",))
        self.clip = clip
        self.ssim_window = check_ssim_window(SkimageWindow() if ssim_variant is None else ssim_variant)
        self.ssim_variant, self.ssim_color = self.ssim_window.name, ssim_color  # the recorded names
        self._ssim = SSIM(variant=self.ssim_window, color=ssim_color)  # validates the options
        # ``score_aesthetic`` None: score whenever a predictor is given; False: never (the config
        # builds the predictor cheaply either way, so the switch is one override).
        if score_aesthetic is None:
            score_aesthetic = aesthetic is not None
        if score_aesthetic and aesthetic is None:
            raise ConfigError(f"task {name}: score_aesthetic=true needs task.aesthetic")
        self.aesthetic = aesthetic if score_aesthetic else None
        self.record_split = bool(record_split)
        self._samples: list[Sample] | None = None

    def preflight(self) -> None:
        for scorer in (self.clip, self.aesthetic):
            if scorer is not None:
                scorer.load()

    def samples(self) -> list[Sample]:
        self._samples = self.loader()
        return self._samples

    def request(self, sample: Sample) -> Request:
        text = self.prompt.replace("{caption}", sample.metadata.get("caption", sample.parts[0].text))
        return Request(sample_id=sample.id, parts=(Text(text),), output_modality=Modality.IMAGE,
                       generation=self.generation, kind="t2i")

    def prediction(self, sample: Sample, output: Output) -> str:
        path = media_path(output, Image, "an image")
        try:
            return png_copy(path)
        except (MediaError, OSError) as exc:
            raise InvalidOutput(f"generated image unreadable: {exc}") from None

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        from mio_eval.media import load_image

        rows: list[dict[str, Any]] = []
        ok: list[tuple[dict[str, Any], Any, Any]] = []
        self._ssim.reset()
        for g in generated:
            meta = g.sample.metadata
            row = {"id": g.sample.id, "error": None, "image_id": meta.get("image_id"),
                   "caption_index": meta.get("caption_index"), "caption": meta.get("caption"),
                   "reference": g.sample.targets[0] if g.sample.targets else None, "generated": g.prediction}
            rows.append(row)
            if g.error is not None:
                row.update(error=g.error, stage="generate")
                continue
            try:
                pair = (load_image(g.prediction), load_image(row["reference"]))
                row["ssim"] = self._ssim.update([pair[0]], [pair[1]])[0]
            except (MediaError, ValueError) as exc:  # unreadable, or too small for the SSIM window
                row.update(error=f"score: {exc}", stage="score")
                continue
            ok.append((row, *pair))
        gen_images = [x[1] for x in ok]
        ref_images = [x[2] for x in ok]
        metrics: list[MetricResult] = []
        judges: list[Mapping[str, Any]] = []
        if self.clip is not None:
            cos = image_clip_scores(self.clip, gen_images, ref_images, [r["caption"] for r, _, _ in ok])
            for (row, _, _), ci, ct in zip(ok, cos["clip_i"], cos["clip_t"]):
                row.update(clip_i=100.0 * float(ci), clip_t=100.0 * float(ct),
                           clip_t_clamped=max(100.0 * float(ct), 0.0))
            model = self.clip.model_id
            metrics += [
                _mean("clip_i", [float(c) for c in cos["clip_i"]], variant="cosine_unclamped", scale=100.0,
                      provenance="GILL evals/compute_clip_similarity_vist.py: cosine of CLIP image embeddings "
                                 "(generated vs ground truth), unclamped, mean x100", model=model),
                _mean("clip_t", [float(c) for c in cos["clip_t"]], variant="mme_unify", scale=100.0,
                      provenance="100*cos(image, prompt caption), unclamped (MME-Unify)", model=model),
                _mean("clip_t_clamped", [max(float(c), 0.0) for c in cos["clip_t"]], variant="torchmetrics",
                      scale=100.0, provenance="max(100*cos(image, prompt caption), 0) (torchmetrics CLIPScore)",
                      model=model),
            ]
            judges.append({"model": self.clip.model_id, **dict(self.clip.provenance())})
        metrics.append(self._ssim.compute())
        if self.aesthetic is not None:
            scores = self.aesthetic(gen_images) if gen_images else []
            for (row, _, _), value in zip(ok, scores):
                row["aesthetic"] = value
            metrics.append(self.aesthetic.result(scores))
            judges.append(dict(self.aesthetic.provenance()))
        samples = [g.sample for g in generated]
        split, digest = split_record(samples)
        settings: dict[str, Any] = {
            "caption_policy": getattr(self.loader, "policy", "as loaded"), "n_images": len(samples),
            "split_sha256": digest, "ssim": dict(self._ssim.settings()), "prompt": self.prompt,
            "clip_model": self.clip.model_id if self.clip is not None else None,
            "skipped": "samples with a failed generation or an unreadable image are left out of every mean (GILL)"}
        artifacts: dict[str, Any] = {}
        if self.record_split:
            artifacts[SPLIT_FILE] = {"task": self.name, "caption_policy": settings["caption_policy"],
                                     "sha256": digest, "images": split}
            settings["split_file"] = SPLIT_FILE
        return ScoreReport(metrics=tuple(metrics), per_sample=tuple(rows), judges=tuple(judges), settings=settings,
                           artifacts=artifacts)
