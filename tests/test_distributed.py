"""In-process parts of scaling out: shard dealing, shard merge (idempotent, ordered), provenance
merge, and the out-of-memory back-off (halve the batch, remember it, ``batch_size=auto``)."""

import json

import pytest
import torch

from mio_eval.distributed import ShardWriter, balance, merge_provenance, merge_shards, read_shard
from mio_eval.errors import ConfigError
from mio_eval.metrics.base import MetricResult
from mio_eval.models.dummy import DummyAdapter
from mio_eval.runner import RunnerSettings, evaluate, is_out_of_memory
from mio_eval.store import PredictionStore
from mio_eval.tasks.base import ScoreReport
from mio_eval.types import Modality, Request, Sample, Text


class EchoTask:
    name = "echo"
    input_modalities = frozenset({Modality.TEXT})
    output_modality = Modality.TEXT
    scoring_keys = ()

    def __init__(self, texts):
        self._samples = [Sample(id=f"s{i:03d}", parts=(Text(t),), targets=(t,)) for i, t in enumerate(texts)]

    def samples(self):
        return list(self._samples)

    def request(self, sample):
        return Request(sample_id=sample.id, parts=sample.parts)

    def prediction(self, sample, output):
        return output.text

    def score(self, generated, *, work_dir):
        rows = [{"id": g.sample.id, "error": g.error, "correct": g.prediction == g.sample.targets[0]} for g in generated]
        ok = [r for r in rows if not r["error"]]
        return ScoreReport(metrics=(MetricResult("acc", sum(r["correct"] for r in ok) / max(len(ok), 1), True, "exact",
                                                 "test", n=len(ok)),), per_sample=tuple(rows))


class OOMAdapter(DummyAdapter):
    """Runs out of memory (torch's own error) on batches above ``fits`` requests, and always on
    the ids in ``hog``; remembers every batch size it was called with."""

    def __init__(self, fits, hog=(), error=None):
        super().__init__()
        self.fits, self.hog, self.sizes = fits, set(hog), []
        self.error = error or (lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))

    def generate(self, requests, *, media_dir):
        self.sizes.append(len(requests))
        if len(requests) > self.fits or self.hog & {r.sample_id for r in requests}:
            raise self.error()
        return super().generate(requests, media_dir=media_dir)


def _evaluate(tmp_path, adapter, texts, **settings):
    settings = RunnerSettings(progress=False, max_error_rate=1.0, **settings)
    return evaluate(EchoTask(texts), adapter, run_dir=tmp_path, settings=settings, fingerprint="f", run_info={})


def _predictions(run_dir):
    return {r["id"]: (r["prediction"], r["error"]) for r in map(json.loads, (run_dir / "predictions.jsonl").open())}


TEXTS = [f"sample {'x' * (i % 7)} {i}" for i in range(23)]


def test_balance_deals_longest_first_to_the_least_loaded_rank():
    assert balance([5, 4, 3, 3, 1], 2) == [[0, 3], [1, 2, 4]]
    sizes = sorted([(i * 37) % 101 + 1 for i in range(200)], reverse=True)
    shards = balance(sizes, 3)
    assert sorted(i for s in shards for i in s) == list(range(200))  # every item once
    loads = [sum(sizes[i] for i in s) for s in shards]
    assert max(loads) - min(loads) <= max(sizes)  # LPT bound: within one item of each other
    assert balance(sizes, 3) == shards and balance([], 4) == [[], [], [], []]


def test_oom_halves_the_batch_remembers_it_and_keeps_outputs(tmp_path):
    reference = _evaluate(tmp_path / "ref", DummyAdapter(), TEXTS, batch_size=1)
    adapter = OOMAdapter(fits=2)
    metrics = _evaluate(tmp_path / "oom", adapter, TEXTS, batch_size=8)
    assert metrics["n_errors"] == 0 and metrics["metrics"] == reference["metrics"]
    assert _predictions(tmp_path / "oom") == _predictions(tmp_path / "ref")
    # 8 -> OOM -> 4 -> OOM -> 2 fits; every later batch runs at 2 (remembered), never 8 again.
    assert adapter.sizes[:3] == [8, 4, 2] and set(adapter.sizes[3:]) <= {2, 1}
    assert metrics["batching"] == {"requested": 8, "used": 2, "oom_retries": 2}


def test_batch_size_auto_finds_the_largest_batch_that_fits(tmp_path):
    adapter = OOMAdapter(fits=5, error=lambda: RuntimeError("CUDA error: out of memory"))
    metrics = _evaluate(tmp_path, adapter, TEXTS, batch_size="auto", max_batch_size=16)
    assert adapter.sizes[:3] == [16, 8, 4] and max(adapter.sizes[3:]) == 4
    assert metrics["batching"] == {"requested": "auto", "used": 4, "oom_retries": 2}
    assert metrics["runner"]["batch_size"] == "auto" and metrics["n_errors"] == 0


