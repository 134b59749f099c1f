"""MMLU: 5-shot multiple choice over 57 subjects (the text-only baseline of the paper's Table 12).

Prompt (hendrycks/test ``evaluate.py`` @4450500 and lm-eval ``mmlu/default``)::

    The following are multiple choice questions (with answers) about high school biology.\\n\\n
    <dev 1 question>\\nA. ..\\nB. ..\\nC. ..\\nD. ..\\nAnswer: B\\n\\n      (first k dev rows of the subject)
    ...
    <test question>\\nA. ..\\nB. ..\\nC. ..\\nD. ..\\nAnswer:

``header`` says which spelling of the first line is used, and is recorded in every metric's
``variant``:

* ``lm_eval`` (default): subject with single spaces; the question is ``.strip()``-ed (lm-eval's
  ``doc_to_text``).
* ``hendrycks``: the original's ``format_subject`` prepends a space to every word, so the header
  reads ``about  high school biology.`` (two spaces); the question is used as stored.

Scoring (the ``scoring`` strategy's ``_target_``, shared multiple-choice core
:mod:`mio_eval.tasks.multiple_choice`; its name is in ``variant``):

* ``Likelihood`` (default; the original script and lm-eval): the request carries the
  continuations ``" A" .. " D"``; the choice with the highest summed log-probability wins
  (``rank_choices``: ties go to the lowest letter).
* ``Generate``: the model writes an answer and the ``letter_rule`` reads a letter from it
  (default ``ExtractChoice(option_texts=false)``: ``extract_choice`` on letters only, option texts
  are not matched). No letter, or several -> invalid, counted as wrong and reported as
  ``invalid_rate`` (never a random guess).

Shots are dropped, last first, until the prompt fits the model (as ``evaluate.py`` does), when
the attached model exposes a ``tokenizer`` (with ``encode``) and a context size ``max_length``
(``HFCausalLM`` does, after ``load()``; the runner loads before rendering requests).
``context_length`` chooses the budget: ``auto`` = the model's ``max_length``, an integer = that
many tokens (needs the model's tokenizer), ``null`` = never drop. The budget covers the whole
scored sequence: prompt + the longest continuation - 1 (likelihood: the last token is never an
input) or prompt + ``generation.max_new_tokens`` (generate), counted with the model's own
tokenizer exactly as ``HFCausalLM`` encodes. The shots each item got are stored with its
prediction and summarised in ``scoring.fewshot``. lm-eval instead keeps all shots and truncates
the prompt from the left.

Metrics: ``accuracy`` pooled over all questions (**micro**: the reported MMLU number,
``np.mean(np.concatenate(all_cors))`` / lm-eval ``weight_by_size``); ``accuracy_macro`` the
unweighted mean of the per-subject accuracies (per-subject numbers in its ``extra`` and in
scores.jsonl); ``accuracy/<category>`` for ``stem``, ``humanities``, ``social_sciences``,
``other`` (pooled within the category, as ``evaluate.py``); ``invalid_rate``. A sample whose
generation failed (``error``) is left out of every metric and counted in ``n_errors``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from mio_eval.capabilities import Capabilities
from mio_eval.errors import ConfigError
from mio_eval.generation import generation_settings
from mio_eval.metrics.choice import ChoiceAccuracy
from mio_eval.tasks.base import Generated, ScoreReport
from mio_eval.tasks.loaders.mmlu import CATEGORIES, CATEGORY_NAMES, LETTERS
from mio_eval.tasks.multiple_choice import (ExtractChoice, LetterRule, Likelihood, ScoringStrategy, check_rule,
                                            check_strategy, letter_continuations)
from mio_eval.types import Modality, Output, Request, Sample, Text

__all__ = ["MMLUTask", "HEADERS", "format_subject", "header_line", "format_block", "render_prompt"]

# header spelling -> (prefix of every subject word, separator between words, question stripped):
# lm-eval's doc_to_text vs evaluate.py's format_subject (a space before every word), question as stored
HEADERS: Mapping[str, tuple[str, str, bool]] = {"lm_eval": ("", " ", True), "hendrycks": (" ", "", False)}
CONTINUATIONS = letter_continuations(len(LETTERS))
_HEADER = "The following are multiple choice questions (with answers) about {}.\n\n"


def format_subject(subject: str, header: str = "lm_eval") -> str:
    """``high_school_biology`` -> ``high school biology`` (lm_eval) or `` high school biology``
    (hendrycks: a space before every word)."""
    prefix, separator, _ = HEADERS[header]
    return separator.join(prefix + word for word in subject.split("_"))


def header_line(subject: str, header: str = "lm_eval") -> str:
    """The first line and its blank line.

    >>> header_line("high_school_biology", "hendrycks")
    'The following are multiple choice questions (with answers) about  high school biology.\\n\\n'
    """
    return _HEADER.format(format_subject(subject, header))


def format_block(question: str, choices: Sequence[str], answer: int | None = None, *, header: str = "lm_eval") -> str:
    """One question block; with ``answer`` a solved shot ending in a blank line.

    >>> format_block("What is 2+2?", ["3", "4", "5", "6"], 1)
    'What is 2+2?\\nA. 3\\nB. 4\\nC. 5\\nD. 6\\nAnswer: B\\n\\n'
    """
    text = question.strip() if HEADERS[header][2] else question
    for letter, choice in zip(LETTERS, choices):
        text += f"\n{letter}. {choice}"
    text += "\nAnswer:"
    if answer is not None:
        text += f" {LETTERS[answer]}\n\n"
    return text


def render_prompt(sample: Sample, k: int, header: str = "lm_eval") -> str:
    """Header + the first ``k`` dev rows of the sample's subject + the test block."""
    shots = sample.metadata.get("fewshot", ())[:k]
    question = next(p.text for p in sample.parts if isinstance(p, Text))
    return (header_line(sample.metadata["subject"], header)
            + "".join(format_block(s["question"], s["choices"], s["answer"], header=header) for s in shots)
            + format_block(question, sample.choices, header=header))


