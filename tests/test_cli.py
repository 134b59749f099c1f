"""The ``mio-eval`` command, run as a user runs it: in a subprocess, from an empty directory.

Exit codes (mio_eval/cli.py): 0 ok; 1 the run failed; 2 unusable input, reported in one line on
stderr before anything is loaded or written.
"""

import json
import shutil
import subprocess
import sys
import sysconfig

import pytest

from mio_eval.config import CHECKED_GROUPS, group_choices


def mio(cwd, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "mio_eval.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def _script():
    """The installed ``mio-eval`` console script of this interpreter."""
    found = shutil.which("mio-eval", path=sysconfig.get_path("scripts"))
    if found is None:
        pytest.skip("the mio-eval console script is not installed next to this interpreter")
    return found


def _tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def _one_error_line(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("mio-eval: error: "), stderr
    return lines[0]


@pytest.mark.parametrize("group,args", [
    ("task", ["task=nope", "model=espeak"]),
    ("model", ["task=tts_demo", "model=gpt9"]),
    ("model", ["-m", "task=tts_demo", "model=dummy,gpt9"]),  # a sweep is checked before its first job
    ("task", ["-m", "task=tts_demo,nope", "model=dummy"]),
    ("experiment", ["task=tts_demo", "experiment=nope"]),
])
def test_unknown_choice_exits_2_names_choices_and_writes_nothing(tmp_path, group, args):
    proc = mio(tmp_path, *args, f"paths.results_dir={tmp_path / 'results'}")
    assert proc.returncode == 2, proc.stderr
    line = _one_error_line(proc.stderr)
    bad = next(a.split("=", 1)[1].split(",")[-1] for a in args if a.startswith(f"{group}="))
    assert f"unknown {group} {bad!r}" in line
    choices = group_choices(group)
    assert choices and f"valid choices: {', '.join(choices)}" in line
    assert proc.stdout == ""
    assert _tree(tmp_path) == []


@pytest.mark.parametrize("args,needle", [
    (["runner.limit=abc"], "runner.limit has the wrong type: 'abc'"),
    (["runner.bogus=1"], "Could not override 'runner.bogus'"),  # Hydra's own error, made one line
    (["model.bogus=1"], "Could not override 'model.bogus'"),
    (["+runner.bogus=1"], "unknown runner option(s): bogus"),
    (["runner.stage=bogus"], "runner.stage must be one of generate, score, all"),
    (["runner.limit=0"], "runner.limit must be >= 1"),
    (["runner.limit=[1"], "no viable alternative"),  # override grammar
    (["model=whisper"], "model.path"),  # a required ??? value left out
])
def test_bad_override_exits_2_with_one_line_and_writes_nothing(tmp_path, args, needle):
    proc = mio(tmp_path, "task=tts_demo", *args, "runner.progress=false", f"paths.results_dir={tmp_path / 'results'}")
    assert proc.returncode == 2, proc.stderr
    assert needle in _one_error_line(proc.stderr)
    assert "Traceback" not in proc.stderr and "HYDRA_FULL_ERROR" not in proc.stderr
    assert _tree(tmp_path) == []


@pytest.mark.parametrize("args", [["model=dummy"], ["runner.limit=1"], ["-m", "model=dummy,espeak"]])
def test_no_task_exits_2(tmp_path, args):
    proc = mio(tmp_path, *args, f"paths.results_dir={tmp_path / 'results'}")
    assert proc.returncode == 2, proc.stderr
    line = _one_error_line(proc.stderr)
    assert "no task chosen" in line and ", ".join(group_choices("task")) in line
    assert _tree(tmp_path) == []


def test_help_lists_groups_and_choices(tmp_path):
    for proc in (mio(tmp_path, "--help"), subprocess.run([_script(), "--help"], cwd=tmp_path, capture_output=True,
                                                         text=True, timeout=120)):
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
        lines = proc.stdout.splitlines()
        for group in CHECKED_GROUPS:
            listed = [line.split(None, 1) for line in lines if line.strip().startswith(f"{group} ")]
            assert listed and listed[0][1].strip() == ", ".join(group_choices(group)), group
        assert "exit codes" in proc.stdout
    # No arguments at all: the same usage, exit 0 (asking for nothing is not an error).
    bare = mio(tmp_path)
    assert bare.returncode == 0 and bare.stdout == mio(tmp_path, "--help").stdout
    # With a task: Hydra's help, showing the composed config of that task.
    task_help = mio(tmp_path, "task=tts_demo", "--help")
    assert task_help.returncode == 0, task_help.stderr
    assert "name: tts_demo" in task_help.stdout and "Config of this run" in task_help.stdout
    assert _tree(tmp_path) == []


def test_import_and_help_import_no_torch(tmp_path):
    code = (
        "import json, sys\n"
        "seen = {}\n"
        "import mio_eval\n"
        "seen['import mio_eval'] = 'torch' in sys.modules\n"
        "from mio_eval.cli import main\n"
        "for argv in (['--help'], ['task=tts_demo', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, (argv, exc.code)\n"
        "    seen[' '.join(argv)] = 'torch' in sys.modules\n"
        "print(json.dumps(seen))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"import mio_eval": False, "--help": False, "task=tts_demo --help": False}
    assert _tree(tmp_path) == []


def test_sweep_then_report(tmp_path):
    results = tmp_path / "results"
    proc = mio(tmp_path, "-m", "task=tts_demo", "model=dummy,espeak", "runner.limit=1", "runner.progress=false",
               f"paths.results_dir={results}")
    assert proc.returncode == 0, proc.stderr
    assert _tree(tmp_path)[0] == "results" and all(p.startswith("results") for p in _tree(tmp_path))
    for model in ("dummy", "espeak"):
        metrics = json.loads((results / model / "tts_demo" / "metrics.json").read_text())
        assert (metrics["task"], metrics["model"], metrics["n"], metrics["n_errors"]) == ("tts_demo", model, 1, 0)
        assert set(metrics["metrics"]) == {"wer_corpus", "wer_utt_mean"}
        assert [j["model"] for j in metrics["judges"]] == ["pocketsphinx"]
        assert len((results / model / "tts_demo" / "predictions.jsonl").read_text().splitlines()) == 1
        # Each job printed its table and where its metrics went.
        assert f"results: {results}/{model}/tts_demo/metrics.json" in proc.stdout

    report = mio(tmp_path, "report", str(results))
    assert report.returncode == 0, report.stderr
    readme = (results / "README.md").read_text()
    assert readme.startswith("# Results\n")
    assert report.stdout in readme
    assert "| model | tts_demo·wer_corpus ↓ | tts_demo·wer_utt_mean ↓ |" in readme
    rows = [line for line in readme.splitlines() if line.startswith(("| dummy |", "| espeak |"))]
    assert len(rows) == 4 + 4  # one summary row and one run row per model, then the long table's metric rows
    assert "| dummy | tts_demo | 1 (limited: 1 of 50 (first)) | 0 | pocketsphinx" in readme

    missing = mio(tmp_path, "report", str(tmp_path / "missing"))
    assert missing.returncode == 2 and "no results directory" in missing.stderr
    assert not (tmp_path / "missing").exists()


def test_error_budget_exits_1_with_resume_hint(tmp_path):
    results = tmp_path / "r"
    proc = mio(tmp_path, "task=tts_demo", "model=dummy", "model.fail_ids=[harvard01_001,harvard01_002]",
               "runner.limit=4", "runner.max_error_rate=0.1", "runner.progress=false",
               f"paths.results_dir={results}")
    assert proc.returncode == 1, proc.stderr
    line = _one_error_line(proc.stderr)
    assert "2 of 4 samples failed, over runner.max_error_rate=0.1" in line
    assert "dummy: configured failure" in line
    assert "rerun the same command to resume" in line
    run_dir = results / "dummy" / "tts_demo"
    assert str(run_dir / "predictions.jsonl") in line
    # The batch that broke the budget is saved (resumable); nothing was scored.
    records = [json.loads(x) for x in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records if r["error"]) == ["harvard01_001", "harvard01_002"]
    assert not (run_dir / "metrics.json").exists()


# --- the command users are told to type, suites -----------------------------------------------

def test_task_alone_runs_its_default_model_and_says_so(tmp_path):
    proc = mio(tmp_path, "task=tts", "runner.limit=1", "runner.progress=false", f"paths.results_dir={tmp_path / 'r'}")
    assert proc.returncode == 0, proc.stderr
    assert "running tts's default model 'flite'" in proc.stderr
    metrics = json.loads((tmp_path / "r" / "flite" / "tts" / "metrics.json").read_text())
    assert metrics["model"] == "flite" and metrics["complete"] is False and metrics["limit"] == 1


def test_task_without_a_default_model_says_dummy_ran(tmp_path):
    proc = mio(tmp_path, "task=tts_vctk", "task.loader.root=/nonexistent", f"paths.results_dir={tmp_path / 'r'}")
    assert proc.returncode == 2  # data missing: the config error stays the only line
    assert "dummy" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_task_list_runs_a_suite_in_one_process_with_the_model_loaded_once(tmp_path):
    from mio_eval.api import run_suite
    from mio_eval.models.dummy import DummyAdapter

    loads = []
    original = DummyAdapter.load
    DummyAdapter.load = lambda self: loads.append(self) or original(self)
    try:
        results = run_suite(["tts", "tts_demo", "tts_vctk"],
                            ["model=dummy", "runner.limit=1", "runner.progress=false", "task.judge.whisper_path=null",
                             f"paths.results_dir={tmp_path / 'r'}", f"paths.data_dir={tmp_path / 'nodata'}"])
    finally:
        DummyAdapter.load = original
    assert [(name, metrics is not None, error is not None) for name, metrics, error in results] == [
        ("tts", True, False), ("tts_demo", True, False), ("tts_vctk", False, True)]
    assert len(loads) == 1  # one model object, loaded once for both tasks that ran
    assert "paths.data_dir" in str(results[2][2]) or "not found" in str(results[2][2])
    proc = mio(tmp_path, "task=tts,tts_demo", "model=dummy", "runner.limit=1", "runner.progress=false",
               f"paths.results_dir={tmp_path / 'r2'}")
    assert proc.returncode == 0, proc.stderr
    assert "tasks: 2 of 2 tasks scored" in proc.stdout
    assert (tmp_path / "r2" / "dummy" / "tts" / "metrics.json").is_file()
    assert (tmp_path / "r2" / "dummy" / "tts_demo" / "metrics.json").is_file()


def test_suite_failures_keep_going_and_set_the_exit_code(tmp_path):
    proc = mio(tmp_path, "suite=mio_paper_table5", "model=dummy", "runner.limit=1", "runner.progress=false",
               f"paths.data_dir={tmp_path / 'nodata'}", f"paths.results_dir={tmp_path / 'r'}")
    assert proc.returncode == 2
    assert proc.stdout.count("FAILED") == 2 and "suite mio_paper_table5: 0 of 2 tasks scored, 2 failed" in proc.stdout


@pytest.mark.parametrize("arg,needle", [
    ("task=[vqav2_val,okvqa_val]", "a list would merge the task configs"),
    ("task=tts_dem", "did you mean 'tts_demo'?"),
    ("suite=mio_paper_tabel3", "did you mean 'mio_paper_table3'?"),
])
def test_merging_lists_are_refused_and_typos_get_a_suggestion(tmp_path, arg, needle):
    proc = mio(tmp_path, arg, "model=dummy")
    assert proc.returncode == 2
    assert needle in _one_error_line(proc.stderr)
    assert _tree(tmp_path) == []


def test_help_hides_internal_groups(tmp_path):
    proc = mio(tmp_path, "--help")
    assert proc.returncode == 0 and "suite" in proc.stdout
    assert "_common:" not in proc.stdout and "_common," not in proc.stdout
    proc = mio(tmp_path, "task=tts", "--help")  # Hydra's own help of a composed config
    assert proc.returncode == 0 and "_common" not in proc.stdout and "default_model: flite" in proc.stdout