def test_oom_at_batch_one_fails_only_that_sample(tmp_path):
    adapter = OOMAdapter(fits=4, hog={"s005"}, error=lambda: MemoryError())
    metrics = _evaluate(tmp_path, adapter, TEXTS, batch_size=4)
    predictions = _predictions(tmp_path)
    assert [i for i, (_, e) in predictions.items() if e] == ["s005"]
    assert predictions["s005"][1].startswith("out of memory at batch size 1: MemoryError")
    assert metrics["n_errors"] == 1 and metrics["batching"]["used"] == 1


def test_out_of_memory_detection_and_settings():
    assert is_out_of_memory(torch.OutOfMemoryError("x")) and is_out_of_memory(MemoryError())
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate"))
    assert not is_out_of_memory(RuntimeError("shape mismatch")) and not is_out_of_memory(ValueError("out of memory"))
    for bad in ({"batch_size": "big"}, {"distributed": "on"}, {"nproc": 0}, {"max_batch_size": True}):
        with pytest.raises(ConfigError, match="runner\\."):
            RunnerSettings(**bad)


def _record(sample_id, text, error=None, **extra):
    return {"id": sample_id, "prompt": [], "output": {"text": text}, "prediction": text, "error": error,
            "time_s": 0.1, "input_digest": "d", **extra}


def test_merge_shards_orders_dedups_and_survives_a_repeated_merge(tmp_path):
    run_dir = tmp_path / "run"
    with PredictionStore(run_dir).open(fingerprint="f", run_info={}) as store:
        store.append([_record("a", "A0", error="boom")])  # a failure from an earlier run
        with ShardWriter(run_dir, 1) as w1, ShardWriter(run_dir, 0) as w0:
            w1.append([_record("c", "C"), _record("a", "A1")])  # the retry of a succeeds
            w0.append([_record("b", "B")])
            w0.append([_record("b", "B-again")])  # a second success of b is a duplicate
        shard = w1.predictions_path
        shard.write_bytes(shard.read_bytes() + b'{"id": "d", "pred')  # a killed rank's cut line
        saved = shard.read_bytes()
        assert [r["id"] for r, _ in read_shard(shard)] == ["c", "a"]
        assert merge_shards(store, ["a", "b", "c", "d"]) == 3
        assert not (run_dir / "shards").exists()
        # A merge cut short before deleting its shards is repeated on the next start: no duplicates.
        (run_dir / "shards").mkdir()
        (run_dir / "shards" / shard.name).write_bytes(saved)
        assert merge_shards(store, ["a", "b", "c", "d"]) == 0
    lines = [json.loads(x) for x in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert [(r["id"], r["prediction"], r.get("attempt")) for r in lines] == [
        ("a", "A0", None), ("a", "A1", 2), ("b", "B", None), ("c", "C", None)]
    with PredictionStore(run_dir).open(fingerprint="f", run_info={}) as store:  # the store accepts it
        assert store.attempts("a") == 2 and store.get("a")["prediction"] == "A1" and len(store) == 3


def test_merge_provenance_sums_per_process_tallies():
    ranks = [{"model": "m", "device": "cuda", "outputs": {"counts": {"invalid_outputs": 1}, "repaired_samples": {"a": ["x"]}}},
             {"model": "m", "device": "cuda", "outputs": {"counts": {"invalid_outputs": 2, "repair_x": 1},
                                                          "repaired_samples": {"b": ["y"]}}}]
    assert merge_provenance(ranks) == {"model": "m", "device": "cuda", "outputs": {
        "counts": {"invalid_outputs": 3, "repair_x": 1}, "repaired_samples": {"a": ["x"], "b": ["y"]}}}
    assert merge_provenance(ranks[:1]) == ranks[0]


def test_each_rank_takes_its_local_rank_gpu(monkeypatch):
    """#13 GPU path: joining the ranks puts this process on ``LOCAL_RANK``'s CUDA device, so an
    adapter with ``device: cuda`` loads one model per rank on its own GPU."""
    import socket

    import torch

    from mio_eval.distributed import Group

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": "0", "WORLD_SIZE": "1",
                       "LOCAL_RANK": "3"}.items():
        monkeypatch.setenv(key, value)
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    group = Group.connect(timeout_s=20)
    try:
        assert chosen == [3] and group.rank == 0 and group.world == 1 and group.is_main
    finally:
        group.close()
