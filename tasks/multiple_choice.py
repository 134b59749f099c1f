"""The multiple-choice core shared by SEED-Bench (:mod:`mio_eval.tasks.mcq`), MMLU, OmniBench and
MME-Unify understanding: how a question is put to the model and how its reply becomes an option.

Two things vary, each chosen in the task YAML by ``_target_`` (the only registry; no name tables):

* **scoring strategy** (``scoring:``) decides what the model is asked, so it is part of the run
  fingerprint:

  - :class:`Likelihood`: one log-likelihood request whose ``continuations`` are the task's
    candidates (SEED-Bench: the option texts after ``" "``; MMLU: ``" A" .. " D"``); the option
    with the highest summed log-probability wins (``metrics.choice.rank_choices``: ties to the
    lowest index; lm-eval ``multiple_choice`` / SEED-Bench ``eval.py``). Needs an adapter with
    ``supports_loglikelihood`` (the task's ``needs_loglikelihood`` says so to the runner).
  - :class:`Generate`: the model writes an answer and the task's **letter rule** reads it.

* **letter rule** (``letter_rule:``) decides how a generated reply is read; it only affects
  scoring (a scoring key: a finished generation can be re-scored with another rule):

  - :class:`ExtractChoice`: ``metrics.choice.extract_choice``, deterministic, ``None`` when the
    reply names no option or several (never a random guess); ``option_texts=True`` also matches
    the option texts ("Vitamin C" is option B, not letter C), ``False`` reads letters only (MMLU).
  - :class:`FirstChar`: lmms-eval ``seedbench`` ``seed_process_result``: the first character of
    the stripped reply, compared case-insensitively.

A reply naming no option is *invalid*: ``None``, counted as wrong by ``ChoiceAccuracy`` and
reported as ``invalid_rate``. Selecting from the command line::

    task.scoring._target_=mio_eval.tasks.multiple_choice.Generate
    task.letter_rule._target_=mio_eval.tasks.multiple_choice.FirstChar
"""

from __future__ import annotations

import string
from typing import Any, Protocol, Sequence, runtime_checkable

from mio_eval.errors import ConfigError, check_target
from mio_eval.metrics.choice import extract_choice, rank_choices
from mio_eval.tasks.base import InvalidOutput, describe_output
from mio_eval.tasks.image_prompts import stop_at
from mio_eval.types import Output

__all__ = [
    "LETTERS",
    "LetterRule",
    "ScoringStrategy",
    "ExtractChoice",
    "FirstChar",
    "Likelihood",
    "Generate",
    "format_options",
    "letter_continuations",
    "check_strategy",
    "check_rule",
]

LETTERS = string.ascii_uppercase


def format_options(options: Sequence[str], *, separator: str = ". ") -> str:
    """The options as ``A. first`` lines joined by newlines (lmms-eval ``seedbench``, OmniBench).

    >>> print(format_options(["red", "blue"]))
    A. red
    B. blue
    """
    return "\n".join(f"{LETTERS[i]}{separator}{option}" for i, option in enumerate(options))


def letter_continuations(n: int, *, prefix: str = " ") -> tuple[str, ...]:
    """``(" A", " B", ...)``: the continuations a letter-scored likelihood request carries (MMLU).

    >>> letter_continuations(4)
    (' A', ' B', ' C', ' D')
    """
    return tuple(prefix + LETTERS[i] for i in range(n))


# --- letter rules ---------------------------------------------------------------------------------


@runtime_checkable
class LetterRule(Protocol):
    """Reads the option a generated reply names: an index into ``choices`` or ``None``."""

    name: str
    provenance: str  # how the rule reads a reply, for the metrics' provenance

    def __call__(self, text: str, choices: Sequence[str]) -> int | None: ...


