"""VQA accuracy: vectors checked against the official evaluator (GT-Vision-Lab/VQA
``PythonEvaluationTools/vqaEvaluation/vqaEval.py``), and every variant against a plain
re-implementation of its reference scorer (written here from the reference algorithm) on seeded
random data. The vectors were also checked once against the unmodified references
(GT-Vision-Lab/VQA vqaEval.py @458a8b2 and @a013f00, lmms-eval @75571cf vqav2/ok_vqa/vizwiz utils.py).
"""

from __future__ import annotations

import doctest
import hashlib
import random
import re
import statistics

import pytest

import mio_eval.metrics.vqa as vqa_module
from mio_eval.metrics.base import MetricResult
from mio_eval.metrics.vqa import (
    VQA_VARIANTS,
    VQAAccuracy,
    process_digit_article,
    process_punctuation,
    vqa_accuracies,
    vqa_accuracy,
    vqa_normalize,
)

VARIANTS = ("lmms", "lmms_tokenized", "vqa2016", "vqa2021")

# --- a plain re-implementation of the reference algorithms -------------------------------------

REF_PUNCT = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
REF_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
               "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
REF_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
REF_COMMA_OFFICIAL = re.compile(r"(\d)(\,)(\d)")
REF_COMMA_LMMS = re.compile(r"(?<=\d)(\,)+(?=\d)")
# The contraction table is data; its content is pinned by test_contraction_table below.
REF_CONTRACTIONS = dict(vqa_module._CONTRACTIONS)


def ref_punctuation(in_text, comma_re):
    out_text = in_text
    for p in REF_PUNCT:
        if (p + " " in in_text or " " + p in in_text) or (re.search(comma_re, in_text) is not None):
            out_text = out_text.replace(p, "")
        else:
            out_text = out_text.replace(p, " ")
    return REF_PERIOD.sub("", out_text, re.UNICODE)  # sic: the flag lands in `count`


def ref_digit_article(in_text):
    out = []
    for word in in_text.lower().split():
        word = REF_NUMBERS.get(word, word)
        if word not in ["a", "an", "the"]:
            out.append(word)
    for i, word in enumerate(out):
        if word in REF_CONTRACTIONS:
            out[i] = REF_CONTRACTIONS[word]
    return " ".join(out)


def ref_clean(text):
    return text.replace("\n", " ").replace("\t", " ").strip()


def ref_leave_one_out(pred, answers):
    # Answers as dicts with unique ids, compared as dicts: the official scripts' exclusion.
    gts = [{"answer": a, "answer_id": i + 1} for i, a in enumerate(answers)]
    accs = []
    for gt in gts:
        others = [item for item in gts if item != gt]
        matching = [item for item in others if item["answer"] == pred]
        accs.append(min(1, float(len(matching)) / 3))
    return accs


def ref_vqa2016(pred, answers):
    pred = ref_digit_article(ref_punctuation(ref_clean(pred), REF_COMMA_OFFICIAL))
    if len(set(answers)) > 1:
        answers = [ref_punctuation(a, REF_COMMA_OFFICIAL) for a in answers]
    accs = ref_leave_one_out(pred, answers)
    return float(sum(accs)) / len(accs)


def ref_vqa2021(pred, answers):
    answers = [ref_clean(a) for a in answers]
    pred = ref_clean(pred)
    if len(set(answers)) > 1:
        answers = [ref_digit_article(ref_punctuation(a, REF_COMMA_OFFICIAL)) for a in answers]
        pred = ref_digit_article(ref_punctuation(pred, REF_COMMA_OFFICIAL))
    accs = ref_leave_one_out(pred, answers)
    return float(sum(accs)) / len(accs)


def ref_lmms(pred, answers):
    def norm(s):
        return ref_digit_article(ref_punctuation(ref_clean(s), REF_COMMA_LMMS))

    return float(statistics.mean(ref_leave_one_out(norm(pred), [norm(a) for a in answers])))


def ref_lmms_call(item):
    item = item.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    item = ref_clean(item)
    return ref_digit_article(ref_punctuation(item, REF_COMMA_LMMS))


def ref_lmms_tokenized(pred, answers):
    pred = ref_lmms_call(pred)
    answers = [ref_lmms_call(a) for a in answers]
    accs = []
    for i in range(len(answers)):
        others = [answers[j] for j in range(len(answers)) if i != j]
        accs.append(min(1, float(len([a for a in others if a == pred])) / 3))
    return float(statistics.mean(accs)) if accs else 0


REFERENCE = {"lmms": ref_lmms, "lmms_tokenized": ref_lmms_tokenized, "vqa2016": ref_vqa2016, "vqa2021": ref_vqa2021}

# --- seeded random data: punctuation, number words, articles, contractions, case, whitespace --------

