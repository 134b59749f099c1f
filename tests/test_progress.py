"""Scoring passes show a progress bar on stderr (after a second), unless switched off; the ASR
judge's retry keeps what the retry returned."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mio_eval import progress as progress_module
from mio_eval.progress import enabled, progress, set_enabled
from mio_eval.tasks.base import Generated
from mio_eval.tasks.speech import Transcriber
from mio_eval.tasks.video_qa import VideoQATask
from mio_eval.types import Modality, Output, Sample, Text


class FakeJudge:
    """An ASR judge that answers with the file name after ``delay_s`` per call; the files named
    in ``fail_first`` make their first call raise, ``fail_always`` make every call raise."""

    name = "fake-judge"
    inputs = frozenset({Modality.AUDIO})
    outputs = frozenset({Modality.TEXT})

    def __init__(self, *, delay_s: float = 0.0, fail_first=(), fail_always=()) -> None:
        self.delay_s = delay_s
        self.fail_first = set(fail_first)
        self.fail_always = set(fail_always)
        self.calls: list[list[str]] = []

    def load(self) -> None:
        pass

    def generate(self, requests, *, media_dir):
        names = [Path(r.parts[0].path).stem for r in requests]
        self.calls.append(names)
        time.sleep(self.delay_s)
        for name in names:
            if name in self.fail_always:
                raise RuntimeError(f"cannot read {name}")
            if name in self.fail_first:
                self.fail_first.discard(name)
                raise RuntimeError(f"transient failure on {name}")
        return [Output(text=f"heard {name}") for name in names]

    def provenance(self):
        return {"model": self.name}


@pytest.fixture(autouse=True)
def _progress_on(monkeypatch):
    monkeypatch.delenv("MIO_EVAL_PROGRESS", raising=False)
    set_enabled(True)
    yield
    set_enabled(True)


def _paths(n):
    return [f"/audio/utt{i}.wav" for i in range(n)]


# --- the bar ------------------------------------------------------------------------------------

def test_a_judge_pass_longer_than_the_delay_shows_a_bar(capsys, tmp_path):
    # 4 one-file calls of 0.35 s: the pass outlasts the real 1 s delay.
    out = Transcriber(FakeJudge(delay_s=0.35), batch_size=1)(_paths(4), tmp_path)
    assert [o.text for o in out] == [f"heard utt{i}" for i in range(4)]
    err = capsys.readouterr().err
    assert "scoring: ASR judge" in err and "4/4" in err and "file" in err


def test_a_fast_pass_prints_nothing(capsys, tmp_path):
    Transcriber(FakeJudge(), batch_size=2)(_paths(6), tmp_path)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("switch", ["set_enabled", "env"])
def test_disabled_bars_print_nothing(switch, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(progress_module, "DELAY_S", 0.0)  # any pass would show a bar at once
    if switch == "set_enabled":
        set_enabled(False)
    else:
        monkeypatch.setenv("MIO_EVAL_PROGRESS", "0")
    assert not enabled()
    out = Transcriber(FakeJudge(delay_s=0.01), batch_size=1)(_paths(3), tmp_path)
    assert len(out) == 3 and all(o.ok for o in out)
    assert capsys.readouterr().err == ""
    set_enabled(True)
    monkeypatch.setenv("MIO_EVAL_PROGRESS", "1")
    Transcriber(FakeJudge(), batch_size=1)(_paths(3), tmp_path)
    assert "scoring: ASR judge" in capsys.readouterr().err


def test_progress_iterates_and_counts_when_disabled(capsys):
    set_enabled(False)
    bar = progress(range(5), desc="x")
    assert list(bar) == [0, 1, 2, 3, 4]
    with progress(total=3, desc="manual") as manual:
        manual.update(3)
    assert capsys.readouterr().err == ""


def test_video_qa_judge_pass_shows_a_bar(capsys, monkeypatch, tmp_path):
    from mio_eval.models.dummy import DummyAdapter

    monkeypatch.setattr(progress_module, "DELAY_S", 0.0)
    judge = DummyAdapter(name="qa-judge", response="{'pred': 'yes', 'score': 4}")
    task = VideoQATask(name="msvd_qa", loader=list, judge=judge, judge_batch_size=2)
    generated = [Generated(sample=Sample(id=f"q{i}", parts=(Text("clip"),), targets=("dog",),
                                         metadata={"question": "what is it?"}),
                           output=Output(text="a dog"), prediction="a dog", error=None) for i in range(3)]
    rows = [{"id": g.sample.id, "error": None} for g in generated]
    metrics = {m.name: m for m in task._judge(generated, rows, tmp_path)}
    assert metrics["judge_accuracy"].value == 1.0 and metrics["judge_accuracy"].n == 3
    err = capsys.readouterr().err
    assert "scoring: judge qa-judge" in err and "3/3" in err


# --- #12.7: the judge's retry -------------------------------------------------------------------

def test_one_file_batch_keeps_a_successful_retry(tmp_path):
    judge = FakeJudge(fail_first={"utt0"})
    out = Transcriber(judge, batch_size=1)(_paths(2), tmp_path)
    assert [o.text for o in out] == ["heard utt0", "heard utt1"] and all(o.ok for o in out)
    assert judge.calls == [["utt0"], ["utt0"], ["utt1"]]  # the failed call, its retry, the next file


def test_failed_batch_is_retried_file_by_file(tmp_path):
    judge = FakeJudge(fail_first={"utt1"}, fail_always={"utt2"})
    out = Transcriber(judge, batch_size=4)(_paths(4), tmp_path)
    assert [o.text for o in out] == ["heard utt0", "heard utt1", None, "heard utt3"]
    assert out[2].error == "RuntimeError: cannot read utt2"  # the file's own failure, one sample
    assert judge.calls[0] == ["utt0", "utt1", "utt2", "utt3"] and judge.calls[1:] == [[f"utt{i}"] for i in range(4)]
    # a one-file batch that fails twice keeps the retry's reason
    lone = Transcriber(FakeJudge(fail_always={"utt0"}), batch_size=1)(_paths(1), tmp_path)
    assert lone[0].error == "RuntimeError: cannot read utt0" and lone[0].text is None


def test_wrong_number_of_transcripts_is_retried(tmp_path):
    class Short(FakeJudge):
        def generate(self, requests, *, media_dir):
            return super().generate(requests, media_dir=media_dir)[:1]

    out = Transcriber(Short(), batch_size=3)(_paths(3), tmp_path)
    assert [o.text for o in out] == ["heard utt0", "heard utt1", "heard utt2"]
