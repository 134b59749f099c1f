"""The harness's own cost, each figure beside a baseline measured in the same run.

    python benchmarks/overhead.py [--samples 10000] [--batch-size 32] [--repeats 3] [--profile]

(a) per sample: N in-memory text samples through ``mio_eval.runner.evaluate`` (stage=all, no
    progress bar) with the instant ``dummy`` adapter and a trivial exact-match task defined here,
    beside a bare loop making the same adapter calls and the same scoring with no harness;
(b) start-up: ``mio-eval task=tts_demo model=dummy runner.limit=2`` as a subprocess (median of
    the repeats), split into the harness (``runner.stage=generate``) and the pocketsphinx judge
    that scores the two wavs, beside ``python -c pass`` and ``python -c "import hydra"``;
(c) lmms-eval's ``--model dummy`` on a trivial local 2-item task, when ``lmms_eval`` is importable.

Ratios, not absolute seconds, are what to compare across machines (these machines are noisy).
Speed is measured here and never asserted in tests.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import json
import platform
import pstats
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

GOAL_MS_PER_SAMPLE = 0.2
GOAL_STARTUP_S = 2.0


class ExactMatchTask:
    """A trivial in-memory text task: the answer is the prompt's first words, scored by exact match."""

    name = "overhead"
    input_modalities = frozenset({Modality.TEXT})
    output_modality = Modality.TEXT
    scoring_keys = ()

    def __init__(self, n: int) -> None:
        # Prompts of 1-7 repeats so that length sorting has work to do.
        self._samples = [Sample(id=f"q{i}", parts=(Text(f"question {i} " * (1 + i % 7)),), targets=(f"question {i} ",))
                         for i in range(n)]

    def samples(self) -> list[Sample]:
        return self._samples

    def request(self, sample: Sample) -> Request:
        return Request(sample_id=sample.id, parts=sample.parts)

    def prediction(self, sample: Sample, output) -> str:
        return output.text

    def score(self, generated, *, work_dir: Path) -> ScoreReport:
        rows = tuple({"id": g.sample.id, "error": g.error, "correct": g.prediction == g.sample.targets[0]}
                     for g in generated)
        value = sum(r["correct"] for r in rows) / len(rows)
        return ScoreReport(metrics=(MetricResult("acc", value, True, "exact", "benchmark", n=len(rows)),),
                           per_sample=rows)


