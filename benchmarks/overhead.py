"""The harness's own cost: per sample (an instant adapter over 10,000 samples) and at start-up
(a 2-sample ``mio-eval`` run), each beside a baseline measured in the same run.

    python benchmarks/overhead.py [--samples 10000] [--repeats 3]

Ratios, not absolute seconds, are what to compare across machines (these machines are noisy).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mio_eval.metrics.base import MetricResult
from mio_eval.models.dummy import DummyAdapter
from mio_eval.runner import RunnerSettings, evaluate
from mio_eval.tasks.base import ScoreReport
from mio_eval.types import Modality, Request, Sample, Text


class ExactMatchTask:
    """A trivial in-memory text task: the answer is the prompt, scored by exact match."""

    name = "overhead"
    input_modalities = frozenset({Modality.TEXT})
    output_modality = Modality.TEXT
    scoring_keys = ()

    def __init__(self, n: int) -> None:
        self._samples = [Sample(id=f"q{i}", parts=(Text(f"question {i} " * (1 + i % 7)),), targets=(f"question {i} ",))
                         for i in range(n)]

    def samples(self):
        return self._samples

    def request(self, sample):
        return Request(sample_id=sample.id, parts=sample.parts)

    def prediction(self, sample, output):
        return output.text

    def score(self, generated, *, work_dir):
        rows = tuple({"id": g.sample.id, "error": g.error, "correct": g.prediction == g.sample.targets[0]}
                     for g in generated)
        value = sum(r["correct"] for r in rows) / len(rows)
        return ScoreReport(metrics=(MetricResult("acc", value, True, "exact", "benchmark", n=len(rows)),),
                           per_sample=rows)


def per_sample_cost(n: int, batch_size: int) -> tuple[float, float]:
    task, adapter = ExactMatchTask(n), DummyAdapter()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        evaluate(task, adapter, run_dir=Path(tmp), fingerprint="bench", run_info={},
                 settings=RunnerSettings(batch_size=batch_size, progress=False))
        harness = time.perf_counter() - started
    # Baseline: the same adapter calls and the same scoring with no harness around them.
    started = time.perf_counter()
    samples = task.samples()
    outputs = []
    for i in range(0, n, batch_size):
        outputs += adapter.generate([task.request(s) for s in samples[i:i + batch_size]], media_dir=Path("."))
    sum(o.text == s.targets[0] for o, s in zip(outputs, samples))
    bare = time.perf_counter() - started
    return harness, bare


def timed(cmd: list[str], cwd: str) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    runs = [per_sample_cost(args.samples, args.batch_size) for _ in range(args.repeats)]
    harness = statistics.median(r[0] for r in runs)
    bare = statistics.median(r[1] for r in runs)
    print(f"per-sample: {args.samples} samples, batch {args.batch_size}: harness {harness:.3f} s "
          f"= {1000 * harness / args.samples:.4f} ms/sample; bare loop {bare:.3f} s; "
          f"harness overhead {1000 * (harness - bare) / args.samples:.4f} ms/sample (goal <= 0.2)")

    with tempfile.TemporaryDirectory() as tmp:
        cli = [sys.executable, "-m", "mio_eval.cli", "task=tts_demo", "model=dummy", "runner.limit=2",
               "runner.progress=false", "runner.overwrite=true", f"paths.results_dir={tmp}/results"]
        startup = statistics.median(timed(cli, tmp) for _ in range(args.repeats))
        generate_only = statistics.median(timed(cli + ["runner.stage=generate"], tmp) for _ in range(args.repeats))
        python = statistics.median(timed([sys.executable, "-c", "pass"], tmp) for _ in range(args.repeats))
        hydra = statistics.median(timed([sys.executable, "-c", "import hydra"], tmp) for _ in range(args.repeats))
    print(f"start-up: mio-eval 2-sample tts_demo run, generate only (config, task, store, 2 wavs) "
          f"{generate_only:.2f} s (goal <= 2 s); the same with scoring by the pocketsphinx judge "
          f"{startup:.2f} s; python -c pass {python:.2f} s; import hydra {hydra:.2f} s")

    if importlib.util.find_spec("lmms_eval") is None:
        print("lmms-eval: not installed in this environment (kept out of the core env on purpose); "
              "not measured here. install.md reports ~14 s for its 2-item local task with --model dummy.")
    else:
        print("lmms-eval: installed; run its dummy model on a local 2-item task beside this for a ratio.")


if __name__ == "__main__":
    main()
