"""The one batched model call (``mio_eval.batching``) used by the runner, the ASR judge and the
video-QA judge: OOM halving, per-request retry, the length check and the error texts."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mio_eval.batching import LENGTH_ERROR, BatchSizer, generate_batch, generate_batches, is_out_of_memory
from mio_eval.models.dummy import DummyAdapter
from mio_eval.tasks.base import Generated
from mio_eval.tasks.video_qa import VideoQATask
from mio_eval.types import Output, Request, Sample, Text


class Backend:
    """Answers ``echo <id>``; raises ``error()`` on a batch larger than ``fits`` or containing an id
    of ``bad`` (always) or ``flaky`` (first call only); ``short`` drops the last output of batches
    larger than one. Records every call's ids."""

    name = "backend"

    def __init__(self, *, fits: int = 1000, bad=(), flaky=(), short: bool = False, error=None) -> None:
        self.fits, self.bad, self.flaky, self.short = fits, set(bad), set(flaky), short
        self.error = error or (lambda: MemoryError())
        self.calls: list[list[str]] = []

    def generate(self, requests, *, media_dir):
        ids = [r.sample_id for r in requests]
        self.calls.append(ids)
        if len(ids) > self.fits:
            raise self.error()
        for i in ids:
            if i in self.bad:
                raise RuntimeError(f"crashed on {i}")
            if i in self.flaky:
                self.flaky.discard(i)
                raise ValueError(f"transient on {i}")
        outputs = [Output(text=f"echo {i}") for i in ids]
        return outputs[:-1] if self.short and len(ids) > 1 else outputs


def _requests(n):
    return [Request(sample_id=f"r{i}", parts=(Text(f"q{i}"),)) for i in range(n)]


def _sizer(batch_size, max_batch_size=64):
    return BatchSizer(SimpleNamespace(batch_size=batch_size, max_batch_size=max_batch_size))


def test_a_good_batch_is_one_call(tmp_path):
    backend = Backend()
    out = generate_batch(backend, _requests(3), media_dir=tmp_path)
    assert [o.text for o in out] == ["echo r0", "echo r1", "echo r2"] and backend.calls == [["r0", "r1", "r2"]]


def test_oom_halves_the_batch_and_remembers_the_size(tmp_path):
    backend, sizer = Backend(fits=2), _sizer(8)
    out = generate_batch(backend, _requests(8), media_dir=tmp_path, sizer=sizer)
    assert [o.text for o in out] == [f"echo r{i}" for i in range(8)]
    assert [len(c) for c in backend.calls] == [8, 4, 2, 2, 2, 2]  # 8 -> 4 -> 2 fits, kept for the rest
    assert sizer.summary() == {"requested": 8, "used": 2, "oom_retries": 2}


def test_oom_of_a_single_request_fails_it_with_the_reason(tmp_path):
    sizer = _sizer(1)
    out = generate_batch(Backend(fits=0, error=lambda: RuntimeError("CUDA out of memory")), _requests(1),
                         media_dir=tmp_path, sizer=sizer)
    assert out[0].error == "out of memory at batch size 1: RuntimeError: CUDA out of memory"
    assert sizer.oom_retries == 1 and sizer.size == 1


def test_oom_without_a_sizer_is_retried_request_by_request(tmp_path):
    backend = Backend(fits=1)
    out = generate_batch(backend, _requests(3), media_dir=tmp_path)
    assert [o.text for o in out] == ["echo r0", "echo r1", "echo r2"]
    assert backend.calls == [["r0", "r1", "r2"], ["r0"], ["r1"], ["r2"]]


def test_a_crashing_batch_is_retried_request_by_request(tmp_path):
    backend = Backend(bad={"r1"})
    out = generate_batch(backend, _requests(3), media_dir=tmp_path, sizer=_sizer(3))
    assert [o.text for o in out] == ["echo r0", None, "echo r2"]
    assert out[1].error == "RuntimeError: crashed on r1"  # the culprit's own failure, its batch-mates kept
    assert backend.calls == [["r0", "r1", "r2"], ["r0"], ["r1"], ["r2"]]