def _harness(task: ExactMatchTask, batch_size: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        metrics = evaluate(task, DummyAdapter(), run_dir=Path(tmp), fingerprint="bench", run_info={},
                           settings=RunnerSettings(batch_size=batch_size, progress=False))
        seconds = time.perf_counter() - started
    assert metrics is not None and metrics["n"] == len(task.samples()) and metrics["n_errors"] == 0
    return seconds


def _bare(task: ExactMatchTask, batch_size: int) -> float:
    """The same adapter calls and the same scoring, with no store, sorting or records."""
    adapter = DummyAdapter()
    started = time.perf_counter()
    samples = task.samples()
    outputs = []
    for i in range(0, len(samples), batch_size):
        outputs += adapter.generate([task.request(s) for s in samples[i:i + batch_size]], media_dir=Path("."))
    sum(o.text == s.targets[0] for o, s in zip(outputs, samples))
    return time.perf_counter() - started


def per_sample(n: int, batch_size: int, repeats: int, profile: bool) -> dict[str, float]:
    task = ExactMatchTask(n)
    harness = statistics.median(_harness(task, batch_size) for _ in range(repeats))
    bare = statistics.median(_bare(task, batch_size) for _ in range(repeats))
    print(f"(a) per sample, {n} samples, batch {batch_size}, median of {repeats}:\n"
          f"    harness (runner.evaluate, stage=all) {harness:.3f} s = {1000 * harness / n:.4f} ms/sample "
          f"(goal <= {GOAL_MS_PER_SAMPLE} ms)\n"
          f"    bare loop (same adapter calls + scoring) {bare:.3f} s = {1000 * bare / n:.4f} ms/sample\n"
          f"    ratio harness/bare {harness / bare:.1f}x; harness's own cost {1000 * (harness - bare) / n:.4f} ms/sample")
    if profile or 1000 * harness / n > GOAL_MS_PER_SAMPLE:
        profiler = cProfile.Profile()
        profiler.enable()
        _harness(task, batch_size)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
        print("    cProfile of one harness run, by own time:\n" + out.getvalue())
    return {"harness_s": harness, "bare_s": bare}


def _timed(cmd: list[str], cwd: str) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return seconds


def _judge_cost(run_dir: Path, repeats: int) -> tuple[float, float]:
    """The pocketsphinx judge on the run's two wavs, in process: (decoder load s, decoding s)."""
    from mio_eval.models.pocketsphinx_asr import PocketSphinxASR
    from mio_eval.types import Audio

    wavs = sorted((run_dir / "media").rglob("*.wav"))
    assert len(wavs) == 2, wavs
    loads, decodes = [], []
    for _ in range(repeats):
        judge = PocketSphinxASR()
        started = time.perf_counter()
        judge.load()
        loads.append(time.perf_counter() - started)
        requests = [Request(sample_id=str(i), parts=(Audio(str(w)),)) for i, w in enumerate(wavs)]
        started = time.perf_counter()
        judge.generate(requests, media_dir=run_dir / "scoring")
        decodes.append(time.perf_counter() - started)
    return statistics.median(loads), statistics.median(decodes)


def startup(repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        cli = [sys.executable, "-m", "mio_eval.cli", "task=tts_demo", "model=dummy", "runner.limit=2",
               f"paths.results_dir={results}", "runner.progress=false", "runner.overwrite=true"]
        full = statistics.median(_timed(cli, tmp) for _ in range(repeats))
        generate = statistics.median(_timed(cli + ["runner.stage=generate"], tmp) for _ in range(repeats))
        judge_load, judge_decode = _judge_cost(results / "dummy" / "tts_demo", repeats)
        python = statistics.median(_timed([sys.executable, "-c", "pass"], tmp) for _ in range(repeats))
        hydra = statistics.median(_timed([sys.executable, "-c", "import hydra"], tmp) for _ in range(repeats))
    print(f"(b) start-up, `mio-eval task=tts_demo model=dummy runner.limit=2`, median of {repeats}:\n"
          f"    full run (generate + pocketsphinx scoring) {full:.2f} s (goal <= {GOAL_STARTUP_S} s)\n"
          f"    of which the judge: decoder load {judge_load:.2f} s + decoding 2 wavs {judge_decode:.2f} s "
          f"(measured in process)\n"
          f"    runner.stage=generate (config, build, store, 2 wavs; no judge) {generate:.2f} s\n"
          f"    baselines: python -c pass {python:.2f} s; python -c 'import hydra' {hydra:.2f} s")
    return {"full_s": full, "generate_s": generate, "judge_load_s": judge_load, "judge_decode_s": judge_decode,
            "python_s": python, "hydra_s": hydra}


_LMMS_TASK = """\
task: mio_overhead
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  max_new_tokens: 16
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""


def lmms_eval(repeats: int, mio_startup_s: float | None) -> dict[str, float] | None:
    if importlib.util.find_spec("lmms_eval") is None:
        print("(c) lmms-eval: NOT INSTALLED in this environment (kept out of the core env on purpose), so NOT "
              "measured here; `pip install lmms-eval` and rerun to measure it.")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "items.jsonl"
        data.write_text("".join(json.dumps({"question": f"say {w}", "answer": w}) + "\n" for w in ("yes", "no")))
        (Path(tmp) / "tasks").mkdir()
        (Path(tmp) / "tasks" / "mio_overhead.yaml").write_text(_LMMS_TASK.format(data=data))
        cmd = [sys.executable, "-m", "lmms_eval", "--model", "dummy", "--tasks", "mio_overhead", "--include_path",
               str(Path(tmp) / "tasks"), "--batch_size", "1", "--output_path", str(Path(tmp) / "out")]
        try:
            seconds = statistics.median(_timed(cmd, tmp) for _ in range(repeats))
        except RuntimeError as exc:
            print(f"(c) lmms-eval: installed but the 2-item local run failed, not measured: {exc}")
            return None
    ratio = f"; mio-eval full 2-sample run is {seconds / mio_startup_s:.1f}x faster" if mio_startup_s else ""
    print(f"(c) lmms-eval --model dummy, local 2-item task, median of {repeats}: {seconds:.2f} s{ratio}")
    return {"lmms_eval_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile the per-sample run (always above the goal)")
    parser.add_argument("--skip-startup", action="store_true")
    args = parser.parse_args()

    print(f"{time.strftime('%Y-%m-%d')}; Python {platform.python_version()}; {platform.machine()}; "
          f"{len(__import__('os').sched_getaffinity(0))} cores")
    per_sample(args.samples, args.batch_size, args.repeats, args.profile)
    started = None if args.skip_startup else startup(args.repeats)["full_s"]
    lmms_eval(args.repeats, started)


if __name__ == "__main__":
    main()
