"""Push a finished run's results where teams look: Weights & Biases or the Hugging Face Hub.

Off by default (``logger=none``). ``logger=wandb`` / ``logger=hf_hub`` choose one; the hook is
:func:`log_run`, called once by ``mio_eval.api`` after a run has written ``metrics.json``. The
results on disk are the record: a logger only copies them, so a logger that fails is reported
(``ConfigError``, exit 2, with the reason) after the run's files are safely written.

* :class:`WandbLogger` (``wandb``, optional: ``pip install wandb``): one W&B run per evaluation
  run, named ``<model>/<task>``, the resolved config as its config, every metric's value as
  ``<task>/<metric>`` in the summary (and one ``log`` step), ``n`` / ``n_errors`` too, and
  ``metrics.json`` saved with the run. ``mode`` is W&B's: ``online``, ``offline`` (written under
  ``dir``, synced later with ``wandb sync``) or ``disabled``; null = W&B's own default
  (``WANDB_MODE``).
* :class:`HFHubLogger` (``huggingface_hub``, a dependency): uploads ``metrics.json`` and
  ``run.json`` (plus ``scores.jsonl`` / ``predictions.jsonl`` with ``include_samples``) to
  ``<repo_id>/<path_in_repo>`` (default ``<model>/<task>``) of a dataset repository with
  ``HfApi.upload_folder``; the token comes from ``HF_TOKEN`` / the login cache. ``local_dir``
  copies the same files to a folder laid out like the repository instead (no network), e.g. a
  clone to commit by hand.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.errors import ConfigError

__all__ = ["log_run", "LOGGERS", "NoLogger", "WandbLogger", "HFHubLogger", "flat_metrics"]

_RUN_FILES = ("metrics.json", "run.json")
_SAMPLE_FILES = ("scores.jsonl", "predictions.jsonl")


def flat_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """``{"<task>/<metric>": value, "<task>/n": n, "<task>/n_errors": k}`` of a metrics.json."""
    task = metrics.get("task", "task")
    flat = {f"{task}/{name}": entry["value"] for name, entry in (metrics.get("metrics") or {}).items()
            if isinstance(entry, Mapping) and isinstance(entry.get("value"), (int, float))}
    for key in ("n", "n_errors"):
        if isinstance(metrics.get(key), (int, float)):
            flat[f"{task}/{key}"] = metrics[key]
    return flat


class NoLogger:
    """``logger=none``: results stay on disk only."""

    def log(self, metrics: Mapping[str, Any], run_dir: Path, config: Mapping[str, Any]) -> dict[str, Any]:
        return {}


class WandbLogger:
    def __init__(self, *, project: str = "mio-eval", entity: str | None = None, mode: str | None = None,
                 dir: str | None = None, name: str | None = None, tags: Sequence[str] = (),  # noqa: A002
                 group: str | None = None) -> None:
        if mode not in (None, "online", "offline", "disabled"):
            raise ConfigError(f"logger.mode must be online, offline or disabled, got {mode!r}")
        self.project, self.entity, self.mode, self.dir = project, entity, mode, dir
        self.name, self.tags, self.group = name, tuple(tags), group

    def log(self, metrics: Mapping[str, Any], run_dir: Path, config: Mapping[str, Any]) -> dict[str, Any]:
        try:
            import wandb
        except ImportError:
            raise ConfigError("logger=wandb needs the wandb package: pip install wandb "
                              f"(the results are saved in {run_dir})") from None
        folder = Path(self.dir) if self.dir else run_dir
        folder.mkdir(parents=True, exist_ok=True)
        name = self.name or f"{metrics.get('model')}/{metrics.get('task')}"
        run = wandb.init(project=self.project, entity=self.entity, mode=self.mode, dir=str(folder), name=name,
                         group=self.group, tags=list(self.tags) or None, config=dict(config), reinit="finish_previous",
                         settings=wandb.Settings(silent=True, console="off"))
        try:
            flat = flat_metrics(metrics)
            run.log(flat)
            run.summary.update(flat)
            if (run_dir / "metrics.json").is_file():
                run.save(str(run_dir / "metrics.json"), base_path=str(run_dir), policy="now")
            where = {"logger": "wandb", "mode": self.mode, "run_id": run.id, "dir": str(run.dir), "url": run.url}
        finally:
            run.finish()
        return where


class HFHubLogger:
    def __init__(self, *, repo_id: str | None = None, repo_type: str = "dataset", path_in_repo: str | None = None,
                 include_samples: bool = False, private: bool = True, local_dir: str | None = None,
                 commit_message: str | None = None) -> None:
        if not repo_id and not local_dir:
            raise ConfigError("logger=hf_hub needs logger.repo_id (or logger.local_dir to write a local copy)")
        self.repo_id, self.repo_type, self.path_in_repo = repo_id, repo_type, path_in_repo
        self.include_samples, self.private, self.local_dir = bool(include_samples), bool(private), local_dir
        self.commit_message = commit_message

    def _files(self, run_dir: Path) -> list[str]:
        names = [*_RUN_FILES, *(_SAMPLE_FILES if self.include_samples else ())]
        return [n for n in names if (run_dir / n).is_file()]

    def log(self, metrics: Mapping[str, Any], run_dir: Path, config: Mapping[str, Any]) -> dict[str, Any]:
        prefix = (self.path_in_repo or "{model}/{task}").format(model=metrics.get("model"), task=metrics.get("task"))
        files = self._files(run_dir)
        if not files:
            raise ConfigError(f"logger=hf_hub: nothing to push in {run_dir} (no metrics.json)")
        if self.local_dir:
            target = Path(self.local_dir) / prefix
            target.mkdir(parents=True, exist_ok=True)
            for name in files:
                shutil.copyfile(run_dir / name, target / name)
            return {"logger": "hf_hub", "local_dir": str(target), "files": files}
        from huggingface_hub import HfApi

        api = HfApi()
        try:
            api.create_repo(self.repo_id, repo_type=self.repo_type, private=self.private, exist_ok=True)
            info = api.upload_folder(repo_id=self.repo_id, repo_type=self.repo_type, folder_path=str(run_dir),
                                     path_in_repo=prefix, allow_patterns=files,
                                     commit_message=self.commit_message or f"mio-eval: {prefix}")
        except Exception as exc:  # noqa: BLE001 - network, auth and repo errors all end the same way
            raise ConfigError(f"logger=hf_hub: push to {self.repo_id} failed ({type(exc).__name__}: "
                              f"{' '.join(str(exc).split())}); the results are saved in {run_dir}") from None
        return {"logger": "hf_hub", "repo_id": self.repo_id, "path_in_repo": prefix, "files": files,
                "commit": str(getattr(info, "oid", info))}


LOGGERS = {"none": NoLogger, "wandb": WandbLogger, "hf_hub": HFHubLogger}


def log_run(metrics: dict, run_dir: Path, config: dict) -> dict[str, Any]:
    """Send a finished run (its ``metrics.json`` dict, its folder, the resolved config) to the
    logger ``config["logger"]["kind"]`` names (:data:`LOGGERS`: a fixed table, so a config can
    never make this import anything); returns where it went (``{}`` for ``logger=none``)."""
    spec = dict(config.get("logger") or {})
    kind = spec.pop("kind", "none")
    try:
        cls = LOGGERS[kind]
    except KeyError:
        raise ConfigError(f"unknown logger.kind {kind!r}; one of: {', '.join(LOGGERS)}") from None
    try:
        logger = cls(**spec)
    except TypeError as exc:
        raise ConfigError(f"logger={kind}: {exc}") from None
    return logger.log(metrics, Path(run_dir), config)
