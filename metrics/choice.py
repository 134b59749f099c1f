"""Multiple choice (SEED-Bench, MMLU, OmniBench, MME-Unify): answer extraction, likelihood
ranking and accuracy with an invalid rate and per-group breakdowns.

Two ways to get a prediction, recorded as the metric's ``variant`` by the task:

* **likelihood** (SEED-Bench's official protocol, MMLU's ``evaluate.py`` and lm-eval):
  :func:`rank_choices` over per-choice summed log-probabilities.
* **generation**: :func:`extract_choice` reads the option out of free text. It is deterministic
  and returns ``None`` when the text names no option or several: never a random guess (OmniBench's
  and MMMU's parsers pick a random letter then, which makes scores unrepeatable). ``None`` counts
  as wrong in :class:`ChoiceAccuracy` and is reported as ``invalid_rate``.

Gold labels are indices (for OmniBench ``options.index(answer)``, as lmms-eval does; the reference
``calculate_metrics.py`` parses the gold *text* with the response parser and so reads the option
"A man is answering some questions" as letter A).
"""

from __future__ import annotations

import math
import re
import string
from typing import Mapping, Sequence

from mio_eval.metrics.base import MetricResult

__all__ = ["ChoiceAccuracy", "choice_letter", "extract_choice", "rank_choices"]

_LETTERS = string.ascii_uppercase

# --- extraction ---------------------------------------------------------------------------------

# A letter, possibly wrapped: (B)  [B]  **B**  B
_WRAPPED = r"(?:\(\s*([A-Za-z])\s*\)|\[\s*([A-Za-z])\s*\]|\*\*([A-Za-z])\*\*|\b([A-Z]))"
# ... that is not the start of a word, a contraction or a hyphenated word, nor an abbreviation (U.S.)
_END = r"(?![\w'’\-])(?!\.[A-Za-z])"

_BARE = re.compile(r"[\s*_`\"'“”(\[{<]*([A-Za-z])[\s*_`\"'“”)\]}>.:,;!]*")
_FILLER = (r"(?:[\s:=*\-]|\b(?:is|are|was|would|will|should|must|be|the|my|correct|right|best|final"
           r"|option|choice|letter|answer)\b)*")
# Strong cues: an explicit answer statement ("The answer is (C)", "Answer: B", "final: B").
_STRONG = re.compile(r"(?i:\b(?:answer|final)s?\b)" + "(?i:" + _FILLER + ")" + _WRAPPED + _END)
# Weak cues: "option B", "choice (C)", "I choose D", "select A".
_WEAK = re.compile(r"(?i:\b(?:option|choice|choose|chose|select|selected|pick|picked)s?\b)"
                   + "(?i:" + _FILLER + ")" + _WRAPPED + _END)
# A leading letter with a delimiter: "B. two", "(B) two", "b) two", "C: ...".
_LEADING = re.compile(r"[\s*_]*(?:\(\s*([A-Za-z])\s*\)|\[\s*([A-Za-z])\s*\]|([A-Za-z])\s*(?:[.)](?![A-Za-z]\.)|:))")
_PAREN = re.compile(r"\(\s*([A-Z])\s*\)")
_STANDALONE = re.compile(r"(?<![\w'’\-.])([A-Z])" + _END)
# "A" and "I" are also English words. Followed by a lower-case word they are read as the article /
# pronoun ("A man is answering", "I think"), unless that word is one of these.
# (No pronoun-friendly verbs here: "I would", "I was" stay the pronoun.)
_LETTER_FOLLOWERS = frozenset("or and nor is seems looks because since but vs versus instead".split())
_NEXT_WORD = re.compile(r"\s+([a-z]+)")
_NON_ALNUM = re.compile(r"[\W_]+")  # any script's letters and digits survive


def choice_letter(index: int) -> str:
    """``0 -> "A"``, ``1 -> "B"``..."""
    return _LETTERS[index]


def _letter(match: re.Match) -> str:
    return next(g for g in match.groups() if g is not None).upper()


def _is_word(text: str, match: re.Match) -> bool:
    """A bare ``A``/``I`` used as an English word (article, pronoun)."""
    if match.lastindex != len(match.groups()) or match.group(match.lastindex) not in ("A", "I"):
        return False  # wrapped letters, and letters other than A / I, are always letters
    nxt = _NEXT_WORD.match(text, match.end())
    return nxt is not None and nxt.group(1) not in _LETTER_FOLLOWERS


def _in_range(letter: str, n_choices: int) -> int | None:
    index = _LETTERS.index(letter)
    return index if index < n_choices else None


def _letters(pattern: re.Pattern, text: str) -> list[str]:
    return [_letter(m) for m in pattern.finditer(text) if not _is_word(text, m)]


def _norm_text(text: str) -> str:
    return _NON_ALNUM.sub(" ", text.casefold()).strip()


