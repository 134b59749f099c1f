"""The fault and abuse matrix of the trust boundary (README: "Trust and failure model"):
configs cannot run arbitrary code, failed samples are retried and the error budget holds, data is
fingerprinted by content, nothing is read or written outside its root, every bad input is one
line and exit 2 (or 130/143 for signals), and submissions cannot be silently wrong."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mio_eval.api import run
from mio_eval.errors import ConfigError, ErrorBudgetExceeded, RunFailed, StoreError
from mio_eval.models.dummy import DummyAdapter
from mio_eval.runner import RunnerSettings, evaluate
from mio_eval.store import PredictionStore
from mio_eval.types import Image, Sample, Text

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
from test_runner import EchoTask  # noqa: E402

TEXTS = [f"sentence number {i}" for i in range(15)]


def mio(cwd, *args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "mio_eval.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def _one_line(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def _eval(run_dir, task=None, adapter=None, **settings):
    settings.setdefault("progress", False)
    return evaluate(task or EchoTask(TEXTS), adapter or DummyAdapter(), run_dir=run_dir, fingerprint="fp",
                    settings=RunnerSettings(**settings), run_info={})


def _lines(path):
    with open(path, encoding="utf-8", newline="\n") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# --- 1. configs are code: only allowed targets are instantiated --------------------------------

@pytest.mark.parametrize("override", [
    "+task.x={{_target_: builtins.open, file: {victim}, mode: w}}",
    "+model.x={{_target_: numpy.load, file: {victim}, allow_pickle: true}}",
    "+task.x={{_target_: mio_eval.atomic.atomic_write_text, target: {victim}, text: pwned}}",
    "model._target_=subprocess.getoutput",
    "+task.loader.x={{_target_: mio_eval.models.oracle.answer_key, samples: [], path: {victim}}}",
])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_targets_outside_the_allow_list_are_refused_before_anything_runs(tmp_path, override, command):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    args = ["task=tts_demo", "model=dummy", override.format(victim=victim), f"paths.results_dir={tmp_path / 'r'}"]
    proc = mio(tmp_path, *(["validate"] if command == "validate" else []), *args)
    assert proc.returncode == 2, proc.stderr
    assert "refused" in proc.stderr and "Traceback" not in proc.stderr
    assert victim.read_text() == "precious"
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("override", ["model.trust_remote_code=true", "+model.trust_remote_code=True",
                                      "task.prompt=${oc.env:HOME}", "+hydra.callbacks.x._target_=os.system"])
def test_submission_overrides_cannot_open_the_boundary(tmp_path, override):
    proc = mio(tmp_path, "task=tts_demo", "model=dummy", override, f"paths.results_dir={tmp_path / 'r'}")
    assert proc.returncode == 2
    assert _one_line(proc.stderr).startswith("mio-eval: error: ")
    assert not (tmp_path / "r").exists()


def test_operator_registered_prefix_is_allowed(tmp_path, monkeypatch):
    from mio_eval.trust import check_targets

    with pytest.raises(ConfigError, match="refused"):
        check_targets({"model": {"_target_": "my_lab.adapters.Model"}})
    monkeypatch.setenv("MIO_EVAL_ALLOWED_TARGETS", "my_lab.adapters")
    check_targets({"model": {"_target_": "my_lab.adapters.Model"}})
    with pytest.raises(ConfigError, match="refused"):  # a prefix is a module path, not a string prefix
        check_targets({"model": {"_target_": "my_lab.adapters_evil.Model"}})


# --- 2. errors are retried and the budget holds --------------------------------------------------

def test_failed_samples_are_retried_on_resume_and_every_attempt_is_kept(tmp_path):
    with pytest.raises(ErrorBudgetExceeded):
        _eval(tmp_path, adapter=DummyAdapter(fail_ids=["s000", "s001", "s002"]), batch_size=3)
    failed = {r["id"] for r in _lines(tmp_path / "predictions.jsonl") if r["error"]}
    assert "s001" in failed and len(failed) >= 2
    metrics = _eval(tmp_path, adapter=DummyAdapter())  # the cause is fixed: the rerun heals the run
    assert metrics["n_errors"] == 0 and metrics["retried"] == len(failed)
    lines = _lines(tmp_path / "predictions.jsonl")
    attempts = [r for r in lines if r["id"] in ("s000", "s001", "s002")]
    assert [(r["id"], bool(r["error"]), r.get("attempt", 1)) for r in attempts].count(("s001", True, 1)) == 1
    assert ("s001", False, 2) in [(r["id"], bool(r["error"]), r.get("attempt", 1)) for r in attempts]
    with PredictionStore(tmp_path).open(fingerprint="fp", run_info={}) as store:
        assert store.attempts("s001") == 2 and not store.get("s001")["error"]


def test_reruns_cannot_creep_past_the_budget(tmp_path):
    # 2 of 15 samples (13 %) always fail: every rerun must fail (exit 1), never pass at 10 %.
    adapter = DummyAdapter(fail_ids=["s003", "s007"])
    for _ in range(3):
        with pytest.raises((ErrorBudgetExceeded, RunFailed)):
            _eval(tmp_path, adapter=adapter, max_error_rate=0.1)
    with pytest.raises(RunFailed, match="2 of 15 samples failed"):
        _eval(tmp_path, adapter=adapter, max_error_rate=0.1, retry_errors=False)
    assert json.loads((tmp_path / "metrics.json").read_text())["failed"].startswith("2 of 15")


class _JudgeFailsTask(EchoTask):
    """Generation succeeds; the scorer fails on some samples (a judge that cannot read them)."""

    def score(self, generated, *, work_dir):
        from dataclasses import replace

        report = super().score(generated, work_dir=work_dir)
        rows = tuple({**r, "error": r["error"] or ("judge: unreadable" if r["id"] in ("s001", "s002") else None)}
                     for r in report.per_sample)
        return replace(report, per_sample=rows)


def test_scoring_errors_count_toward_the_budget(tmp_path):
    with pytest.raises(RunFailed, match=r"2 of 15 samples failed \(generation 0, scoring 2\)"):
        _eval(tmp_path, task=_JudgeFailsTask(TEXTS), max_error_rate=0.1)


# --- 3. fingerprint by content -------------------------------------------------------------------

def _vctk(root: Path, texts):
    spk = root / "txt" / "p001"
    spk.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(texts):
        (spk / f"p001_{i:03d}.txt").write_text(text + "\n")
    return root


def test_moved_data_resumes_and_rescores_edited_data_is_refused(tmp_path):
    data = _vctk(tmp_path / "a" / "vctk", ["the birch canoe", "glue the sheet", "these days a chicken leg"])
    common = ["runner.progress=false", f"paths.results_dir={tmp_path / 'results'}", "task.judge.whisper_path=null"]
    first = run("tts_vctk", "dummy", [*common, f"task.loader.root={data}", "runner.stage=generate"])
    assert first["stage"] == "generate"
    moved = tmp_path / "b" / "elsewhere"
    shutil.move(str(tmp_path / "a" / "vctk"), moved)
    metrics = run("tts_vctk", "dummy", [*common, f"task.loader.root={moved}", "runner.stage=score"])
    assert metrics["n"] == 3  # moved data: same content, same fingerprint, scored
    (moved / "txt" / "p001" / "p001_001.txt").write_text("an edited question\n")
    with pytest.raises(ConfigError, match="1 of 3 samples changed since they were generated"):
        run("tts_vctk", "dummy", [*common, f"task.loader.root={moved}"])
    metrics = run("tts_vctk", "dummy", [*common, f"task.loader.root={moved}", "runner.regenerate_changed=true"])
    lines = _lines(tmp_path / "results" / "dummy" / "tts_vctk" / "predictions.jsonl")
    assert [r["id"] for r in lines].count("p001_001") == 2 and lines[-1]["supersedes"] == "input changed"
    assert metrics["n"] == 3 and metrics["n_errors"] == 0


# --- 4. nothing outside its root -------------------------------------------------------------------

def test_oracle_key_cannot_copy_files_from_outside_its_roots(tmp_path):
    from mio_eval.models.oracle import OracleAdapter
    from mio_eval.types import Request

    key = tmp_path / "key" / "key.json"
    key.parent.mkdir()
    (key.parent / "ok.wav").write_bytes(b"RIFF")
    key.write_text(json.dumps({"a": {"audio": "/etc/passwd"}, "b": {"audio": "../../../../etc/passwd"},
                               "c": {"audio": str(key.parent / "ok.wav")}}))
    (key.parent / "link.wav").symlink_to("/etc/passwd")
    key.write_text(json.dumps({**json.loads(key.read_text()), "d": {"audio": "link.wav"}}))
    media = tmp_path / "media"
    outs = OracleAdapter(answers_path=str(key)).generate(
        [Request(sample_id=i, parts=(Text("x"),)) for i in "abcd"], media_dir=media)
    assert [o.ok for o in outs] == [False, False, True, False]
    assert all("outside" in o.error for o in (outs[0], outs[1], outs[3]))
    assert not any("passwd" in p.name for p in media.rglob("*"))


class _ImageTask(EchoTask):
    def __init__(self, paths):
        super().__init__([f"q{i}" for i in range(len(paths))])
        self._paths = paths

    def samples(self):
        return [Sample(id=f"s{i:03d}", parts=(Image(p), Text("what?")), targets=(f"q{i}",))
                for i, p in enumerate(self._paths)]


def test_dataset_media_outside_the_data_root_are_refused_per_sample(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "ok.png").write_bytes(b"png")
    paths = [str(root / "ok.png"), "/etc/passwd", str(root / ".." / ".." / "etc" / "hosts")]
    adapter = DummyAdapter(inputs=("text", "image"))
    metrics = _eval(tmp_path / "run", task=_ImageTask(paths), adapter=adapter, max_error_rate=1.0,
                    ) if False else evaluate(
        _ImageTask(paths), adapter, run_dir=tmp_path / "run", fingerprint="fp", run_info={},
        settings=RunnerSettings(progress=False, max_error_rate=1.0), data_roots=[str(root)])
    errors = {r["id"]: r["error"] for r in _lines(tmp_path / "run" / "scores.jsonl")}
    assert errors["s000"] is None
    assert "outside the data root" in errors["s001"] and "outside the data root" in errors["s002"]
    assert metrics["n_errors"] == 2
    allowed = evaluate(_ImageTask(paths), adapter, run_dir=tmp_path / "run2", fingerprint="fp", run_info={},
                       settings=RunnerSettings(progress=False, max_error_rate=1.0), data_roots=[str(root)],
                       allow_outside_data=True)
    assert allowed["n_errors"] == 0


def test_symlinked_store_files_are_refused_and_their_targets_untouched(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "predictions.jsonl").symlink_to(victim)
    with pytest.raises(StoreError, match="symbolic link"):
        _eval(run_dir)
    assert victim.read_text() == "precious\n"
    (run_dir / "predictions.jsonl").unlink()
    (run_dir / "media").symlink_to(tmp_path)
    with pytest.raises(StoreError, match="outside the run directory"):
        _eval(run_dir)


# --- 5./6. one line, exit 2 (130, 143), never a traceback -----------------------------------------

def test_prediction_line_without_id_is_one_line_and_repair_keeps_the_valid_lines(tmp_path):
    results = tmp_path / "results"
    args = ["task=tts_demo", "model=dummy", "runner.limit=4", "runner.progress=false", f"paths.results_dir={results}"]
    assert mio(tmp_path, *args).returncode == 0
    path = results / "dummy" / "tts_demo" / "predictions.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(lines[0] + '{"no_id": 1}\n' + "".join(lines[1:]), encoding="utf-8")
    proc = mio(tmp_path, *args)
    assert proc.returncode == 2
    line = _one_line(proc.stderr)
    assert "predictions.jsonl:2 is corrupt" in line and "mio-eval repair" in line
    fixed = mio(tmp_path, "repair", str(path.parent))
    assert fixed.returncode == 0 and "kept 4 records; dropped 1 corrupt" in fixed.stdout
    assert mio(tmp_path, *args).returncode == 0
    assert (path.parent / "predictions.jsonl.bak-1").read_text(encoding="utf-8").count("\n") == 5


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_scoring_exits_with_a_resume_hint(tmp_path, sig, code):
    marker = tmp_path / "scoring.marker"
    env = {**os.environ, "MIO_EVAL_TEST_MARKER": str(marker),
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "mio_eval.cli", "task=tts_demo", "model=dummy", "runner.limit=2",
                             "runner.progress=false", "task._target_=trust_fixtures.SlowScoringTTS",
                             f"paths.results_dir={tmp_path / 'results'}"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), proc.communicate()[1]
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    line = _one_line(err)
    assert f"stopped by {signal.Signals(sig).name} while scoring" in line and "rerun" in line
    assert len(_lines(tmp_path / "results" / "dummy" / "tts_demo" / "predictions.jsonl")) == 2


def test_export_and_gate_read_jsonl_with_line_separators_in_outputs(tmp_path):
    from mio_eval.export import leaderboard_json
    from mio_eval.gate import main as gate_main

    metrics = run("tts_demo", "dummy", ["runner.limit=3", "runner.progress=false",
                                        f"paths.results_dir={tmp_path / 'r'}"])
    run_dir = tmp_path / "r" / "dummy" / "tts_demo"
    rows = _lines(run_dir / "scores.jsonl")
    rows[0]["hypothesis"] = "odd\u2028line\u2029separators\x85here"
    (run_dir / "scores.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                          encoding="utf-8")
    assert gate_main(["--baseline", str(run_dir), "--candidate", str(run_dir)]) == 0
    assert leaderboard_json([tmp_path / "r"])["entries"][0]["n"] == metrics["n"]


# --- 7. submissions cannot be silently wrong -----------------------------------------------------

def test_a_smaller_limit_in_a_scored_run_dir_is_refused(tmp_path):
    common = ["runner.progress=false", f"paths.results_dir={tmp_path / 'r'}"]
    full = run("tts_demo", "dummy", [*common, "runner.limit=6"])
    with pytest.raises(ConfigError, match="leaves out 3 of them"):
        run("tts_demo", "dummy", [*common, "runner.limit=3"])
    assert json.loads((tmp_path / "r" / "dummy" / "tts_demo" / "metrics.json").read_text())["n"] == full["n"] == 6
    assert run("tts_demo", "dummy", [*common, "runner.limit=8"])["n"] == 8  # a superset resumes


def test_leaderboard_marks_limited_runs_handles_nan_and_holds_no_machine_paths(tmp_path):
    from mio_eval.export import leaderboard_json, main as export_main

    root = tmp_path / "r"
    run("tts_demo", "dummy", ["runner.limit=3", "runner.progress=false", f"paths.results_dir={root}"])
    metrics_path = root / "dummy" / "tts_demo" / "metrics.json"
    data = json.loads(metrics_path.read_text())
    data["metrics"]["wer_utt_mean"]["value"] = float("nan")
    metrics_path.write_text(json.dumps(data))
    board = leaderboard_json([root])
    (entry,) = board["entries"]
    assert entry["complete"] is False and entry["limit"] == 3
    assert entry["metrics"]["wer_utt_mean"]["value"] is None and any("nan" in f for f in entry["flags"])
    out = tmp_path / "board.json"
    assert export_main(["--format", "leaderboard", str(root), "--out", str(out)]) == 0
    text = out.read_text()
    assert "NaN" not in text and str(tmp_path) not in text and os.environ.get("HOME", "/root") + "/" not in text
