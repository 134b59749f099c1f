"""MME-Unify understanding (SIPU / MITIU / VPU multiple choice) on the shared multiple-choice core.

The reference (aba122/MME-Unify @ 0956091 ``evaluate/Evaluate_Understanding.py``) counts
``output == answer``, so the reply must already be the bare letter. By default (``Generate`` read
by ``ExtractChoice``, :mod:`mio_eval.tasks.multiple_choice`) the letter is extracted first
(``metrics.choice.extract_choice``: deterministic, never a guess; ``None`` counts wrong and is
reported as ``invalid_rate``) and the reference's strict comparison is reported too
(``accuracy_strict``, over the generated replies). ``Likelihood`` instead scores the continuations
``" A" ..`` (the options' labels) after the same prompt. US = mean of the three subtask accuracies
(``metrics.mme_unify.understanding_scores``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

from mio_eval.generation import generation_settings
from mio_eval.metrics.choice import ChoiceAccuracy
from mio_eval.metrics.mme_unify import NORMALIZATION, understanding_scores
from mio_eval.tasks.base import Generated, ScoreReport
from mio_eval.tasks.loaders.mme_unify import UNDERSTANDING_SUBTASKS
from mio_eval.tasks.mme_unify.common import build_prompts, export_submission
from mio_eval.tasks.multiple_choice import (ExtractChoice, Generate, LetterRule, ScoringStrategy, check_rule,
                                            check_strategy)
from mio_eval.types import Modality, Output, Request, Sample, Text

__all__ = ["MMEUnifyUnderstandingTask"]


class MMEUnifyUnderstandingTask:
    """SIPU / MITIU / VPU multiple choice: letter extraction, accuracy per subtask, US."""

    output_modality = Modality.TEXT
    scoring_keys: ClassVar[tuple[str, ...]] = ("export", "letter_rule")

    def __init__(self, *, name: str, loader, prompts_file: str | None = None, prompts: Mapping[str, str] | None = None,
                 generation: Mapping[str, Any] | None = None, export: bool = True,
                 scoring: ScoringStrategy | None = None, letter_rule: LetterRule | None = None) -> None:
        self.name = name
        self.loader = loader
        self.prompts = build_prompts(prompts_file, prompts)
        self.generation = generation_settings(generation)
        self.export = export
        self.scoring = check_strategy(Generate() if scoring is None else scoring)
        self.letter_rule = check_rule(ExtractChoice() if letter_rule is None else letter_rule)
        self.needs_loglikelihood = self.scoring.needs_loglikelihood
        subtasks = getattr(loader, "subtasks", tuple(UNDERSTANDING_SUBTASKS))
        self.input_modalities = frozenset({Modality.TEXT, Modality.IMAGE} | ({Modality.VIDEO} if "VPU" in subtasks else set()))
        if set(subtasks) == {"VPU"}:
            self.input_modalities = frozenset({Modality.TEXT, Modality.VIDEO})

    def samples(self) -> list[Sample]:
        return self.loader()

    def request(self, sample: Sample) -> Request:
        options = "\n".join(sample.metadata["options"])
        parts = (Text(self.prompts["understanding"] + "\n"), *sample.parts, Text("\n" + options))
        return Request(sample_id=sample.id, parts=parts, output_modality=Modality.TEXT, generation=self.generation,
                       continuations=self.scoring.continuations([" " + label for label in sample.metadata["labels"]]))

    def prediction(self, sample: Sample, output: Output) -> dict[str, Any]:
        index = self.scoring.choose(output, choices=sample.choices, rule=self.letter_rule)
        return {"text": output.text, "choice": sample.metadata["labels"][index] if index is not None else None}

    def _rule_provenance(self) -> str:
        # the wording of earlier runs for the default rule, so that the gate sees the same protocol
        default = isinstance(self.letter_rule, ExtractChoice) and self.letter_rule.option_texts
        return "metrics.choice.extract_choice" if default else self.letter_rule.provenance

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        acc = ChoiceAccuracy(variant="extract_choice" if not self.needs_loglikelihood else self.scoring.name,
                             provenance="MME-Unify Evaluate_Understanding.py exact match, after deterministic letter "
                                        f"extraction ({self._rule_provenance()}); invalid counted wrong"
                             if not self.needs_loglikelihood else
                             "argmax of summed log-probabilities of the option labels (not the reference protocol)")
        rows, preds, golds, groups, strict, exported = [], [], [], [], [], []
        for g in generated:
            meta = g.sample.metadata
            item = dict(meta["item"])
            if g.error is not None:
                rows.append({"id": g.sample.id, "error": g.error, "stage": "generate", "subtask": meta["subtask"]})
                exported.append({**item, "output": None, "error": g.error})
                continue
            labels = list(meta["labels"])
            letter = g.prediction["choice"]
            preds.append(labels.index(letter) if letter is not None else None)
            golds.append(meta["gold_index"])
            groups.append(meta["subtask"])
            if g.prediction["text"] is not None:  # a generated reply (the reference's rule needs one)
                strict.append(g.prediction["text"] == g.sample.targets[0])
            rows.append({"id": g.sample.id, "error": None, "subtask": meta["subtask"], "choice": letter,
                         "answer": g.sample.targets[0], "correct": letter == g.sample.targets[0]})
            exported.append({**item, "output": letter if letter is not None else g.prediction["text"]})
        acc.update(preds, golds, groups=groups)
        metrics = acc.compute()
        metrics.extend(understanding_scores(metrics, strict))
        settings: dict[str, Any] = {"extraction": "metrics.choice.extract_choice", "normalization": NORMALIZATION,
                                    "scoring": self.scoring.name, "letter_rule": repr(self.letter_rule)}
        artifacts = export_submission("understanding", exported, settings) if self.export else {}
        return ScoreReport(metrics=tuple(metrics), per_sample=tuple(rows), settings=settings, artifacts=artifacts)
