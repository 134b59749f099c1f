"""SSIM of a generated image against its ground truth (MIO Table 13), via scikit-image.

``skimage.metrics.structural_similarity`` leaves several choices to the caller and the MIO paper
does not state them (arXiv 2409.17692: UNVERIFIED). They are pinned here and recorded with every
result (:func:`ssim_settings`):

* **resize**: the generated image is resized to the reference size with PIL bilinear
  (``resize="reference"``); ``"none"`` refuses a size mismatch instead.
* **colour**: RGB with ``channel_axis=-1`` (skimage averages the per-channel SSIM);
  ``color="gray"`` converts both with PIL ``convert("L")`` (ITU-R 601-2 luma) first.
* **data_range**: always 255. Inputs are 8-bit images (PIL images, files or uint8 arrays); a float
  array is taken to be on the same 0-255 scale (skimage *requires* ``data_range`` for float input).
* **window**: ``variant="skimage"`` is the library default (7x7 uniform window, sample
  covariance, K1 0.01, K2 0.03); ``variant="wang2004"`` is the paper's Gaussian window
  (``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``). A task selects the window
  by ``_target_`` (``mio_eval.metrics.ssim_windows.SkimageWindow``, ``GaussianWindow``; this module's
  name is shadowed by the ``ssim`` function in ``mio_eval.metrics``); its ``name`` is the variant.

Vectors (computed with scikit-image 0.26): with ``a = (arange(64*64).reshape(64, 64) % 256)`` as uint8
and ``b = a`` with ``b[::2, ::2] = 255 - b[::2, ::2]``:

>>> import numpy as np
>>> a = (np.arange(64 * 64).reshape(64, 64) % 256).astype(np.uint8)
>>> b = a.copy(); b[::2, ::2] = 255 - b[::2, ::2]
>>> ssim(a, a), round(ssim(a, b), 12), round(ssim(a, b, variant="wang2004"), 12)
(1.0, 0.499038141199, 0.502968615497)
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from mio_eval.metrics.base import MetricResult
from mio_eval.metrics.ssim_windows import (WINDOWS as _WINDOWS, GaussianWindow, SkimageWindow,  # re-exported
                                           SSIMWindow, check_ssim_window)

__all__ = ["SSIM_VARIANTS", "SSIM_RESIZE", "SSIM_COLORS", "SSIMWindow", "SkimageWindow", "GaussianWindow",
           "check_ssim_window", "ssim", "ssim_settings", "SSIM"]

SSIM_VARIANTS: dict[str, dict[str, Any]] = {
    "skimage": {"win_size": 7, "gaussian_weights": False, "use_sample_covariance": True, "K1": 0.01, "K2": 0.03},
    "wang2004": {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "K1": 0.01, "K2": 0.03},
}


def _window_name(variant: "str | SSIMWindow") -> str:
    return variant.name if isinstance(variant, SSIMWindow) else variant


SSIM_RESIZE = ("reference", "none")
SSIM_COLORS = ("rgb", "gray")
DATA_RANGE = 255.0


def _check(variant: str, resize: str, color: str) -> None:
    if variant not in SSIM_VARIANTS:
        raise ValueError(f"SSIM variant must be one of {', '.join(SSIM_VARIANTS)}, got {variant!r}")
    if resize not in SSIM_RESIZE:
        raise ValueError(f"SSIM resize must be one of {', '.join(SSIM_RESIZE)}, got {resize!r}")
    if color not in SSIM_COLORS:
        raise ValueError(f"SSIM color must be one of {', '.join(SSIM_COLORS)}, got {color!r}")


def ssim_settings(*, variant: str = "skimage", resize: str = "reference", color: str = "rgb") -> dict[str, Any]:
    """Everything that defines the number, for provenance (``metrics.json`` ``extra``)."""
    _check(variant, resize, color)
    import skimage

    return {"variant": variant, "skimage_kwargs": dict(SSIM_VARIANTS[variant]), "data_range": DATA_RANGE,
            "resize": ("generated -> reference size, PIL bilinear" if resize == "reference"
                       else "none (sizes must match)"),
            "color": "RGB, channel_axis=-1 (mean of per-channel SSIM)" if color == "rgb" else "PIL convert('L')",
            "scikit-image": skimage.__version__}


def _as_image(value: Any, color: str):
    """A PIL image (mode RGB or L) from a PIL image, a path or a uint8/float array."""
    from PIL import Image

    if isinstance(value, np.ndarray):
        return None  # arrays are compared as given (see _as_array)
    if isinstance(value, Image.Image):
        image = value
    else:
        from mio_eval.media import load_image

        image = load_image(value)
    return image.convert("L" if color == "gray" else "RGB")


def _as_array(value: Any, color: str, size: tuple[int, int] | None):
    from PIL import Image

    image = _as_image(value, color)
    if image is None:  # a numpy array: (H, W) grey or (H, W, 3) RGB
        array = np.asarray(value)
        if size is not None and array.shape[:2] != (size[1], size[0]):
            image = Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8))
            return np.asarray(image.resize(size, Image.BILINEAR))
        if color == "gray" and array.ndim == 3:
            return np.asarray(Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8)).convert("L"))
        return array
    if size is not None and image.size != size:
        image = image.resize(size, Image.BILINEAR)
    return np.asarray(image)


def ssim(generated: Any, reference: Any, *, variant: str = "skimage", resize: str = "reference",
         color: str = "rgb") -> float:
    """SSIM of ``generated`` against ``reference`` (PIL images, paths or arrays), in [-1, 1].

    The generated image is brought to the reference's size (PIL bilinear); arrays of shape (H, W)
    are grey, (H, W, 3) RGB (``channel_axis=-1``); ``data_range`` is 255."""
    from skimage.metrics import structural_similarity

    _check(variant, resize, color)
    ref = _as_array(reference, color, None)
    if ref.ndim not in (2, 3):
        raise ValueError(f"reference must be (H, W) or (H, W, C), got shape {ref.shape}")
    size = (ref.shape[1], ref.shape[0]) if resize == "reference" else None
    gen = _as_array(generated, color, size)
    if gen.shape != ref.shape:
        raise ValueError(f"generated {gen.shape} and reference {ref.shape} differ in shape (resize={resize!r})")
    kwargs = dict(SSIM_VARIANTS[variant])
    if kwargs.get("gaussian_weights"):
        kwargs.pop("win_size", None)
    if ref.ndim == 3:
        kwargs["channel_axis"] = -1
    if np.issubdtype(ref.dtype, np.floating) or np.issubdtype(gen.dtype, np.floating):
        gen, ref = gen.astype(np.float64), ref.astype(np.float64)
    return float(structural_similarity(gen, ref, data_range=DATA_RANGE, **kwargs))


class SSIM:
    """Mean SSIM over (generated, reference) pairs; ``update`` takes batches."""

    name = "ssim"
    higher_is_better = True

    def __init__(self, *, variant: "str | SSIMWindow" = "skimage", resize: str = "reference", color: str = "rgb",
                 name: str = "ssim") -> None:
        variant = _window_name(variant)
        _check(variant, resize, color)
        self.name = name
        self.variant = variant
        self.resize = resize
        self.color = color
        self.provenance = ("skimage.metrics.structural_similarity, " + _WINDOWS[variant].description
                           + f"; data_range 255; {color}; generated resized to the reference (bilinear)")
        self.reset()

    def reset(self) -> None:
        self.scores: list[float] = []

    def update(self, generated: Sequence[Any], reference: Sequence[Any]) -> list[float]:
        if len(generated) != len(reference):
            raise ValueError(f"{len(generated)} generated but {len(reference)} reference images")
        scores = [ssim(g, r, variant=self.variant, resize=self.resize, color=self.color)
                  for g, r in zip(generated, reference)]
        self.scores.extend(scores)
        return scores

    def settings(self) -> Mapping[str, Any]:
        return ssim_settings(variant=self.variant, resize=self.resize, color=self.color)

    def compute(self) -> MetricResult:
        n = len(self.scores)
        return MetricResult(name=self.name, value=float(np.mean(self.scores)) if n else None, higher_is_better=True,
                            variant=f"{self.variant}/{self.color}/resize={self.resize}", provenance=self.provenance,
                            scale=1.0, n=n, extra={"settings": dict(self.settings())})