def test_a_single_request_is_retried_only_when_asked(tmp_path):
    runner_like = Backend(flaky={"r0"})
    out = generate_batch(runner_like, _requests(1), media_dir=tmp_path)
    assert out[0].error == "ValueError: transient on r0" and runner_like.calls == [["r0"]]
    judge_like = Backend(flaky={"r0"})
    out = generate_batch(judge_like, _requests(1), media_dir=tmp_path, retry_single=True)
    assert out[0].text == "echo r0" and judge_like.calls == [["r0"], ["r0"]]


def test_a_wrong_number_of_outputs_fails_the_batch_then_each_request_runs_alone(tmp_path):
    backend = Backend(short=True)
    out = generate_batch(backend, _requests(3), media_dir=tmp_path)
    assert [o.text for o in out] == ["echo r0", "echo r1", "echo r2"] and len(backend.calls) == 4

    class Empty(Backend):
        def generate(self, requests, *, media_dir):
            super().generate(requests, media_dir=media_dir)
            return []

    out = generate_batch(Empty(), _requests(2), media_dir=tmp_path)
    assert [o.error for o in out] == ["RuntimeError: adapter returned 0 outputs for 1 requests"] * 2
    assert LENGTH_ERROR.format(got=0, want=2) == "adapter returned 0 outputs for 2 requests"
    out = generate_batch(Empty(), _requests(1), media_dir=tmp_path, length_error="{got} transcripts for {want} files")
    assert out[0].error == "RuntimeError: 0 transcripts for 1 files"


def test_generate_batches_chunks_in_order_and_reports_each_chunk(tmp_path):
    backend, seen = Backend(bad={"r3"}), []
    out = generate_batches(backend, _requests(5), media_dir=tmp_path, batch_size=2, on_batch=seen.append)
    assert [o.text for o in out] == ["echo r0", "echo r1", "echo r2", None, "echo r4"]
    assert seen == [2, 2, 1] and backend.calls[0] == ["r0", "r1"] and backend.calls[-1] == ["r4"]
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        generate_batches(backend, _requests(1), media_dir=tmp_path, batch_size=0)


def test_out_of_memory_detection():
    assert is_out_of_memory(MemoryError())  # torch.OutOfMemoryError: tests/test_distributed.py
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert not is_out_of_memory(ValueError("out of memory")) and not is_out_of_memory(RuntimeError("shape"))


def test_sizer_auto_starts_at_the_maximum():
    assert _sizer("auto", 16).size == 16 and _sizer(3).size == 3


def test_video_qa_judge_retries_a_failed_batch_request_by_request(tmp_path):
    judge = DummyAdapter(name="qa-judge", response="{'pred': 'yes', 'score': 4}", raise_ids=["q1"])
    task = VideoQATask(name="msvd_qa", loader=list, judge=judge, judge_batch_size=4)
    generated = [Generated(sample=Sample(id=f"q{i}", parts=(Text("clip"),), targets=("dog",),
                                         metadata={"question": "what is it?"}),
                           output=Output(text="a dog"), prediction="a dog", error=None) for i in range(3)]
    rows = [{"id": g.sample.id, "error": None} for g in generated]
    metrics = {m.name: m for m in task._judge(generated, rows, tmp_path)}
    # q0 and q2 keep their verdicts; only q1 is unparsable (its error), not the whole batch
    assert metrics["judge_accuracy"].n == 2 and metrics["judge_invalid"].value == pytest.approx(1 / 3)
    assert [r["judge"] for r in rows] == [{"pred": "yes", "score": 4}, None, {"pred": "yes", "score": 4}]
    assert judge.calls == 4  # the batch of three, then each request alone
    log = (tmp_path / "judge.jsonl").read_text().splitlines()
    assert '"error": "RuntimeError: dummy backend crashed on q1"' in log[1]