WORDS = ["yes", "Yes", "no", "No.", "two", "Two", "2", "ten", "10", "none", "0", "zero", "the", "The", "a", "A", "an",
         "dog", "dogs", "cat's", "It's", "dont", "isnt", "Im", "wont", "youre", "oclock", "hot-dog", "x-ray", "red,",
         "white", "1,000", "100,978", "3.5", "2:50", "pm", "U.S.A.", "etc.", "?", "!", "(left)", "[1]", "a/b", "50%",
         "#1", "&", "'s", "red", "blue", "none.", "1,,2", "well ;", "@home", '"quoted"', "c++", "e-mail", "<tag>",
         "a_b", "=", "`x`", "Unanswerable", "unanswerable.", "\t", "\n", "..", "3.", ".5", "é", "ÇA", "\u3000"]
SWAPS = [("2", "two"), ("two", "2"), ("10", "Ten"), (" ", ", "), (" ", ","), (" ", "-"), ("dog", "dog's"), ("'s", "s")]


def random_phrase(rng):
    text = " ".join(rng.choice(WORDS) for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4])))
    r = rng.random()
    if r < 0.1:
        return f" {text} "
    if r < 0.15:
        return text.replace(" ", "")
    if r < 0.2:
        return text + "\n"
    return text


def perturb(rng, text):
    r = rng.random()
    if r < 0.2:
        return text.upper()
    if r < 0.35:
        return "The " + text
    if r < 0.5:
        return text + rng.choice([".", "!", "?", " .", ","])
    old, new = rng.choice(SWAPS)
    return text.replace(old, new, 1)


def random_dataset(seed, n):
    rng = random.Random(seed)
    predictions, answers_lists = [], []
    for _ in range(n):
        pool = [random_phrase(rng) for _ in range(rng.choice([1, 2, 3, 4]))]
        answers_lists.append([rng.choice(pool) for _ in range(rng.choice([10] * 8 + [1, 3, 5, 9, 11]))])
        pred = rng.choice(pool) if rng.random() < 0.8 else random_phrase(rng)
        predictions.append(perturb(rng, pred) if rng.random() < 0.5 else pred)
    return predictions, answers_lists


# --- vectors of the official VQA evaluator --------------------------------------------------------------------------

NORMALISATION = [  # input, after punctuation, final (official 2021 code)
    ("Yes.", "Yes", "yes"),
    ("two", "two", "2"),
    ("Ten dogs", "Ten dogs", "10 dogs"),
    ("none", "none", "0"),
    ("The dog", "The dog", "dog"),
    ("dont", "dont", "don't"),
    ("isnt", "isnt", "isn't"),
    ("100,978", "100978", "100978"),
    ("3.5", "3.5", "3.5"),
    ("red, white", "red white", "red white"),
    ("red,white", "red white", "red white"),
    ("hot-dog", "hot dog", "hot dog"),
    ("x-ray", "x ray", "x ray"),
    ("It's a cat!", "It's a cat ", "it's cat"),
    ("a 2:50 pm", "a 2:50 pm", "2:50 pm"),
    ("U.S.A.", "USA", "usa"),
    ("cat's", "cat's", "cat's"),
]


@pytest.mark.parametrize("text, punct, final", NORMALISATION)
def test_normalisation_vectors(text, punct, final):
    assert process_punctuation(text) == punct
    assert process_punctuation(text, comma_rule="lmms") == punct
    assert process_digit_article(process_punctuation(text)) == final
    assert vqa_normalize(text, variant="vqa2021") == final
    assert vqa_normalize(text, variant="lmms") == final


@pytest.mark.parametrize(
    "text, lmms, tokenized",
    [
        ("The cat's toy", "cat's toy", "cat 's toy"),
        ("Unanswerable.", "unanswerable", "unanswerable"),
        ("red,white", "red white", "redwhite"),  # word_tokenize deletes the comma first
        ("Is it?", "is it", "is it"),
        ("Im here", "im here", "im here"),  # the capitalised contraction keys never match
    ],
)
def test_lmms_call_vs_punctuation_digit(text, lmms, tokenized):
    assert vqa_normalize(text, variant="lmms") == lmms
    assert vqa_normalize(text, variant="lmms_tokenized") == tokenized


def test_comma_rules_differ_on_repeated_commas():
    # lmms-eval's (?<=\d)(\,)+(?=\d) sees digit,,digit; the official (\d)(\,)(\d) does not.
    assert process_punctuation("1,,2") == "1  2"
    assert process_punctuation("1,,2", comma_rule="lmms") == "12"
    assert vqa_accuracy("12", ["1,,2"] * 5 + ["x"] * 5, variant="lmms") == 1.0
    assert vqa_accuracy("12", ["1,,2"] * 5 + ["x"] * 5, variant="vqa2021") == 0.0


