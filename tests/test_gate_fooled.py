"""Each way the regression gate was fooled (issue: "a gate that cannot be fooled"), as a copy of the
committed CI baseline edited the way a worse candidate would be. Each case passed (exit 0) or
blamed the wrong cause on the gate before; each must now fail for the right reason."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mio_eval.gate import main

BASELINE = Path(__file__).resolve().parents[1] / "results" / "baselines" / "flite" / "tts"
TOLERANCE = BASELINE.parents[1] / "tolerance.yaml"


def _copy(tmp_path):
    run = tmp_path / "flite" / "tts"
    shutil.copytree(BASELINE, run)
    metrics = json.loads((run / "metrics.json").read_text())
    rows = [json.loads(line) for line in (run / "scores.jsonl").read_text().splitlines()]
    return run, metrics, rows


def _save(run, metrics, rows):
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "scores.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _recompute(metrics, rows):
    scored = [r for r in rows if not r.get("error")]
    metrics["metrics"]["wer_corpus"]["value"] = sum(r["edits"] for r in scored) / sum(r["ref_words"] for r in scored)
    metrics["metrics"]["wer_utt_mean"]["value"] = sum(r["wer"] for r in scored) / len(scored)
    metrics["n_errors"] = sum(1 for r in rows if r.get("error"))
    metrics["n_scored"] = len(scored)


def _gate(candidate, *extra):
    return main(["--baseline", str(BASELINE), "--candidate", str(candidate), "--tolerance", str(TOLERANCE), *extra])


def _worst_to_errors(rows, k=5):
    worst = sorted(rows, key=lambda r: -r["wer"])[:k]
    ids = {r["id"] for r in worst}
    return [({"id": r["id"], "error": "judge: no transcript"} if r["id"] in ids else r) for r in rows]


def test_worst_samples_turned_into_errors_fail_on_errors_not_on_wer(tmp_path, capsys):
    run, metrics, rows = _copy(tmp_path)
    rows = _worst_to_errors(rows)
    _recompute(metrics, rows)  # the headline WER "improves": the hardest samples are gone
    assert metrics["metrics"]["wer_corpus"]["value"] < json.loads((BASELINE / "metrics.json").read_text())[
        "metrics"]["wer_corpus"]["value"]
    _save(run, metrics, rows)
    assert _gate(run) == 1
    captured = capsys.readouterr()
    assert "more failed samples: 0 -> 5" in captured.err
    # The WER rows are compared on the 45 samples both runs scored: equal there, so no metric blame.
    assert "45 shared samples" in captured.out
    assert captured.out.count("| ok |") == 2


def test_errors_plus_switched_normaliser_is_refused_as_a_protocol_change(tmp_path, capsys):
    run, metrics, rows = _copy(tmp_path)
    rows = _worst_to_errors(rows)
    _recompute(metrics, rows)
    metrics["metrics"]["wer_corpus"]["variant"] = "corpus+none"
    metrics["scoring"]["normalizer"] = "none"
    _save(run, metrics, rows)
    assert _gate(run) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "protocol changed" in err[0] and "corpus+none" in err[0]
    # Allowed explicitly, the comparison runs and still fails on the errors.
    assert _gate(run, "--allow-protocol-change") == 1


def test_dropped_samples_are_blamed_as_dropped_not_as_a_metric_regression(tmp_path, capsys):
    run, metrics, rows = _copy(tmp_path)
    rows = rows[:12]
    _recompute(metrics, rows)
    metrics["n"] = 12
    _save(run, metrics, rows)
    assert _gate(run) == 1
    captured = capsys.readouterr()
    assert "samples dropped: 38 of the baseline's 50" in captured.err
    assert "wer_corpus" not in captured.err.split("regression(s):")[1]  # not blamed on the model
    line = next(l for l in captured.out.splitlines() if "| wer_corpus" in l)
    assert "12 shared samples" in line and "[+0, +0] (12)" in line and line.endswith("| ok |")


@pytest.mark.parametrize("value", [None, float("nan")])
def test_missing_or_nan_metric_fails(tmp_path, capsys, value):
    run, metrics, rows = _copy(tmp_path)
    metrics["metrics"]["wer_utt_mean"]["value"] = value
    _save(run, metrics, rows)
    assert _gate(run, "--bootstrap", "0") == 1
    assert "wer_utt_mean" in capsys.readouterr().err
    del metrics["metrics"]["wer_utt_mean"]
    _save(run, metrics, rows)
    assert _gate(run, "--bootstrap", "0") == 1


def test_another_judge_is_a_protocol_change(tmp_path, capsys):
    run, metrics, rows = _copy(tmp_path)
    metrics["judges"] = [{"model": "openai-whisper", "sha256": "f" * 64, "role": "judge"}]
    _save(run, metrics, rows)
    assert _gate(run) == 2
    assert "judge" in capsys.readouterr().err


def test_decide_by_bootstrap(tmp_path, capsys):
    run, metrics, rows = _copy(tmp_path)
    # One utterance a little worse: a strict tolerance calls it a regression, the paired interval
    # (it contains 0) does not.
    rows[0] = {**rows[0], "edits": rows[0]["edits"] + 1}
    rows[0]["wer"] = rows[0]["edits"] / rows[0]["ref_words"]
    _recompute(metrics, rows)
    _save(run, metrics, rows)
    assert main(["--baseline", str(BASELINE), "--candidate", str(run)]) == 1
    assert main(["--baseline", str(BASELINE), "--candidate", str(run), "--decide", "bootstrap"]) == 0
    # Every utterance worse: the whole interval lies beyond the tolerance.
    for row in rows:
        row["edits"] += 2
        row["wer"] = row["edits"] / row["ref_words"]
    _recompute(metrics, rows)
    _save(run, metrics, rows)
    assert main(["--baseline", str(BASELINE), "--candidate", str(run), "--decide", "bootstrap"]) == 1
    capsys.readouterr()


@pytest.mark.parametrize("content", [
    "[]", '"x"', "{", '{"task": "t", "model": "m", "metrics": []}',
    '{"task": "t", "model": "m", "metrics": {"wer": {"value": "low", "higher_is_better": false}}}',
    '{"task": "t", "model": "m", "metrics": {"wer": {"value": 0.1}}}',
    '{"task": 3, "model": "m", "metrics": {}}',
    '{"task": "t", "model": "m", "n": -1, "metrics": {}}',
])
def test_malformed_metrics_json_exits_2_in_one_line(tmp_path, content):
    bad = tmp_path / "metrics.json"
    bad.write_text(content)
    proc = subprocess.run([sys.executable, "-m", "mio_eval.cli", "gate", "--baseline", str(BASELINE),
                           "--candidate", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_line_separators_inside_transcripts_are_not_line_breaks(tmp_path):
    run, metrics, rows = _copy(tmp_path)
    rows[0]["hypothesis"] = "a\u2028b\u2029c\x85d"
    _save(run, metrics, rows)
    assert _gate(run) == 0