class ExtractChoice:
    """``metrics.choice.extract_choice``; ``option_texts`` also matches the options' texts.

    >>> ExtractChoice()("The answer is (B).", ["red", "blue"]), ExtractChoice()("blue", ["red", "blue"])
    (1, 1)
    >>> ExtractChoice(option_texts=False)("blue", ["red", "blue"]) is None
    True
    """

    name = "extract"

    def __init__(self, *, option_texts: bool = True) -> None:
        if not isinstance(option_texts, bool):
            raise ConfigError(f"ExtractChoice option_texts must be true or false, got {option_texts!r}")
        self.option_texts = option_texts
        self.provenance = "mio_eval extract_choice" + (" with option texts" if option_texts else "")

    def __call__(self, text: str, choices: Sequence[str]) -> int | None:
        return extract_choice(text, len(choices), choices=list(choices) if self.option_texts else None)

    def __repr__(self) -> str:
        return f"ExtractChoice(option_texts={self.option_texts})"


class FirstChar:
    """lmms-eval ``seed_process_result``: the first character of the stripped reply, any case.

    >>> FirstChar()(" b) blue", ["red", "blue"]), FirstChar()("E", ["red", "blue"])
    (1, None)
    """

    name = "first_char"
    provenance = "lmms-eval seed_process_result: first character, case-insensitive"

    def __call__(self, text: str, choices: Sequence[str]) -> int | None:
        first = text.strip()[:1].upper()
        return LETTERS.index(first) if first and first in LETTERS[:len(choices)] else None

    def __repr__(self) -> str:
        return "FirstChar()"


# --- scoring strategies ---------------------------------------------------------------------------


@runtime_checkable
class ScoringStrategy(Protocol):
    """How a question is put to the model (``continuations``) and its output read (``choose``)."""

    name: str
    needs_loglikelihood: bool

    def continuations(self, candidates: Sequence[str]) -> tuple[str, ...]: ...

    def choose(self, output: Output, *, choices: Sequence[str], rule: LetterRule,
               until: Sequence[str] = ()) -> int | None: ...


class Likelihood:
    """Rank the candidates by summed log-probability; the request carries them as continuations."""

    name = "likelihood"
    needs_loglikelihood = True

    def continuations(self, candidates: Sequence[str]) -> tuple[str, ...]:
        return tuple(candidates)

    def choose(self, output: Output, *, choices: Sequence[str], rule: LetterRule | None = None,
               until: Sequence[str] = ()) -> int:
        """The index of the most likely option; InvalidOutput unless one score per option."""
        if len(output.logprobs) != len(choices):
            raise InvalidOutput(f"expected {len(choices)} option log-probabilities, got {len(output.logprobs)}")
        return rank_choices(output.logprobs)

    def __repr__(self) -> str:
        return "Likelihood()"


class Generate:
    """The model writes an answer; the reply is cut at ``until`` and read by the letter rule."""

    name = "generate"
    needs_loglikelihood = False

    def continuations(self, candidates: Sequence[str]) -> tuple[str, ...]:
        return ()

    def choose(self, output: Output, *, choices: Sequence[str], rule: LetterRule,
               until: Sequence[str] = ()) -> int | None:
        """The option ``rule`` reads from the reply, ``None`` when it names none; InvalidOutput
        when the output holds no text."""
        if output.text is None:
            raise InvalidOutput(f"expected a text answer, got {describe_output(output)}")
        return rule(stop_at(output.text, until), choices)

    def __repr__(self) -> str:
        return "Generate()"


_SCORING_HINT = "e.g. task.scoring._target_=mio_eval.tasks.multiple_choice.Generate"
_RULE_HINT = "e.g. task.letter_rule._target_=mio_eval.tasks.multiple_choice.FirstChar"


def check_strategy(value: Any, *, what: str = "task.scoring") -> ScoringStrategy:
    """``value`` if it is a scoring strategy, else ConfigError naming the ``_target_`` form (a
    bare string such as ``generate`` is the knob of earlier versions)."""
    return check_target(value, ScoringStrategy, what=what, kind="scoring strategy", choices="Likelihood or Generate",
                        module="mio_eval.tasks.multiple_choice", hint=_SCORING_HINT)


def check_rule(value: Any, *, what: str = "task.letter_rule") -> LetterRule:
    """``value`` if it is a letter rule, else ConfigError naming the ``_target_`` form."""
    rule = check_target(value, LetterRule, what=what, kind="letter rule", choices="ExtractChoice or FirstChar",
                        module="mio_eval.tasks.multiple_choice", hint=_RULE_HINT)
    if not callable(rule):
        raise ConfigError(f"{what} must be a callable letter rule, got {value!r}")
    return rule
