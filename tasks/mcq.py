"""Multiple-choice questions over images or video frames (SEED-Bench): accuracy overall and per group.

Two ways to answer, chosen by the ``scoring`` strategy's ``_target_`` (the shared multiple-choice
core, :mod:`mio_eval.tasks.multiple_choice`; it changes what the model is asked, so it is part of
the run fingerprint):

* ``Likelihood`` (default; SEED-Bench's official answer ranking, GPT-3 style): one log-likelihood
  request per question whose ``continuations`` are the option *texts* (each after
  ``continuation_prefix``, lm-eval's target delimiter ``" "``), rendered after
  ``likelihood_prompt`` (lmms-eval ``seedbench_ppl``: ``"{question} Answer :"``). The prediction
  is the option with the highest summed log-probability (``rank_choices``: the lowest summed NLL,
  ties to the lowest index). Needs an adapter with ``supports_loglikelihood``.
* ``Generate``: the model writes an answer to ``generate_prompt`` (lmms-eval ``seedbench``: the
  options as ``A. ...`` lines and "Answer with the option's letter from the given choices
  directly."); the text is cut at ``until`` and the letter read by the ``letter_rule``
  (``_target_`` too): ``ExtractChoice`` (``mio_eval.metrics.choice.extract_choice``:
  deterministic, ``"The answer is (B)"`` -> B) or ``FirstChar`` (lmms-eval's
  ``seed_process_result``: the first character of the stripped text, compared
  case-insensitively). A reply naming no option is *invalid*: counted as
  wrong, never replaced by a guess, and reported as ``invalid_rate``.

``accuracy`` is micro over all questions (``eval.py`` sums counts); ``accuracy/<dimension>`` per
group label (``group_by`` metadata key, SEED-Bench's dimension names) and ``accuracy_macro``, the
unweighted mean over groups. A failed sample (unreadable image) is left out and counted in
``n_errors``.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from mio_eval.generation import generation_settings
from mio_eval.metrics.choice import ChoiceAccuracy
from mio_eval.tasks.base import Generated, ScoreReport
from mio_eval.tasks.image_prompts import check_template, render
from mio_eval.tasks.multiple_choice import (LETTERS, ExtractChoice, LetterRule, Likelihood, ScoringStrategy,
                                            check_rule, check_strategy, format_options)
from mio_eval.types import Image, Modality, Output, Request, Sample, Video

__all__ = ["MultipleChoiceTask"]

_FIELDS = ("question", "options", *(f"choice_{c}" for c in string.ascii_lowercase[:8]))
_PROVENANCE = {
    "likelihood": "SEED-Bench eval.py answer ranking: argmin summed NLL of the option text (ties -> lowest index)",
    "generate/extract": "lmms-eval seedbench prompt; mio_eval extract_choice letter parser; invalid counted wrong",
    "generate/first_char": "lmms-eval seedbench seed_process_result: first character, case-insensitive",
}


class MultipleChoiceTask:
    output_modality = Modality.TEXT
    scoring_keys: ClassVar[tuple[str, ...]] = ("letter_rule", "group_by")

    def __init__(
        self,
        *,
        name: str,
        loader: Callable[[], list[Sample]],
        scoring: ScoringStrategy | None = None,
        likelihood_prompt: str = "{image}{question} Answer :",
        generate_prompt: str = "{image}{question}\n{options}\nAnswer with the option's letter from the given choices directly.",
        continuation_prefix: str = " ",
        generation: Mapping[str, Any] | None = None,
        until: Sequence[str] = (),
        letter_rule: LetterRule | None = None,
        group_by: str | None = "dimension",
        inputs: Sequence[str] = ("image", "text"),
    ) -> None:
        self.scoring = check_strategy(Likelihood() if scoring is None else scoring)
        self.letter_rule = check_rule(ExtractChoice() if letter_rule is None else letter_rule)
        self.name = name
        self.loader = loader
        self.likelihood_prompt = check_template(likelihood_prompt, _FIELDS, what="likelihood_prompt")
        self.generate_prompt = check_template(generate_prompt, _FIELDS, what="generate_prompt")
        self.continuation_prefix = continuation_prefix
        self.generation = generation_settings(generation)
        self.until = tuple(until)
        self.group_by = group_by
        self.input_modalities = frozenset(Modality(m) for m in inputs)
        self.needs_loglikelihood = self.scoring.needs_loglikelihood

    @property
    def variant(self) -> str:
        """``likelihood`` or ``generate/<letter rule>`` (the rule only reads generated replies)."""
        return self.scoring.name if self.needs_loglikelihood else f"{self.scoring.name}/{self.letter_rule.name}"

    @property
    def prompt(self) -> str:
        return self.likelihood_prompt if self.needs_loglikelihood else self.generate_prompt

    def samples(self) -> list[Sample]:
        return self.loader()

    def _fields(self, sample: Sample) -> dict[str, str]:
        fields = {"question": str(sample.metadata.get("question", "")),
                  "options": format_options(sample.choices)}
        fields.update({f"choice_{string.ascii_lowercase[i]}": c for i, c in enumerate(sample.choices)})
        return fields

    def request(self, sample: Sample) -> Request:
        media = [p for p in sample.parts if isinstance(p, (Image, Video))]
        continuations = self.scoring.continuations([self.continuation_prefix + c for c in sample.choices])
        return Request(sample_id=sample.id, parts=render(self.prompt, media, **self._fields(sample)),
                       output_modality=Modality.TEXT, generation=self.generation, kind="mcq",
                       continuations=continuations)

    def prediction(self, sample: Sample, output: Output) -> str | None:
        index = self.scoring.choose(output, choices=sample.choices, rule=self.letter_rule, until=self.until)
        return None if index is None else LETTERS[index]

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        ok = [g for g in generated if g.error is None]
        metric = ChoiceAccuracy(variant=self.variant, provenance=_PROVENANCE.get(
            self.variant, f"{self.scoring!r}, letter rule {self.letter_rule.provenance}; invalid counted wrong"))
        preds = [None if g.prediction is None else LETTERS.index(g.prediction) for g in ok]
        gold = [LETTERS.index(g.sample.targets[0]) for g in ok]
        groups = [str(g.sample.metadata.get(self.group_by, "unknown")) for g in ok] if self.group_by else None
        if ok:
            metric.update(preds, gold, groups=groups)
        rows = {g.sample.id: {"id": g.sample.id, "error": g.error} for g in generated}
        for g, p, t in zip(ok, preds, gold):
            row = rows[g.sample.id]
            row.update(prediction=g.prediction, answer=g.sample.targets[0], correct=p == t, invalid=p is None)
            if self.group_by:
                row[self.group_by] = g.sample.metadata.get(self.group_by)
            if g.output.logprobs:
                row["logprobs"] = list(g.output.logprobs)
        return ScoreReport(
            metrics=tuple(metric.compute()) if ok else (),
            per_sample=tuple(rows[g.sample.id] for g in generated),
            settings={"scoring": self.scoring.name, "variant": self.variant, "letter_rule": self.letter_rule.name,
                      "prompt": self.prompt,
                      "continuation_prefix": self.continuation_prefix if self.needs_loglikelihood else None,
                      "until": list(self.until), "aggregation": "micro over questions; macro over groups"},
        )
