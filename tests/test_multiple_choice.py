"""The shared multiple-choice core (``tasks/multiple_choice.py``): the scoring strategy and the
letter rule are chosen in the task YAML by ``_target_``, for SEED-Bench, MMLU, OmniBench and
MME-Unify understanding alike; the MME-Unify scoring rules chosen the same way.

The same MMLU fixture (the original CSV release) is scored once by likelihood and once by
generation + extraction, both selected through the composed config; the answers are scripted so
that both strategies pick the same options, hence the same accuracies under different variants.
"""

from __future__ import annotations

import csv

import pytest
from hydra.utils import instantiate

from mio_eval.api import build, compose
from mio_eval.errors import ConfigError
from mio_eval.metrics.mme_unify import (Accuracy, MeanTextImage, OfficialDenominator, StepsDenominator,
                                        unify_task_metrics, vcot_metrics)
from mio_eval.tasks.base import Generated, InvalidOutput
from mio_eval.tasks.mcq import MultipleChoiceTask
from mio_eval.tasks.mme_unify import ChoiceLabel, ListPosition
from mio_eval.tasks.multiple_choice import (ExtractChoice, FirstChar, Generate, LetterRule, Likelihood,
                                            ScoringStrategy)
from mio_eval.types import Image, Output, Sample

CORE = "mio_eval.tasks.multiple_choice"
ROWS = {  # question, A-D, gold
    "astronomy": [("Closest star?", "Sirius", "The Sun", "Vega", "Rigel", "B"),
                  ("Red planet?", "Mars", "Venus", "Jupiter", "Saturn", "A")],
    "virology": [("Smallpox vaccine pioneer?", "Pasteur", "Koch", "Jenner", "Fleming", "C"),
                 ("HIV is a?", "Bacterium", "Prion", "Fungus", "Retrovirus", "D")],
}
# The option each strategy is scripted to pick (one wrong: virology/0001 -> A).
PICKED = {"astronomy/0000": 1, "astronomy/0001": 0, "virology/0000": 2, "virology/0001": 0}


@pytest.fixture(scope="module")
def mmlu_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mmlu")
    for split in ("test", "dev"):
        for subject in ROWS:
            path = root / "data" / split / f"{subject}_{split}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            rows = (ROWS[subject] if split == "test"
                    else [(f"dev {i}?", "a", "b", "c", "d", "ABCD"[i]) for i in range(2)])
            with open(path, "w", encoding="utf-8", newline="") as fh:
                csv.writer(fh).writerows(rows)
    return root


def _mmlu(root, *extra):
    task, _ = build(compose(["task=mmlu", "model=dummy", f"task.loader.root={root}", "task.loader.expected_size=null",
                             "task.context_length=null", *extra]))
    return task


def _scripted(strategy_name, index):
    if strategy_name == "likelihood":
        return Output(logprobs=tuple(-1.0 if i == index else -3.0 - i for i in range(4)))
    return Output(text=f"The answer is ({'ABCD'[index]}).")


def _score(task, tmp_path):
    generated = []
    for sample in task.samples():
        output = _scripted(task.scoring.name, PICKED[sample.id])
        generated.append(Generated(sample=sample, output=output, prediction=task.prediction(sample, output),
                                   error=None))
    return {m.name: m for m in task.score(generated, work_dir=tmp_path).metrics}


