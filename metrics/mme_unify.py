"""MME-Unify's scoring rules (Xie et al. 2025, aba122/MME-Unify @ 0956091): the mapping of raw
metrics to 0-100 subtask scores, the per-family aggregation and US / GS / Unify-S / Overall.

The tasks (``mio_eval.tasks.mme_unify``) measure each sample; this module turns those measurements
into the benchmark's numbers, and :func:`scores_from_metrics` combines several runs' ``metrics.json``.

**Normalisation (UNVERIFIED, chosen here: aba122/MME-Unify @ 0956091 publishes none).** The paper's
mapping of PSNR / LPIPS / CLIP to 0-100 and which unify accuracy enters Unify-S are not published in
code. Variant ``mio_eval_v1`` (recorded on every ``score/*`` result): PSNR -> ``2 * min(PSNR, 50)``,
LPIPS -> ``100 * (1 - LPIPS)`` clipped to [0, 100], CLIP-I / CLIP-T -> the x100 number; a subtask
score is the mean of its mapped metrics; a video subtask's is the reference's mapped FVD mean
(``Evaluate_Generation_Video.py``: ``100 * (1 - (x - 1) / 999)``, the all-equal quirk selectable).
A unify task's score is chosen by its ``unify_score`` rule (default the mean of its text and image
accuracy); VCoT's is the mean of the action, location and image step accuracies, each over the
denominator rule's count. US, GS and Unify-S are means of their subtask scores; Overall (MME-U) is
the mean of the three, reported only when every subtask of every family was scored in full
(:func:`mme_unify_scores`).

The rules chosen by config are small classes selected by ``_target_``: :class:`MeanTextImage` /
:class:`Accuracy` (the unify score) and :class:`StepsDenominator` / :class:`OfficialDenominator`
(VCoT's denominator: the reference divides every step's correct count by N items x the longest walk).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from mio_eval.errors import ConfigError
from mio_eval.metrics.base import MetricResult
# The benchmark's subtask codes per family (one table, beside the loader that reads their folders).
from mio_eval.tasks.loaders.mme_unify import GENERATION_SUBTASKS, UNDERSTANDING_SUBTASKS, UNIFY_SUBTASKS

__all__ = [
    "NORMALIZATION",
    "mean",
    "result",
    "psnr_score",
    "lpips_score",
    "understanding_scores",
    "video_subtask_score",
    "image_subtask_score",
    "family_partial",
    "MeanTextImage",
    "Accuracy",
    "StepsDenominator",
    "OfficialDenominator",
    "unify_task_metrics",
    "vcot_metrics",
    "mme_unify_scores",
    "scores_from_metrics",
]

NORMALIZATION = "mio_eval_v1"


def mean(values: Sequence[float]) -> float | None:
    """The mean, ``None`` for no values."""
    return float(np.mean(values)) if len(values) else None


def result(name: str, value: float | None, n: int, *, higher: bool = True, variant: str = NORMALIZATION,
           provenance: str = "", scale: float = 1.0, **extra: Any) -> MetricResult:
    """A ``MetricResult`` with this module's default variant."""
    return MetricResult(name=name, value=value, higher_is_better=higher, variant=variant, provenance=provenance,
                        scale=scale, n=n, extra=extra)


def psnr_score(value: float) -> float:
    """PSNR (dB) on 0-100: ``2 * min(PSNR, 50)`` (UNVERIFIED ``mio_eval_v1``).

    >>> psnr_score(25.0), psnr_score(60.0)
    (50.0, 100.0)
    """
    return 2.0 * min(value, 50.0)


def lpips_score(value: float) -> float:
    """LPIPS on 0-100: ``100 * (1 - LPIPS)`` clipped to [0, 100] (UNVERIFIED ``mio_eval_v1``).

    >>> lpips_score(0.25), lpips_score(1.5)
    (75.0, 0.0)
    """
    return float(np.clip(100.0 * (1.0 - value), 0.0, 100.0))


# --- understanding --------------------------------------------------------------------------------


def understanding_scores(accuracies: Sequence[MetricResult], strict: Sequence[bool]) -> list[MetricResult]:
    """From ``ChoiceAccuracy`` results grouped by subtask: ``accuracy_strict`` (the reference's
    ``output == answer`` on the raw reply, over the replies given), ``score/<subtask>`` (accuracy
    x100) and ``US`` (their mean; ``complete`` when SIPU, MITIU and VPU were all scored)."""
    per_subtask = {m.extra["group"]: m for m in accuracies if m.name.startswith("accuracy/")}
    scores = [result(f"score/{code}", m.value * 100.0, m.n, variant="accuracy_x100",
                     provenance="subtask accuracy x100 (extract_choice)") for code, m in per_subtask.items()]
    out = [result("accuracy_strict", mean(strict), len(strict), scale=100.0, variant="reference_exact",
                  provenance="Evaluate_Understanding.py: output == answer on the raw reply")]
    out.extend(scores)
    out.append(result("US", mean([s.value for s in scores]), len(scores), variant="mean_of_subtasks",
                      provenance="mean of the SIPU / MITIU / VPU accuracies x100 (MME-Unify US)",
                      complete=set(per_subtask) == set(UNDERSTANDING_SUBTASKS)))
    return out


