"""The regression gate: pairing, direction-aware tolerances, paired bootstrap, exit codes, and
the project's own CI baseline."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mio_eval.errors import ConfigError
from mio_eval.gate import compare, load_side, load_tolerances, main, paired_bootstrap

BASELINES = Path(__file__).resolve().parents[1] / "results" / "baselines"


def _run_dir(root: Path, model: str, task: str, metrics: dict, rows: list[dict] | None = None) -> Path:
    run = root / model / task
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"task": task, "model": model, "n": len(rows or []),
                                                  "n_errors": 0, "metrics": metrics}))
    if rows is not None:
        (run / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def _metric(value, higher=False, variant="corpus", per_sample=None):
    return {"value": value, "higher_is_better": higher, "variant": variant, "provenance": "p", "scale": 100.0,
            "n": 3, "extra": {"per_sample": per_sample} if per_sample else {}}


def _wer_rows(edits, ref_words):
    return [{"id": f"u{i}", "error": None, "edits": e, "ref_words": w, "wer": e / w}
            for i, (e, w) in enumerate(zip(edits, ref_words))]


def test_ci_baseline_is_committed_and_passes_against_itself(capsys):
    run = BASELINES / "flite" / "tts"
    assert (run / "metrics.json").is_file() and (run / "scores.jsonl").is_file()
    assert main(["--baseline", str(run), "--candidate", str(run / "metrics.json"),
                 "--tolerance", str(BASELINES / "tolerance.yaml")]) == 0
    out = capsys.readouterr().out
    assert "| tts | wer_corpus ↓ |" in out and "REGRESSION" not in out


def test_injected_regression_fails_the_ci_baseline(tmp_path, capsys):
    """One more error per utterance in a copy of the CI baseline must fail the gate (exit 1)."""
    candidate = tmp_path / "flite" / "tts"
    shutil.copytree(BASELINES / "flite" / "tts", candidate)
    metrics = json.loads((candidate / "metrics.json").read_text())
    rows = [json.loads(line) for line in (candidate / "scores.jsonl").read_text().splitlines()]
    for row in rows:
        row["edits"] += 1
        row["wer"] = row["edits"] / row["ref_words"]
    metrics["metrics"]["wer_corpus"]["value"] = sum(r["edits"] for r in rows) / sum(r["ref_words"] for r in rows)
    metrics["metrics"]["wer_utt_mean"]["value"] = float(np.mean([r["wer"] for r in rows]))
    (candidate / "metrics.json").write_text(json.dumps(metrics))
    (candidate / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main(["--baseline", str(BASELINES / "flite" / "tts"), "--candidate", str(candidate),
                 "--tolerance", str(BASELINES / "tolerance.yaml")])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.count("**REGRESSION**") == 2 and "2 regression(s)" in captured.err
    # The paired interval excludes zero: every utterance got worse.
    line = next(l for l in captured.out.splitlines() if "wer_utt_mean" in l)
    low = float(line.split("| [")[1].split(",")[0])
    assert low > 0


def test_direction_and_tolerances(tmp_path):
    base = _run_dir(tmp_path / "b", "m", "t", {"wer": _metric(0.20), "acc": _metric(0.50, higher=True)})
    better = _run_dir(tmp_path / "c1", "m", "t", {"wer": _metric(0.10), "acc": _metric(0.60, higher=True)})
    worse = _run_dir(tmp_path / "c2", "m", "t", {"wer": _metric(0.21), "acc": _metric(0.49, higher=True)})
    strict = load_tolerances(None)
    verdicts = lambda cand, tol: {c.metric: c.regression for c in compare(*load_side(base), *load_side(cand), tol)}  # noqa: E731
    assert verdicts(better, strict) == {"wer": False, "acc": False}
    assert verdicts(worse, strict) == {"wer": True, "acc": True}
    tol_file = tmp_path / "tol.yaml"
    tol_file.write_text("default: {abs: 0.0}\nmetrics:\n  wer: {rel: 0.1}\n  t/acc: {abs: 0.02}\n")
    tolerant = load_tolerances(tol_file)
    assert verdicts(worse, tolerant) == {"wer": False, "acc": False}  # 0.01 <= 0.1*0.20; 0.01 <= 0.02
    tol_file.write_text("metrics:\n  wer: {abs: 0.005}\n")
    assert verdicts(worse, load_tolerances(tol_file)) == {"wer": True, "acc": True}


def test_missing_metric_or_run_is_a_regression(tmp_path):
    base = _run_dir(tmp_path / "b", "m", "t", {"wer": _metric(0.2), "acc": _metric(0.5, higher=True)})
    cand = _run_dir(tmp_path / "c", "m", "t", {"wer": _metric(0.2)})
    (acc,) = [c for c in compare(*load_side(base), *load_side(cand), load_tolerances(None)) if c.metric == "acc"]
    assert acc.regression and acc.note == "metric missing in candidate"
    _run_dir(tmp_path / "b", "m", "other", {"wer": _metric(0.2)})
    results = compare(*load_side(tmp_path / "b"), *load_side(tmp_path / "c"), load_tolerances(None))
    assert [(c.task, c.regression, c.note) for c in results if c.task == "other"] == [
        ("other", True, "candidate run missing")]


def test_roots_pair_by_model_and_task(tmp_path):
    for root, value in (("b", 0.2), ("c", 0.3)):
        _run_dir(tmp_path / root, "m1", "t", {"wer": _metric(value)})
        _run_dir(tmp_path / root, "m2", "t", {"wer": _metric(0.2)})
    results = compare(*load_side(tmp_path / "b"), *load_side(tmp_path / "c"), load_tolerances(None))
    assert sorted((c.candidate, c.regression) for c in results) == [(0.2, False), (0.3, True)]


def test_paired_bootstrap_mean_and_ratio():
    base = {r["id"]: r for r in _wer_rows([1, 2, 3, 0], [10, 10, 5, 5])}
    shifted = {i: {**r, "wer": r["wer"] + 0.1} for i, r in base.items()}
    ci, n = paired_bootstrap(base, shifted, {"mean": "wer"}, n_resamples=200, seed=0)
    assert n == 4 and ci == pytest.approx((0.1, 0.1))
    cand = {r["id"]: r for r in _wer_rows([2, 2, 3, 1], [10, 10, 5, 5])}
    ci1, _ = paired_bootstrap(base, cand, {"ratio": ["edits", "ref_words"]}, n_resamples=500, seed=3)
    ci2, _ = paired_bootstrap(base, cand, {"ratio": ["edits", "ref_words"]}, n_resamples=500, seed=3)
    assert ci1 == ci2  # seeded
    point = 8 / 30 - 6 / 30
    assert ci1[0] <= point <= ci1[1] and ci1[0] >= 0
    # Errored or unscored samples on either side are left out of the pairing.
    cand["u0"] = {"id": "u0", "error": "judge: failed"}
    assert paired_bootstrap(base, cand, {"mean": "wer"}, n_resamples=10)[1] == 3


def test_unusable_input_exits_2(tmp_path, capsys):
    base = _run_dir(tmp_path / "b", "m", "t", {"wer": _metric(0.2)})
    assert main(["--baseline", str(base), "--candidate", str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{")
    assert main(["--baseline", str(base), "--candidate", str(tmp_path / "bad.json")]) == 2
    (tmp_path / "tol.yaml").write_text("metrics:\n  wer: {abs: -1}\n")
    assert main(["--baseline", str(base), "--candidate", str(base), "--tolerance", str(tmp_path / "tol.yaml")]) == 2
    with pytest.raises(ConfigError, match="no metrics.json under"):
        load_side(tmp_path / "b" / "m")


def test_cli_subcommand(tmp_path):
    base = _run_dir(tmp_path / "b", "m", "t", {"wer": _metric(0.2)})
    cand = _run_dir(tmp_path / "c", "m", "t", {"wer": _metric(0.25)})
    gate = [sys.executable, "-m", "mio_eval.cli", "gate", "--baseline", str(base)]
    ok = subprocess.run(gate + ["--candidate", str(base)], capture_output=True, text=True)
    bad = subprocess.run(gate + ["--candidate", str(cand)], capture_output=True, text=True)
    assert (ok.returncode, bad.returncode) == (0, 1)
    assert "| t | wer ↓ | 20 | 25 | +5 |" in bad.stdout
