"""VQA accuracy (VQAv2, OK-VQA, VizWiz): four named reproductions of the reference scorers.

Every variant scores a question the same way once the strings are normalised: for each of the
``n`` annotator answers, drop it and count the other ``n - 1`` that equal the prediction,
``acc_i = min(1, matches / 3)``; the question's accuracy is the mean of the ``n`` values (with
10 answers this *is* the mean over the 10 choose 9 annotator subsets). The variants differ in
which side is normalised, when, and how:

========================  ==================================================================
``lmms`` (default)        lmms-eval ``vqav2/utils.py``: strip ``\\n``/``\\t``/ends, then
                          ``process_punctuation`` + ``process_digit_article`` on the
                          prediction and every answer, always.
``lmms_tokenized``        lmms-eval ``ok_vqa/utils.py`` and ``vizwiz_vqa/utils.py``: the
                          processor's ``__call__`` on both sides, which first lower-cases,
                          deletes ``,`` and ``?`` and splits ``'s`` (``cat's`` -> ``cat 's``).
``vqa2016``               official ``vqaEval.py`` @458a8b2 (the copy in LAVIS and SEED-Bench):
                          prediction always fully normalised; answers get punctuation only,
                          and only when they are not all identical; answers are not stripped.
``vqa2021``               official ``vqaEval.py`` @a013f00 (HEAD, "Fixed processing answers
                          bug"): strip both sides; normalise *both* only when the answers are
                          not all identical, otherwise compare raw strings (so ``"Yes"``
                          against 10 x ``"yes"`` scores 0).
``lmms_2024``             lmms-eval ``vqav2/utils.py`` @7548ebe (2024-09-01, unchanged until
                          b439d82, 2025-07): the MIO paper's era. The prediction goes through
                          the processor's full ``__call__`` (``cat's`` -> ``cat 's``); the
                          answers are normalised (punctuation + digit/article, and the
                          prediction a second time) only when they are not all identical,
                          else compared raw: ``"cat's toy"`` vs 10 x ``"cat's toy"`` is 0.
========================  ==================================================================

Two smaller differences are reproduced too. lmms-eval's processor detects ``digit,digit`` with
``(?<=\\d)(\\,)+(?=\\d)`` where the official code uses ``(\\d)(\\,)(\\d)`` (they disagree on
``1,,2``). And the official code averages with a left-to-right float ``sum / n`` while lmms-eval
uses ``statistics.mean`` (exact, then rounded once), so the two can differ in the last bit.

Answer lists of any length are scored as the references score them (``n`` leave-one-out
terms; a single answer can never match). An empty list raises ``ValueError`` (the references
divide by zero), except under ``lmms_tokenized``, whose reference returns 0.0.

>>> vqa_accuracy("two", ["2"] * 2 + ["3"] * 8)
0.6
>>> vqa_accuracy("Yes", ["yes"] * 10, variant="vqa2021"), vqa_accuracy("Yes", ["yes"] * 10)
(0.0, 1.0)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Sequence

from mio_eval.errors import check_target, named
from mio_eval.metrics.base import MetricResult, Stateless
from mio_eval.metrics.vqa_text import (  # noqa: F401 - the tables are re-exported for the tests
    _ARTICLES, _CONTRACTIONS, _LOO, _Memo, _clean, _norm_lmms, _norm_lmms_tokenized, _norm_official,
    process_digit_article, process_punctuation)

__all__ = [
    "NORMALIZERS",
    "VQA_VARIANTS",
    "VQAAccuracy",
    "VQANormalizer",
    "Lmms",
    "LmmsTokenized",
    "Lmms2024",
    "Vqa2016",
    "Vqa2021",
    "check_normalizer",
    "process_digit_article",
    "process_punctuation",
    "vqa_accuracies",
    "vqa_accuracy",
    "vqa_normalize",
    "vqa_normalizer",
]

# --- the named variants (the tables and string processing are in vqa_text.py) -------------------

class VQANormalizer(Stateless, ABC):
    """One reference's answer processing: how a prediction is normalised (:meth:`normalize`, also
    the answer a submission file carries) and how a question is scored (:meth:`scorer`: the
    reference's normalisation of both sides, then the leave-one-out rule).

    ``name`` is the ``variant`` recorded with every result and ``provenance`` the text the metric
    carries; both are compared by the regression gate, so they never change for a given class.
    Select one in a task YAML (``normalizer: {_target_: mio_eval.metrics.vqa.LmmsTokenized}``).
    """

    name: ClassVar[str]
    provenance: ClassVar[str]

    @abstractmethod
    def normalize(self, text: str) -> str:
        """The full normalisation this reference applies when it normalises the prediction."""

    @abstractmethod
    def scorer(self) -> Callable[[str, Sequence[str]], float]:
        """A per-question scorer with its own normalisation caches (one per batch call)."""


def _no_answers() -> ValueError:
    return ValueError("VQA accuracy of a question with no answers is undefined")


class Lmms(VQANormalizer):
    """lmms-eval ``vqav2/utils.py`` @75571cf: both sides cleaned, punctuation + digit/article, always;
    ``statistics.mean``.

    >>> Lmms().normalize("The cat's toy"), Lmms().scorer()("Yes", ["yes"] * 10)
    ("cat's toy", 1.0)
    """

    name = "lmms"
    provenance = ("lmms-eval @75571cf lmms_eval/tasks/vqav2/utils.py (EvalAIAnswerProcessor "
                  "process_punctuation + process_digit_article on answers and prediction, always)")
    _norm = staticmethod(_norm_lmms)
    _empty_ok = False

    def normalize(self, text: str) -> str:
        return self._norm(text)

    def scorer(self) -> Callable[[str, Sequence[str]], float]:
        memo = _Memo(self._norm)
        loo = _LOO["exact"]
        empty_ok = self._empty_ok

        def score(prediction: str, answers: Sequence[str]) -> float:
            if not answers:
                if empty_ok:
                    return 0.0  # ok_vqa/vizwiz utils.py: "if gtAcc: ... else: accuracy = 0"
                raise _no_answers()
            return loo(memo[prediction], list(map(memo.__getitem__, answers)))

        return score


class LmmsTokenized(Lmms):
    """lmms-eval ``ok_vqa/utils.py`` and ``vizwiz_vqa/utils.py`` @75571cf: the processor's
    ``__call__`` on both sides (lower-case, delete ``,`` ``?``, split ``'s``); no answers -> 0.0.

    >>> LmmsTokenized().normalize("The cat's toy")
    "cat 's toy"
    """

    name = "lmms_tokenized"
    provenance = ("lmms-eval @75571cf lmms_eval/tasks/ok_vqa/utils.py and vizwiz_vqa/utils.py "
                  "(EvalAIAnswerProcessor.__call__: word_tokenize, then punctuation + digit/article, both sides)")
    _norm = staticmethod(_norm_lmms_tokenized)
    _empty_ok = True


class Lmms2024(VQANormalizer):
    """lmms-eval ``vqav2/utils.py`` @7548ebe (the MIO paper's era): the prediction through
    ``__call__``; answers (and the prediction a second time) normalised only when they are not all
    identical, else compared raw.

    >>> Lmms2024().scorer()("cat's toy", ["cat's toy"] * 5)
    0.0
    """

    name = "lmms_2024"
    provenance = ("lmms-eval @7548ebe lmms_eval/tasks/vqav2/utils.py (before the 2025 fixes b439d82, 28ea9a1: "
                  "prediction through EvalAIAnswerProcessor.__call__; answers normalised only if not all identical)")

    def normalize(self, text: str) -> str:  # the prediction when the answers differ (processed twice)
        return _norm_lmms(_norm_lmms_tokenized(text))

    def scorer(self) -> Callable[[str, Sequence[str]], float]:
        # vqav2_process_results @7548ebe: resAns = processor(pred); answers stripped; if they are
        # not all identical, answers get punctuation + digit/article and resAns the same a second
        # time (``_norm_lmms`` of an already-processed string); statistics.mean.
        tokenized = _Memo(_norm_lmms_tokenized)
        full = _Memo(_norm_lmms)
        clean = _Memo(_clean)
        loo = _LOO["exact"]

        def score(prediction: str, answers: Sequence[str]) -> float:
            if not answers:
                raise _no_answers()
            gts = list(map(clean.__getitem__, answers))
            pred = tokenized[prediction]
            if len(set(gts)) > 1:
                return loo(full[pred], list(map(full.__getitem__, gts)))
            return loo(pred, gts)

        return score


class Vqa2016(VQANormalizer):
    """GT-Vision-Lab/VQA ``vqaEval.py`` @458a8b2 (LAVIS, SEED-Bench): the prediction always fully
    normalised; answers punctuation-only and only when not all identical, never stripped.

    >>> Vqa2016().scorer()("hot-dog", ["hot-dog"] * 5 + ["x"] * 5)
    1.0
    """

    name = "vqa2016"
    provenance = ("GT-Vision-Lab/VQA @458a8b2 PythonEvaluationTools/vqaEvaluation/vqaEval.py "
                  "(= LAVIS / SEED-Bench copy: prediction always normalised; answers punctuation-only if not all identical)")

    def normalize(self, text: str) -> str:
        return _norm_official(_clean(text))

    def scorer(self) -> Callable[[str, Sequence[str]], float]:
        loo = _LOO["sequential"]
        full = _Memo(self.normalize)
        punct = _Memo(process_punctuation)

        def score(prediction: str, answers: Sequence[str]) -> float:
            if not answers:
                raise _no_answers()
            # Answers are neither stripped nor digit/article-processed in this version.
            gts = list(map(punct.__getitem__, answers)) if len(set(answers)) > 1 else list(answers)
            return loo(full[prediction], gts)

        return score


class Vqa2021(Vqa2016):
    """GT-Vision-Lab/VQA ``vqaEval.py`` @a013f00 (HEAD): both sides stripped; both normalised only
    when the answers are not all identical, else raw strings compared.

    >>> Vqa2021().scorer()("Yes", ["yes"] * 10)
    0.0
    """

    name = "vqa2021"
    provenance = ("GT-Vision-Lab/VQA @a013f00 PythonEvaluationTools/vqaEvaluation/vqaEval.py "
                  "(both sides normalised only if the answers are not all identical, else raw comparison)")

    def scorer(self) -> Callable[[str, Sequence[str]], float]:
        loo = _LOO["sequential"]
        full = _Memo(self.normalize)
        clean = _Memo(_clean)
        full_clean = _Memo(_norm_official)  # input already cleaned

        def score(prediction: str, answers: Sequence[str]) -> float:
            if not answers:
                raise _no_answers()
            gts = list(map(clean.__getitem__, answers))
            if len(set(gts)) > 1:
                return loo(full[prediction], list(map(full_clean.__getitem__, gts)))
            return loo(clean[prediction], gts)

        return score


NORMALIZERS: tuple[type[VQANormalizer], ...] = (Lmms, LmmsTokenized, Vqa2016, Vqa2021, Lmms2024)
# name -> provenance, for the pure functions' ``variant=`` and for listings (derived, not a second table).
VQA_VARIANTS: dict[str, str] = {cls.name: cls.provenance for cls in NORMALIZERS}
_BY_NAME: dict[str, type[VQANormalizer]] = {cls.name: cls for cls in NORMALIZERS}
_HINT = "e.g. task.normalizer._target_=mio_eval.metrics.vqa.LmmsTokenized"


def vqa_normalizer(variant: str | VQANormalizer) -> VQANormalizer:
    """The normaliser a recorded variant name (``lmms``, ``vqa2021``...) stands for; a normaliser
    is returned as is. Library callers and the parity tests use names; task YAMLs use ``_target_``."""
    return named(variant, VQANormalizer, _BY_NAME, kind="VQA variant")


def check_normalizer(value: Any, *, what: str = "task.normalizer") -> VQANormalizer:
    """``value`` if it is a VQA normaliser, else a one-line ConfigError naming the ``_target_`` form
    (a bare name such as ``lmms`` is the ``variant:`` knob of earlier versions)."""
    return check_target(value, VQANormalizer, what=what, kind="VQA normaliser",
                        choices=", ".join(cls.__name__ for cls in NORMALIZERS), module=__name__, hint=_HINT)


def vqa_normalize(text: str, *, variant: str | VQANormalizer = "lmms") -> str:
    """The full normalisation a variant applies when it normalises (for the official variants
    that is the prediction side; ``vqa2016`` answers only get :func:`process_punctuation`).

    >>> vqa_normalize("The cat's toy"), vqa_normalize("The cat's toy", variant="lmms_tokenized")
    ("cat's toy", "cat 's toy")
    """
    return vqa_normalizer(variant).normalize(text)


def _check_pair(prediction: str, answers: Sequence[str]) -> None:
    if not isinstance(prediction, str):
        raise TypeError(f"prediction must be a string, got {type(prediction).__name__}")
    if isinstance(answers, str):
        raise TypeError("answers must be a sequence of strings, not one string")


def vqa_accuracy(prediction: str, answers: Sequence[str], *, variant: str | VQANormalizer = "lmms") -> float:
    """Accuracy of one prediction against its annotators' answers, in [0, 1].

    >>> vqa_accuracy("2", ["2"] + ["3"] * 9)
    0.3
    >>> vqa_accuracy("hot-dog", ["hot dog"] * 5 + ["sandwich"] * 5, variant="vqa2021")
    1.0
    """
    _check_pair(prediction, answers)
    return vqa_normalizer(variant).scorer()(prediction, answers)


def vqa_accuracies(
    predictions: Sequence[str], answers_lists: Sequence[Sequence[str]], *, variant: str | VQANormalizer = "lmms"
) -> list[float]:
    """:func:`vqa_accuracy` of every pair, normalising each distinct string once.

    Same values as calling :func:`vqa_accuracy` per question, bit for bit.
    """
    if len(predictions) != len(answers_lists):
        raise ValueError(f"{len(predictions)} predictions but {len(answers_lists)} answer lists")
    score = vqa_normalizer(variant).scorer()
    out = []
    for prediction, answers in zip(predictions, answers_lists):
        _check_pair(prediction, answers)
        out.append(score(prediction, answers))
    return out


# --- stateful shell ---------------------------------------------------------------------------


class VQAAccuracy:
    """VQA accuracy over a split: ``update`` per batch, ``compute`` once.

    ``compute`` returns the overall mean (``vqa_accuracy``) and, when types were given, one result
    per answer type (``vqa_accuracy/<answer_type>``, e.g. ``vqa_accuracy/yes/no``) and per question
    type (``vqa_accuracy/question_type/<question_type>``); each breakdown result carries
    ``extra={"group": "answer_type" | "question_type", "key": <type>}``. Values are fractions;
    ``scale`` 100 is how papers print them (the official script also rounds to 2 decimals).
    """

    higher_is_better = True

    def __init__(self, *, normalizer: VQANormalizer | str = "lmms", name: str = "vqa_accuracy") -> None:
        self.normalizer = vqa_normalizer(normalizer)
        self.variant = self.normalizer.name
        self.name = name
        self.provenance = self.normalizer.provenance
        self.reset()

    def reset(self) -> None:
        self.scores: list[float] = []
        self._types: dict[str, list[str]] = {}
        self._updated = False

    def update(
        self,
        predictions: Sequence[str],
        answers_lists: Sequence[Sequence[str]],
        answer_types: Sequence[str] | None = None,
        question_types: Sequence[str] | None = None,
    ) -> list[float]:
        """Score a batch; returns its per-question accuracies."""
        given = {"answer_type": answer_types, "question_type": question_types}
        for group, types in given.items():
            if types is not None and len(types) != len(predictions):
                raise ValueError(f"{len(types)} {group}s for {len(predictions)} predictions")
            if self._updated and (types is None) != (group not in self._types):
                raise ValueError(f"{group}s must be given with every update or with none")
        scores = vqa_accuracies(predictions, answers_lists, variant=self.normalizer)
        for group, types in given.items():
            if types is not None:
                self._types.setdefault(group, []).extend(types)
        self._updated = True
        self.scores.extend(scores)
        return scores

    def _result(self, name: str, scores: list[float], extra: dict | None = None) -> MetricResult:
        return MetricResult(
            name=name,
            value=sum(scores) / len(scores) if scores else None,
            higher_is_better=True,
            variant=self.variant,
            provenance=self.provenance,
            scale=100.0,
            n=len(scores),
            extra=extra or {},
        )

    def compute(self) -> list[MetricResult]:
        results = [self._result(self.name, self.scores)]
        for group, prefix in (("answer_type", self.name), ("question_type", f"{self.name}/question_type")):
            types = self._types.get(group)
            if types is None:
                continue
            by_type: dict[str, list[float]] = {}
            for key, score in zip(types, self.scores):
                by_type.setdefault(key, []).append(score)
            for key in sorted(by_type):
                results.append(self._result(f"{prefix}/{key}", by_type[key], {"group": group, "key": key}))
        return results
