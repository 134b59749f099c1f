"""Open-ended visual question answering (VQAv2, OK-VQA, VizWiz): VQA accuracy, or a submission file.

Prompts are lmms-eval's (the MIO paper used them): ``{image}`` then the question then the task's
post-prompt, e.g. VQAv2 ``"{image}{question}\\nAnswer the question using a single word or
phrase."``; VizWiz questions are ``str.capitalize()``-d first as lmms-eval's
``vizwiz_vqa_doc_to_text`` does (``capitalize_question: true``).

Post-processing of the generated text, as lmms-eval: cut at the task's ``until`` strings
(``"ASSISTANT:"`` for OK-VQA / VizWiz) and strip; everything else is the scorer's normalisation
(the YAML's ``normalizer``, a ``_target_``: VQAv2 ``mio_eval.metrics.vqa.Lmms``, OK-VQA / VizWiz
``LmmsTokenized``; results record its name as ``variant``; see ``mio_eval.metrics.vqa``). No
first-word / first-line truncation and no stemming: those belong to other protocols
(OpenFlamingo's ``postprocess_vqa_generation``) and are not mixed in.

Scoring: accuracy per question = the leave-one-annotator-out ``min(1, matches/3)`` mean, then the
mean over questions (overall and per answer type, ``breakdowns``). A split without answers
(VQAv2 test-dev / test, VizWiz test) reports no accuracy and writes the EvalAI submission JSON
as an artifact (``submission_file``, written by the runner): VQAv2 ``[{"question_id": int, "answer": str}]``,
VizWiz ``[{"image": "VizWiz_test_00000000.jpg", "answer": str}]``, each answer normalised exactly as lmms-eval writes
it (its ``resAns`` after the variant's processing). Failed samples are left out of the accuracy
(and counted in ``n_errors``) and of the submission (listed in the settings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from mio_eval.errors import ConfigError
from mio_eval.generation import generation_settings
from mio_eval.metrics.vqa import Lmms, VQAAccuracy, VQANormalizer, check_normalizer
from mio_eval.tasks.base import Generated, InvalidOutput, ScoreReport
from mio_eval.tasks.image_prompts import check_template, render, stop_at
from mio_eval.types import Image, Modality, Output, Request, Sample

__all__ = ["VQATask"]

_SUBMISSION_KEYS = ("question_id", "image")
_BREAKDOWNS = ("answer_type", "question_type")


class VQATask:
    output_modality = Modality.TEXT
    input_modalities = frozenset({Modality.IMAGE, Modality.TEXT})
    scoring_keys: ClassVar[tuple[str, ...]] = ("normalizer", "breakdowns", "submission", "submission_file")

    def __init__(
        self,
        *,
        name: str,
        loader: Callable[[], list[Sample]],
        prompt: str = "{image}{question}",
        generation: Mapping[str, Any] | None = None,
        until: Sequence[str] = (),
        capitalize_question: bool = False,
        normalizer: VQANormalizer | None = None,
        variant: Any = None,
        breakdowns: Sequence[str] = ("answer_type",),
        submission: str = "question_id",
        submission_file: str = "submission.json",
    ) -> None:
        self.name = name
        self.loader = loader
        self.prompt = check_template(prompt, ("question",), what="VQA prompt")
        self.generation = generation_settings(generation)
        self.until = tuple(until)
        self.capitalize_question = bool(capitalize_question)
        if variant is not None:  # the string knob of earlier versions
            raise ConfigError(f"task.variant is replaced by task.normalizer given by _target_ (e.g. "
                              f"task.normalizer._target_=mio_eval.metrics.vqa.LmmsTokenized), got variant={variant!r}")
        self.normalizer = check_normalizer(Lmms() if normalizer is None else normalizer)
        self.variant = self.normalizer.name
        bad = [b for b in breakdowns if b not in _BREAKDOWNS]
        if bad:
            raise ConfigError(f"unknown VQA breakdown(s) {bad}; choose from {', '.join(_BREAKDOWNS)}")
        self.breakdowns = tuple(breakdowns)
        if submission not in _SUBMISSION_KEYS:
            raise ConfigError(f"submission must be one of {', '.join(_SUBMISSION_KEYS)}, got {submission!r}")
        self.submission = submission
        self.submission_file = submission_file

    def samples(self) -> list[Sample]:
        return self.loader()

    def question(self, sample: Sample) -> str:
        question = str(sample.metadata["question"])
        return question.capitalize() if self.capitalize_question else question

    def request(self, sample: Sample) -> Request:
        images = [p for p in sample.parts if isinstance(p, Image)]
        return Request(sample_id=sample.id, parts=render(self.prompt, images, question=self.question(sample)),
                       output_modality=Modality.TEXT, generation=self.generation, kind="vqa")

    def prediction(self, sample: Sample, output: Output) -> str:
        if output.text is None:
            kinds = ", ".join(sorted(m.value for m in output.modalities())) or "nothing"
            raise InvalidOutput(f"expected an answer, got {kinds}")
        return stop_at(output.text, self.until).strip()

    def _submission_row(self, sample: Sample, answer: str) -> dict[str, Any]:
        if self.submission == "image":
            return {"image": sample.metadata.get("image_file") or f"{sample.id}.jpg", "answer": answer}
        qid = sample.metadata.get("question_id", sample.id)
        return {"question_id": int(qid) if str(qid).isdigit() else qid, "answer": answer}

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        ok = [g for g in generated if g.error is None]
        has_answers = any(g.sample.targets for g in generated)
        settings: dict[str, Any] = {"prompt": self.prompt, "until": list(self.until), "variant": self.variant,
                                    "capitalize_question": self.capitalize_question}
        rows: dict[str, dict[str, Any]] = {
            g.sample.id: {"id": g.sample.id, "error": g.error, "answer_type": g.sample.metadata.get("answer_type")}
            for g in generated}
        metrics = ()
        artifacts: dict[str, Any] = {}
        if has_answers:
            scored = [g for g in ok if g.sample.targets]
            metric = VQAAccuracy(normalizer=self.normalizer)
            types = {b: [str(g.sample.metadata.get(b) or "unknown") for g in scored] for b in self.breakdowns}
            accuracies = metric.update([g.prediction for g in scored], [list(g.sample.targets) for g in scored],
                                       answer_types=types.get("answer_type"), question_types=types.get("question_type"))
            for g, acc in zip(scored, accuracies):
                rows[g.sample.id].update(prediction=g.prediction, normalized=self.normalizer.normalize(g.prediction),
                                         accuracy=acc, answers=list(g.sample.targets))
            metrics = tuple(metric.compute()) if scored else ()
        else:
            submission = []
            for g in ok:
                answer = self.normalizer.normalize(g.prediction)
                submission.append(self._submission_row(g.sample, answer))
                rows[g.sample.id].update(prediction=g.prediction, submitted=answer)
            artifacts[self.submission_file] = submission
            settings.update(submission_file=self.submission_file, submitted=len(submission),
                            missing_from_submission=[g.sample.id for g in generated if g.error is not None])
        return ScoreReport(metrics=metrics, per_sample=tuple(rows[g.sample.id] for g in generated), settings=settings,
                           artifacts=artifacts)
