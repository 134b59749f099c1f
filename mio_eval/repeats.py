"""Mean and 95% confidence interval over repeated runs with different sampling seeds.

The interval is Student's t over the N per-run values (``mean ± t_{0.975, N-1} · s / √N``), the
usual way to report seed variance; it describes the spread due to sampling, not the sampling
error of the test set. Each per-run value stays in ``extra.values`` beside its seed.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Mapping, Sequence

from mio_eval.metrics.base import MetricResult

__all__ = ["mean_ci95", "aggregate_repeats"]


def mean_ci95(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """(mean, sample standard deviation, half-width of the 95% t interval); None for N < 2."""
    if not values:
        raise ValueError("no values to aggregate")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None, None
    from scipy.stats import t

    sd = statistics.stdev(values)
    return mean, sd, float(t.ppf(0.975, len(values) - 1) * sd / math.sqrt(len(values)))


def aggregate_repeats(runs: Sequence[tuple[int, Mapping[str, Any]]]) -> dict[str, Any]:
    """One metrics.json from the metrics.json of each seeded run: values are means over runs."""
    first = runs[0][1]
    metrics: dict[str, Any] = {}
    for name, data in first["metrics"].items():
        template = MetricResult.from_json(name, data)
        pairs = [(seed, r["metrics"][name]["value"]) for seed, r in runs if name in r["metrics"]]
        values = [v for _, v in pairs if v is not None]
        if not values:
            metrics[name] = {**template.to_json(), "value": None}
            continue
        mean, sd, half = mean_ci95(values)
        extra = {**dict(template.extra), "repeats": len(values), "seeds": [s for s, v in pairs if v is not None],
                 "values": values, "std": sd, "ci95_half_width": half,
                 "ci95": [mean - half, mean + half] if half is not None else None,
                 "ci_method": "Student t over per-seed values"}
        metrics[name] = {**template.to_json(), "value": mean, "extra": extra}
    # Counts are totals over the repeats (n = samples x repeats), so n = n_scored + n_errors holds.
    return {
        **{k: v for k, v in first.items() if k not in ("metrics", "started_at", "finished_at", "fingerprint")},
        "metrics": metrics,
        "n": sum(r["n"] for _, r in runs),
        "n_per_repeat": first["n"],
        "n_errors": sum(r["n_errors"] for _, r in runs),
        "n_scored": sum(r["n_scored"] for _, r in runs),
        "errors": {k: sum(r["errors"][k] for _, r in runs) for k in first["errors"]},
        "repeats": [{"seed": seed, "fingerprint": r["fingerprint"], "n_errors": r["n_errors"],
                     "run_dir": f"seed_{seed}"} for seed, r in runs],
        "started_at": runs[0][1]["started_at"],
        "finished_at": runs[-1][1]["finished_at"],
    }
