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

    n_errors: {abs: 0}                 # more failed samples than the baseline: a regression

A candidate cannot pass by scoring fewer or easier samples, or by scoring differently:

* **samples**: every sample the baseline scored must be in the candidate's run (a dropped sample
  fails the gate as "samples dropped", never as a metric regression);
* **errors**: ``n_errors`` may not grow beyond its tolerance (default 0);
* **metrics**: a metric missing, ``None`` or NaN in the candidate is a regression; where both runs
  kept per-sample scores (``scores.jsonl``) and the metric says how it is built from them
  (``extra.per_sample``: the mean of a field, or a ratio of two summed fields), both sides are
  recomputed on the samples *both* scored, so a candidate's failures neither help nor hide;
* **protocol**: a metric's variant or scoring provenance, the normaliser, or a judge (model and
  checkpoint digest) that differ make the comparison meaningless: exit 2 naming it, unless
  ``--allow-protocol-change``.

``--decide tolerance`` (default): regression when the shared-sample difference is worse than the
tolerance. ``--decide bootstrap``: regression when the whole 95% paired-bootstrap interval
(``scipy.stats.bootstrap(paired=True)``, percentile method, seeded) of candidate − baseline lies
beyond the tolerance in the bad direction. The interval is reported either way.

Exit codes: 0 no regression, 1 regression, 2 unusable input or a protocol change.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mio_eval.errors import ConfigError
from mio_eval.results import RunResult, read_metrics_json, read_scores, runs_at

__all__ = ["Comparison", "Check", "GateResult", "compare", "gate", "load_side", "paired_bootstrap", "main",
           "read_scores", "read_metrics_json"]

DECISIONS = ("tolerance", "bootstrap")


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
    basis: str = "headline"  # "shared samples" when recomputed on the samples both runs scored

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.candidate is None:
            return None
        return self.candidate - self.baseline


@dataclass(frozen=True)
class Check:
    """A run-level verdict: ``samples`` (dropped), ``errors`` (more failures), ``run`` (missing)."""

    task: str
    model: str
    kind: str
    regression: bool
    message: str


@dataclass(frozen=True)
class GateResult:
    comparisons: list[Comparison] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    protocol: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[str]:
        return ([f"{c.task}: {c.message}" for c in self.checks if c.regression]
                + [f"{c.task}·{c.metric}" for c in self.comparisons if c.regression])


def load_side(path: str | Path) -> tuple[list[RunResult], bool]:
    """The runs of one side and whether it was a results root (several runs): :func:`runs_at`."""
    return runs_at(path, strict=True)


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
    if not isinstance(data.get("metrics", {}) or {}, dict) or not isinstance(data.get("default", {}) or {}, dict):
        raise ConfigError(f"{path}: default and metrics must be mappings")
    for name, tol in [("default", data.get("default", {})), *(data.get("metrics") or {}).items()]:
        bad = set(tol or {}) - {"abs", "rel"}
        if bad or any(not isinstance(v, (int, float)) or v < 0 for v in (tol or {}).values()):
            raise ConfigError(f"{path}: tolerance {name!r} must be {{abs: >=0, rel: >=0}}, got {tol!r}")
    return {"default": data.get("default") or {}, "metrics": data.get("metrics") or {}}


def _tolerance(tolerances: Mapping[str, Any], task: str, metric: str) -> Mapping[str, float]:
    specific = tolerances["metrics"]
    if metric == "n_errors":  # failures: none more than the baseline unless a tolerance says so
        return specific.get(f"{task}/n_errors") or specific.get("n_errors") or {"abs": 0, "rel": 0}
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


def _shared_ids(base_rows, cand_rows, spec) -> list[str]:
    return sorted(i for i in base_rows if _usable(base_rows.get(i), spec) and _usable(cand_rows.get(i), spec))


def _point(rows, ids, spec) -> float | None:
    num, den = _sample_values(rows, ids, spec)
    if den is None:
        return float(num.mean())
    total = float(den.sum())
    return float(num.sum()) / total if total else None