class MMLUTask:
    """MMLU with a selectable header spelling and scoring protocol (see the module docstring)."""

    input_modalities = frozenset({Modality.TEXT})
    output_modality = Modality.TEXT
    scoring_keys: ClassVar[tuple[str, ...]] = ("letter_rule",)

    def __init__(
        self,
        *,
        name: str,
        loader: Callable[[], list[Sample]],
        header: str = "lm_eval",
        scoring: ScoringStrategy | None = None,
        letter_rule: LetterRule | None = None,
        num_fewshot: int = 5,
        context_length: int | str | None = "auto",
        generation: Mapping[str, Any] | None = None,
    ) -> None:
        if header not in HEADERS:
            raise ConfigError(f"task.header must be one of {', '.join(HEADERS)}, got {header!r}")
        scoring = check_strategy(Likelihood() if scoring is None else scoring)
        if not isinstance(num_fewshot, int) or isinstance(num_fewshot, bool) or num_fewshot < 0:
            raise ConfigError(f"task.num_fewshot must be an integer >= 0, got {num_fewshot!r}")
        if not (context_length in (None, "auto") or (isinstance(context_length, int)
                                                      and not isinstance(context_length, bool) and context_length > 0)):
            raise ConfigError(f"task.context_length must be auto, null or a positive integer, got {context_length!r}")
        self.name = name
        self.loader = loader
        self.header = header
        self.scoring = scoring
        self.letter_rule = check_rule(ExtractChoice(option_texts=False) if letter_rule is None else letter_rule)
        self.num_fewshot = num_fewshot
        self.context_length = context_length
        self.generation = generation_settings(generation)
        self.needs_loglikelihood = scoring.needs_loglikelihood
        self.variant = f"{scoring.name}/{header}"
        self._capabilities: Capabilities | None = None

    def bind(self, capabilities: Capabilities) -> None:
        """Count prompt tokens with the model's tokenizer (shot dropping); nothing else of the model."""
        if isinstance(self.context_length, int) and not capabilities.has_tokenizer:
            raise ConfigError(f"task.context_length={self.context_length} counts tokens with the model's tokenizer, "
                              f"but model {capabilities.name!r} exposes none; use context_length=null")
        self._capabilities = capabilities

    # -- requests --

    def samples(self) -> list[Sample]:
        return self.loader()

    def _budget(self) -> tuple[Any, int] | None:
        """(tokenizer, max tokens) when shots can be counted, else None."""
        if self.context_length is None or self._capabilities is None:
            return None
        tokenizer = self._capabilities.tokenizer
        limit = self._capabilities.max_length if self.context_length == "auto" else self.context_length
        if tokenizer is None:
            if isinstance(self.context_length, int):
                raise ConfigError(f"task.context_length={self.context_length}: the model's tokenizer is not "
                                  "loaded; it is needed to count prompt tokens")
            return None
        if not isinstance(limit, int) or limit <= 0:
            return None
        return tokenizer, limit

    def _fits(self, prompt: str, budget: tuple[Any, int]) -> bool:
        tokenizer, limit = budget
        n_prompt = len(tokenizer.encode(prompt))
        if self.needs_loglikelihood:
            longest = max(len(tokenizer.encode(prompt + c)) - n_prompt for c in CONTINUATIONS)
            return n_prompt + longest - 1 <= limit
        return n_prompt + int(self.generation.get("max_new_tokens") or 0) <= limit

    def _fitted(self, sample: Sample) -> tuple[int, str]:
        """(shots kept, prompt): a pure function of the sample and the model's tokenizer, so
        ``prediction`` recomputes the shot count instead of remembering it from ``request``."""
        k = min(self.num_fewshot, len(sample.metadata.get("fewshot", ())))
        prompt = render_prompt(sample, k, self.header)
        budget = self._budget()
        if budget is not None:
            while k > 0 and not self._fits(prompt, budget):
                k -= 1
                prompt = render_prompt(sample, k, self.header)
        return k, prompt

    def request(self, sample: Sample) -> Request:
        _, prompt = self._fitted(sample)
        return Request(sample_id=sample.id, parts=(Text(prompt),), output_modality=Modality.TEXT,
                       generation=self.generation,
                       continuations=self.scoring.continuations(CONTINUATIONS), kind="text")

    def prediction(self, sample: Sample, output: Output) -> dict[str, Any]:
        choice = self.scoring.choose(output, choices=sample.choices, rule=self.letter_rule)
        return {"choice": choice, "letter": None if choice is None else LETTERS[choice],
                "shots": self._fitted(sample)[0]}

    # -- scoring --

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        rows, preds, golds, subjects, categories, shots = [], [], [], [], [], []
        for g in generated:
            meta = g.sample.metadata
            base = {"id": g.sample.id, "subject": meta["subject"], "category": meta["category"],
                    "gold": g.sample.targets[0]}
            if g.error is not None:
                rows.append({**base, "error": g.error})
                continue
            choice = g.prediction.get("choice")
            gold = int(meta["answer"])
            rows.append({**base, "error": None, "pred": None if choice is None else LETTERS[choice],
                         "correct": choice == gold, "shots": g.prediction.get("shots")})
            preds.append(choice)
            golds.append(gold)
            subjects.append(meta["subject"])
            categories.append(meta["category"])
            if g.prediction.get("shots") is not None:
                shots.append(g.prediction["shots"])
        metric = ChoiceAccuracy(variant=self.variant, provenance=self._provenance())
        metric.update(preds, golds, groups={"category": categories, "subject": subjects})
        return ScoreReport(metrics=tuple(self._select(metric.compute())), per_sample=tuple(rows),
                           settings=self._settings(shots))

    def _provenance(self) -> str:
        how = ("argmax of summed log-probabilities of ' A'..' D' (hendrycks/test evaluate.py, lm-eval mmlu)"
               if self.needs_loglikelihood else
               f"letter extracted from the generated answer ({self.letter_rule.provenance}); invalid counted as wrong")
        return f"{how}; {self.num_fewshot}-shot from dev (first k), header={self.header}"

    def _select(self, results: list) -> list:
        """accuracy (micro), invalid_rate, accuracy/<category> x4, accuracy_macro (over subjects,
        per-subject accuracies in its extra); the per-subject rows fold into that extra."""
        by_name = {r.name: r for r in results}
        per_subject = {r.extra["group"]: {"accuracy": r.value, "n": r.n, "invalid": r.extra.get("invalid", 0)}
                       for r in results if r.extra.get("grouping") == "subject" and r.name.startswith("accuracy/")}
        chosen = [by_name["accuracy"], by_name["invalid_rate"]]
        for slug in CATEGORIES:
            if f"accuracy/{slug}" in by_name:
                result = by_name[f"accuracy/{slug}"]
                chosen.append(dataclasses.replace(result, extra={**result.extra, "category": CATEGORY_NAMES[slug]}))
        macro = by_name.get("accuracy_macro/subject")
        if macro is None:  # nothing scored
            macro = dataclasses.replace(by_name["accuracy"], name="accuracy_macro", value=None, n=0, extra={})
        chosen.append(dataclasses.replace(macro, name="accuracy_macro",
                                          extra={"aggregation": "macro", "grouping": "subject",
                                                 "per_subject": per_subject}))
        return chosen

    def _settings(self, shots: list[int]) -> dict[str, Any]:
        return {
            "header": self.header,
            "scoring": self.scoring.name,
            "letter_rule": None if self.needs_loglikelihood else repr(self.letter_rule),
            "variant": self.variant,
            "num_fewshot": self.num_fewshot,
            "context_length": self.context_length,
            "fewshot": {"mean_used": sum(shots) / len(shots) if shots else None,
                        "samples_with_fewer": sum(1 for k in shots if k < self.num_fewshot)},
            "errors": "samples whose generation failed are left out of every metric (see n_errors)",
        }
