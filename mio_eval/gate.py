"""Regression gate: compare a candidate's metrics with a baseline's, per task and metric.

    mio-eval gate --baseline results/baselines/espeak/tts_demo --candidate results/espeak/tts_demo \
                  [--tolerance tol.yaml] [--bootstrap 1000] [--seed 0]

Each side is a ``metrics.json``, a run directory holding one, or a results root
(``<root>/<model>/<task>/metrics.json``). Runs are paired by (model, task) when both sides are
roots and by task otherwise. A metric regresses when the candidate is worse than the baseline,
in the metric's own direction (``higher_is_better``), by more than its tolerance:
``max(abs, rel · |baseline|)``, both in the metric's raw units (WER 0.01 = one point).
Tolerances come from a YAML/JSON file::

    default: {abs: 0.0, rel: 0.0}
    metrics:
      wer_corpus: {abs: 0.005}          # any task
      tts_demo/wer_utt_mean: {rel: 0.02} # one task

A metric present in the baseline and absent (or ``None``) in the candidate is a regression.
Where both runs kept per-sample scores (``scores.jsonl``) and the metric says how it is built from
them (``extra.per_sample``: the mean of a field, or a ratio of two summed fields), a seeded paired
bootstrap over the samples both sides scored gives the 95% interval of candidate − baseline; it
is reported beside the decision, which stays the tolerance rule (deterministic and cheap).

Exit codes: 0 no regression, 1 regression, 2 unusable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mio_eval.errors import ConfigError

__all__ = ["Comparison", "compare", "load_side", "paired_bootstrap", "main"]


@dataclass(frozen=True)
class Run:
    metrics: Mapping[str, Any]
    directory: Path

    @property
    def key(self) -> tuple[str, str]:
        return self.metrics["model"], self.metrics["task"]

    def per_sample(self) -> dict[str, Mapping[str, Any]] | None:
        path = self.directory / "scores.jsonl"
        if not path.is_file():
            return None
        rows = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                rows[str(row["id"])] = row
        return rows


@dataclass(frozen=True)
class Comparison:
    task: str
    metric: str
    baseline: float | None
    candidate: float | None
    higher_is_better: bool
    allowed: float
    regression: bool
    scale: float = 1.0
    ci95: tuple[float, float] | None = None
    n_paired: int = 0
    note: str = ""

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.candidate is None:
            return None
        return self.candidate - self.baseline


def _read_metrics(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    for key in ("task", "model", "metrics"):
        if key not in data:
            raise ConfigError(f"{path} is not a mio-eval metrics.json (no {key!r})")
    return data


def load_side(path: str | Path) -> tuple[list[Run], bool]:
    """The runs of one side and whether it was a results root (several runs)."""
    path = Path(path)
    if path.is_file():
        return [Run(_read_metrics(path), path.parent)], False
    if (path / "metrics.json").is_file():
        return [Run(_read_metrics(path / "metrics.json"), path)], False
    if path.is_dir():
        runs = [Run(_read_metrics(p), p.parent) for p in sorted(path.glob("*/*/metrics.json"))
                if not p.parts[-3].startswith("_")]
        if runs:
            return runs, True
        raise ConfigError(f"no metrics.json under {path} (expected <root>/<model>/<task>/metrics.json)")
    raise ConfigError(f"not found: {path}")


def load_tolerances(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        return {"default": {"abs": 0.0, "rel": 0.0}, "metrics": {}}
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"tolerance file not found: {path}")
    from omegaconf import OmegaConf

    try:
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=True) or {}
    except Exception as exc:  # noqa: BLE001 - a YAML/JSON syntax error
        raise ConfigError(f"cannot parse tolerance file {path}: {' '.join(str(exc).split())}") from None
    unknown = set(data) - {"default", "metrics"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; use default and metrics")
    for name, tol in [("default", data.get("default", {})), *data.get("metrics", {}).items()]:
        bad = set(tol or {}) - {"abs", "rel"}
        if bad or any(not isinstance(v, (int, float)) or v < 0 for v in (tol or {}).values()):
            raise ConfigError(f"{path}: tolerance {name!r} must be {{abs: >=0, rel: >=0}}, got {tol!r}")
    return {"default": data.get("default") or {}, "metrics": data.get("metrics") or {}}


def _tolerance(tolerances: Mapping[str, Any], task: str, metric: str) -> Mapping[str, float]:
    specific = tolerances["metrics"]
    return specific.get(f"{task}/{metric}") or specific.get(metric) or tolerances["default"]


def _sample_values(rows: Mapping[str, Mapping[str, Any]], ids: Sequence[str], spec: Mapping[str, Any]):
    if "mean" in spec:
        return np.array([float(rows[i][spec["mean"]]) for i in ids]), None
    num, den = spec["ratio"]
    return (np.array([float(rows[i][num]) for i in ids]), np.array([float(rows[i][den]) for i in ids]))


def _usable(row: Mapping[str, Any] | None, spec: Mapping[str, Any]) -> bool:
    if row is None or row.get("error"):
        return False
    keys = [spec["mean"]] if "mean" in spec else list(spec["ratio"])
    return all(isinstance(row.get(k), (int, float)) for k in keys)


def paired_bootstrap(base_rows, cand_rows, spec: Mapping[str, Any], *, n_resamples: int = 1000,
                     seed: int = 0) -> tuple[tuple[float, float] | None, int]:
    """95% percentile interval of (candidate − baseline) over samples scored on both sides."""
    ids = sorted(i for i in base_rows if _usable(base_rows.get(i), spec) and _usable(cand_rows.get(i), spec))
    if len(ids) < 2:
        return None, len(ids)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(ids), size=(n_resamples, len(ids)))
    b_num, b_den = _sample_values(base_rows, ids, spec)
    c_num, c_den = _sample_values(cand_rows, ids, spec)
    if b_den is None:
        diffs = c_num[picks].mean(axis=1) - b_num[picks].mean(axis=1)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            diffs = c_num[picks].sum(1) / c_den[picks].sum(1) - b_num[picks].sum(1) / b_den[picks].sum(1)
        diffs = diffs[np.isfinite(diffs)]
        if diffs.size == 0:
            return None, len(ids)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return (float(low), float(high)), len(ids)


def _pair(baseline: list[Run], base_root: bool, candidate: list[Run], cand_root: bool):
    if base_root and cand_root:
        cands = {r.key: r for r in candidate}
        return [(b, cands.get(b.key)) for b in baseline]
    by_task: dict[str, Run] = {}
    for run in candidate:
        if run.metrics["task"] in by_task:
            raise ConfigError(f"candidate holds several runs of task {run.metrics['task']!r}; pass one run dir")
        by_task[run.metrics["task"]] = run
    return [(b, by_task.get(b.metrics["task"])) for b in baseline]


def compare(baseline: list[Run], base_root: bool, candidate: list[Run], cand_root: bool,
            tolerances: Mapping[str, Any], *, n_resamples: int = 1000, seed: int = 0) -> list[Comparison]:
    results = []
    for base, cand in _pair(baseline, base_root, candidate, cand_root):
        task = base.metrics["task"]
        base_rows = base.per_sample()
        cand_rows = cand.per_sample() if cand is not None else None
        for name, b in base.metrics["metrics"].items():
            higher = bool(b["higher_is_better"])
            tol = _tolerance(tolerances, task, name)
            c = (cand.metrics["metrics"].get(name) if cand is not None else None) or {}
            b_val, c_val = b.get("value"), c.get("value")
            common = dict(task=task, metric=name, baseline=b_val, candidate=c_val, higher_is_better=higher,
                          scale=float(b.get("scale", 1.0)))
            if b_val is None:
                results.append(Comparison(**common, allowed=0.0, regression=False, note="no baseline value"))
                continue
            allowed = max(float(tol.get("abs", 0.0)), float(tol.get("rel", 0.0)) * abs(b_val))
            if c_val is None:
                note = "candidate run missing" if cand is None else "metric missing in candidate"
                results.append(Comparison(**common, allowed=allowed, regression=True, note=note))
                continue
            worse = (b_val - c_val) if higher else (c_val - b_val)
            note = ""
            if b.get("variant") != c.get("variant"):
                note = f"variant differs: {b.get('variant')} vs {c.get('variant')}"
            spec = (b.get("extra") or {}).get("per_sample")
            ci, n_paired = None, 0
            if spec and n_resamples > 0 and base_rows is not None and cand_rows is not None:
                ci, n_paired = paired_bootstrap(base_rows, cand_rows, spec, n_resamples=n_resamples, seed=seed)
            results.append(Comparison(**common, allowed=allowed, regression=worse > allowed + 1e-12,
                                      ci95=ci, n_paired=n_paired, note=note))
    return results


def _fmt(value: float | None, scale: float) -> str:
    return "–" if value is None else f"{value * scale:.4g}"


def render(comparisons: Sequence[Comparison]) -> str:
    header = "| task | metric | baseline | candidate | Δ | allowed | paired 95% CI of Δ (n) | verdict |"
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        arrow = "↑" if c.higher_is_better else "↓"
        ci = (f"[{c.ci95[0] * c.scale:+.4g}, {c.ci95[1] * c.scale:+.4g}] ({c.n_paired})" if c.ci95 else "–")
        verdict = "**REGRESSION**" if c.regression else "ok"
        if c.note:
            verdict += f" ({c.note})"
        delta = "–" if c.delta is None else f"{c.delta * c.scale:+.4g}"
        lines.append(f"| {c.task} | {c.metric} {arrow} | {_fmt(c.baseline, c.scale)} | {_fmt(c.candidate, c.scale)} "
                     f"| {delta} | {c.allowed * c.scale:.4g} | {ci} | {verdict} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mio-eval gate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="metrics.json, run dir or results root")
    parser.add_argument("--candidate", required=True, help="metrics.json, run dir or results root")
    parser.add_argument("--tolerance", help="YAML/JSON: default: {abs, rel}; metrics: {name or task/name: {abs, rel}}")
    parser.add_argument("--bootstrap", type=int, default=1000, help="paired bootstrap resamples (0: off)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage error -> 2, --help -> 0
        return int(exc.code or 0)
    try:
        tolerances = load_tolerances(args.tolerance)
        baseline, base_root = load_side(args.baseline)
        candidate, cand_root = load_side(args.candidate)
        comparisons = compare(baseline, base_root, candidate, cand_root, tolerances,
                              n_resamples=args.bootstrap, seed=args.seed)
    except ConfigError as exc:
        print(f"mio-eval gate: error: {exc}", file=sys.stderr)
        return 2
    print(render(comparisons), end="")
    regressions = [c for c in comparisons if c.regression]
    if regressions:
        names = ", ".join(f"{c.task}·{c.metric}" for c in regressions)
        print(f"mio-eval gate: {len(regressions)} regression(s): {names}", file=sys.stderr)
        return 1
    print(f"mio-eval gate: no regression ({len(comparisons)} metrics compared)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