def test_period_strip_stops_after_32():
    text = "a." * 40
    assert process_punctuation(text) == "a" * 32 + "a." * 8
    assert process_punctuation(text) == ref_punctuation(text, REF_COMMA_OFFICIAL)


ACCURACY = [  # answers, prediction, accuracy (all variants unless overridden)
    (["2"] + ["3"] * 9, "2", 0.3),
    (["2"] * 2 + ["3"] * 8, "2", 0.6),
    (["2"] * 3 + ["3"] * 7, "2", 0.9),
    (["2"] * 4 + ["3"] * 6, "2", 1.0),
    (["3"] * 10, "2", 0.0),
    (["2"] * 5 + ["3"] * 5, "two", 1.0),
    (["yes"] * 9 + ["no"], "Yes", 1.0),
]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("answers, prediction, expected", ACCURACY)
def test_accuracy_vectors(variant, answers, prediction, expected):
    assert vqa_accuracy(prediction, answers, variant=variant) == expected


@pytest.mark.parametrize(
    "variant, expected", [("vqa2021", 0.0), ("vqa2016", 1.0), ("lmms", 1.0), ("lmms_tokenized", 1.0)]
)
def test_unanimous_answers_compare_raw_only_in_2021(variant, expected):
    assert vqa_accuracy("Yes", ["yes"] * 10, variant=variant) == expected
    assert vqa_accuracy("yes", ["yes"] * 10, variant=variant) == 1.0


def test_2016_normalises_answers_by_punctuation_only():
    # Answers keep their articles and number words in 2016; the prediction loses them.
    answers = ["the dog"] * 5 + ["cat"] * 5
    assert vqa_accuracy("the dog", answers, variant="vqa2016") == 0.0
    assert vqa_accuracy("the dog", answers, variant="vqa2021") == 1.0
    assert vqa_accuracy("hot-dog", ["hot-dog"] * 5 + ["x"] * 5, variant="vqa2016") == 1.0


def test_official_sum_order_moves_the_last_bit():
    # vqaEval.py sums the 10 terms left to right; lmms-eval's statistics.mean rounds once.
    early = ["2", "2"] + ["3"] * 8
    middle = ["3"] * 3 + ["2", "2"] + ["3"] * 5
    late = ["3"] * 7 + ["2", "2", "3"]
    assert [vqa_accuracy("2", a, variant="vqa2021") for a in (early, middle, late)] == [
        0.6, 0.6000000000000001, 0.5999999999999999]
    assert {vqa_accuracy("2", a, variant="lmms") for a in (early, middle, late)} == {0.6}
    three = ["2"] + ["3"] * 7 + ["2", "2"]
    assert vqa_accuracy("2", three, variant="vqa2016") == 0.8999999999999998


@pytest.mark.parametrize("variant", VARIANTS)
def test_answer_lists_of_other_lengths(variant):
    assert vqa_accuracy("cat", ["cat"], variant=variant) == 0.0  # the one answer is always left out
    assert vqa_accuracy("cat", ["cat", "cat"], variant=variant) == pytest.approx(1 / 3)
    assert vqa_accuracy("cat", ["cat"] * 4, variant=variant) == 1.0
    eleven = ["cat"] * 3 + ["dog"] * 8
    assert vqa_accuracy("cat", eleven, variant=variant) == REFERENCE[variant]("cat", eleven)


def test_empty_answer_list():
    for variant in ("lmms", "vqa2016", "vqa2021"):
        with pytest.raises(ValueError, match="no answers"):
            vqa_accuracy("cat", [], variant=variant)
    assert vqa_accuracy("cat", [], variant="lmms_tokenized") == 0.0  # ok_vqa/vizwiz utils.py


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown VQA variant"):
        vqa_accuracy("a", ["a"], variant="vqa")
    with pytest.raises(TypeError, match="not one string"):
        vqa_accuracy("a", "a")
    with pytest.raises(TypeError, match="NoneType"):
        vqa_accuracies([None], [["a"]])
    with pytest.raises(ValueError, match="2 predictions but 1"):
        vqa_accuracies(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="unknown VQA variant"):
        VQAAccuracy(normalizer="official")


def test_contraction_table():
    # Pinned to the table shared by vqaEval.py and EvalAIAnswerProcessor (120 entries).
    table = vqa_module._CONTRACTIONS
    assert len(table) == 120
    digest = hashlib.sha256(repr(sorted(table.items())).encode()).hexdigest()
    assert digest == EXPECTED_CONTRACTIONS_SHA256
    assert table["somebody'd"] == "somebodyd" and table["twas"] == "'twas"


# sha256 of repr(sorted(EvalAIAnswerProcessor.CONTRACTIONS.items())), lmms-eval @75571cf (the same
# dict as vqaEval.py's self.contractions at 458a8b2 and a013f00).
EXPECTED_CONTRACTIONS_SHA256 = "8f189686e9ad2a7535a459ef38996aae87d06358cf3d91e78f1a729d0a66dcd6"