def _match_option_text(text: str, choices: Sequence[str]) -> int | None:
    """The one option whose text appears in ``text`` (word-bounded, case and punctuation
    ignored); an option contained in a longer matching option ("red" in "red car") yields to it."""
    hay = f" {_norm_text(text)} "
    options = [_norm_text(c) for c in choices]
    found = {i for i, o in enumerate(options) if o and f" {o} " in hay}
    found = {i for i in found if not any(j != i and options[i] != options[j] and f" {options[i]} " in f" {options[j]} "
                                         for j in found)}
    return found.pop() if len(found) == 1 else None


def extract_choice(text: str, n_choices: int, *, choices: Sequence[str] | None = None) -> int | None:
    """The option index a free-text answer names, or ``None`` (nothing, several, out of range).

    Rules, first that applies wins (letters are the first ``n_choices`` of A-Z):

    1. The whole reply is one letter, any case, optionally wrapped or punctuated:
       ``B``, `` c`` (SEED/lmms-eval compare case-insensitively), ``(B)``, ``**B**``, ``B.``.
    2. With ``choices``: the whole reply is one option's text (case, punctuation and spacing
       ignored) -> that option ("Vitamin C" is not read as letter C).
    3. Explicit answer statements ``answer``/``final`` + filler words + a capital or wrapped letter:
       ``The answer is (C).``, ``Answer: B``, ``final answer: **D**``; the **last** one wins (a model
       that corrects itself, ``... final: B``).
    4. Weaker cues ``option``/``choice``/``choose``/``select``/``pick`` + letter: used when they
       all name the same letter, otherwise ambiguous.
    5. A leading letter with a delimiter: ``B. two``, ``(B) two``, ``b) two``, ``C: ...``
       (``C. A man is answering`` is C; OmniBench's parser says A), unless a *different*
       parenthesised letter follows (``(A) is wrong, (B) is right`` is ambiguous).
    6. Parenthesised capitals anywhere, ``(C)``: used if they all name one letter.
    7. Standalone capital letters anywhere (``I pick B`` -> rule 4; ``B is right`` -> here): used if
       they all name one letter.
    8. With ``choices``: exactly one option's text occurs in the reply (see above).

    A letter beyond ``n_choices`` found by rules 1, 3 or 5 makes the reply invalid (``None``).
    In rules 3-7 a bare ``A``/``I`` followed by a lower-case word is the English word
    ("A man ...", "I think"), unless that word is a connective such as ``or``/``is``/``and``.
    Rules 4, 6 and 7 ignore letters beyond ``n_choices``; when they find several letters the
    reply is ambiguous and only rule 8 can still decide it.

    >>> extract_choice("The answer is (C).", 4), extract_choice("B. two", 4), extract_choice(" c", 4)
    (2, 1, 2)
    >>> extract_choice("I think A or B, final: B", 4), extract_choice("A or B", 4)
    (1, None)
    >>> extract_choice("A man is answering", 4, choices=["a dog", "a cat", "A man is answering", "none"])
    2
    """
    if not 1 <= n_choices <= len(_LETTERS):
        raise ValueError(f"n_choices must be in 1..{len(_LETTERS)}, got {n_choices}")
    if choices is not None and len(choices) != n_choices:
        raise ValueError(f"{len(choices)} choices but n_choices={n_choices}")
    text = text.strip()
    if not text:
        return None
    bare = _BARE.fullmatch(text)
    if bare:  # 1
        return _in_range(bare.group(1).upper(), n_choices)
    if choices is not None:  # 2
        whole = _norm_text(text)
        exact = [i for i, c in enumerate(choices) if whole and _norm_text(c) == whole]
        if len(exact) == 1:
            return exact[0]
    strong = _letters(_STRONG, text)
    if strong:  # 3
        return _in_range(strong[-1], n_choices)
    weak = {letter for letter in _letters(_WEAK, text) if _in_range(letter, n_choices) is not None}
    if len(weak) == 1:  # 4
        return _in_range(weak.pop(), n_choices)
    if not weak:
        leading = _LEADING.match(text)
        if leading:  # 5 (the delimiter makes even "A." a letter)
            letter = _letter(leading)
            others = {x for x in _letters(_PAREN, text[leading.end():]) if x != letter}
            if not any(_in_range(x, n_choices) is not None for x in others):
                return _in_range(letter, n_choices)
        for pattern in (_PAREN, _STANDALONE):  # 6, 7
            found = {letter for letter in _letters(pattern, text) if _in_range(letter, n_choices) is not None}
            if len(found) == 1:
                return _in_range(found.pop(), n_choices)
            if found:
                break
    if choices is not None:  # 8
        return _match_option_text(text, choices)
    return None


# --- likelihood ranking --------------------------------------------------------------------------


