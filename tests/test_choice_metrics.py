"""Multiple choice: extraction rules, likelihood ranking and accuracy, with the vectors of
AILab-CVC/SEED-Bench, hendrycks/test (MMLU), multimodal-art-projection/OmniBench and
aba122/MME-Unify @ 0956091."""

from __future__ import annotations

import doctest
import random

import pytest

import mio_eval.metrics.choice as choice_module
from mio_eval.metrics.choice import ChoiceAccuracy, choice_letter, extract_choice, rank_choices

LETTERS = "ABCD"


def letter(text, n=4, choices=None):
    index = extract_choice(text, n, choices=choices)
    return None if index is None else choice_letter(index)


# --- OmniBench's parser (inference/answer_parsing.py, MMMU-derived), re-implemented from its
# algorithm for comparison, with a fixed fallback instead of random.choice ---------------------------


def omnibench_parse(response, options, fallback="?"):
    all_choices = LETTERS[: len(options)]
    index2ans = dict(zip(all_choices, options))
    response = f" {response} "
    candidates, bracketed, by_letter = [], False, True
    for c in all_choices:
        if f"({c})" in response:
            candidates.append(c)
            bracketed = True
    if not candidates:
        candidates = [c for c in all_choices if f"{c} " in response]
    if not candidates:
        candidates = [c for c in all_choices if f"{c}." in response]
    if not candidates and len(response.split()) > 5:
        candidates = [c for c, text in index2ans.items() if text.lower() in response.lower()]
        by_letter = False
    if not candidates:
        return fallback
    if len(candidates) == 1:
        return candidates[0]
    if by_letter:
        starts = [response.rfind(f"({c})" if bracketed else f" {c} ") for c in candidates]
    else:
        starts = [response.lower().rfind(index2ans[c].lower()) for c in candidates]
    return candidates[starts.index(max(starts))]  # the last occurrence wins


OPTIONS = ["A dog is barking", "A woman is singing", "A man is answering some questions", "Rain is falling"]


@pytest.mark.parametrize(
    "response, ours, reference",
    [
        # OmniBench vectors (checked by running its inference/answer_parsing.py)
        ("The answer is (C).", "C", "C"),
        ("B", "B", "B"),
        ("I think A or B, final: B", "B", "B"),
        ("C. A man is answering", "C", "A"),  # reference quirk: "A " inside the option text wins
        # more, where the two agree
        ("(D)", "D", "D"),
        ("Answer: B", "B", "B"),
        ("The correct answer is (A) because the audio has barking", "A", "A"),
        # where they differ
        ("A man is answering some questions", "C", "A"),  # the gold-parsing pitfall
        ("(A) is wrong, (B) is right", None, "B"),  # ambiguous: we refuse, it takes the last
        ("It is either A or C", None, "C"),
        ("I have no idea", None, "?"),  # the reference draws a random letter here
        ("Hmm, I would say that a woman is singing in the recording", "B", "B"),
    ],
)
def test_omnibench_cases(response, ours, reference):
    assert letter(response, choices=OPTIONS) == ours
    assert omnibench_parse(response, OPTIONS) == reference


def test_omnibench_gold_from_index_not_from_parsing():
    # calculate_metrics.py @335f0ba parses the gold *text*; use options.index(answer) instead.
    gold_text = "A man is answering some questions"
    assert omnibench_parse(gold_text, OPTIONS) == "A"
    assert OPTIONS.index(gold_text) == 2
    assert extract_choice(gold_text, 4) is None  # without the options it names no letter
    assert extract_choice(gold_text, 4, choices=OPTIONS) == 2


# --- SEED-Bench (§3) -----------------------------------------------------------------------------


def test_seed_likelihood_vector():
    nll = [2.3, 1.1, 4.0, 1.5]  # per-choice summed token NLL
    assert rank_choices([-x for x in nll]) == 1
    assert choice_letter(rank_choices([-x for x in nll])) == "B"


def test_rank_ties_and_errors():
    assert rank_choices([-1.0, -0.5, -0.5]) == 1
    assert rank_choices([-3.0, -3.0, -3.0, -3.0]) == 0
    assert rank_choices([float("-inf"), -100.0]) == 1  # MMLU's evaluate.py fills missing with -100
    assert rank_choices([-7.0]) == 0
    with pytest.raises(ValueError, match="zero choices"):
        rank_choices([])
    with pytest.raises(ValueError, match="NaN"):
        rank_choices([-1.0, float("nan")])


