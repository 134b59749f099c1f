"""CLIP-T scoring rules: text-image cosine -> score, one class each, chosen in a task YAML by
``_target_`` (``clip_t_variant: {_target_: mio_eval.metrics.clip_t.ClipTClamped}``). Each rule's
``name`` is the variant results record and ``provenance`` the metric's text.

* :class:`ClipTUnclamped` (``mme_unify``): ``100 * cos``, unclamped: MME-Unify
  (aba122/MME-Unify ``evaluate/Evaluate_Generation.py``) reads ``logits_per_image[0][0]``, i.e.
  ``logit_scale.exp() * cos`` with ``logit_scale.exp()`` 100 in the released OpenAI checkpoints.
* :class:`ClipTClamped` (``torchmetrics``): ``max(100 * cos, 0)`` (torchmetrics ``CLIPScore``).

>>> ClipTUnclamped()([0.31, -0.05])[1], ClipTClamped()([-0.05])
(-5.0, [0.0])
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

from mio_eval.errors import check_target, named

__all__ = ["CLIP_T_VARIANTS", "ClipTRule", "ClipTUnclamped", "ClipTClamped", "clip_t_rule", "check_clip_t_rule"]


class ClipTRule:
    """Text-image cosines -> CLIP-T scores; ``name`` is the recorded variant, ``provenance`` the
    metric's text (both compared by the regression gate)."""

    name: ClassVar[str]
    provenance: ClassVar[str]

    def __call__(self, cosines: Sequence[float]) -> list[float]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ClipTUnclamped(ClipTRule):
    """``100 * cos``, unclamped (MME-Unify ``logits_per_image`` with logit scale 100)."""

    name = "mme_unify"
    provenance = "100*cos(image, text), unclamped (MME-Unify logits_per_image with logit_scale 100)"

    def __call__(self, cosines: Sequence[float]) -> list[float]:
        return [100.0 * float(c) for c in cosines]


class ClipTClamped(ClipTRule):
    """``max(100 * cos, 0)`` (torchmetrics ``CLIPScore``)."""

    name = "torchmetrics"
    provenance = "max(100*cos(image, text), 0) (torchmetrics CLIPScore)"

    def __call__(self, cosines: Sequence[float]) -> list[float]:
        return [max(100.0 * float(c), 0.0) for c in cosines]


_CLIP_T_RULES = {cls.name: cls for cls in (ClipTUnclamped, ClipTClamped)}
CLIP_T_VARIANTS = tuple(_CLIP_T_RULES)


def clip_t_rule(variant: str | ClipTRule) -> ClipTRule:
    """The rule a recorded variant name stands for (a rule is returned as is); ValueError otherwise."""
    return named(variant, ClipTRule, _CLIP_T_RULES, kind="CLIP-T variant")


def check_clip_t_rule(value: Any, *, what: str = "task.clip_t_variant") -> ClipTRule:
    """``value`` if it is a CLIP-T rule, else a one-line ConfigError naming the ``_target_`` form."""
    return check_target(value, ClipTRule, what=what, kind="CLIP-T rule", choices="ClipTUnclamped, ClipTClamped",
                        module=__name__, hint=f"e.g. {what}._target_={__name__}.ClipTClamped")

