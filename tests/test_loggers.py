"""Result pushing (``logger=wandb`` / ``logger=hf_hub``), off by default, exercised in W&B's
offline mode and with the Hub replaced by a local folder or a stand-in ``HfApi`` (no network)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mio_eval import run
from mio_eval.errors import ConfigError
from mio_eval.loggers import HFHubLogger, flat_metrics, log_run
from test_image_tasks import data  # noqa: F401 - fixture


def _vqa(tmp_path, data_dir, *extra):
    return run("vqav2_val", "dummy", [f"paths.results_dir={tmp_path / 'results'}", f"paths.data_dir={data_dir}",
                                      "runner.progress=false", "model.response=down", *extra])


def test_flat_metrics():
    metrics = {"task": "t", "n": 4, "n_errors": 1, "metrics": {"acc": {"value": 0.5}, "bad": {"value": None}}}
    assert flat_metrics(metrics) == {"t/acc": 0.5, "t/n": 4, "t/n_errors": 1}
    assert log_run(metrics, Path("."), {"logger": {"kind": "none"}}) == {}
    assert log_run(metrics, Path("."), {}) == {}
    with pytest.raises(ConfigError, match="unknown logger.kind 'os.system'"):
        log_run(metrics, Path("."), {"logger": {"kind": "os.system"}})


def test_wandb_offline_run(data, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("WANDB_SILENT", "true")
    wandb = pytest.importorskip("wandb")
    metrics = _vqa(tmp_path, data, "logger=wandb", "logger.mode=offline", f"logger.dir={tmp_path / 'wb'}")
    wandb.teardown()   # the W&B service writes the run file asynchronously: wait for it
    runs = list((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    log = next(runs[0].glob("run-*.wandb")).read_bytes()
    value = metrics["metrics"]["vqa_accuracy"]["value"]
    assert b"vqav2_val/vqa_accuracy" in log and b"dummy/vqav2_val" in log and value > 0
    assert (runs[0] / "files" / "metrics.json").is_file()
    saved = json.loads((runs[0] / "files" / "metrics.json").read_text())
    assert saved["metrics"]["vqa_accuracy"]["value"] == value


def test_hf_hub_to_a_local_folder(data, tmp_path):  # noqa: F811
    _vqa(tmp_path, data, "logger=hf_hub", f"logger.local_dir={tmp_path / 'repo'}", "logger.include_samples=true")
    pushed = tmp_path / "repo" / "dummy" / "vqav2_val"
    assert sorted(p.name for p in pushed.iterdir()) == ["metrics.json", "predictions.jsonl", "run.json", "scores.jsonl"]
    assert (pushed / "metrics.json").read_bytes() == (tmp_path / "results" / "dummy" / "vqav2_val" / "metrics.json").read_bytes()


class _FakeHfApi:
    """Stands in for ``huggingface_hub.HfApi``: an upload copies the allowed files to a folder."""

    root: Path
    calls: list = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, *, repo_id, folder_path, path_in_repo, allow_patterns, **kwargs):
        self.calls.append(("upload_folder", repo_id, path_in_repo, sorted(allow_patterns), kwargs))
        for name in allow_patterns:
            target = self.root / repo_id / path_in_repo / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(folder_path) / name, target)
        return type("CommitInfo", (), {"oid": "abc123"})()


def test_hf_hub_upload_through_hfapi(data, tmp_path, monkeypatch):  # noqa: F811
    import huggingface_hub

    _FakeHfApi.root, _FakeHfApi.calls = tmp_path / "hub", []
    monkeypatch.setattr(huggingface_hub, "HfApi", _FakeHfApi)
    _vqa(tmp_path, data, "logger=hf_hub", "logger.repo_id=org/results", "logger.path_in_repo='runs/{model}-{task}'")
    create, upload = _FakeHfApi.calls
    assert create == ("create_repo", "org/results", {"repo_type": "dataset", "private": True, "exist_ok": True})
    assert upload[:4] == ("upload_folder", "org/results", "runs/dummy-vqav2_val", ["metrics.json", "run.json"])
    assert (tmp_path / "hub" / "org/results" / "runs" / "dummy-vqav2_val" / "metrics.json").is_file()

    class Failing(_FakeHfApi):
        def upload_folder(self, **kwargs):
            raise OSError("401 Unauthorized")

    monkeypatch.setattr(huggingface_hub, "HfApi", Failing)
    with pytest.raises(ConfigError, match="push to org/results failed .*401 Unauthorized.*results are saved"):
        HFHubLogger(repo_id="org/results").log({"model": "m", "task": "t"}, tmp_path / "results" / "dummy" / "vqav2_val", {})
    with pytest.raises(ConfigError, match="needs logger.repo_id"):
        HFHubLogger()