# --- generation -----------------------------------------------------------------------------------


def video_subtask_score(code: str, raw: Sequence[float], *, all_equal_quirk: bool) -> MetricResult:
    """``score/<code>`` of a video subtask: the mean of the reference's per-sample mapping of the
    feature distances (``metrics.image_quality.normalize_video_scores``)."""
    from mio_eval.metrics.image_quality import normalize_video_scores

    mapped = normalize_video_scores(list(raw), all_equal_quirk=all_equal_quirk)
    return result(f"score/{code}", mean(mapped), len(mapped),
                  variant="fvd_mapped_all_equal_quirk" if all_equal_quirk else "fvd_mapped",
                  provenance="mean of 100*(1-(x-1)/999) per sample (Evaluate_Generation_Video.py)"
                             + ("; all-equal list -> 100 (reference quirk)" if all_equal_quirk else ""),
                  all_equal_quirk_applied=bool(all_equal_quirk and raw and len(set(raw)) == 1))


def image_subtask_score(code: str, scores: Sequence[float]) -> MetricResult:
    """``score/<code>`` of an image subtask: the mean of the per-sample mapped scores."""
    return result(f"score/{code}", mean(scores), len(scores),
                  provenance="UNVERIFIED normalisation: mean of PSNR->2*min(PSNR,50), LPIPS->100*(1-LPIPS), CLIP->x100")


def family_partial(name: str, metrics: Sequence[MetricResult], *, provenance: str, **extra: Any) -> MetricResult:
    """``<name>``: the mean of the ``score/*`` values among ``metrics`` (one run's part of a family)."""
    scores = [m.value for m in metrics if m.name.startswith("score/") and m.value is not None]
    return result(name, mean(scores), len(scores), provenance=provenance, **extra)


# --- unify ----------------------------------------------------------------------------------------


class MeanTextImage:
    """A unify task's score: the mean of its text and image accuracies (``mio_eval_v1`` default)."""

    name = "mean_text_image"

    def __call__(self, accuracies: Mapping[str, float]) -> float:
        return (accuracies["text"] + accuracies["image"]) / 2


class Accuracy:
    """A unify task's score: one of its accuracies, ``text``, ``image`` or ``combined`` (both right)."""

    ASPECTS = ("text", "image", "combined")

    def __init__(self, *, aspect: str) -> None:
        if aspect not in self.ASPECTS:
            raise ConfigError(f"unify_score aspect must be one of {', '.join(self.ASPECTS)}, got {aspect!r}")
        self.name = aspect

    def __call__(self, accuracies: Mapping[str, float]) -> float:
        return accuracies[self.name]


def unify_task_metrics(code: str, ok: Sequence[Mapping[str, Any]], n: int, *, rule: Any) -> list[MetricResult]:
    """``text_accuracy`` / ``image_accuracy`` / ``combined_accuracy`` of an IEE / CSQ / AL / SD task
    (correct / all ``n`` items: the reference divides by every item, failed ones count wrong) and
    ``score/<code>`` = ``100 * rule(accuracies)``."""
    metrics, accs = [], {}
    for aspect in ("text", "image", "combined"):
        accs[aspect] = sum(r[aspect] for r in ok) / n
        metrics.append(result(f"{aspect}_accuracy/{code}", accs[aspect], n, scale=100.0, variant="reference",
                              provenance=f"MME-Unify Evaluate_{code}: correct / all items"))
    metrics.append(result(f"score/{code}", 100.0 * rule(accs), n, variant=f"{NORMALIZATION}/{rule.name}",
                          provenance="UNVERIFIED: which accuracy enters Unify-S is not published"))
    return metrics


class StepsDenominator:
    """VCoT: each aspect over the steps that exist (the image aspect over the steps with an image)."""

    name = "steps"
    note = ""

    def __call__(self, aspect: str, steps: Sequence[Mapping[str, Any]]) -> int:
        if aspect == "image":
            return sum(1 for s in steps if s["image_target"] is not None)
        return len(steps)


