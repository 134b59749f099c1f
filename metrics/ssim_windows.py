"""SSIM windows (:mod:`mio_eval.metrics.ssim`), one class each, chosen in a task YAML by ``_target_``
(``ssim_variant: {_target_: mio_eval.metrics.ssim_windows.GaussianWindow}``); ``name`` is the
variant results record. A module of its own because ``mio_eval.metrics.ssim`` is also the name of
the ``ssim`` function the package exports, which a ``_target_`` path would resolve to.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mio_eval.errors import check_target

__all__ = ["WINDOWS", "SSIMWindow", "SkimageWindow", "GaussianWindow", "check_ssim_window"]


class SSIMWindow:
    """The SSIM window and constants (``skimage_kwargs``); ``name`` is the recorded variant."""

    name: ClassVar[str]
    description: ClassVar[str]  # in the metric's provenance

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SkimageWindow(SSIMWindow):
    """scikit-image's defaults: 7x7 uniform window, sample covariance."""

    name = "skimage"
    description = "library defaults (7x7 uniform window)"


class GaussianWindow(SSIMWindow):
    """Wang et al. 2004: Gaussian window, sigma 1.5, population covariance."""

    name = "wang2004"
    description = "Wang et al. 2004 Gaussian window (sigma 1.5, population covariance)"


WINDOWS = {cls.name: cls for cls in (SkimageWindow, GaussianWindow)}


def check_ssim_window(value: Any, *, what: str = "task.ssim_variant") -> SSIMWindow:
    """``value`` if it is an SSIM window, else a one-line ConfigError naming the ``_target_`` form."""
    return check_target(value, SSIMWindow, what=what, kind="SSIM window", choices="SkimageWindow, GaussianWindow",
                        module=__name__, hint=f"e.g. {what}._target_={__name__}.GaussianWindow")