@pytest.mark.parametrize("response, expected", [("B. two", "B"), (" c", "C"), ("C", "C"), ("d\n", "D")])
def test_seed_generation_vectors(response, expected):
    # lmms-eval seedbench/utils.py: first character of the stripped output, compared case-insensitively.
    assert response.strip()[0].upper() == expected
    assert letter(response) == expected


# --- MMLU (§8) and MME-Unify (§10) ----------------------------------------------------------------


def test_mmlu_micro_vs_macro():
    metric = ChoiceAccuracy()
    metric.update([1, 2], [1, 2], groups=["X", "X"])
    metric.update([0, 3, 3, None], [0, 1, 2, 3], groups=["Y"] * 4)
    results = {r.name: r for r in metric.compute()}
    assert results["accuracy"].value == 0.5  # 3/6, hendrycks evaluate.py / lm-eval weight_by_size
    assert results["accuracy_macro"].value == 0.625  # (1.0 + 0.25) / 2
    assert results["accuracy/X"].value == 1.0 and results["accuracy/Y"].value == 0.25
    assert results["accuracy/Y"].extra == {"grouping": "group", "group": "Y", "invalid": 1}
    assert results["invalid_rate"].value == 1 / 6 and results["invalid_rate"].higher_is_better is False


def test_mmlu_letter_likelihood():
    # next-token log-probs of " A", " B", " C", " D"
    assert rank_choices([-2.1, -0.3, -5.0, -1.2]) == 1


@pytest.mark.parametrize(
    "output, expected", [("Answer: B", "B"), ("B", "B"), ("Answer: (D)", "D"), ("answer: E", None)]
)
def test_mme_unify_answer_lines(output, expected):
    # Prompt.txt asks for "Answer: X"; Evaluate_Understanding.py compares the bare letter.
    assert letter(output, n=4) == expected
    assert letter("Answer: E", n=5) == "E"


# --- the extraction rules --------------------------------------------------------------------------

RULES = [
    # 1 whole reply is a letter
    ("A", "A"), ("b", "B"), ("(C)", "C"), ("[D]", "D"), ("**B**", "B"), ("B.", "B"), ("B:", "B"), ('"C"', "C"),
    ("E", None), ("I", None), ("", None), ("   ", None),
    # 3 strong cues, last one wins
    ("The answer is A.", "A"), ("The answer is B", "B"), ("Answer: (C) the man", "C"),
    ("Final Answer: **D**", "D"), ("The correct answer is: C", "C"), ("My answer would be B.", "B"),
    ("The answer is A. Wait, no, the answer is B.", "B"), ("The answer is B. Option C is wrong.", "B"),
    ("The answer is E", None), ("The answer is A man in a hat", None),
    # 4 weak cues
    ("I choose B", "B"), ("Option D.", "D"), ("I'd pick (A)", "A"), ("Option C is wrong, so I choose B", None),
    # 5 leading letter with a delimiter
    ("B. two", "B"), ("(B) two", "B"), ("b) two", "B"), ("C: a dog", "C"), ("A. Lincoln", "A"), ("E. none", None),
    # 6 parenthesised letters
    ("It must be (C) here", "C"), ("Either (A) or (B)", None),
    # 7 standalone capitals
    ("B is correct", "B"), ("I believe it is C", "C"), ("A or B", None), ("It could be A or C", None),
    ("A is right", "A"), ("I think so", None), ("U.S.A. is B", "B"), ("X-ray shows D", "D"),
    ("None of them", None), ("It's a cat", None),
]


@pytest.mark.parametrize("text, expected", RULES)
def test_extraction_rules(text, expected):
    assert letter(text) == expected


CHOICES = ["Vitamin A", "Vitamin B", "Vitamin C", "Vitamin D"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Vitamin C", "C"),  # rule 2 before the standalone "C"
        ("vitamin c.", "C"),
        ("It is Vitamin D, surely", "D"),  # rule 7 finds D and agrees
        ("Vitamin D, not vitamin A", None),  # letters D and A, both option texts: ambiguous
        ("The one with vitamin B in it", "B"),
    ],
)
def test_option_text(text, expected):
    assert letter(text, choices=CHOICES) == expected


def test_option_text_longest_wins_and_ambiguity():
    options = ["red", "red car", "blue car", "bus"]
    assert extract_choice("I would say it is the red car on the left", 4, choices=options) == 1
    assert extract_choice("the red one", 4, choices=options) == 0
    assert extract_choice("red or blue car", 4, choices=options) is None
    assert extract_choice("a train", 4, choices=options) is None
    assert extract_choice("a train", 4) is None
    assert extract_choice("!!!", 2, choices=["?", "狗"]) is None  # punctuation-only texts never match
    assert extract_choice("狗。", 2, choices=["猫", "狗"]) == 1