class OfficialDenominator:
    """VCoT as ``Evaluate_VSP.py``: N items x the longest walk (missing steps count wrong)."""

    name = "official"
    note = " (N items x longest walk)"

    def __call__(self, aspect: str, steps: Sequence[Mapping[str, Any]]) -> int:
        return len({s["item_id"] for s in steps}) * max(s["n_steps"] for s in steps)


def vcot_metrics(ok: Sequence[Mapping[str, Any]], steps: Sequence[Mapping[str, Any]], *,
                 denominator: Any) -> list[MetricResult]:
    """``<aspect>_accuracy/VCoT`` for action, location and image (correct scored rows over the
    ``denominator`` rule's count of ``steps``, the metadata of every VCoT sample) and
    ``score/VCoT``, their mean x100."""
    out, accs = [], []
    for aspect in ("action", "location", "image"):
        correct = sum(bool(r[aspect]) for r in ok)
        n = denominator(aspect, steps)
        accs.append(correct / n if n else 0.0)
        out.append(result(f"{aspect}_accuracy/VCoT", accs[-1], n, scale=100.0, variant=denominator.name,
                          provenance="Evaluate_VSP.py step accuracy" + denominator.note))
    out.append(result("score/VCoT", 100.0 * float(np.mean(accs)), len(steps),
                      variant=f"{NORMALIZATION}/{denominator.name}",
                      provenance="mean of action / location / image step accuracies (Evaluate_VSP.py overall)"))
    return out


# --- the benchmark's numbers ----------------------------------------------------------------------

def mme_unify_scores(*, understanding: Mapping[str, float], generation: Mapping[str, float],
                     unify: Mapping[str, float], partial: Sequence[str] = ()) -> dict[str, Any]:
    """US / GS / Unify-S (means of the given subtask scores, 0-100) and Overall (MME-U) = their mean.

    ``complete`` says, per family, whether every subtask (3 / 6 / 5) was given and none is in
    ``partial`` (subtasks scored on part of their items, e.g. a limited run). Overall is reported
    only when all three families are complete; otherwise it is None and ``overall_missing`` says
    why (the family means of incomplete families are still given, flagged by ``complete``).

    >>> full = mme_unify_scores(understanding=dict.fromkeys(UNDERSTANDING_SUBTASKS, 60.0),
    ...                         generation=dict.fromkeys(GENERATION_SUBTASKS, 30.0),
    ...                         unify=dict.fromkeys(UNIFY_SUBTASKS, 15.0))
    >>> full["Overall"], full["overall_missing"]
    (35.0, None)
    >>> mme_unify_scores(understanding={"SIPU": 60.0}, generation={}, unify={})["overall_missing"][:33]
    'US lacks MITIU, VPU; GS lacks FIR'
    """
    given = {"US": (understanding, UNDERSTANDING_SUBTASKS), "GS": (generation, GENERATION_SUBTASKS),
             "Unify": (unify, UNIFY_SUBTASKS)}
    means = {family: mean(list(scores.values())) for family, (scores, _) in given.items()}
    reasons = []
    for family, (scores, expected) in given.items():
        absent = [code for code in expected if code not in scores]
        limited = [code for code in expected if code in scores and code in set(partial)]
        if absent:
            reasons.append(f"{family} lacks {', '.join(absent)}")
        if limited:
            reasons.append(f"{family} has partial {', '.join(limited)}")
    complete = {family: not any(r.startswith(f"{family} ") for r in reasons) for family in given}
    return {
        **means,
        "Overall": float(np.mean(list(means.values()))) if not reasons else None,
        "overall_missing": "; ".join(reasons) or None,
        "complete": complete,
        "normalization": NORMALIZATION,
    }


def scores_from_metrics(metrics_jsons: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """:func:`mme_unify_scores` from the ``metrics.json`` contents of MME-Unify runs (their
    ``score/<subtask>`` entries). A run marked ``"complete": false`` or with a ``limit`` makes
    its subtasks partial, so Overall stays None."""
    found: dict[str, dict[str, float]] = {"understanding": {}, "generation": {}, "unify": {}}
    partial: list[str] = []
    for data in metrics_jsons:
        limited = data.get("complete") is False or data.get("limit") is not None
        for key, entry in data.get("metrics", {}).items():
            if not key.startswith("score/") or not isinstance(entry, Mapping) or entry.get("value") is None:
                continue
            code = key.split("/", 1)[1]
            family = ("understanding" if code in UNDERSTANDING_SUBTASKS else
                      "generation" if code in GENERATION_SUBTASKS else "unify" if code in UNIFY_SUBTASKS else None)
            if family:
                found[family][code] = float(entry["value"])
                if limited:
                    partial.append(code)
    return mme_unify_scores(**found, partial=partial)

