"""CLIP-I and CLIP-T: cosine similarity of CLIP embeddings, reported x100.

* **CLIP-I** (:func:`clip_image_similarity`): cosine between the image embeddings of a generated
  and a reference image, x100, **unclamped** (GILL ``evals/compute_clip_similarity_vist.py``;
  MME-Unify ``evaluate/Evaluate_Generation.py``). Identical images score 100.
* **CLIP-T** (:func:`clip_text_similarity`): cosine between an image and a text embedding.
  ``variant="mme_unify"`` is ``100 * cos``, unclamped: MME-Unify reads ``logits_per_image[0][0]``,
  which is ``logit_scale.exp() * cos`` and ``logit_scale.exp()`` is 100 in the released OpenAI
  checkpoints (the training clamp); we use the constant 100 so a checkpoint with another scale
  does not change the definition (its scale is recorded in the encoder's provenance).
  ``variant="torchmetrics"`` is ``max(100 * cos, 0)`` (torchmetrics ``CLIPScore``). A task picks
  the rule by ``_target_`` (``metrics.clip_t.ClipTUnclamped``, ``ClipTClamped``); results record its
  ``name`` (``mme_unify`` / ``torchmetrics``) as the variant.

Image preprocessing (:func:`preprocess_image`) is PIL + numpy, no torchvision: the shortest side
is resized to ``size`` with PIL bicubic (long side ``int(size * long / short)``, as torchvision's
``Resize(int)``), a centre crop of ``crop_size``, conversion to RGB, ``/255`` and CLIP's mean/std.
The crop offset rounds as torchvision (``round((h - crop) / 2)``, open_clip / OpenAI CLIP) or as
transformers' ``CLIPImageProcessor`` (``(h - crop) // 2``); they differ when ``h - crop`` is 3
mod 4, so each backend uses its own library's rule and matches it exactly.

Two encoder backends, both constructed cheaply (weights load on first use):
:class:`OpenClipEncoder` (``open_clip.create_model_and_transforms(arch, pretrained=<local
file>)``; an extra model-config JSON can be registered for custom architectures) and
:class:`HFClipEncoder` (transformers ``CLIPModel`` + tokenizer + ``preprocessor_config.json``
from a local directory).

>>> import numpy as np
>>> cosine_rows(np.array([[1.0, 0.0]]), np.array([[0.6, 0.8]])).round(6).tolist()
[0.6]
>>> [round(s, 6) for s in clip_t_from_cosines([0.31, -0.05])], clip_t_from_cosines([-0.05], variant="torchmetrics")
([31.0, -5.0], [0.0])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from mio_eval.errors import ConfigError
from mio_eval.media import CLIP_MEAN, CLIP_STD  # re-exported: OpenAI CLIP's normalisation
from mio_eval.metrics.base import MetricResult
from mio_eval.metrics.clip_t import (CLIP_T_VARIANTS, ClipTClamped, ClipTRule, ClipTUnclamped,  # re-exported
                                     check_clip_t_rule, clip_t_rule)

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "CLIP_T_VARIANTS",
    "ClipTRule",
    "ClipTUnclamped",
    "ClipTClamped",
    "clip_t_rule",
    "check_clip_t_rule",
    "ClipEncoder",
    "OpenClipEncoder",
    "HFClipEncoder",
    "CLIPImageSimilarity",
    "CLIPTextSimilarity",
    "preprocess_image",
    "cosine_rows",
    "clip_t_from_cosines",
    "clip_image_similarity",
    "clip_text_similarity",
]


# --- preprocessing --------------------------------------------------------------------------------


def preprocess_image(
    image,
    *,
    size: int = 224,
    crop_size: int | None = None,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
    interpolation: str = "bicubic",
    crop_rounding: str = "torchvision",
) -> np.ndarray:
    """A PIL image -> float32 array (3, crop, crop), as CLIP's own eval transform makes it.

    ``crop_rounding="torchvision"`` equals open_clip's ``preprocess`` (``Resize(size, bicubic)``,
    ``CenterCrop``, RGB, ``ToTensor``, ``Normalize``); ``"hf"`` equals ``CLIPImageProcessor``.
    """
    from PIL import Image

    if crop_rounding not in ("torchvision", "hf"):
        raise ValueError(f"crop_rounding must be 'torchvision' or 'hf', got {crop_rounding!r}")
    resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[interpolation]
    crop = int(crop_size or size)
    w, h = image.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = int(size), int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if (new_w, new_h) != (w, h):
        image = image.resize((new_w, new_h), resample)
    if crop > min(new_w, new_h):
        raise ValueError(f"crop {crop} larger than the resized image {new_w}x{new_h}")
    if crop_rounding == "torchvision":
        top, left = int(round((new_h - crop) / 2.0)), int(round((new_w - crop) / 2.0))
    else:
        top, left = (new_h - crop) // 2, (new_w - crop) // 2
    image = image.crop((left, top, left + crop, top + crop))
    if image.mode != "RGB":  # open_clip converts after cropping (MaybeConvertMode)
        image = image.convert("RGB")
    array = np.asarray(image, dtype=np.float32) / np.float32(255.0)
    array = (array - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(array.transpose(2, 0, 1))


# --- functional core ------------------------------------------------------------------------------


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (n, d) arrays (float64)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two (n, d) arrays of one shape, got {a.shape} and {b.shape}")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    if np.any(norms == 0):
        raise ValueError("cosine of a zero embedding is undefined")
    return np.einsum("ij,ij->i", a, b) / norms


def clip_t_from_cosines(cosines: Sequence[float], *, variant: "str | ClipTRule" = "mme_unify") -> list[float]:
    """Map text-image cosines to CLIP-T: ``100*cos`` (``mme_unify``) or ``max(100*cos, 0)``."""
    return clip_t_rule(variant)(cosines)


def _open(image):
    """A PIL image as given, or a path decoded in its own mode (CLIP converts after cropping)."""
    from mio_eval.media import load_image

    return load_image(image, rgb=False)


def clip_image_similarity(generated: Sequence[Any], reference: Sequence[Any], encoder: "ClipEncoder") -> list[float]:
    """CLIP-I per pair: ``100 * cos(E(generated_i), E(reference_i))``, unclamped.

    Images are PIL images or paths; the two sides are encoded in separate passes (as GILL)."""
    if len(generated) != len(reference):
        raise ValueError(f"{len(generated)} generated but {len(reference)} reference images")
    if not generated:
        return []
    gen = encoder.encode_images([_open(x) for x in generated])
    ref = encoder.encode_images([_open(x) for x in reference])
    return [100.0 * float(c) for c in cosine_rows(gen, ref)]


def clip_text_similarity(images: Sequence[Any], texts: Sequence[str], encoder: "ClipEncoder", *,
                         variant: "str | ClipTRule" = "mme_unify") -> list[float]:
    """CLIP-T per (image, text) pair; texts are truncated to the encoder's context (77 tokens)."""
    if len(images) != len(texts):
        raise ValueError(f"{len(images)} images but {len(texts)} texts")
    rule = clip_t_rule(variant)
    if not images:
        return []
    img = encoder.encode_images([_open(x) for x in images])
    txt = encoder.encode_texts(list(texts))
    return rule(cosine_rows(img, txt))