def test_same_fixture_scored_by_likelihood_and_by_generate_extract_through_config(mmlu_root, tmp_path):
    by_likelihood = _mmlu(mmlu_root)  # the YAML default
    by_generation = _mmlu(mmlu_root, f"task.scoring._target_={CORE}.Generate")
    assert type(by_likelihood.scoring) is Likelihood and by_likelihood.needs_loglikelihood
    assert type(by_generation.scoring) is Generate and not by_generation.needs_loglikelihood
    sample = by_likelihood.samples()[0]
    assert by_likelihood.request(sample).continuations == (" A", " B", " C", " D")
    assert by_generation.request(sample).continuations == ()
    a, b = _score(by_likelihood, tmp_path / "l"), _score(by_generation, tmp_path / "g")
    assert a["accuracy"].value == b["accuracy"].value == 3 / 4
    assert a["accuracy_macro"].value == b["accuracy_macro"].value == (1.0 + 0.5) / 2
    assert a["accuracy"].variant == "likelihood/lm_eval" and b["accuracy"].variant == "generate/lm_eval"
    # the provenance of earlier runs, word for word (the gate compares it as the protocol)
    assert b["accuracy"].provenance.startswith("letter extracted from the generated answer (mio_eval extract_choice); "
                                               "invalid counted as wrong; ")
    assert a["accuracy"].provenance.startswith("argmax of summed log-probabilities of ' A'..' D'")
    # each strategy refuses the other's output shape
    with pytest.raises(InvalidOutput, match="4 option log-probabilities"):
        by_likelihood.prediction(sample, _scripted("generate", 1))
    with pytest.raises(InvalidOutput, match="expected a text answer"):
        by_generation.prediction(sample, _scripted("likelihood", 1))


def test_mmlu_letter_rule_reads_letters_only_unless_configured(mmlu_root):
    task = _mmlu(mmlu_root, f"task.scoring._target_={CORE}.Generate")
    sample = task.samples()[0]  # options Sirius / The Sun / Vega / Rigel
    assert task.prediction(sample, Output(text="The Sun"))["choice"] is None  # lm-eval: letters only
    texts = _mmlu(mmlu_root, f"task.scoring._target_={CORE}.Generate", "task.letter_rule.option_texts=true")
    assert texts.prediction(sample, Output(text="The Sun"))["choice"] == 1


def _seed(scoring, rule=None):
    samples = [Sample(id="q1", parts=(Image("x.jpg"),), targets=("B",), choices=("red", "blue", "green", "C"),
                      metadata={"question": "Which colour?", "dimension": "Colour"})]
    cfg = {"_target_": "mio_eval.tasks.mcq.MultipleChoiceTask", "name": "seed", "scoring": {"_target_": scoring}}
    if rule:
        cfg["letter_rule"] = {"_target_": rule}
    return instantiate(cfg, loader=lambda: samples), samples[0]


@pytest.mark.parametrize("reply, extract, first_char", [
    ("b) blue", "B", "B"),
    ("The answer is (C).", "C", None),  # first character T: invalid under lmms-eval's rule
    ("green", "C", None),  # extract_choice matches the option text; the first character G is no option
    ("blue", "B", "B"),
    ("e", None, None),
])
def test_seed_letter_rules_by_target(reply, extract, first_char):
    task, sample = _seed(f"{CORE}.Generate")
    assert task.prediction(sample, Output(text=reply)) == extract
    task, sample = _seed(f"{CORE}.Generate", f"{CORE}.FirstChar")
    assert task.prediction(sample, Output(text=reply)) == first_char
    assert task.variant == "generate/first_char"


def test_seed_likelihood_by_target_scores_option_texts():
    task, sample = _seed(f"{CORE}.Likelihood")
    assert task.variant == "likelihood" and task.needs_loglikelihood
    assert task.request(sample).continuations == (" red", " blue", " green", " C")
    assert task.prediction(sample, Output(logprobs=(-4.0, -1.5, -1.5, -9.0))) == "B"  # tie -> lowest index


def test_every_multiple_choice_config_uses_the_core():
    for name, scoring, rule in (("seedbench_img", Likelihood, ExtractChoice), ("mmlu", Likelihood, ExtractChoice),
                                ("omnibench", Generate, ExtractChoice),
                                ("mme_unify_understanding", Generate, ExtractChoice)):
        task, _ = build(compose([f"task={name}", "model=dummy"]))
        assert type(task.scoring) is scoring and isinstance(task.scoring, ScoringStrategy), name
        assert type(task.letter_rule) is rule and isinstance(task.letter_rule, LetterRule), name
        assert "letter_rule" in type(task).scoring_keys, name  # re-scoring with another rule keeps the run
    omni, _ = build(compose(["task=omnibench", "model=dummy", f"task.scoring._target_={CORE}.Likelihood"]))
    assert omni.needs_loglikelihood