def paired_bootstrap(base_rows, cand_rows, spec: Mapping[str, Any], *, n_resamples: int = 1000,
                     seed: int = 0) -> tuple[tuple[float, float] | None, int]:
    """95% interval of (candidate − baseline) over the samples both sides scored:
    ``scipy.stats.bootstrap(paired=True)``, percentile method, seeded (mean of a field, or a
    ratio of summed fields as corpus WER is). None with fewer than two shared samples."""
    from scipy.stats import bootstrap

    ids = _shared_ids(base_rows, cand_rows, spec)
    if len(ids) < 2 or n_resamples < 1:
        return None, len(ids)
    b_num, b_den = _sample_values(base_rows, ids, spec)
    c_num, c_den = _sample_values(cand_rows, ids, spec)
    if b_den is None:
        data = (b_num, c_num)

        def statistic(b, c, axis):
            return c.mean(axis=axis) - b.mean(axis=axis)
    else:
        data = (b_num, b_den, c_num, c_den)

        def statistic(bn, bd, cn, cd, axis):
            with np.errstate(divide="ignore", invalid="ignore"):
                return cn.sum(axis=axis) / cd.sum(axis=axis) - bn.sum(axis=axis) / bd.sum(axis=axis)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a degenerate (constant) difference is a valid answer here
        result = bootstrap(data, statistic, paired=True, vectorized=True, n_resamples=n_resamples,
                           confidence_level=0.95, method="percentile", rng=np.random.default_rng(seed))
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return None, len(ids)
    return (low, high), len(ids)


def _pair(baseline: list[RunResult], base_root: bool, candidate: list[RunResult], cand_root: bool):
    if base_root and cand_root:
        cands = {r.key: r for r in candidate}
        return [(b, cands.get(b.key)) for b in baseline]
    by_task: dict[str, RunResult] = {}
    for run in candidate:
        if run.task in by_task:
            raise ConfigError(f"candidate holds several runs of task {run.task!r}; pass one run dir")
        by_task[run.task] = run
    return [(b, by_task.get(b.task)) for b in baseline]


def _judge_ids(run: RunResult) -> list[tuple[Any, ...]]:
    return sorted((str(j.get("role", "judge")), str(j.get("model")), str(j.get("sha256") or j.get("package") or ""))
                  for j in run.data.get("judges") or [] if isinstance(j, Mapping))


def protocol_changes(base: RunResult, cand: RunResult) -> list[str]:
    """How the candidate was scored differently from the baseline (empty: same protocol)."""
    task = base.task
    problems = []
    for name, b in base.metrics.items():
        c = cand.metrics.get(name)
        if not c:
            continue
        for key in ("variant", "provenance"):
            if b.get(key) != c.get(key):
                problems.append(f"{task}·{name} {key}: {b.get(key)!r} -> {c.get(key)!r}")
    b_norm = (base.data.get("scoring") or {}).get("normalizer")
    c_norm = (cand.data.get("scoring") or {}).get("normalizer")
    if b_norm != c_norm:
        problems.append(f"{task} normaliser: {b_norm!r} -> {c_norm!r}")
    if _judge_ids(base) != _judge_ids(cand):
        problems.append(f"{task} judge: {_judge_ids(base)} -> {_judge_ids(cand)}")
    return problems


def _run_checks(base: RunResult, cand: RunResult | None, base_rows, cand_rows, tolerances) -> list[Check]:
    task, model = base.task, base.model
    if cand is None:
        return [Check(task, model, "run", True, "candidate run missing")]
    checks = []
    if base_rows is not None and cand_rows is not None:
        dropped = sorted(set(base_rows) - set(cand_rows))
        if dropped:
            checks.append(Check(task, model, "samples", True,
                                f"samples dropped: {len(dropped)} of the baseline's {len(base_rows)} are not in the "
                                f"candidate (e.g. {dropped[0]})"))
    b_n, c_n = base.data.get("n"), cand.data.get("n")
    if not checks and isinstance(b_n, int) and isinstance(c_n, int) and c_n < b_n:
        checks.append(Check(task, model, "samples", True, f"samples dropped: candidate n={c_n} < baseline n={b_n}"))
    b_err, c_err = base.data.get("n_errors"), cand.data.get("n_errors")
    if isinstance(b_err, int) and isinstance(c_err, int):
        tol = _tolerance(tolerances, task, "n_errors")
        allowed = max(float(tol.get("abs", 0.0)), float(tol.get("rel", 0.0)) * b_err)
        if c_err - b_err > allowed:
            checks.append(Check(task, model, "errors", True,
                                f"more failed samples: {b_err} -> {c_err} (allowed +{allowed:g})"))
    if cand.data.get("failed"):
        checks.append(Check(task, model, "run", True, f"candidate run failed: {cand.data['failed']}"))
    return checks


