"""Multiple-choice questions over images or video frames (SEED-Bench): accuracy overall and per group.

Two ways to answer, chosen by ``scoring`` (it changes what the model is asked, so it is part of
the run fingerprint):

* ``likelihood`` (default; SEED-Bench's official answer ranking, GPT-3 style): one log-likelihood
  request per question whose ``continuations`` are the option *texts* (each after
  ``continuation_prefix``, lm-eval's target delimiter ``" "``), rendered after
  ``likelihood_prompt`` (lmms-eval ``seedbench_ppl``: ``"{question} Answer :"``). The prediction
  is the option with the highest summed log-probability (``rank_choices``: the lowest summed NLL,
  ties to the lowest index). Needs an adapter with ``supports_loglikelihood``.
* ``generate``: the model writes an answer to ``generate_prompt`` (lmms-eval ``seedbench``: the
  options as ``A. ...`` lines and "Answer with the option's letter from the given choices
  directly."); the text is cut at ``until`` and the letter read by ``letter_rule``:
  ``extract`` (``mio_eval.metrics.choice.extract_choice``: deterministic, ``"The answer is (B)"``
  -> B) or ``first_char`` (lmms-eval's ``seed_process_result``: the first character of the
  stripped text, compared case-insensitively). A reply naming no option is *invalid*: counted as
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

from mio_eval.errors import ConfigError
from mio_eval.generation import generation_settings
from mio_eval.metrics.choice import ChoiceAccuracy, extract_choice, rank_choices
from mio_eval.tasks.base import Generated, InvalidOutput, ScoreReport
from mio_eval.tasks.image_prompts import check_template, render, stop_at
from mio_eval.types import Image, Modality, Output, Request, Sample, Video

__all__ = ["MultipleChoiceTask", "SCORING_MODES", "LETTER_RULES"]

SCORING_MODES = ("likelihood", "generate")
LETTER_RULES = ("extract", "first_char")
_LETTERS = string.ascii_uppercase
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
        scoring: str = "likelihood",
        likelihood_prompt: str = "{image}{question} Answer :",
        generate_prompt: str = "{image}{question}\n{options}\nAnswer with the option's letter from the given choices directly.",
        continuation_prefix: str = " ",
        generation: Mapping[str, Any] | None = None,
        until: Sequence[str] = (),
        letter_rule: str = "extract",
        group_by: str | None = "dimension",
        inputs: Sequence[str] = ("image", "text"),
    ) -> None:
        if scoring not in SCORING_MODES:
            raise ConfigError(f"scoring must be one of {', '.join(SCORING_MODES)}, got {scoring!r}")
        if letter_rule not in LETTER_RULES:
            raise ConfigError(f"letter_rule must be one of {', '.join(LETTER_RULES)}, got {letter_rule!r}")
        self.name = name
        self.loader = loader
        self.scoring = scoring
        self.likelihood_prompt = check_template(likelihood_prompt, _FIELDS, what="likelihood_prompt")
        self.generate_prompt = check_template(generate_prompt, _FIELDS, what="generate_prompt")
        self.continuation_prefix = continuation_prefix
        self.generation = generation_settings(generation)
        self.until = tuple(until)
        self.letter_rule = letter_rule
        self.group_by = group_by
        self.input_modalities = frozenset(Modality(m) for m in inputs)
        self.needs_loglikelihood = scoring == "likelihood"

    @property
    def variant(self) -> str:
        return "likelihood" if self.scoring == "likelihood" else f"generate/{self.letter_rule}"

    def samples(self) -> list[Sample]:
        return self.loader()

    def _fields(self, sample: Sample) -> dict[str, str]:
        fields = {"question": str(sample.metadata.get("question", "")),
                  "options": "\n".join(f"{_LETTERS[i]}. {c}" for i, c in enumerate(sample.choices))}
        fields.update({f"choice_{string.ascii_lowercase[i]}": c for i, c in enumerate(sample.choices)})
        return fields

    def request(self, sample: Sample) -> Request:
        media = [p for p in sample.parts if isinstance(p, (Image, Video))]
        if self.scoring == "likelihood":
            return Request(sample_id=sample.id, parts=render(self.likelihood_prompt, media, **self._fields(sample)),
                           output_modality=Modality.TEXT, generation=self.generation, kind="mcq",
                           continuations=tuple(self.continuation_prefix + c for c in sample.choices))
        return Request(sample_id=sample.id, parts=render(self.generate_prompt, media, **self._fields(sample)),
                       output_modality=Modality.TEXT, generation=self.generation, kind="mcq")

    def prediction(self, sample: Sample, output: Output) -> str | None:
        n = len(sample.choices)
        if self.scoring == "likelihood":
            if len(output.logprobs) != n:
                raise InvalidOutput(f"expected {n} option log-probabilities, got {len(output.logprobs)}")
            return _LETTERS[rank_choices(output.logprobs)]
        if output.text is None:
            kinds = ", ".join(sorted(m.value for m in output.modalities())) or "nothing"
            raise InvalidOutput(f"expected an answer, got {kinds}")
        text = stop_at(output.text, self.until)
        if self.letter_rule == "first_char":
            first = text.strip()[:1].upper()
            return first if first and first in _LETTERS[:n] else None
        index = extract_choice(text, n, choices=list(sample.choices))
        return None if index is None else _LETTERS[index]

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        ok = [g for g in generated if g.error is None]
        metric = ChoiceAccuracy(variant=self.variant, provenance=_PROVENANCE[self.variant])
        preds = [None if g.prediction is None else _LETTERS.index(g.prediction) for g in ok]
        gold = [_LETTERS.index(g.sample.targets[0]) for g in ok]
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
            settings={"scoring": self.scoring, "variant": self.variant, "letter_rule": self.letter_rule,
                      "prompt": self.likelihood_prompt if self.scoring == "likelihood" else self.generate_prompt,
                      "continuation_prefix": self.continuation_prefix if self.scoring == "likelihood" else None,
                      "until": list(self.until), "aggregation": "micro over questions; macro over groups"},
        )
