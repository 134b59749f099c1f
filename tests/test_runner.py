"""The runner on an in-memory text task with the dummy adapter: order, batching, errors, stages."""

import datetime as dt
import json

import pytest

from mio_eval.adapter import CapabilityError
from mio_eval.errors import ConfigError, ErrorBudgetExceeded, RunFailed, StoreError
from mio_eval.metrics.base import MetricResult
from mio_eval.models.dummy import DummyAdapter
from mio_eval.runner import RunnerSettings, evaluate
from mio_eval.tasks.base import InvalidOutput, ScoreReport, Task
from mio_eval.types import Modality, Request, Sample, Text


class EchoTask:
    """Exact match over in-memory samples; the prompt is the target, so an echo scores 1."""

    name = "echo"
    input_modalities = frozenset({Modality.TEXT})
    output_modality = Modality.TEXT
    scoring_keys = ()

    def __init__(self, texts, invalid=(), broken=()):
        self._samples = [Sample(id=f"s{i:03d}", parts=(Text(t),), targets=(t,)) for i, t in enumerate(texts)]
        self.invalid = set(invalid)
        self.broken = set(broken)
        self.scored = None

    def samples(self):
        return list(self._samples)

    def request(self, sample):
        return Request(sample_id=sample.id, parts=sample.parts, generation={"max_new_tokens": 8})

    def prediction(self, sample, output):
        if sample.id in self.invalid:
            raise InvalidOutput("unparsable answer")
        if sample.id in self.broken:
            raise KeyError("bug in extraction")
        return output.text

    def score(self, generated, *, work_dir):
        self.scored = [g.sample.id for g in generated]
        rows = [{"id": g.sample.id, "error": g.error, "prediction": g.prediction,
                 "correct": g.error is None and g.prediction == g.sample.targets[0]} for g in generated]
        scored = [r for r in rows if not r["error"]]
        value = sum(r["correct"] for r in scored) / len(scored) if scored else None
        return ScoreReport(metrics=(MetricResult("acc", value, True, "exact", "test: exact match", n=len(scored)),),
                           per_sample=tuple(rows), judges=({"judge": "none"},), settings={"match": "exact"})


