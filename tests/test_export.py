"""Leaderboard exports: submission files validated per server format, incomplete runs refused
unless forced, the leaderboard JSON and its markdown."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mio_eval.errors import ConfigError
from mio_eval.export import export_submission, leaderboard_json, render_leaderboard, validate_submission


def _vqa_run(tmp_path, rows, failed=(), n=None):
    run = tmp_path / "m" / "vqav2_testdev"
    run.mkdir(parents=True)
    sub = run / "submission.json"
    sub.write_text(json.dumps(rows))
    scores = [{"id": str(r["question_id"]), "error": None} for r in rows]
    scores += [{"id": str(q), "error": "cannot decode image"} for q in failed]
    (run / "scores.jsonl").write_text("".join(json.dumps(s) + "\n" for s in scores))
    (run / "metrics.json").write_text(json.dumps({
        "task": "vqav2_testdev", "model": "m", "n": n if n is not None else len(scores), "n_errors": len(failed),
        "metrics": {}, "scoring": {"submission_file": str(sub)}}))
    return run


def test_valid_vqav2_submission_is_exported(tmp_path):
    run = _vqa_run(tmp_path, [{"question_id": 1, "answer": "yes"}, {"question_id": 2, "answer": "2"}])
    target = export_submission(run, "vqav2")
    assert target == run / "vqav2_submission.json"
    assert json.loads(target.read_text()) == [{"question_id": 1, "answer": "yes"}, {"question_id": 2, "answer": "2"}]


@pytest.mark.parametrize("rows,fmt,needle", [
    ([{"question_id": 1, "answer": "a"}, {"question_id": 1, "answer": "b"}], "vqav2", "duplicate question_id 1"),
    ([{"question_id": "1", "answer": "a"}], "vqav2", "question_id must be int"),
    ([{"question_id": 1}], "vqav2", "expected exactly"),
    ([{"image": "VizWiz_test_00000000.jpg", "answer": 3}], "vizwiz", "answer must be a string"),
    ([{"image_id": 42, "caption": "a cat", "score": 1}], "coco_captions", "expected exactly"),
    ({"question_id": 1}, "vqav2", "is a JSON list"),
    ([{"id": 1}], "mme_unify", "plus its 'output'"),
])
def test_format_problems(rows, fmt, needle):
    assert any(needle in p for p in validate_submission(rows, fmt))


def test_incomplete_run_refused_unless_forced(tmp_path, capsys):
    run = _vqa_run(tmp_path, [{"question_id": 1, "answer": "yes"}], failed=[7])
    with pytest.raises(ConfigError, match="incomplete run: 1 of 2 samples failed"):
        export_submission(run, "vqav2")
    target = export_submission(run, "vqav2", force=True)
    assert json.loads(target.read_text()) == [{"question_id": 1, "answer": "yes"}, {"question_id": 7, "answer": ""}]
    assert "submitted with empty answers: 7" in capsys.readouterr().err


def test_row_count_must_match_the_run(tmp_path):
    run = _vqa_run(tmp_path, [{"question_id": 1, "answer": "yes"}], n=5)
    with pytest.raises(ConfigError, match="holds 1 rows and 0 samples failed, but the run has 5"):
        export_submission(run, "vqav2")


def _metrics(root, model, task, value, higher, ci=None):
    run = root / model / task
    run.mkdir(parents=True)
    extra = {"ci95": ci} if ci else {}
    (run / "metrics.json").write_text(json.dumps({
        "task": task, "model": model, "n": 10, "n_errors": 1 if model == "b" else 0, "fingerprint": f"fp-{model}",
        "versions": {"python": "3.11"}, "judges": [{"model": "openai-whisper", "path": "/c/medium.pt", "sha256": "ab12"}],
        "metrics": {"score": {"value": value, "higher_is_better": higher, "variant": "v1", "provenance": "p",
                              "scale": 100.0, "n": 10, "extra": extra}}}))


def test_leaderboard_json_and_markdown_rank_in_each_metric_direction(tmp_path):
    _metrics(tmp_path / "r1", "a", "wer_task", 0.10, False)
    _metrics(tmp_path / "r2", "b", "wer_task", 0.05, False, ci=[0.04, 0.06])
    _metrics(tmp_path / "r1", "a", "acc_task", 0.50, True)
    _metrics(tmp_path / "r2", "b", "acc_task", 0.70, True)
    board = leaderboard_json([tmp_path / "r1", tmp_path / "r2"])
    entry = next(e for e in board["entries"] if e["model"] == "b" and e["task"] == "wer_task")
    assert entry["metrics"]["score"]["reported"] == pytest.approx(5.0) and entry["metrics"]["score"]["ci95"] == [0.04, 0.06]
    assert entry["complete"] is False and entry["fingerprint"] == "fp-b" and entry["judges"][0]["sha256"] == "ab12"
    md = render_leaderboard(board)
    acc = md.split("### acc_task")[1].split("###")[0]
    wer = md.split("### wer_task")[1]
    assert acc.index("| 1 | b |") < acc.index("| 2 | a |")  # higher is better
    assert "| 1 | b | 5.00 ± 1.00 |" in wer and "| 2 | a | 10.00 |" in wer  # lower is better


def test_cli(tmp_path):
    _metrics(tmp_path / "r", "a", "t", 0.5, True)
    out = subprocess.run([sys.executable, "-m", "mio_eval.cli", "leaderboard", str(tmp_path / "r")],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "### t" in out.stdout
    lb = subprocess.run([sys.executable, "-m", "mio_eval.cli", "export", "--format", "leaderboard", str(tmp_path / "r"),
                         "--out", str(tmp_path / "lb.json")], capture_output=True, text=True)
    assert lb.returncode == 0 and json.loads((tmp_path / "lb.json").read_text())["schema"] == "mio-eval-leaderboard/1"
    bad = subprocess.run([sys.executable, "-m", "mio_eval.cli", "export", "--format", "vqav2", str(tmp_path / "r" / "a" / "t")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "has no submission file" in bad.stderr


def test_formats_are_chosen_by_target(tmp_path):
    """--format NAME maps to a ``_target_`` spec in one table; a spec or a format object works the
    same; a _target_ that is not a submission format class is refused without importing it."""
    from mio_eval.submission import FORMATS, IdAnswerFormat, MMEUnifyFormat, SubmissionFormat, submission_format

    assert set(FORMATS) == {"vqav2", "vizwiz", "coco_captions", "mme_unify"}
    built = {name: submission_format(name) for name in FORMATS}
    assert all(isinstance(f, SubmissionFormat) and f.name == name for name, f in built.items())
    assert isinstance(built["mme_unify"], MMEUnifyFormat)
    assert built["vqav2"] == IdAnswerFormat(name="vqav2", id_field="question_id", id_type="int", answer_field="answer")
    # A format of one's own, by spec: the OK-VQA-style file keyed by image id, as an int.
    spec = {"_target_": "mio_eval.submission.IdAnswerFormat", "name": "by_image", "id_field": "image_id",
            "id_type": "int", "answer_field": "answer"}
    assert validate_submission([{"image_id": 3, "answer": "a"}], spec) == []
    assert any("image_id must be int" in p for p in validate_submission([{"image_id": "3", "answer": "a"}], spec))
    assert submission_format(spec).missing_row({"image_id": "9"}) == {"image_id": 9, "answer": ""}
    assert built["mme_unify"].missing_row({"id": "x"}) is None  # an MME-Unify item cannot be made up
    run = _vqa_run(tmp_path, [{"question_id": 1, "answer": "yes"}])
    assert export_submission(run, {**FORMATS["vqav2"], "name": "mine"}).name == "mine_submission.json"
    for bad, needle in [("nope", "unknown submission format 'nope'"),
                        ({"_target_": "os.system", "command": "true"}, "not a submission format class"),
                        ({"name": "x"}, "with a _target_"),
                        ({**FORMATS["vqav2"], "id_type": "float"}, "id_type must be one of"),
                        ({**FORMATS["vqav2"], "extra": 1}, "cannot build")]:
        with pytest.raises(ConfigError, match=needle):
            submission_format(bad)


def test_every_consumer_finds_the_same_runs(tmp_path):
    """report, gate, export/leaderboard and results share one run finder: Hydra's _multirun and
    scratch dirs starting with _ are not runs; a malformed metrics.json is a one-line error for
    the strict consumers (gate, export)."""
    from mio_eval.gate import load_side
    from mio_eval.report import load_runs
    from mio_eval.results import find_runs

    for model, task in [("a", "t1"), ("b", "t1"), ("a", "t2"), ("_multirun", "t1"), ("a", "_scratch")]:
        _metrics(tmp_path, model, task, 0.5, True)
    expected = [("a", "t1"), ("a", "t2"), ("b", "t1")]
    assert [(r.model, r.task) for r in find_runs(tmp_path)] == expected
    assert [(r["model"], r["task"]) for r in load_runs(tmp_path)] == expected
    runs, is_root = load_side(tmp_path)
    assert is_root and [r.key for r in runs] == expected
    assert sorted((e["model"], e["task"]) for e in leaderboard_json([tmp_path])["entries"]) == expected
    (tmp_path / "c" / "t3").mkdir(parents=True)
    (tmp_path / "c" / "t3" / "metrics.json").write_text('{"task": "t3", "model": "c"}')
    with pytest.raises(ConfigError, match="no 'metrics'"):
        load_side(tmp_path)
    with pytest.raises(ConfigError, match="no 'metrics'"):
        leaderboard_json([tmp_path])
