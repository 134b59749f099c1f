"""End to end through the CLI: SIGKILL a run mid-generation, rerun, and get what an uninterrupted run gets.

The dummy model writes tone wavs (slowed down by ``model.delay_s`` per batch so the kill lands
mid-run); the TTS judge is pocketsphinx. The uninterrupted reference run is shared by the tests.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

LIMIT = 8
ARGS = ["task=tts_demo", "model=dummy", "model.delay_s=0.4", "model.seconds_per_word=0.05", "runner.batch_size=2", f"runner.limit={LIMIT}",
        "runner.progress=false"]

pytestmark = pytest.mark.slow


def _cmd(results):
    return [sys.executable, "-m", "mio_eval.cli", *ARGS, f"paths.results_dir={results}"]


def _run_dir(results):
    return results / "dummy" / "tts_demo"


def _complete(cwd, results):
    proc = subprocess.run(_cmd(results), cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"results: {results}/dummy/tts_demo/metrics.json" in proc.stdout
    return json.loads((_run_dir(results) / "metrics.json").read_text())


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _whole_lines(path):
    """The bytes of ``path`` up to its last newline (a SIGKILL may, in principle, cut a write)."""
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1]


def _ids(path):
    return [json.loads(line)["id"] for line in _whole_lines(path).splitlines()]


def _start_and_kill(cwd, results, min_lines=2, sig=signal.SIGKILL):
    """Start a run, send ``sig`` once ``min_lines`` predictions are on disk; return their ids."""
    preds = _run_dir(results) / "predictions.jsonl"
    with open(cwd / "killed.stderr", "wb") as err:
        proc = subprocess.Popen(_cmd(results), cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline:
                if preds.exists() and preds.read_bytes().count(b"\n") >= min_lines:
                    break
                time.sleep(0.02)
            finished = proc.poll() is not None
            os.kill(proc.pid, sig)
            if sig != signal.SIGKILL:
                proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    assert not finished, f"the run ended before it was killed: {(cwd / 'killed.stderr').read_text()}"
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:  # a graceful stop: the batch in flight is finished and saved, exit 130 with a resume hint
        stderr = (cwd / "killed.stderr").read_text()
        assert proc.returncode == 130, stderr
        assert "rerun the same command to resume" in stderr.splitlines()[-1]
    done = _ids(preds)
    assert min_lines <= len(done) < LIMIT, "the kill must land mid-generation"
    assert not (_run_dir(results) / "metrics.json").exists()
    assert not (_run_dir(results) / "scores.jsonl").exists()
    return done


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: (metrics, predictions by id, scores rows)."""
    root = tmp_path_factory.mktemp("uninterrupted")
    metrics = _complete(root, root / "results")
    run_dir = _run_dir(root / "results")
    preds = {r["id"]: r for r in _records(run_dir / "predictions.jsonl")}
    assert len(preds) == LIMIT and metrics["n"] == LIMIT and metrics["n_errors"] == 0
    return metrics, preds, _records(run_dir / "scores.jsonl")


def _assert_same_as_reference(results, reference, done_before):
    ref_metrics, ref_preds, ref_scores = reference
    run_dir = _run_dir(results)
    records = _records(run_dir / "predictions.jsonl")
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), f"duplicated ids: {ids}"
    assert set(ids) == set(ref_preds), "ids lost or foreign ids added"
    assert ids[: len(done_before)] == done_before  # finished work kept as it was, in place
    for record in records:
        ref = ref_preds[record["id"]]
        assert record["error"] is None
        assert record["prediction"] == ref["prediction"] == f"media/{record['id']}.wav"
        assert record["output"] == ref["output"] and record["prompt"] == ref["prompt"]
        assert (run_dir / record["prediction"]).stat().st_size > 44  # a wav with samples
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["n"] == ref_metrics["n"] == LIMIT
    assert metrics["n_errors"] == ref_metrics["n_errors"] == 0
    assert set(metrics["metrics"]) == set(ref_metrics["metrics"]) == {"wer_corpus", "wer_utt_mean"}
    for name, ref in ref_metrics["metrics"].items():
        assert metrics["metrics"][name]["value"] == ref["value"], name
        assert metrics["metrics"][name]["n"] == ref["n"] == LIMIT, name
    assert metrics["fingerprint"] == ref_metrics["fingerprint"]
    assert _records(run_dir / "scores.jsonl") == ref_scores  # same transcripts, same per-sample WER


def test_sigkill_then_rerun_loses_and_duplicates_nothing(tmp_path, reference):
    results = tmp_path / "results"
    done_before = _start_and_kill(tmp_path, results)
    media = _run_dir(results) / "media"
    mtimes = {i: (media / f"{i}.wav").stat().st_mtime_ns for i in done_before}

    _complete(tmp_path, results)

    _assert_same_as_reference(results, reference, done_before)
    # Resume skipped the finished samples: their wavs were not generated again.
    assert {i: (media / f"{i}.wav").stat().st_mtime_ns for i in done_before} == mtimes


def test_partial_last_line_after_crash_is_dropped_on_rerun(tmp_path, reference):
    results = tmp_path / "results"
    done_before = _start_and_kill(tmp_path, results)
    preds = _run_dir(results) / "predictions.jsonl"
    whole = _whole_lines(preds)
    # Simulate a crash in the middle of writing the next record: half a line, no newline.
    pending = next(i for i in reference[1] if i not in done_before)
    line = json.dumps(reference[1][pending], ensure_ascii=False).encode()
    with open(preds, "ab") as fh:
        fh.write(line[: len(line) // 2])

    _complete(tmp_path, results)

    data = preds.read_bytes()
    assert data.startswith(whole) and data.endswith(b"\n")
    assert len(data.splitlines()) == LIMIT  # the half line is gone, every line parses
    _assert_same_as_reference(results, reference, done_before)


def test_sigint_finishes_the_batch_then_stops_resumably(tmp_path, reference):
    results = tmp_path / "results"
    done_before = _start_and_kill(tmp_path, results, min_lines=1, sig=signal.SIGINT)
    assert len(done_before) % 2 == 0, "the batch in flight (batch_size=2) was completed before stopping"
    _complete(tmp_path, results)
    _assert_same_as_reference(results, reference, done_before)


def test_repeated_sigkills_at_different_points(tmp_path, reference):
    """Several kills in one run dir, each later than the last, then a clean finish."""
    results = tmp_path / "results"
    first = _start_and_kill(tmp_path, results, min_lines=2)
    second = _start_and_kill(tmp_path, results, min_lines=len(first) + 2)
    assert second[: len(first)] == first
    _complete(tmp_path, results)
    _assert_same_as_reference(results, reference, first)