def test_a_string_knob_is_refused_with_the_target_form():
    with pytest.raises(ConfigError, match=r"task.scoring must be a scoring strategy given by _target_.*Generate"):
        build(compose(["task=seedbench_img", "model=dummy", "task.scoring=generate"]))
    with pytest.raises(ConfigError, match="task.letter_rule must be a letter rule"):
        build(compose(["task=seedbench_img", "model=dummy", "task.letter_rule=first_char"]))
    with pytest.raises(ConfigError, match="task.vcot_denominator must be a rule given by _target_"):
        build(compose(["task=mme_unify_unify", "model=dummy", "task.vcot_denominator=official"]))


def test_first_char_and_extract_rules_directly():
    assert FirstChar()("  d", ["a", "b", "c", "d"]) == 3 and FirstChar()("", ["a"]) is None
    assert ExtractChoice(option_texts=False)("Answer: B", ["x", "y"]) == 1
    with pytest.raises(ConfigError):
        ExtractChoice(option_texts="yes")


# --- MME-Unify scoring rules chosen by _target_ --------------------------------------------------


def test_unify_score_rules():
    ok = [{"text": True, "image": True, "combined": True}, {"text": True, "image": False, "combined": False}]
    scores = {type(r).__name__ + r.name: next(m for m in unify_task_metrics("CSQ", ok, 4, rule=r) if m.name == "score/CSQ")
              for r in (MeanTextImage(), Accuracy(aspect="combined"), Accuracy(aspect="text"))}
    # text 2/4, image 1/4, combined 1/4 (failed items count wrong: n = 4)
    assert scores["MeanTextImagemean_text_image"].value == pytest.approx(100 * (0.5 + 0.25) / 2)
    assert scores["Accuracycombined"].value == 25.0 and scores["Accuracytext"].value == 50.0
    assert scores["Accuracycombined"].variant == "mio_eval_v1/combined"
    with pytest.raises(ConfigError, match="aspect"):
        Accuracy(aspect="overall")


def test_vcot_denominators():
    # two walks: item a has 3 steps (last one "Finish", no image), item b has 1
    steps = [{"item_id": "a", "n_steps": 3, "image_target": 0}, {"item_id": "a", "n_steps": 3, "image_target": 1},
             {"item_id": "a", "n_steps": 3, "image_target": None}, {"item_id": "b", "n_steps": 1, "image_target": 0}]
    ok = [{"action": True, "location": True, "image": True}] * 3 + [{"action": True, "location": False, "image": None}]
    fair = {m.name: m for m in vcot_metrics(ok, steps, denominator=StepsDenominator())}
    official = {m.name: m for m in vcot_metrics(ok, steps, denominator=OfficialDenominator())}
    assert fair["action_accuracy/VCoT"].value == 1.0 and fair["image_accuracy/VCoT"].n == 3
    assert official["action_accuracy/VCoT"].n == 2 * 3 and official["action_accuracy/VCoT"].value == 4 / 6
    assert official["score/VCoT"].variant == "mio_eval_v1/official"


def test_iee_label_rules():
    labels = ["D", "C", "A", "B"]
    assert ChoiceLabel()(1, labels) == "C" and ListPosition()(1, labels) == "B"


def test_generate_cuts_at_until_before_reading():
    out = Output(text="B ASSISTANT: C")
    assert Generate().choose(out, choices=["x", "y", "z"], rule=ExtractChoice(), until=["ASSISTANT:"]) == 1
    with pytest.raises(InvalidOutput, match="expected a text answer, got nothing"):
        Generate().choose(Output(), choices=["x"], rule=ExtractChoice())
    assert Likelihood().continuations([" a"]) == (" a",) and Generate().continuations([" a"]) == ()
