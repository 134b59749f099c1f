import json
import subprocess
import sys

import pytest


def mio(cwd, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "mio_eval.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def _tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize("args,needle", [
    (["task=nope", "model=espeak"], "unknown task 'nope'; valid choices: tts_demo"),
    (["task=tts_demo", "model=gpt9"], "unknown model 'gpt9'; valid choices: dummy, espeak"),
    (["-m", "task=tts_demo", "model=dummy,gpt9"], "unknown model 'gpt9'"),
    (["model=espeak"], "no task chosen"),
    (["task=tts_demo", "runner.limit=abc"], "runner.limit has the wrong type"),
    (["task=tts_demo", "runner.bogus=1"], "bogus"),
    (["task=tts_demo", "+runner.bogus=1"], "unknown runner option(s): bogus"),
])
def test_unusable_input_exits_2_and_writes_nothing(tmp_path, args, needle):
    proc = mio(tmp_path, *args, f"paths.results_dir={tmp_path / 'results'}")
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert _tree(tmp_path) == []


def test_help_lists_groups_and_imports_no_torch(tmp_path):
    proc = mio(tmp_path, "--help")
    assert proc.returncode == 0 and "tts_demo" in proc.stdout and "espeak" in proc.stdout
    code = ("import sys\nfrom mio_eval.cli import main\nimport mio_eval\n"
            "for argv in (['--help'], ['task=tts_demo', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit as e:\n        assert e.code == 0, e.code\n"
            "print('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("TORCH False")
    assert _tree(tmp_path) == []


def test_sweep_and_report(tmp_path):
    results = tmp_path / "results"
    proc = mio(tmp_path, "-m", "task=tts_demo", "model=dummy,espeak", "runner.limit=1", "runner.progress=false",
               f"paths.results_dir={results}")
    assert proc.returncode == 0, proc.stderr
    for model in ("dummy", "espeak"):
        metrics = json.loads((results / model / "tts_demo" / "metrics.json").read_text())
        assert metrics["n"] == 1 and metrics["model"] == model
    report = mio(tmp_path, "report", str(results))
    assert report.returncode == 0
    table = (results / "README.md").read_text()
    assert "| dummy |" in table and "| espeak |" in table and "tts_demo·wer_corpus ↓" in table
    assert mio(tmp_path, "report", str(tmp_path / "missing")).returncode == 2


def test_error_budget_exits_1_with_resume_hint(tmp_path):
    proc = mio(tmp_path, "task=tts_demo", "model=dummy", "model.fail_ids=[harvard01_001,harvard01_002]",
               "runner.limit=4", "runner.batch_size=1", "runner.max_error_rate=0.1", "runner.progress=false",
               f"paths.results_dir={tmp_path / 'r'}")
    assert proc.returncode == 1
    assert "over runner.max_error_rate=0.1" in proc.stderr and "rerun the same command" in proc.stderr