# --- encoders -------------------------------------------------------------------------------------


@runtime_checkable
class ClipEncoder(Protocol):
    """Embeds images and texts into CLIP's joint space (unnormalised rows of an (n, d) array)."""

    model_id: str

    def encode_images(self, images: Sequence[Any]) -> np.ndarray: ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def provenance(self) -> Mapping[str, Any]: ...


def _missing(package: str, extra: str) -> ConfigError:
    return ConfigError(f"{package} is not installed: pip install 'mio-eval[{extra}]' (or pip install {package})")


def _batches(items: Sequence[Any], size: int, *, unit: str):
    """Chunks of ``size``, with a progress bar (shown when the pass takes over a second)."""
    from mio_eval.progress import progress

    with progress(total=len(items), desc=f"scoring: CLIP {unit}s", unit=unit) as bar:
        for start in range(0, len(items), size):
            yield items[start:start + size]
            bar.update(len(items[start:start + size]))


class _Batched:
    """What both backends share: ``batch_size`` items per forward pass (with a progress bar), CLIP
    preprocessing in numpy, no gradients, float32 rows, weights loaded once on first use. A
    backend adds ``_load`` (setting ``_model`` and ``_prep``), ``_image_features(pixels)`` and
    ``_text_features(texts)``."""

    def __init__(self, *, model_id: str, device: str, batch_size: int) -> None:
        self.model_id = model_id
        self.device = device
        self.batch_size = int(batch_size)
        self._model = None

    def load(self) -> None:
        """Load the weights once (construction stays cheap)."""
        if self._model is None:
            self._load()

    def _load(self) -> None:
        raise NotImplementedError

    def encode_images(self, images: Sequence[Any]) -> np.ndarray:
        import torch

        self.load()
        rows = []
        for chunk in _batches(list(images), self.batch_size, unit="image"):
            pixels = torch.from_numpy(np.stack([preprocess_image(_open(x), **self._prep) for x in chunk]))
            with torch.no_grad():
                rows.append(self._image_features(pixels.to(self.device)).float().cpu().numpy())
        return np.concatenate(rows)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self.load()
        rows = []
        for chunk in _batches(list(texts), self.batch_size, unit="text"):
            with torch.no_grad():
                rows.append(self._text_features(list(chunk)).float().cpu().numpy())
        return np.concatenate(rows)


