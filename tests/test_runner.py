import json

import pytest

from mio_eval.adapter import CapabilityError
from mio_eval.errors import ConfigError, ErrorBudgetExceeded
from mio_eval.metrics.base import MetricResult
from mio_eval.models.dummy import DummyAdapter
from mio_eval.runner import RunnerSettings, evaluate
from mio_eval.tasks.base import InvalidOutput, ScoreReport
from mio_eval.types import Modality, Output, Request, Sample, Text


class EchoTask:
    """Exact match over in-memory samples; the prompt is the target, so echo scores 1."""

    name = "echo"
    input_modalities = frozenset({Modality.TEXT})
    output_modality = Modality.TEXT
    scoring_keys = ()

    def __init__(self, texts, invalid=()):
        self._samples = [Sample(id=f"s{i:03d}", parts=(Text(t),), targets=(t,)) for i, t in enumerate(texts)]
        self.invalid = set(invalid)

    def samples(self):
        return list(self._samples)

    def request(self, sample):
        return Request(sample_id=sample.id, parts=sample.parts)

    def prediction(self, sample, output):
        if sample.id in self.invalid:
            raise InvalidOutput("unparsable answer")
        return output.text

    def score(self, generated, *, work_dir):
        rows = [{"id": g.sample.id, "error": g.error, "correct": g.error is None and g.prediction == g.sample.targets[0]}
                for g in generated]
        scored = [r for r in rows if not r["error"]]
        value = sum(r["correct"] for r in scored) / len(scored) if scored else None
        return ScoreReport(metrics=(MetricResult("acc", value, True, "exact", "test", n=len(scored)),),
                           per_sample=tuple(rows))


TEXTS = ["a", "bbbbbbbb", "cc", "dddddd", "e", "ffff", "ggggggggggg", "hhh", "iiiii", "jj"]


def _run(tmp_path, task=None, adapter=None, fp="fp", **settings):
    settings.setdefault("progress", False)
    return evaluate(task or EchoTask(TEXTS), adapter or DummyAdapter(), run_dir=tmp_path, fingerprint=fp,
                    settings=RunnerSettings(**settings), run_info={})


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_batches_sorted_longest_first_results_in_dataset_order(tmp_path):
    adapter = DummyAdapter()
    metrics = _run(tmp_path, adapter=adapter, batch_size=3)
    assert adapter.calls == 4  # ceil(10 / 3)
    preds = _lines(tmp_path / "predictions.jsonl")
    assert [p["prompt"][0]["text"] for p in preds[:3]] == ["ggggggggggg", "bbbbbbbb", "dddddd"]
    scores = _lines(tmp_path / "scores.jsonl")
    assert [s["id"] for s in scores] == [f"s{i:03d}" for i in range(10)]
    by_id = {p["id"]: p for p in preds}
    assert all(by_id[f"s{i:03d}"]["prediction"] == t for i, t in enumerate(TEXTS))
    assert metrics["metrics"]["acc"]["value"] == 1.0
    for key in ("task", "model", "n", "n_errors", "fingerprint", "versions", "judges", "started_at",
                "finished_at", "wall_time_s"):
        assert key in metrics
    assert set(metrics["metrics"]["acc"]) >= {"value", "higher_is_better", "variant", "provenance"}
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics


def test_limit_takes_first_n(tmp_path):
    metrics = _run(tmp_path, limit=4)
    assert metrics["n"] == 4
    assert [s["id"] for s in _lines(tmp_path / "scores.jsonl")] == ["s000", "s001", "s002", "s003"]


def test_errors_within_budget_are_counted_with_reasons(tmp_path):
    metrics = _run(tmp_path, adapter=DummyAdapter(fail_ids=["s001"]), task=EchoTask(TEXTS, invalid=["s002"]),
                   max_error_rate=0.2)
    assert metrics["n_errors"] == 2 and metrics["errors"] == {"generate": 2, "score": 0}
    assert metrics["metrics"]["acc"]["n"] == 8
    errors = {s["id"]: s["error"] for s in _lines(tmp_path / "scores.jsonl") if s["error"]}
    assert errors == {"s001": "dummy: configured failure", "s002": "invalid output: unparsable answer"}


def test_error_budget_aborts_and_keeps_finished_work(tmp_path):
    adapter = DummyAdapter(fail_ids=["s000", "s001", "s002"])
    with pytest.raises(ErrorBudgetExceeded, match="rerun the same command"):
        _run(tmp_path, adapter=adapter, batch_size=2, max_error_rate=0.1)
    assert not (tmp_path / "metrics.json").exists()
    kept = [p["id"] for p in _lines(tmp_path / "predictions.jsonl")]
    assert kept and len(kept) < 10
    metrics = _run(tmp_path, adapter=adapter, batch_size=2, max_error_rate=1.0)
    ids = [p["id"] for p in _lines(tmp_path / "predictions.jsonl")]
    assert sorted(ids) == [f"s{i:03d}" for i in range(10)] and len(ids) == len(set(ids))
    assert metrics["n_errors"] == 3


def test_crashing_batch_is_split_to_isolate_the_culprit(tmp_path):
    metrics = _run(tmp_path, adapter=DummyAdapter(raise_ids=["s003"]), batch_size=5, max_error_rate=0.5)
    errors = {s["id"]: s["error"] for s in _lines(tmp_path / "scores.jsonl") if s["error"]}
    assert errors == {"s003": "RuntimeError: dummy backend crashed on s003"}
    assert metrics["metrics"]["acc"]["value"] == 1.0


def test_stages_generate_then_score_equal_all(tmp_path):
    assert _run(tmp_path / "a", stage="generate") is None
    split = _run(tmp_path / "a", stage="score")
    whole = _run(tmp_path / "b")
    assert split["metrics"] == whole["metrics"] and split["n"] == whole["n"]


def test_score_without_generation_is_refused(tmp_path):
    with pytest.raises(ConfigError):
        _run(tmp_path, stage="score")
    _run(tmp_path, stage="generate", limit=3)
    with pytest.raises(ConfigError, match="no prediction"):
        _run(tmp_path, stage="score")


def test_impossible_pairing_refused_before_loading(tmp_path):
    class Loud(DummyAdapter):
        def load(self):
            raise AssertionError("must not load")

    with pytest.raises(CapabilityError, match="wants text output"):
        _run(tmp_path, adapter=Loud(outputs=["audio"]))
    assert not (tmp_path / "predictions.jsonl").exists()


def test_bad_runner_settings():
    for bad in ({"stage": "x"}, {"batch_size": 0}, {"limit": "3"}, {"max_error_rate": 2.0}):
        with pytest.raises(ConfigError):
            RunnerSettings(**bad)
