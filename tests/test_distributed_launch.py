"""Data parallel end to end on CPU (gloo-free: the ranks meet in torchrun's TCPStore): 2 ranks
give what one process gives (dummy and the tiny MIO), a SIGKILLed rank ends the job at once and
its run resumes with 1 or 2 ranks, a raising rank and a silent rank (no agent) end the job with
the failing rank named in one line, and a submitit_local sweep lands in one results root."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from helpers import librispeech_noise
from mio_eval.api import run

pytestmark = pytest.mark.slow
TASK = "asr_librispeech_test_clean"
N = 10
TIMEOUT = 240
# Slow enough (per batch) that a kill lands mid-run; part of the config, hence of every dummy run.
DUMMY = ["model=dummy", "model.delay_s=0.3"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A LibriSpeech-layout split of N utterances of different lengths (noise: the dummy echoes)."""
    root = tmp_path_factory.mktemp("data")
    texts = [" ".join(["WORD"] * (1 + (7 * i) % 5)) for i in range(N)]
    librispeech_noise(root, [1600 * (1 + i % 3) for i in range(N)], texts)
    return root


def _args(data, results, *extra):
    return [f"task={TASK}", f"paths.data_dir={data}", f"paths.results_dir={results}", "runner.progress=false",
            "runner.batch_size=2", *extra]


