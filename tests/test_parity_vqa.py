"""VQA accuracy against the original scorers' own outputs (issue #14).

``tests/reference/vqa_reference.json.gz`` holds, per variant, the per-question accuracy that the
original code computed (``scripts/reference/vqa_fixture.py``: GT-Vision-Lab/VQA ``vqaEval.py`` @458a8b2
and @a013f00, lmms-eval @75571cf vqav2 / ok_vqa / vizwiz_vqa ``utils.py`` and @7548ebe vqav2 for
``lmms_2024``) on the seeded adversarial questions of ``tests/reference/vqa_cases.py`` (>= 20,000).
Ours must equal it exactly, float for float.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from mio_eval.metrics.vqa import VQA_VARIANTS, vqa_accuracies, vqa_accuracy
from reference.vqa_cases import N_RANDOM, SEED, digest, questions

FIXTURE = Path(__file__).parent / "reference" / "vqa_reference.json.gz"


@pytest.fixture(scope="module")
def reference():
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    pairs = questions(data["seed"], data["n_random"])
    # The generator must still produce the very strings the references scored.
    assert digest(pairs) == data["digest"], "tests/reference/vqa_cases.py changed: rerun scripts/reference/vqa_fixture.py"
    return data, pairs


def _decode(entry: dict) -> list[float]:
    values = [float(v) for v in entry["values"]]
    return [values[ord(c) - 48] for c in entry["index"]]


def test_fixture_covers_every_variant_on_enough_questions(reference):
    data, pairs = reference
    assert data["seed"] == SEED and data["n_random"] == N_RANDOM >= 20_000
    assert set(data["scores"]) == set(VQA_VARIANTS)
    assert all(len(_decode(e)) == len(pairs) for e in data["scores"].values())


@pytest.mark.parametrize("variant", sorted(VQA_VARIANTS))
def test_equals_the_reference_scorer(reference, variant):
    data, pairs = reference
    expected = _decode(data["scores"][variant])
    ours = vqa_accuracies([p for p, _ in pairs], [a for _, a in pairs], variant=variant)
    bad = [i for i, (a, b) in enumerate(zip(ours, expected)) if a != b]
    detail = [(pairs[i], ours[i], expected[i]) for i in bad[:5]]
    assert not bad, f"{variant}: {len(bad)} of {len(pairs)} questions differ from {data['references'][variant]}: {detail}"
    # The fixture is not degenerate: it holds full, partial and zero accuracies.
    assert {0.0, 1.0} < set(expected) and len(set(expected)) > 5


def test_lmms_2024_is_the_pre_2025_behaviour():
    # The example: all annotators "cat's toy"; the 2024 code compares the processed
    # prediction ("cat 's toy") with the raw answers.
    assert vqa_accuracy("cat's toy", ["cat's toy"] * 5, variant="lmms_2024") == 0.0
    assert vqa_accuracy("cat's toy", ["cat's toy"] * 5, variant="lmms") == 1.0