# --- against the re-implemented references ---------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_matches_reference_on_random_data(variant):
    predictions, answers_lists = random_dataset(seed=VARIANTS.index(variant), n=2000)
    expected = [REFERENCE[variant](p, a) for p, a in zip(predictions, answers_lists)]
    assert vqa_accuracies(predictions, answers_lists, variant=variant) == expected
    assert len(set(expected)) > 5  # the data exercises partial credit, not only 0 and 1


@pytest.mark.parametrize("variant", VARIANTS)
def test_batch_equals_single(variant):
    predictions, answers_lists = random_dataset(seed=10, n=500)
    single = [vqa_accuracy(p, a, variant=variant) for p, a in zip(predictions, answers_lists)]
    assert vqa_accuracies(predictions, answers_lists, variant=variant) == single
    assert vqa_accuracies(tuple(predictions), [tuple(a) for a in answers_lists], variant=variant) == single


def test_variants_disagree_somewhere():
    predictions, answers_lists = random_dataset(seed=3, n=2000)
    means = {v: sum(vqa_accuracies(predictions, answers_lists, variant=v)) for v in VARIANTS}
    assert len(set(means.values())) == 4


# --- the stateful shell ------------------------------------------------------------------------------


def test_accumulation_equals_one_shot():
    predictions, answers_lists = random_dataset(seed=7, n=900)
    types = [random.Random(i).choice(["yes/no", "number", "other"]) for i in range(900)]
    qtypes = [random.Random(-i).choice(["what is", "how many", "is the"]) for i in range(900)]
    one = VQAAccuracy(normalizer="vqa2021")
    one.update(predictions, answers_lists, answer_types=types, question_types=qtypes)
    split = VQAAccuracy(normalizer="vqa2021")
    for lo, hi in ((0, 1), (1, 300), (300, 301), (301, 900)):
        split.update(predictions[lo:hi], answers_lists[lo:hi], answer_types=types[lo:hi], question_types=qtypes[lo:hi])
    assert split.compute() == one.compute()
    overall = one.compute()[0]
    assert overall.value == sum(vqa_accuracies(predictions, answers_lists, variant="vqa2021")) / 900


def test_breakdown_by_answer_type():
    metric = VQAAccuracy()
    scores = metric.update(
        ["yes", "2", "red", "blue"],
        [["yes"] * 10, ["2"] * 2 + ["3"] * 8, ["red"] * 10, ["green"] * 10],
        answer_types=["yes/no", "number", "other", "other"],
    )
    assert scores == [1.0, 0.6, 1.0, 0.0]
    results = {r.name: r for r in metric.compute()}
    assert list(results) == ["vqa_accuracy", "vqa_accuracy/number", "vqa_accuracy/other", "vqa_accuracy/yes/no"]
    assert results["vqa_accuracy"] == MetricResult(
        name="vqa_accuracy", value=0.65, higher_is_better=True, variant="lmms", provenance=VQA_VARIANTS["lmms"],
        scale=100.0, n=4)
    assert results["vqa_accuracy/other"].value == 0.5 and results["vqa_accuracy/other"].n == 2
    assert results["vqa_accuracy/yes/no"].extra == {"group": "answer_type", "key": "yes/no"}
    assert "lmms-eval" in results["vqa_accuracy"].provenance
    assert results["vqa_accuracy/number"].to_json()["scale"] == 100.0


def test_question_types_and_empty_state():
    metric = VQAAccuracy(normalizer="vqa2016")
    assert [(r.name, r.value, r.n) for r in metric.compute()] == [("vqa_accuracy", None, 0)]
    metric.update(["a"], [["a"] * 10], question_types=["what"])
    names = [r.name for r in metric.compute()]
    assert names == ["vqa_accuracy", "vqa_accuracy/question_type/what"]
    with pytest.raises(ValueError, match="every update or with none"):
        metric.update(["a"], [["a"] * 10])
    with pytest.raises(ValueError, match="every update or with none"):
        metric.update(["a"], [["a"] * 10], answer_types=["other"], question_types=["what"])
    with pytest.raises(ValueError, match="answer_types for 1"):
        metric.update(["a"], [["a"] * 10], answer_types=["x", "y"], question_types=["what"])
    metric.reset()
    assert metric.compute()[0].n == 0


def test_variant_descriptions():
    assert set(VQA_VARIANTS) == set(VARIANTS) | {"lmms_2024"}  # lmms_2024: tests/test_parity_vqa.py
    assert "458a8b2" in VQA_VARIANTS["vqa2016"] and "a013f00" in VQA_VARIANTS["vqa2021"]


def test_doctests():
    failed, attempted = doctest.testmod(vqa_module, raise_on_error=False)
    assert attempted > 0 and failed == 0
