"""Scaling out on CPU: each ratio measured side by side in one run.

    python benchmarks/scaling.py batching [--samples 64] [--repeats 2]   mio_tiny, batch 8 vs batch 1, same outputs
    python benchmarks/scaling.py prefetch [--samples 64] [--repeats 3]   runner.prefetch on vs off, batch 1 and 8
    python benchmarks/scaling.py teardown [--repeats 3]    a run's end: quick exit vs interpreter teardown
    python benchmarks/scaling.py ranks [--samples 1000] [--repeats 1] [--model mio_tiny|dummy] [--launcher torchrun|nproc]   2 ranks vs 1 process
    python benchmarks/scaling.py merge [--samples 200000]    shard merge and resume vs generation (dummy)

``batching`` builds the tiny random MIO checkpoint (``python -m mio_eval.models.mio_tiny``) and
runs ``asr_librispeech_test_clean`` on a LibriSpeech-layout split of noise clips it writes, once
per batch size, in one process each; it compares the seconds spent in model calls (the sum of
the records' ``time_s``; start-up and model loading excluded).
``ranks`` runs the same command as one process and as ``python -m torch.distributed.run
--standalone --nproc-per-node 2 -m mio_eval`` (``--launcher nproc``: as ``mio-eval ...
runner.nproc=2``), wall clock of the whole command, start-up included, and generation seconds. ``merge`` generates N in-memory text samples with the dummy
adapter in one process (``stage=generate``), deals its records to 2 shard files as 2 ranks would
(``ShardWriter``, which vouches for what it wrote; rank 0's keeps its lines), and times
``merge_shards`` into a fresh run dir as rank 0 does (``dealt``, the writers' ``vouched`` and rank
0's ``held`` lines: placed by the plan, not read back for checks, rank 0's own shard not read) and
as a resume of a killed run does (no plan: by id), the first read of the merged records
(the merge leaves them undecoded until scoring decodes them), the store's load of the merged file,
then the resume of the finished run (load and plan, nothing pending); wall clock and CPU time
(``time.process_time``) of each. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASK = "asr_librispeech_test_clean"


def _split(root: Path, n: int) -> Path:
    import numpy as np
    import soundfile as sf

    folder = root / "LibriSpeech" / "test-clean" / "1089" / "134686"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        sf.write(folder / f"1089-134686-{i:04d}.flac", 0.01 * rng.standard_normal(1600 * (1 + i % 3)), 16000)
    (folder / "1089-134686.trans.txt").write_text("".join(f"1089-134686-{i:04d} WORD {i}\n" for i in range(n)))
    return root


def _mio(cwd: Path, args: list[str], launcher: list[str] | None = None, cpu: list[float] | None = None) -> float:
    """Wall seconds of one ``python -m mio_eval`` command; ``cpu`` gets the CPU seconds (user +
    system) of it and its children (the ranks), so the cores it got on this shared machine show."""
    import resource

    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *(launcher or []), "-m", "mio_eval", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode:
        sys.exit(f"failed: {' '.join(args)}\n{proc.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return time.perf_counter() - start


def _run_dir_view(run_dir: Path):
    predictions = sorted(({k: v for k, v in json.loads(x).items() if k != "time_s"}
                          for x in (run_dir / "predictions.jsonl").read_text().splitlines()), key=lambda r: r["id"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return predictions, metrics


def batching(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="scaling-"))
    try:
        data = _split(work / "data", args.samples)
        subprocess.run([sys.executable, "-m", "mio_eval.models.mio_tiny", str(work / "tiny")], check=True,
                       capture_output=True, timeout=600)
        common = [f"task={TASK}", "model=mio_tiny", f"model.path={work / 'tiny'}", f"paths.data_dir={data}",
                  "runner.progress=false", f"task.generation.max_new_tokens={args.new_tokens}"]
        seconds: dict[int, list[float]] = {1: [], 8: []}
        views = {}
        for repeat in range(args.repeats):  # alternating, so both batch sizes see the same machine
            for batch in (1, 8):
                results = work / f"b{batch}-{repeat}"
                _mio(work, [*common, f"runner.batch_size={batch}", f"paths.results_dir={results}"])
                views[batch] = _run_dir_view(results / "mio_tiny" / TASK)
                # Model calls only (each record's time_s is its batch's seconds / batch size): the
                # generate stage also loads the model, the same seconds for both.
                seconds[batch].append(sum(float(json.loads(x)["time_s"]) for x in
                                          (results / "mio_tiny" / TASK / "predictions.jsonl").read_text().splitlines()))
        same = views[1][0] == views[8][0]
        print(f"batching: mio_tiny on CPU, {args.samples} samples, beam search (task default), "
              f"{args.new_tokens} new tokens, seconds in model calls (sum of time_s), {args.repeats} alternating runs")
        for k in range(args.repeats):
            print(f"  run {k + 1}: batch 1 {seconds[1][k]:.2f} s, batch 8 {seconds[8][k]:.2f} s: "
                  f"{seconds[1][k] / seconds[8][k]:.2f}x")
        one, eight = statistics.median(seconds[1]), statistics.median(seconds[8])
        print(f"  median: batch 1 {one:.2f} s ({args.samples / one:.2f} samples/s), batch 8 {eight:.2f} s "
              f"({args.samples / eight:.2f} samples/s)")
        print(f"  ratio batch 8 / batch 1 throughput: {one / eight:.2f}x; identical predictions: {same}")
        print("  where the time goes, and the bound: python benchmarks/batching_breakdown.py")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ranks(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="scaling-"))
    try:
        data = _split(work / "data", args.samples)
        if args.model == "mio_tiny":
            subprocess.run([sys.executable, "-m", "mio_eval.models.mio_tiny", str(work / "tiny")], check=True,
                           capture_output=True, timeout=600)
            model = ["model=mio_tiny", f"model.path={work / 'tiny'}", "task.generation.max_new_tokens=16"]
            what = "mio_tiny (CPU-bound, 1 thread per process), beam search, 16 new tokens"
        else:
            model = ["model=dummy", f"model.delay_s={args.delay}"]
            what = f"dummy adapter sleeping {args.delay} s per batch (not CPU-bound)"
        common = [f"task={TASK}", *model, f"paths.data_dir={data}", "runner.progress=false", "runner.batch_size=2"]
        launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"] if args.launcher == "torchrun" else None
        extra = [] if args.launcher == "torchrun" else ["runner.nproc=2"]  # mio-eval's flag: the elastic API in process
        name = model[0].split("=")[1]
        print(f"ranks ({args.launcher}): {what}, {args.samples} samples, batch 2; generate = rank 0's generate stage "
              f"(model load, its shard, waiting for the other rank, the merge); {args.repeats} alternating run(s)")
        walls: list[float] = []
        for k in range(args.repeats):  # alternating: both see the same machine (its speed drifts)
            cpu: list[float] = []
            for d in ("one", "two"):
                shutil.rmtree(work / d, ignore_errors=True)
            one = _mio(work, [*common, f"paths.results_dir={work / 'one'}"], cpu=cpu)
            two = _mio(work, [*common, f"paths.results_dir={work / 'two'}", *extra], launcher, cpu=cpu)
            (p1, m1), (p2, m2) = (_run_dir_view(work / d / name / TASK) for d in ("one", "two"))
            same = m1["metrics"] == m2["metrics"] and p1 == p2
            g1, g2 = m1["times"]["generate_s"], m2["times"]["generate_s"]
            walls.append(one / two)
            print(f"  run {k + 1}: 1 process {one:.2f} s wall, {g1:.2f} s generating, {cpu[0]:.1f} CPU s "
                  f"({cpu[0] / one:.2f} cores); 2 ranks {two:.2f} s wall, {g2:.2f} s generating, {cpu[1]:.1f} CPU s "
                  f"(agent + 2 ranks, {cpu[1] / two:.2f} cores)")
            print(f"    speed-up: {one / two:.2f}x wall, {g1 / g2:.2f}x generation; identical predictions and "
                  f"metrics: {same}")
        print(f"  median speed-up: {statistics.median(walls):.2f}x wall")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def merge(args) -> None:
    from mio_eval.distributed import ShardWriter, balance, merge_shards
    from mio_eval.metrics.base import MetricResult
    from mio_eval.models.dummy import DummyAdapter
    from mio_eval.recordlines import no_gc
    from mio_eval.runner import RunnerSettings, evaluate
    from mio_eval.store import PredictionStore
    from mio_eval.tasks.base import ScoreReport
    from mio_eval.types import Modality, Request, Sample, Text

    class Echo:
        name = "echo"
        input_modalities = frozenset({Modality.TEXT})
        output_modality = Modality.TEXT
        scoring_keys = ()

        def __init__(self, n):
            self._samples = [Sample(id=f"q{i}", parts=(Text(f"question {i} " * (1 + i % 7)),), targets=("x",))
                             for i in range(n)]

        def samples(self):
            return self._samples

        def request(self, sample):
            return Request(sample_id=sample.id, parts=sample.parts)

        def prediction(self, sample, output):
            return output.text

        def score(self, generated, *, work_dir):
            return ScoreReport(metrics=(MetricResult("n", len(generated), True, "count", "count"),), per_sample=())

    def read_all(store):
        with no_gc():
            return [store.get(s.id) for s in task.samples()]

    def timed(call):
        start, cpu = time.perf_counter(), time.process_time()
        value = call()
        return value, time.perf_counter() - start, time.process_time() - cpu

    work = Path(tempfile.mkdtemp(prefix="scaling-"))
    try:
        task = Echo(args.samples)
        settings = RunnerSettings(progress=False, stage="generate", batch_size=args.batch_size)
        _, generate, generate_cpu = timed(lambda: evaluate(task, DummyAdapter(), run_dir=work / "gen", settings=settings,
                                                           fingerprint="f", run_info={}))
        reference = (work / "gen" / "predictions.jsonl").read_bytes()
        lines = reference.splitlines(keepends=True)
        dealt = balance([len(line) for line in lines], 2)  # the lines are in generation order already
        order = [json.loads(line)["id"] for line in lines]
        records = [json.loads(line) for line in lines]
        merges = {}
        for name, plan in (("merged", dealt), ("by_id", None)):
            vouched, held = {}, {}  # as the ranks report them (Group._report); rank 0 keeps its own lines
            for rank, indices in enumerate(dealt):  # each rank's shard, written as its ShardWriter does
                with ShardWriter(work / name, rank, keep=rank == 0) as writer:
                    writer.append([records[i] for i in indices])
                voucher = writer.voucher([order[i] for i in indices])
                vouched[voucher["name"]] = voucher["bytes"]
                if writer.lines is not None:
                    held[voucher["name"]] = writer.lines
            with PredictionStore(work / name).open(fingerprint="f", run_info={}) as store:
                merges[name] = timed(lambda store=store, plan=plan, vouched=vouched, held=held: merge_shards(
                    store, order, dealt=plan, vouched=vouched if plan else None, held=held if plan else None))
                if name == "merged":  # decode every record, as scoring does (GC paused as in planning)
                    _, first_read, first_read_cpu = timed(lambda: read_all(store))
            merges[name] += ((work / name / "predictions.jsonl").read_bytes() == reference,)
        _, load, load_cpu = timed(lambda: PredictionStore(work / "merged").open(fingerprint="f", run_info={}).close())
        _, resume, resume_cpu = timed(lambda: evaluate(task, DummyAdapter(), run_dir=work / "merged", settings=settings,
                                                       fingerprint="f", run_info={}))

        def share(wall, cpu):
            return (f"{wall:.3f} s ({cpu:.3f} s CPU) = {100 * wall / generate:.1f} % of generation's wall clock, "
                    f"{100 * cpu / generate_cpu:.1f} % of its CPU")

        print(f"merge: {args.samples} in-memory text samples, dummy adapter, batch {args.batch_size}, one process")
        print(f"  generation (stage=generate): {generate:.2f} s ({generate_cpu:.2f} s CPU; the rest is waiting for fsync)")
        for name, what in (("merged", "rank 0's merge of 2 vouched shards, placed by the plan (Group.lead)"),
                           ("by_id", "merge of a killed run's 2 shards by id (no plan: the runner, on resume)")):
            merged, wall, cpu, same = merges[name]
            print(f"  {what}, {merged} records: {share(wall, cpu)}; byte-identical to the one-process "
                  f"predictions.jsonl: {same}")
        print(f"  first read of every merged record (store.get: each line decoded, as scoring reads them): "
              f"{first_read:.2f} s ({first_read_cpu:.2f} s CPU)")
        print(f"  load of the merged run's predictions.jsonl (PredictionStore.open): {share(load, load_cpu)}")
        print(f"  resume of the finished run (load, plan, nothing to do): {share(resume, resume_cpu)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def prefetch(args) -> None:
    """``runner.prefetch`` on vs off, batch 1 and 8, alternating in one process (model calls: the
    sum of ``time_s``, which counts the wait for prefetched items; and this process's CPU)."""
    import torch

    from mio_eval import run

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="scaling-"))
    try:
        data = _split(work / "data", args.samples)
        subprocess.run([sys.executable, "-m", "mio_eval.models.mio_tiny", str(work / "tiny")], check=True,
                       capture_output=True, timeout=600)
        seconds: dict[tuple[int, str], list[float]] = {}
        cpu: dict[tuple[int, str], list[float]] = {}
        views = {}
        for _ in range(args.repeats):
            for batch in (1, 8):
                for flag in ("true", "false"):
                    results = work / f"b{batch}-{flag}"
                    shutil.rmtree(results, ignore_errors=True)
                    start = time.process_time()
                    with contextlib.redirect_stdout(io.StringIO()):  # the run's tables
                        run(TASK, "mio_tiny", [f"model.path={work / 'tiny'}", f"paths.data_dir={data}",
                                               "runner.progress=false", f"task.generation.max_new_tokens={args.new_tokens}",
                                               f"runner.batch_size={batch}", f"runner.prefetch={flag}",
                                               f"paths.results_dir={results}"])
                    cpu.setdefault((batch, flag), []).append(time.process_time() - start)
                    run_dir = results / "mio_tiny" / TASK
                    views[(batch, flag)] = _run_dir_view(run_dir)[0]
                    seconds.setdefault((batch, flag), []).append(sum(
                        float(json.loads(x)["time_s"]) for x in (run_dir / "predictions.jsonl").read_text().splitlines()))
        same = len({json.dumps(v, sort_keys=True) for v in views.values()}) == 1
        print(f"prefetch: mio_tiny on CPU (1 intra-op thread), {args.samples} samples, {args.new_tokens} new tokens, "
              f"{args.repeats} alternating runs in one process; seconds in model calls, CPU seconds of the run")
        for key in sorted(seconds):
            print(f"  batch {key[0]}, prefetch {key[1]:5}: " + ", ".join(f"{x:.2f}" for x in seconds[key])
                  + f" s (median {statistics.median(seconds[key]):.2f}); CPU "
                  + ", ".join(f"{x:.2f}" for x in cpu[key]) + " s")
        print(f"  identical predictions in all four settings: {same}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def teardown(args) -> None:
    """Seconds from a run's last line (``results: ...``) to its process's end: ``python -m
    mio_eval`` (``quick_exit``) vs the same ``main`` left to the interpreter's teardown."""
    work = Path(tempfile.mkdtemp(prefix="scaling-"))
    try:
        data = _split(work / "data", 4)
        subprocess.run([sys.executable, "-m", "mio_eval.models.mio_tiny", str(work / "tiny")], check=True,
                       capture_output=True, timeout=600)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        plain = ["-c", "import sys; from mio_eval.cli import main; sys.argv[0] = 'mio-eval'; main()"]
        tails: dict[str, list[float]] = {"quick exit (python -m mio_eval)": [], "interpreter teardown (main())": []}
        for k in range(args.repeats):
            for label, launcher in zip(tails, (["-m", "mio_eval"], plain)):
                cmd = [sys.executable, *launcher, f"task={TASK}", "model=mio_tiny", f"model.path={work / 'tiny'}",
                       f"paths.data_dir={data}", "runner.progress=false", "task.generation.max_new_tokens=4",
                       f"paths.results_dir={work / f'r{k}-{len(tails[label])}-{label[:5]}'}"]
                proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                last = None
                for line in proc.stdout:
                    if line.startswith("results: "):
                        last = time.perf_counter()
                if proc.wait() or last is None:
                    sys.exit(f"failed: {' '.join(cmd)}")
                tails[label].append(time.perf_counter() - last)
        print(f"teardown: mio_tiny, 4 samples, seconds from the 'results:' line to the process's end, {args.repeats} runs each")
        for label, values in tails.items():
            print(f"  {label}: " + ", ".join(f"{v:.2f}" for v in values) + f" s (median {statistics.median(values):.2f})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("batching")
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--new-tokens", type=int, default=16)
    p = sub.add_parser("prefetch")
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--new-tokens", type=int, default=16)
    p = sub.add_parser("teardown")
    p.add_argument("--repeats", type=int, default=3)
    p = sub.add_parser("ranks")
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--delay", type=float, default=0.5)
    p.add_argument("--launcher", choices=("torchrun", "nproc"), default="torchrun")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--model", choices=("mio_tiny", "dummy"), default="mio_tiny")
    p = sub.add_parser("merge")
    p.add_argument("--samples", type=int, default=200_000)
    p.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} (other engineers share this machine), Python {platform.python_version()}")
    {"batching": batching, "prefetch": prefetch, "teardown": teardown, "ranks": ranks, "merge": merge}[args.what](args)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


if __name__ == "__main__":
    main()
