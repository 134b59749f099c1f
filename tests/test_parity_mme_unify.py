"""MME-Unify understanding against the official ``Evaluate_Understanding.py`` (issue #14).

``tests/reference/mme_unify_understanding_reference.json`` (``scripts/reference/mme_unify_fixture.py``)
holds 12 raw replies to SIPU / MITIU items and what aba122/MME-Unify @0956091's scorer computed on them
(``output == answer``, per category and overall). The same replies go through a real
``mme_unify_understanding`` run (answer-key model): its ``accuracy_strict`` (the reference's rule on
the raw reply) must equal the official overall accuracy, and its exported submission file must be in
the scorer's input format, one row per item with the official ``category``. Only the understanding
family is compared; the generation and unify scorers are not (see README, Parity).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mio_eval import run

FIXTURE = json.loads((Path(__file__).parent / "reference" / "mme_unify_understanding_reference.json").read_text())
CODES = {"Single_Image_Perception_and_Understanding": "SIPU", "Multiple_Images_and_Text_Interlaced": "MITIU"}


def _png(root, rel, level):
    from PIL import Image

    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 12), (level, 40, 200 - level)).save(path)
    return rel


@pytest.fixture()
def run_dir(tmp_path):
    root = tmp_path / "data" / "MME-Unify"
    items, key = [], {}
    for n, item in enumerate(FIXTURE["items"]):
        code = CODES[item["category"]]
        labels = "ABCDE" if code == "SIPU" else "ABCD"
        row = {"question": f"Question {n}?", "answer": item["answer"], "category": item["category"],
               "choice": [f"{x}. option {x.lower()}{n}" for x in labels], "source": "fixture",
               "subcategory": "fixture", "question_id": item["question_id"]}
        if code == "SIPU":
            row["image"] = [_png(root, f"{item['category']}/fixture/{n}.png", 10 * n)]
        else:
            row["question"] = f"First<img>then<img>question {n}?"
            row["image"] = [_png(root, f"{item['category']}/fixture/{n}_a.png", 10 * n),
                            _png(root, f"{item['category']}/fixture/{n}_b.png", 10 * n + 5)]
        items.append(row)
        key[f"{code}-{item['question_id']}"] = {"text": item["output"]}
    (root / "Unify_Dataset" / "Understanding").mkdir(parents=True)
    (root / "Unify_Dataset" / "Understanding" / "Understanding_Unified.json").write_text(json.dumps(items))
    (tmp_path / "key.json").write_text(json.dumps(key))
    metrics = run("mme_unify_understanding", "oracle", [
        f"paths.results_dir={tmp_path / 'results'}", "runner.progress=false", f"paths.data_dir={tmp_path / 'data'}",
        f"model.answers_path={tmp_path / 'key.json'}", "task.loader.subtasks=[SIPU,MITIU]"])
    return metrics


def test_strict_accuracy_equals_the_official_scorer(run_dir):
    metrics = run_dir
    assert metrics["n"] == len(FIXTURE["items"])
    # Failed generations would be left out of ours and counted wrong by the reference: none here.
    assert metrics["n_errors"] == 0
    assert metrics["metrics"]["accuracy_strict"]["value"] == pytest.approx(FIXTURE["overall"], abs=1e-12)
    # The reference's printed per-category numbers are its own calculate_accuracy's.
    for category, value in FIXTURE["per_category"].items():
        assert FIXTURE["printed_percent"][category] == round(100 * value, 2)


def test_export_is_the_official_input_format(run_dir, tmp_path):
    assert run_dir["artifacts"] == [run_dir["scoring"]["submission"]]
    export = json.loads((tmp_path / "results" / run_dir["model"] / run_dir["task"] / run_dir["scoring"]["submission"])
                        .read_text())
    assert len(export) == len(FIXTURE["items"])
    by_id = {row["question_id"]: row for row in export}
    for item in FIXTURE["items"]:
        row = by_id[item["question_id"]]
        assert row["category"] == item["category"] and row["answer"] == item["answer"] and "output" in row