class OpenClipEncoder(_Batched):
    """open_clip model from a local ``pretrained`` file (``open_clip.create_model_and_transforms``).

    ``model_config`` (optional): a JSON model config (or a folder of them) registered with
    ``open_clip.add_model_config`` first, for architectures open_clip does not ship; the file
    name (without ``.json``) is the ``arch``.
    """

    def __init__(self, *, arch: str = "ViT-L-14", pretrained: str, model_config: str | None = None,
                 device: str = "cpu", batch_size: int = 32) -> None:
        super().__init__(model_id=f"open_clip:{arch}", device=device, batch_size=batch_size)
        self.arch = arch
        self.pretrained = str(pretrained)
        self.model_config = model_config

    def _load(self) -> None:
        if not Path(self.pretrained).is_file():
            raise ConfigError(f"CLIP checkpoint not found: {self.pretrained} (open_clip needs a local file here)")
        try:
            import open_clip
        except ImportError:
            raise _missing("open_clip_torch", "clip") from None
        if self.model_config:
            open_clip.add_model_config(self.model_config)
        model, _, preprocess = open_clip.create_model_and_transforms(self.arch, pretrained=self.pretrained,
                                                                     device=self.device)
        model.eval()
        cfg = dict(getattr(model.visual, "preprocess_cfg", {}) or {})
        size = cfg.get("size", 224)
        size = size[0] if isinstance(size, (list, tuple)) else size
        if cfg.get("resize_mode", "shortest") != "shortest":
            raise ConfigError(f"open_clip model {self.arch}: resize_mode {cfg.get('resize_mode')!r} is not supported")
        self._prep = dict(size=int(size), mean=tuple(cfg.get("mean", CLIP_MEAN)), std=tuple(cfg.get("std", CLIP_STD)),
                          interpolation=cfg.get("interpolation", "bicubic"), crop_rounding="torchvision")
        self.transform = preprocess  # kept for tests comparing against it
        self._tokenizer = open_clip.get_tokenizer(self.arch)
        self._model = model
        self._logit_scale = float(model.logit_scale.exp().item())

    def _image_features(self, pixels):
        return self._model.encode_image(pixels)

    def _text_features(self, texts: list[str]):
        # the tokenizer truncates to the context length (77)
        return self._model.encode_text(self._tokenizer(texts).to(self.device))

    def provenance(self) -> Mapping[str, Any]:
        info = {"backend": "open_clip", "model_id": self.model_id, "arch": self.arch, "pretrained": self.pretrained}
        if self._model is not None:
            import open_clip

            info.update(open_clip=open_clip.__version__, logit_scale=self._logit_scale, preprocess=dict(self._prep))
        return info