def test_n_choices_bounds_and_determinism():
    assert extract_choice("F", 6) == 5 and extract_choice("F", 5) is None
    assert extract_choice("J", 10) == 9
    assert extract_choice("I would say B", 10) == 1  # "I would": the pronoun, even with 10 options
    assert extract_choice("I is the one", 10) == 8
    with pytest.raises(ValueError, match="n_choices"):
        extract_choice("A", 0)
    with pytest.raises(ValueError, match="n_choices"):
        extract_choice("A", 27)
    with pytest.raises(ValueError, match="3 choices but n_choices=4"):
        extract_choice("A", 4, choices=["x", "y", "z"])
    rng = random.Random(0)
    texts = ["".join(rng.choice("AB (C).:the answer is DI ") for _ in range(rng.randint(0, 30))) for _ in range(300)]
    first = [extract_choice(t, 4) for t in texts]
    assert [extract_choice(t, 4) for t in texts] == first
    assert all(i is None or 0 <= i < 4 for i in first)


# --- ChoiceAccuracy ------------------------------------------------------------------------------------


def test_invalid_counts_as_wrong():
    metric = ChoiceAccuracy(variant="generate", provenance="extract_choice rules 1-8")
    metric.update([0, None, 2, None], [0, 1, 1, 3])
    results = {r.name: r for r in metric.compute()}
    assert list(results) == ["accuracy", "invalid_rate"]
    assert results["accuracy"].value == 0.25 and results["accuracy"].n == 4
    assert results["invalid_rate"].value == 0.5
    assert results["accuracy"].variant == "generate" and results["accuracy"].scale == 100.0
    assert results["accuracy"].extra == {"aggregation": "micro"}


def test_several_groupings():
    metric = ChoiceAccuracy()
    metric.update([0, 1, 2, 3], [0, 1, 0, 0], groups={"audio_type": ["speech", "speech", "music", "music"],
                                                      "task_type": ["count", "plot", "plot", "plot"]})
    values = {r.name: r.value for r in metric.compute()}
    assert values == {
        "accuracy": 0.5, "invalid_rate": 0.0,
        "accuracy/music": 0.0, "accuracy/speech": 1.0, "accuracy_macro/audio_type": 0.5,
        "accuracy/count": 1.0, "accuracy/plot": 1 / 3, "accuracy_macro/task_type": (1.0 + 1 / 3) / 2,
    }


def test_accumulation_equals_one_shot():
    rng = random.Random(5)
    n = 700
    preds = [rng.choice([0, 1, 2, 3, None]) for _ in range(n)]
    gold = [rng.randrange(4) for _ in range(n)]
    dims = [rng.choice(["Scene Understanding", "Instance Identity", "Text Understanding"]) for _ in range(n)]
    one = ChoiceAccuracy()
    one.update(preds, gold, groups=dims)
    split = ChoiceAccuracy()
    for lo, hi in ((0, 1), (1, 350), (350, 700)):
        split.update(preds[lo:hi], gold[lo:hi], groups=dims[lo:hi])
    assert split.compute() == one.compute()
    micro = sum(p == g for p, g in zip(preds, gold)) / n
    assert one.compute()[0].value == micro


def test_choice_accuracy_errors_and_reset():
    metric = ChoiceAccuracy()
    assert [(r.name, r.value) for r in metric.compute()] == [("accuracy", None), ("invalid_rate", None)]
    with pytest.raises(ValueError, match="gold indices"):
        metric.update([0], [None])
    with pytest.raises(ValueError, match="2 predictions but 1"):
        metric.update([0, 1], [0])
    with pytest.raises(ValueError, match="one label per prediction"):
        metric.update([0], [0], groups=["a", "b"])
    metric.update([0], [0], groups=["a"])
    with pytest.raises(ValueError, match="same groupings"):
        metric.update([0], [0])
    with pytest.raises(ValueError, match="same groupings"):
        metric.update([0], [0], groups={"other": ["a"]})
    metric.reset()
    metric.update([0], [0], groups={"x": ["same"], "y": ["same"]})
    with pytest.raises(ValueError, match="two groupings"):
        metric.compute()


def test_doctests():
    failed, attempted = doctest.testmod(choice_module, raise_on_error=False)
    assert attempted > 0 and failed == 0