def _env(tag=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    if tag:
        env["MIO_EVAL_TEST_TAG"] = tag
    return env


def _torchrun(cwd, args, nproc=2):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m", "mio_eval", *args]
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def _by_id(comparable):
    """A resumed run holds the same records; its lines are in another order (leftovers first)."""
    predictions, scores, metrics = comparable
    return sorted(predictions, key=lambda r: r["id"]), scores, metrics


def _comparable(run_dir):
    """predictions (minus time_s), scores and metrics (minus times) of a run dir."""
    predictions = [{k: v for k, v in r.items() if k != "time_s"} for r in _lines(run_dir / "predictions.jsonl")]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("times", "wall_time_s", "started_at", "finished_at"):
        metrics.pop(key)
    metrics["config"]["runner"].pop("nproc", None)
    metrics["config"]["paths"].pop("results_dir")
    metrics["runner"].pop("nproc")
    return predictions, _lines(run_dir / "scores.jsonl"), metrics


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    """The one-process run (in this process), dummy adapter."""
    results = tmp_path_factory.mktemp("ref")
    run(TASK, "dummy", _args(data, results, *DUMMY[1:])[1:])
    return _comparable(results / "dummy" / TASK)


def test_two_ranks_equal_one_process_dummy(data, reference, tmp_path):
    proc = _torchrun(tmp_path, _args(data, tmp_path / "r", *DUMMY))
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "r" / "dummy" / TASK
    assert _comparable(run_dir) == reference
    assert not (run_dir / "shards").exists()
    assert proc.stdout.count("results:") == 1  # rank 0 reports, once


def test_accelerate_launch_two_processes_equal_one_process_dummy(data, reference, tmp_path):
    pytest.importorskip("accelerate", reason="accelerate is in the dev extra")
    # accelerate's multi-process launcher (torch.distributed.run underneath) on CPU: the ranks meet
    # through the launcher's rendezvous and TCPStore; no collective needs a GPU.
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
           "-m", "mio_eval", *_args(data, tmp_path / "r", *DUMMY)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "r" / "dummy" / TASK
    assert _comparable(run_dir) == reference
    assert proc.stdout.count("results:") == 1


def _pids_of_rank(tag, rank):
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if f"MIO_EVAL_TEST_TAG={tag}".encode() in env and f"RANK={rank}".encode() in env:
            pids.append(int(pid))
    return pids


def _shard_lines(run_dir, rank):
    shards = run_dir / "shards"
    return sum(p.read_bytes().count(b"\n") for p in shards.glob(f"rank-{rank}-*.jsonl")) if shards.is_dir() else 0


def test_sigkilled_rank_ends_the_job_and_resumes_with_one_or_two_ranks(data, reference, tmp_path):
    tag = uuid.uuid4().hex
    results = tmp_path / "r"
    run_dir = results / "dummy" / TASK
    cmd = [sys.executable, "-m", "mio_eval", *_args(data, results, *DUMMY, "runner.nproc=2")]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(tag), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline and _shard_lines(run_dir, 1) < 2:
            time.sleep(0.05)
        (victim,) = _pids_of_rank(tag, 1)
        os.kill(victim, signal.SIGKILL)
        _out, err = proc.communicate(timeout=60)  # a hang (the job not ending) fails the test here
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1
    lines = [x for x in err.splitlines() if x.startswith("mio-eval: error:")]
    # The launcher names the root cause last; rank 0, stopped by the agent, only says it stopped.
    assert lines[-1] == "mio-eval: error: rank 1 of 2 failed (SIGKILL): Signal 9 (SIGKILL) received by PID %d" % victim
    assert all("rank 0 of 2 stopped by SIGTERM" in x for x in lines[:-1]), lines
    assert not (run_dir / "metrics.json").exists()
    kept = _shard_lines(run_dir, 0) + _shard_lines(run_dir, 1)
    assert 2 <= kept < N  # finished batches of both ranks are on disk
    saved = {r["id"]: r for p in (run_dir / "shards").glob("*.jsonl") for r in _lines(p)}
    # Resume the same run dir with one process and, from a copy, with two ranks.
    shutil.copytree(results, tmp_path / "copy")
    run(TASK, "dummy", _args(data, results, *DUMMY[1:])[1:])
    assert _by_id(_comparable(run_dir)) == _by_id(reference) and not (run_dir / "shards").exists()
    merged = {r["id"]: r for r in _lines(run_dir / "predictions.jsonl")}
    assert len(merged) == N and all(merged[i] == r for i, r in saved.items())  # kept as saved, not redone
    proc = _torchrun(tmp_path, _args(data, tmp_path / "copy", *DUMMY))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _by_id(_comparable(tmp_path / "copy" / "dummy" / TASK)) == _by_id(reference)


def test_raising_rank_ends_the_job_with_its_error_in_one_line(data, tmp_path):
    # max_error_rate=0 and a failing sample: the rank that holds it raises ErrorBudgetExceeded.
    proc = _torchrun(tmp_path, _args(data, tmp_path / "r", *DUMMY,
                                     "model.fail_ids=[1089-134686-0003]", "runner.max_error_rate=0"))
    assert proc.returncode == 1
    lines = [x for x in proc.stderr.splitlines() if x.startswith("mio-eval: error:")]
    assert any("rank" in x and "of 2 failed: 1 of 10 samples failed, over runner.max_error_rate=0" in x for x in lines), lines
    assert all("failed" in x for x in lines)
    run_dir = tmp_path / "r" / "dummy" / TASK
    assert not (run_dir / "metrics.json").exists()
    records = [r for p in (run_dir / "shards").glob("*.jsonl") for r in _lines(p)]
    assert "1089-134686-0003" in {r["id"] for r in records}  # the failing batch is kept


def test_silent_rank_without_an_agent_is_noticed_by_the_watchdog(data, tmp_path):
    """Ranks started by hand (as srun would: no torchrun agent): rank 0 hosts the store; rank 1
    is SIGKILLed; rank 0's watchdog ends it within runner.rank_timeout_s, naming rank 1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    results = tmp_path / "r"
    procs, logs = [], []
    for rank in (0, 1):
        env = {**_env(), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank), "WORLD_SIZE": "2",
               "LOCAL_RANK": str(rank)}
        cmd = [sys.executable, "-m", "mio_eval", *_args(data, results, *DUMMY), "runner.rank_timeout_s=4"]
        logs.append(open(tmp_path / f"rank{rank}.stderr", "w+"))
        procs.append(subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=logs[-1]))
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and _shard_lines(results / "dummy" / TASK, 1) < 2 and procs[0].poll() is None:
            time.sleep(0.05)
        procs[1].kill()
        procs[0].wait(timeout=60)  # the watchdog must end rank 0; a hang fails the test here
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for log in logs:
            log.close()
    err = (tmp_path / "rank0.stderr").read_text()
    assert procs[0].returncode == 1, err
    (line,) = [x for x in err.splitlines() if x.startswith("mio-eval: error:")]
    assert "rank 1 of 2 stopped responding for 4 s" in line


def test_two_ranks_equal_one_process_mio_tiny(data, tmp_path):
    from mio_eval.models.mio_tiny import build_tiny_mio

    ckpt = build_tiny_mio(tmp_path / "tiny")
    extra = ["model=mio_tiny", f"model.path={ckpt}", "task.generation.max_new_tokens=8", "task.generation.num_beams=1",
             "runner.limit=4"]
    proc = _torchrun(tmp_path, _args(data, tmp_path / "two", *extra))
    assert proc.returncode == 0, proc.stderr[-3000:]
    run(TASK, "mio_tiny", _args(data, tmp_path / "one", *extra)[1:])
    two, one = (_comparable(tmp_path / d / "mio_tiny" / TASK) for d in ("two", "one"))
    assert two == one
    assert one[2]["n"] == 4 and one[2]["n_errors"] == 0


def test_submitit_local_sweep_lands_in_one_results_root(data, tmp_path):
    results = tmp_path / "r"
    cmd = [sys.executable, "-m", "mio_eval", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5",
           "model=dummy", "model.name=dummy_a,dummy_b", *_args(data, results, "runner.limit=4")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("dummy_a", "dummy_b"):
        assert json.loads((results / name / TASK / "metrics.json").read_text())["n"] == 4
    report = subprocess.run([sys.executable, "-m", "mio_eval", "report", str(results)], cwd=tmp_path, env=_env(),
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert report.returncode == 0 and "| dummy_a |" in report.stdout and "| dummy_b |" in report.stdout


def test_slurm_launcher_config_takes_partition_gpus_nodes_and_time(tmp_path):
    cmd = [sys.executable, "-m", "mio_eval", "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
           "hydra.launcher.nodes=2", "hydra.launcher.timeout_min=90", f"task={TASK}", "model=dummy", "runner.nproc=8",
           "--cfg", "hydra", "--package", "hydra.launcher"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import yaml

    launcher = yaml.safe_load(proc.stdout)
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert (launcher["partition"], launcher["nodes"], launcher["gpus_per_node"], launcher["tasks_per_node"],
            launcher["timeout_min"]) == ("gpu", 2, 8, 1, 90)