class HFClipEncoder(_Batched):
    """transformers ``CLIPModel`` + its tokenizer and ``preprocessor_config.json`` from ``path``."""

    def __init__(self, *, path: str, device: str = "cpu", batch_size: int = 32, max_length: int = 77) -> None:
        super().__init__(model_id=f"hf:{Path(path).name}", device=device, batch_size=batch_size)
        self.path = str(path)
        self.max_length = int(max_length)

    def _load(self) -> None:
        if not Path(self.path).is_dir():
            raise ConfigError(f"CLIP model directory not found: {self.path} (a local transformers CLIPModel folder)")
        from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

        model = CLIPModel.from_pretrained(self.path).to(self.device).eval()
        processor = CLIPImageProcessor.from_pretrained(self.path)
        size = processor.size.get("shortest_edge") if isinstance(processor.size, Mapping) else processor.size
        crop = processor.crop_size
        crop = crop.get("height") if isinstance(crop, Mapping) else crop
        resample = {3: "bicubic", 2: "bilinear"}.get(int(processor.resample), None)
        if size is None or resample is None or not processor.do_center_crop:
            raise ConfigError(f"{self.path}: unsupported preprocessor_config (size={processor.size}, "
                              f"resample={processor.resample}, center_crop={processor.do_center_crop})")
        self._prep = dict(size=int(size), crop_size=int(crop), mean=tuple(processor.image_mean),
                          std=tuple(processor.image_std), interpolation=resample, crop_rounding="hf")
        self.processor = processor  # kept for tests comparing against it
        self._tokenizer = AutoTokenizer.from_pretrained(self.path)
        self._model = model
        self._logit_scale = float(model.logit_scale.exp().item())

    @staticmethod
    def _tensor(out):
        # transformers < 5 returns a tensor; newer versions a model output with pooler_output
        return out if hasattr(out, "float") else out.pooler_output

    def _image_features(self, pixels):
        return self._tensor(self._model.get_image_features(pixel_values=pixels))

    def _text_features(self, texts: list[str]):
        tokens = self._tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return self._tensor(self._model.get_text_features(input_ids=tokens["input_ids"].to(self.device),
                                                          attention_mask=tokens["attention_mask"].to(self.device)))

    def provenance(self) -> Mapping[str, Any]:
        info = {"backend": "transformers", "model_id": self.model_id, "path": self.path}
        if self._model is not None:
            import transformers

            info.update(transformers=transformers.__version__, logit_scale=self._logit_scale,
                        preprocess=dict(self._prep), name_or_path=self._model.config._name_or_path)
        return info


# --- stateful shells ------------------------------------------------------------------------------


class _MeanScore:
    """The shell both CLIP metrics share: per-item scores accumulate; ``value`` = their mean / 100
    (``scale`` 100 gives back the x100 number), with the encoder named in ``extra``."""

    higher_is_better = True

    def reset(self) -> None:
        self.scores: list[float] = []

    def compute(self) -> MetricResult:
        n = len(self.scores)
        return MetricResult(name=self.name, value=float(np.mean(self.scores)) / 100.0 if n else None,
                            higher_is_better=True, variant=self.variant, provenance=self.provenance, scale=100.0,
                            n=n, extra={"model": self.encoder.model_id, "encoder": dict(self.encoder.provenance())})


class CLIPImageSimilarity(_MeanScore):
    """Mean CLIP-I over pairs. ``value`` is the mean cosine (``scale`` 100 -> the x100 number)."""

    def __init__(self, encoder: ClipEncoder, *, name: str = "clip_i",
                 provenance: str = "cosine of CLIP image embeddings, unclamped (GILL / MME-Unify)") -> None:
        self.encoder = encoder
        self.name = name
        self.variant = "cosine_unclamped"
        self.provenance = provenance
        self.reset()

    def update(self, generated: Sequence[Any], reference: Sequence[Any]) -> list[float]:
        scores = clip_image_similarity(generated, reference, self.encoder)
        self.scores.extend(scores)
        return scores


class CLIPTextSimilarity(_MeanScore):
    """Mean CLIP-T over (image, text) pairs; ``value`` = mean score / 100 (``scale`` 100)."""

    def __init__(self, encoder: ClipEncoder, *, variant: "str | ClipTRule" = "mme_unify", name: str = "clip_t") -> None:
        self.rule = clip_t_rule(variant)
        self.encoder = encoder
        self.name = name
        self.variant = self.rule.name
        self.provenance = self.rule.provenance
        self.reset()

    def update(self, images: Sequence[Any], texts: Sequence[str]) -> list[float]:
        scores = clip_text_similarity(images, texts, self.encoder, variant=self.rule)
        self.scores.extend(scores)
        return scores
