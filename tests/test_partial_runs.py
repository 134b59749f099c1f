"""Partial runs are marked everywhere, and run outputs are what a team needs: the subset modes of
``runner.limit``, the coverage fields of ``metrics.json``, its history, files under the umask,
the commit and data digest, and one-line exits for malformed inputs and a double Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from mio_eval.api import run
from mio_eval.errors import ConfigError
from mio_eval.samples import select
from mio_eval.types import Sample, Text


def _mmlu_like(subjects=10, per_subject=20):
    # Dataset order groups by subject, as MMLU's files do: "first 100" is five subjects only.
    return [Sample(id=f"s{k:02d}_{i:03d}", parts=(Text("q"),), metadata={"subject": f"subj{k:02d}"})
            for k in range(subjects) for i in range(per_subject)]


def test_limit_modes_first_random_and_stratified():
    samples = _mmlu_like()
    first, _ = select(samples, limit=50, mode="first")
    assert Counter(s.metadata["subject"] for s in first) == {f"subj{k:02d}": 20 for k in range(2)} | {"subj02": 10}
    strat, key = select(samples, limit=50, mode="stratified", seed=3)
    assert key == "subject" and Counter(s.metadata["subject"] for s in strat) == {f"subj{k:02d}": 5 for k in range(10)}
    assert [s.id for s in strat] == sorted(s.id for s in strat)  # dataset order kept
    assert select(samples, limit=50, mode="stratified", seed=3)[0] == strat  # seeded
    assert select(samples, limit=50, mode="stratified", seed=4)[0] != strat
    rand, _ = select(samples, limit=50, mode="random", seed=0)
    assert len(rand) == 50 and len({s.metadata["subject"] for s in rand}) > 3
    # Uneven strata: as equal as possible, never more than a stratum has.
    uneven = _mmlu_like(3, 2) + [Sample(id=f"big{i}", parts=(Text("q"),), metadata={"subject": "big"})
                                 for i in range(30)]
    picked, _ = select(uneven, limit=12, mode="stratified")
    assert Counter(s.metadata["subject"] for s in picked) == {"subj00": 2, "subj01": 2, "subj02": 2, "big": 6}
    with pytest.raises(ConfigError, match="stratify_by='nope'"):
        select(samples, limit=5, mode="stratified", stratify_by="nope")
    assert select(samples, limit=None)[0] == samples and select(samples, limit=500, mode="random")[0] == samples


def test_metrics_json_records_coverage_history_commit_and_data(tmp_path):
    spk = tmp_path / "vctk" / "txt" / "p001"
    spk.mkdir(parents=True)
    for i, text in enumerate(["the birch canoe", "glue the sheet", "rice is often served", "the box was thrown"]):
        (spk / f"p001_{i:03d}.txt").write_text(text + "\n")
    common = ["runner.progress=false", f"paths.results_dir={tmp_path / 'r'}", f"task.loader.root={tmp_path / 'vctk'}",
              "task.judge.whisper_path=null"]
    limited = run("tts_vctk", "dummy", [*common, "runner.limit=2", "runner.limit_mode=random", "runner.limit_seed=1"])
    assert (limited["complete"], limited["limit"], limited["limit_mode"], limited["n_available"]) == (
        False, 2, "random", 4)
    assert len(limited["sample_set"]) == 16 and len(limited["data_digest"]) == 16
    assert set(limited["times"]) == {"generate_s", "score_s"}
    commit = limited["mio_eval_commit"]
    assert commit is None or len(commit.split("+")[0]) == 40
    full = run("tts_vctk", "dummy", [*common, "runner.limit=null", "runner.limit_mode=random", "runner.limit_seed=1"])
    assert full["complete"] is True and full["limit"] is None and full["n"] == 4
    assert full["sample_set"] != limited["sample_set"] and full["data_digest"] != limited["data_digest"]
    history = sorted((tmp_path / "r" / "dummy" / "tts_vctk" / "history").glob("metrics-*.json"))
    assert len(history) == 1 and json.loads(history[0].read_text())["n"] == 2  # the earlier result kept


def test_output_files_respect_the_umask(tmp_path):
    previous = os.umask(0o002)  # a team umask: group-writable, readable by the group
    try:
        run("tts_demo", "dummy", ["runner.limit=2", "runner.progress=false", f"paths.results_dir={tmp_path}"])
    finally:
        os.umask(previous)
    run_dir = tmp_path / "dummy" / "tts_demo"
    for name in ("metrics.json", "scores.jsonl", "run.json", "predictions.jsonl"):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o664, name
    assert all(p.stat().st_mode & 0o777 == 0o664 for p in (run_dir / "media").rglob("*.wav"))


@pytest.mark.parametrize("content", ["[1, 2]", '{"task": "t", "model": "m", "metrics": {"x": 1}}', "{"])
def test_export_and_leaderboard_on_malformed_metrics_exit_2_in_one_line(tmp_path, content):
    run_dir = tmp_path / "root" / "m" / "t"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(content)
    for args in (["export", "--format", "vqav2", str(run_dir)], ["export", "--format", "leaderboard", str(tmp_path / "root")],
                 ["leaderboard", str(tmp_path / "root")]):
        proc = subprocess.run([sys.executable, "-m", "mio_eval.cli", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_ctrl_c_twice_stops_at_once_with_exit_130_and_no_traceback(tmp_path):
    results = tmp_path / "r"
    preds = results / "dummy" / "tts_demo" / "predictions.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "mio_eval.cli", "task=tts_demo", "model=dummy", "model.delay_s=2",
                             "runner.batch_size=1", "runner.limit=6", "runner.progress=false",
                             f"paths.results_dir={results}"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (preds.exists() and preds.read_bytes().count(b"\n") >= 1) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "rerun the same command to resume" in err.strip().splitlines()[-1]
    assert 1 <= preds.read_bytes().count(b"\n") < 6