def gate(baseline: list[RunResult], base_root: bool, candidate: list[RunResult], cand_root: bool, tolerances: Mapping[str, Any],
         *, decide: str = "tolerance", allow_protocol_change: bool = False, n_resamples: int = 1000,
         seed: int = 0) -> GateResult:
    """Every check of the gate (see the module docstring)."""
    if decide not in DECISIONS:
        raise ConfigError(f"--decide must be one of {', '.join(DECISIONS)}, got {decide!r}")
    result = GateResult()
    for base, cand in _pair(baseline, base_root, candidate, cand_root):
        base_rows = base.per_sample()
        cand_rows = cand.per_sample() if cand is not None else None
        if cand is not None:
            result.protocol.extend(protocol_changes(base, cand))
        result.checks.extend(_run_checks(base, cand, base_rows, cand_rows, tolerances))
        result.comparisons.extend(_compare_metrics(base, cand, base_rows, cand_rows, tolerances, decide=decide,
                                                   n_resamples=n_resamples, seed=seed))
    if result.protocol and not allow_protocol_change:
        raise ConfigError(f"protocol changed, the runs are not comparable: {result.protocol[0]}"
                          + (f" (+{len(result.protocol) - 1} more)" if len(result.protocol) > 1 else "")
                          + "; rescore one side the same way, or pass --allow-protocol-change")
    return result


def compare(baseline: list[RunResult], base_root: bool, candidate: list[RunResult], cand_root: bool,
            tolerances: Mapping[str, Any], *, n_resamples: int = 1000, seed: int = 0,
            decide: str = "tolerance") -> list[Comparison]:
    """The per-metric comparisons only (no run-level checks, no protocol check)."""
    results = []
    for base, cand in _pair(baseline, base_root, candidate, cand_root):
        base_rows = base.per_sample()
        cand_rows = cand.per_sample() if cand is not None else None
        results.extend(_compare_metrics(base, cand, base_rows, cand_rows, tolerances, decide=decide,
                                        n_resamples=n_resamples, seed=seed))
    return results


def _compare_metrics(base: RunResult, cand: RunResult | None, base_rows, cand_rows, tolerances, *, decide: str,
                     n_resamples: int, seed: int) -> list[Comparison]:
    task = base.task
    results = []
    for name, b in base.metrics.items():
        higher = bool(b["higher_is_better"])
        tol = _tolerance(tolerances, task, name)
        c = (cand.metrics.get(name) if cand is not None else None) or {}
        b_val, c_val = b.get("value"), c.get("value")
        common = dict(task=task, metric=name, higher_is_better=higher, scale=float(b.get("scale", 1.0)))
        if b_val is None or (isinstance(b_val, float) and math.isnan(b_val)):
            results.append(Comparison(**common, baseline=b_val, candidate=c_val, allowed=0.0, regression=False,
                                      note="no baseline value"))
            continue
        allowed = max(float(tol.get("abs", 0.0)), float(tol.get("rel", 0.0)) * abs(b_val))
        if c_val is None or (isinstance(c_val, float) and math.isnan(c_val)):
            note = ("candidate run missing" if cand is None else "metric missing in candidate" if not c
                    else "candidate value is NaN" if c_val is not None else "candidate value is null")
            results.append(Comparison(**common, baseline=b_val, candidate=c_val, allowed=allowed, regression=True,
                                      note=note))
            continue
        spec = (b.get("extra") or {}).get("per_sample")
        basis, ci, n_paired = "headline", None, 0
        if spec and base_rows is not None and cand_rows is not None:
            ids = _shared_ids(base_rows, cand_rows, spec)
            if ids:
                b_shared, c_shared = _point(base_rows, ids, spec), _point(cand_rows, ids, spec)
                if b_shared is not None and c_shared is not None:
                    b_val, c_val, basis, n_paired = b_shared, c_shared, "shared samples", len(ids)
            if n_resamples > 0:
                ci, n_paired = paired_bootstrap(base_rows, cand_rows, spec, n_resamples=n_resamples, seed=seed)
        worse = (b_val - c_val) if higher else (c_val - b_val)
        if decide == "bootstrap":
            if ci is None:
                regression, note = worse > allowed + 1e-12, "no paired interval: decided by tolerance"
            else:
                bad_low = -ci[1] if higher else ci[0]  # the least-bad end of the interval, in "worse" units
                regression, note = bad_low > allowed + 1e-12, ""
        else:
            regression, note = worse > allowed + 1e-12, ""
        results.append(Comparison(**common, baseline=b_val, candidate=c_val, allowed=allowed, regression=regression,
                                  ci95=ci, n_paired=n_paired, note=note, basis=basis))
    return results