def rank_choices(logprobs: Sequence[float]) -> int:
    """Index of the most likely choice: highest summed log-probability = lowest summed NLL
    (SEED-Bench's ``argmin(loss)``, MMLU's argmax). Ties go to the lowest index (the reference's
    unstable ``torch.argsort`` leaves them unspecified). ``-inf`` is allowed, NaN is an error.

    >>> rank_choices([-2.3, -1.1, -4.0, -1.5]), rank_choices([-1.0, -1.0])
    (1, 0)
    """
    if not logprobs:
        raise ValueError("cannot rank zero choices")
    best = 0
    for i, value in enumerate(logprobs):
        if math.isnan(value):
            raise ValueError(f"log-probability of choice {i} is NaN")
        if value > logprobs[best]:
            best = i
    return best


# --- stateful shell -------------------------------------------------------------------------------


class ChoiceAccuracy:
    """Accuracy over a split; invalid predictions (``None``) count as wrong.

    ``update(pred_indices, gold_indices, groups=None)``: ``groups`` is either one label per item
    (``["Scene Understanding", ...]``) or several groupings at once
    (``{"audio_type": [...], "task_type": [...]}``). ``compute`` returns:

    * ``accuracy``: pooled over all items (= the micro average over groups), ``n`` items;
    * ``invalid_rate``: share of ``None`` predictions (lower is better);
    * ``accuracy/<label>`` per group label, with ``extra={"grouping", "group", "invalid"}``;
    * ``accuracy_macro``: unweighted mean of the group accuracies (``accuracy_macro/<grouping>``
      when several groupings were given).

    >>> m = ChoiceAccuracy()
    >>> m.update([0, 1, 2, None, 0, 0], [0, 1, 1, 1, 1, 0], groups=["X", "X", "Y", "Y", "Y", "Y"])
    >>> {r.name: r.value for r in m.compute()}["accuracy_macro"]
    0.625
    """

    higher_is_better = True

    def __init__(self, *, name: str = "accuracy", variant: str = "index",
                 provenance: str = "exact index match; invalid (None) counted as wrong") -> None:
        self.name = name
        self.variant = variant
        self.provenance = provenance
        self.reset()

    def reset(self) -> None:
        self.correct: list[bool] = []
        self.invalid: list[bool] = []
        self.groups: dict[str, list[str]] | None = None
        self._single = False

    def update(
        self,
        pred_indices: Sequence[int | None],
        gold_indices: Sequence[int],
        groups: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        n = len(pred_indices)
        if len(gold_indices) != n:
            raise ValueError(f"{n} predictions but {len(gold_indices)} gold indices")
        if any(g is None for g in gold_indices):
            raise ValueError("gold indices must not be None")
        single = groups is not None and not isinstance(groups, Mapping)
        by = {"group": groups} if single else dict(groups or {})
        for key, labels in by.items():
            if isinstance(labels, str) or len(labels) != n:
                raise ValueError(f"grouping {key!r} needs one label per prediction")
        if self.correct or self.groups is not None:
            if set(by) != set(self.groups or {}) or single != self._single:
                raise ValueError("give the same groupings with every update")
        if self.groups is None and by:
            self.groups, self._single = {key: [] for key in by}, single
        for key, labels in by.items():
            self.groups[key].extend(labels)
        self.correct.extend(p is not None and p == g for p, g in zip(pred_indices, gold_indices))
        self.invalid.extend(p is None for p in pred_indices)

    def _result(self, name: str, value: float | None, n: int, *, higher: bool = True, **extra) -> MetricResult:
        return MetricResult(name=name, value=value, higher_is_better=higher, variant=self.variant,
                            provenance=self.provenance, scale=100.0, n=n, extra=extra)

    def compute(self) -> list[MetricResult]:
        n = len(self.correct)
        results = [
            self._result(self.name, sum(self.correct) / n if n else None, n, aggregation="micro"),
            self._result("invalid_rate", sum(self.invalid) / n if n else None, n, higher=False,
                         invalid=sum(self.invalid)),
        ]
        seen: set[str] = set()
        for grouping, labels in (self.groups or {}).items():
            tally: dict[str, list[int]] = {}
            for label, ok, bad in zip(labels, self.correct, self.invalid):
                row = tally.setdefault(label, [0, 0, 0])
                row[0] += ok
                row[1] += 1
                row[2] += bad
            accs = []
            for label in sorted(tally):
                if label in seen:
                    raise ValueError(f"group label {label!r} occurs in two groupings")
                seen.add(label)
                ok, total, bad = tally[label]
                accs.append(ok / total)
                results.append(self._result(f"{self.name}/{label}", ok / total, total,
                                            grouping=grouping, group=label, invalid=bad))
            macro = f"{self.name}_macro" if self._single else f"{self.name}_macro/{grouping}"
            results.append(self._result(macro, sum(accs) / len(accs) if accs else None, len(accs),
                                        aggregation="macro", grouping=grouping))
        return results