class RecordingAdapter(DummyAdapter):
    """The dummy adapter, remembering the sample ids of every call."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.batches = []
        self.loads = 0

    def load(self):
        self.loads += 1

    def generate(self, requests, *, media_dir):
        self.batches.append([r.sample_id for r in requests])
        return super().generate(requests, media_dir=media_dir)


# Lengths 1, 8, 2, 6, 1, 4, 11, 3, 5, 2: dataset order is far from length order.
TEXTS = ["a", "bbbbbbbb", "cc", "dddddd", "e", "ffff", "ggggggggggg", "hhh", "iiiii", "jj"]
IDS = [f"s{i:03d}" for i in range(len(TEXTS))]
# Longest first, ties in dataset order (a stable sort).
LONGEST_FIRST = ["s006", "s001", "s003", "s008", "s005", "s007", "s002", "s009", "s000", "s004"]


def _run(run_dir, task=None, adapter=None, fp="fp", **settings):
    settings.setdefault("progress", False)
    return evaluate(task or EchoTask(TEXTS), adapter or DummyAdapter(), run_dir=run_dir, fingerprint=fp,
                    settings=RunnerSettings(**settings), run_info={"config": {"note": "test"}})


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_echo_task_satisfies_task_protocol():
    task = EchoTask(TEXTS)
    for attr in ("name", "input_modalities", "output_modality", "scoring_keys", "samples", "request",
                 "prediction", "score"):
        assert hasattr(task, attr), attr
    assert set(Task.__annotations__) <= set(dir(task))


def test_batches_sorted_longest_first_results_in_dataset_order(tmp_path):
    adapter = RecordingAdapter()
    task = EchoTask(TEXTS)
    metrics = _run(tmp_path, task=task, adapter=adapter, batch_size=3)
    # Generation ran longest first...
    assert [i for batch in adapter.batches for i in batch] == LONGEST_FIRST
    preds = _lines(tmp_path / "predictions.jsonl")
    assert [p["id"] for p in preds] == LONGEST_FIRST
    # ...but scoring and scores.jsonl follow the dataset order.
    assert task.scored == IDS
    scores = _lines(tmp_path / "scores.jsonl")
    assert [s["id"] for s in scores] == IDS
    # Every prediction belongs to its own sample (no shift when the order is restored).
    by_id = {p["id"]: p for p in preds}
    for sample_id, text in zip(IDS, TEXTS):
        assert by_id[sample_id]["prediction"] == text
        assert by_id[sample_id]["prompt"] == [{"type": "text", "text": text}]
        assert by_id[sample_id]["output"]["text"] == text
        assert by_id[sample_id]["error"] is None
    assert [s["prediction"] for s in scores] == TEXTS
    assert all(s["correct"] for s in scores)
    assert metrics["metrics"]["acc"]["value"] == 1.0 and metrics["n_errors"] == 0
    assert adapter.loads == 1


def test_constant_answer_is_scored_per_sample(tmp_path):
    # A wrong answer everywhere but one sample: the one hit must land on the right id.
    task = EchoTask(TEXTS)
    metrics = _run(tmp_path, task=task, adapter=DummyAdapter(response="hhh"), batch_size=4)
    scores = _lines(tmp_path / "scores.jsonl")
    assert [s["id"] for s in scores if s["correct"]] == ["s007"]
    assert metrics["metrics"]["acc"]["value"] == pytest.approx(0.1)


def test_limit_takes_first_n_in_dataset_order(tmp_path):
    adapter = RecordingAdapter()
    metrics = _run(tmp_path, adapter=adapter, limit=4)
    assert metrics["n"] == 4
    assert sorted(i for batch in adapter.batches for i in batch) == IDS[:4]
    assert [s["id"] for s in _lines(tmp_path / "scores.jsonl")] == IDS[:4]
    assert sorted(p["id"] for p in _lines(tmp_path / "predictions.jsonl")) == IDS[:4]


def test_raising_the_limit_resumes_only_the_new_samples(tmp_path):
    _run(tmp_path, limit=3)
    adapter = RecordingAdapter()
    metrics = _run(tmp_path, adapter=adapter)
    assert sorted(i for batch in adapter.batches for i in batch) == IDS[3:]
    ids = [p["id"] for p in _lines(tmp_path / "predictions.jsonl")]
    assert sorted(ids) == IDS and len(ids) == len(set(ids))
    assert metrics["n"] == 10 and metrics["metrics"]["acc"]["value"] == 1.0


@pytest.mark.parametrize("batch_size,calls", [(1, 10), (3, 4), (4, 3), (10, 1), (64, 1)])
def test_batch_size_is_honoured(tmp_path, batch_size, calls):
    adapter = RecordingAdapter()
    _run(tmp_path, adapter=adapter, batch_size=batch_size)
    assert adapter.calls == calls
    assert all(len(batch) <= batch_size for batch in adapter.batches)
    assert [len(batch) for batch in adapter.batches[:-1]] == [batch_size] * (calls - 1)


def test_finished_run_is_not_regenerated(tmp_path):
    first = _run(tmp_path)
    adapter = RecordingAdapter()
    second = _run(tmp_path, adapter=adapter)
    assert adapter.calls == 0 and adapter.loads == 0  # nothing pending: no load either
    assert second["metrics"] == first["metrics"]
    assert len(_lines(tmp_path / "predictions.jsonl")) == 10


def test_error_budget_aborts_and_keeps_finished_work(tmp_path):
    fail = ["s000", "s001", "s002"]  # 30% > 10%
    adapter = RecordingAdapter(fail_ids=fail)
    with pytest.raises(ErrorBudgetExceeded) as info:
        _run(tmp_path, adapter=adapter, batch_size=2, max_error_rate=0.1)
    message = str(info.value)
    assert "2 of 10 samples failed" in message and "runner.max_error_rate=0.1" in message
    assert "dummy: configured failure" in message and "rerun the same command" in message
    assert not (tmp_path / "metrics.json").exists()
    assert not (tmp_path / "scores.jsonl").exists()
    # Aborted after the batch that crossed the budget (s001 in batch 1, s002 in batch 4); all
    # the batches before, errors included, are kept.
    kept = [p["id"] for p in _lines(tmp_path / "predictions.jsonl")]
    assert kept == LONGEST_FIRST[:8]
    assert {p["id"]: p["error"] for p in _lines(tmp_path / "predictions.jsonl") if p["error"]} == {
        "s001": "dummy: configured failure", "s002": "dummy: configured failure"}

    rerun = RecordingAdapter(fail_ids=fail)
    metrics = _run(tmp_path, adapter=rerun, batch_size=2, max_error_rate=1.0, retry_errors=False)
    assert sorted(i for batch in rerun.batches for i in batch) == ["s000", "s004"]  # only what was missing
    ids = [p["id"] for p in _lines(tmp_path / "predictions.jsonl")]
    assert ids[:8] == kept and sorted(ids) == IDS and len(ids) == len(set(ids))
    assert metrics["n"] == 10 and metrics["n_errors"] == 3
    assert metrics["metrics"]["acc"]["value"] == 1.0 and metrics["metrics"]["acc"]["n"] == 7


def test_stored_errors_count_against_the_budget_on_resume(tmp_path):
    _run(tmp_path, adapter=DummyAdapter(fail_ids=["s000", "s001"]), limit=5, max_error_rate=1.0)
    # 2 stored failures + 1 new = 3 of 10 > 20%: the resumed run must still abort.
    with pytest.raises(ErrorBudgetExceeded, match="3 of 10 samples failed"):
        _run(tmp_path, adapter=DummyAdapter(fail_ids=["s009"]), max_error_rate=0.2, retry_errors=False)


def test_errors_within_budget_are_counted_with_reasons(tmp_path):
    metrics = _run(tmp_path, adapter=DummyAdapter(fail_ids=["s001"]),
                   task=EchoTask(TEXTS, invalid=["s002"], broken=["s003"]), max_error_rate=0.3)
    assert metrics["n"] == 10 and metrics["n_errors"] == 3 and metrics["n_scored"] == 7
    assert metrics["errors"] == {"generate": 3, "score": 0}
    assert metrics["metrics"]["acc"] == {**metrics["metrics"]["acc"], "value": 1.0, "n": 7}
    expected = {
        "s001": "dummy: configured failure",
        "s002": "invalid output: unparsable answer",
        "s003": "prediction failed: KeyError: 'bug in extraction'",
    }
    assert {s["id"]: s["error"] for s in _lines(tmp_path / "scores.jsonl") if s["error"]} == expected
    preds = {p["id"]: p for p in _lines(tmp_path / "predictions.jsonl")}
    assert {i: p["error"] for i, p in preds.items() if p["error"]} == expected
    assert all(preds[i]["prediction"] is None for i in expected)
    # The raw output of an invalid answer is kept for inspection.
    assert preds["s002"]["output"]["text"] == "cc" and preds["s002"]["output"]["error"] is None
    assert preds["s001"]["output"]["error"] == "dummy: configured failure"


def test_invalid_output_is_recorded_with_reason(tmp_path):
    task = EchoTask(TEXTS, invalid=["s005"])
    metrics = _run(tmp_path, task=task)
    pred = next(p for p in _lines(tmp_path / "predictions.jsonl") if p["id"] == "s005")
    assert pred["error"] == "invalid output: unparsable answer" and pred["prediction"] is None
    row = next(s for s in _lines(tmp_path / "scores.jsonl") if s["id"] == "s005")
    assert row["error"] == "invalid output: unparsable answer"
    assert metrics["n_errors"] == 1 and metrics["metrics"]["acc"]["n"] == 9


def test_crashing_batch_is_split_to_isolate_the_culprit(tmp_path):
    adapter = RecordingAdapter(raise_ids=["s003"])
    metrics = _run(tmp_path, adapter=adapter, batch_size=5, max_error_rate=0.5)
    # s003 is in the first batch (s006 s001 s003 s008 s005): that batch raised, then was retried one by one.
    first = LONGEST_FIRST[:5]
    assert adapter.batches[0] == first
    assert adapter.batches[1:6] == [[i] for i in first]
    assert adapter.batches[6] == LONGEST_FIRST[5:]
    preds = {p["id"]: p for p in _lines(tmp_path / "predictions.jsonl")}
    assert preds["s003"]["error"] == "RuntimeError: dummy backend crashed on s003"
    for sample_id, text in zip(IDS, TEXTS):  # the culprit's batch-mates succeeded with their own answers
        if sample_id != "s003":
            assert preds[sample_id]["error"] is None and preds[sample_id]["prediction"] == text
    errors = {s["id"]: s["error"] for s in _lines(tmp_path / "scores.jsonl") if s["error"]}
    assert errors == {"s003": "RuntimeError: dummy backend crashed on s003"}
    assert metrics["n_errors"] == 1 and metrics["metrics"]["acc"]["value"] == 1.0


def test_single_request_batch_that_raises_is_one_error(tmp_path):
    adapter = RecordingAdapter(raise_ids=["s000"])
    metrics = _run(tmp_path, adapter=adapter, batch_size=1, max_error_rate=0.5)
    assert adapter.calls == 10  # no retry for a batch of one
    assert metrics["n_errors"] == 1


class ShortAdapter(DummyAdapter):
    """A buggy backend that returns no outputs at all."""

    def generate(self, requests, *, media_dir):
        self.calls += 1
        return []


@pytest.mark.parametrize("batch_size", [1, 4])
def test_adapter_returning_too_few_outputs_loses_no_sample(tmp_path, batch_size):
    with pytest.raises(RunFailed, match="all 10 samples failed"):  # a run with nothing scored is no success
        _run(tmp_path, adapter=ShortAdapter(), batch_size=batch_size, max_error_rate=1.0)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["failed"] == "all 10 samples failed"
    preds = _lines(tmp_path / "predictions.jsonl")
    assert sorted(p["id"] for p in preds) == IDS
    assert all(p["error"] and "adapter returned 0 outputs" in p["error"] for p in preds)
    assert metrics["n_errors"] == 10 and metrics["metrics"]["acc"]["value"] is None


def test_stages_generate_then_score_equal_all(tmp_path):
    adapter = DummyAdapter(fail_ids=["s004"])
    task = EchoTask(TEXTS, invalid=["s006"])
    assert _run(tmp_path / "a", task=task, adapter=adapter, stage="generate", max_error_rate=0.5) is None
    assert (tmp_path / "a" / "predictions.jsonl").exists()
    assert not (tmp_path / "a" / "metrics.json").exists() and not (tmp_path / "a" / "scores.jsonl").exists()
    scorer = RecordingAdapter()
    split = _run(tmp_path / "a", task=task, adapter=scorer, stage="score", max_error_rate=0.5)
    assert scorer.calls == 0 and scorer.loads == 0  # scoring never touches the model
    whole = _run(tmp_path / "b", task=task, adapter=DummyAdapter(fail_ids=["s004"]), max_error_rate=0.5)
    assert split["metrics"] == whole["metrics"]
    for key in ("n", "n_errors", "n_scored", "errors", "judges", "scoring", "fingerprint"):
        assert split[key] == whole[key], key
    assert (tmp_path / "a" / "scores.jsonl").read_text() == (tmp_path / "b" / "scores.jsonl").read_text()


def test_score_on_an_empty_dir_is_refused(tmp_path):
    with pytest.raises(StoreError, match="run stage=generate first"):
        _run(tmp_path / "empty", stage="score")
    assert not (tmp_path / "empty").exists()


def test_score_with_missing_predictions_is_refused(tmp_path):
    _run(tmp_path, stage="generate", limit=3)
    with pytest.raises(ConfigError, match="7 of 10 samples have no prediction.*first: s003"):
        _run(tmp_path, stage="score")
    assert not (tmp_path / "metrics.json").exists()


def test_resume_under_another_fingerprint_is_refused(tmp_path):
    _run(tmp_path, stage="generate", limit=3, fp="one")
    with pytest.raises(StoreError, match="fingerprint one but this config is two"):
        _run(tmp_path, fp="two")
    metrics = _run(tmp_path, fp="two", overwrite=True)
    assert metrics["fingerprint"] == "two" and metrics["n"] == 10


def test_metrics_json_fields(tmp_path):
    metrics = _run(tmp_path, adapter=DummyAdapter(fail_ids=["s002"]), fp="abc123", batch_size=4, max_error_rate=0.5)
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert metrics["task"] == "echo" and metrics["model"] == "dummy"
    assert metrics["n"] == 10 and metrics["n_errors"] == 1
    assert metrics["fingerprint"] == "abc123"
    acc = metrics["metrics"]["acc"]
    assert acc["value"] == 1.0 and acc["higher_is_better"] is True
    assert acc["variant"] == "exact" and acc["provenance"] == "test: exact match" and acc["n"] == 9
    assert metrics["judges"] == [{"judge": "none"}]
    assert metrics["scoring"] == {"match": "exact"}
    assert metrics["model_provenance"] == {"model": "dummy", "response": "echo"}
    assert metrics["runner"]["batch_size"] == 4 and metrics["runner"]["max_error_rate"] == 0.5
    assert metrics["config"] == {"note": "test"}
    versions = metrics["versions"]
    assert versions["python"].count(".") == 2 and "mio-eval" in versions
    started = dt.datetime.fromisoformat(metrics["started_at"])
    finished = dt.datetime.fromisoformat(metrics["finished_at"])
    assert started.tzinfo is not None and started <= finished
    assert isinstance(metrics["wall_time_s"], float) and metrics["wall_time_s"] >= 0


def test_impossible_pairing_refused_before_loading(tmp_path):
    class Loud(DummyAdapter):
        def load(self):
            raise AssertionError("must not load")

        def generate(self, requests, *, media_dir):
            raise AssertionError("must not generate")

    with pytest.raises(CapabilityError, match="wants text output"):
        _run(tmp_path / "run", adapter=Loud(outputs=["audio"]))
    with pytest.raises(CapabilityError, match="reads text but the model reads only image"):
        _run(tmp_path / "run", adapter=Loud(inputs=["image"]))
    assert not (tmp_path / "run").exists()


def test_duplicate_sample_ids_are_refused(tmp_path):
    task = EchoTask(["x", "y"])
    task._samples.append(task._samples[0])
    with pytest.raises(ConfigError, match="duplicate sample id 's000'"):
        _run(tmp_path / "run", task=task)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("bad", [{"stage": "x"}, {"batch_size": 0}, {"batch_size": True}, {"limit": "3"},
                                 {"limit": 0}, {"max_error_rate": 2.0}, {"resume": "yes"}])
def test_bad_runner_settings(bad):
    with pytest.raises(ConfigError, match="runner\\."):
        RunnerSettings(**bad)