def _fmt(value: float | None, scale: float) -> str:
    return "–" if value is None else f"{value * scale:.4g}"


def render(comparisons: Sequence[Comparison], checks: Sequence[Check] = ()) -> str:
    header = "| task | metric | baseline | candidate | Δ | allowed | paired 95% CI of Δ (n) | compared on | verdict |"
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        arrow = "↑" if c.higher_is_better else "↓"
        ci = (f"[{c.ci95[0] * c.scale:+.4g}, {c.ci95[1] * c.scale:+.4g}] ({c.n_paired})" if c.ci95 else "–")
        verdict = "**REGRESSION**" if c.regression else "ok"
        if c.note:
            verdict += f" ({c.note})"
        delta = "–" if c.delta is None else f"{c.delta * c.scale:+.4g}"
        basis = f"{c.n_paired} shared samples" if c.basis == "shared samples" else "headline values"
        lines.append(f"| {c.task} | {c.metric} {arrow} | {_fmt(c.baseline, c.scale)} | {_fmt(c.candidate, c.scale)} "
                     f"| {delta} | {c.allowed * c.scale:.4g} | {ci} | {basis} | {verdict} |")
    for check in checks:
        lines.append(f"| {check.task} | ({check.kind}) | | | | | | | **REGRESSION** ({check.message}) |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mio-eval gate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="metrics.json, run dir or results root")
    parser.add_argument("--candidate", required=True, help="metrics.json, run dir or results root")
    parser.add_argument("--tolerance", help="YAML/JSON: default: {abs, rel}; metrics: {name or task/name: {abs, rel}}")
    parser.add_argument("--bootstrap", type=int, default=1000, help="paired bootstrap resamples (0: off)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--decide", default="tolerance", choices=DECISIONS,
                        help="tolerance: the shared-sample difference vs the tolerance; bootstrap: the whole 95%% "
                             "paired interval beyond the tolerance")
    parser.add_argument("--allow-protocol-change", action="store_true",
                        help="compare although variant, normaliser, judge or scoring provenance differ")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage error -> 2, --help -> 0
        return int(exc.code or 0)
    try:
        tolerances = load_tolerances(args.tolerance)
        baseline, base_root = load_side(args.baseline)
        candidate, cand_root = load_side(args.candidate)
        result = gate(baseline, base_root, candidate, cand_root, tolerances, decide=args.decide,
                      allow_protocol_change=args.allow_protocol_change, n_resamples=args.bootstrap, seed=args.seed)
    except ConfigError as exc:
        print(f"mio-eval gate: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(render(result.comparisons, result.checks), end="")
    for change in result.protocol:
        print(f"mio-eval gate: protocol change allowed: {change}", file=sys.stderr)
    regressions = result.regressions
    if regressions:
        print(f"mio-eval gate: {len(regressions)} regression(s): {'; '.join(regressions)}", file=sys.stderr)
        return 1
    shared = [c for c in result.comparisons if c.basis == "shared samples"]
    print(f"mio-eval gate: no regression ({len(result.comparisons)} metrics compared, {len(shared)} of them on the "
          f"samples both runs scored; decided by {args.decide})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
