"""Where the time of ``mio_tiny`` batch 8 vs batch 1 goes on CPU (``scaling.py batching`` explained).

    python benchmarks/batching_breakdown.py [--samples 64] [--repeats 3] [--new-tokens 16]

Builds the tiny random MIO checkpoint (``python -m mio_eval.models.mio_tiny``) and the same
LibriSpeech-layout split of noise clips as ``scaling.py batching``, loads the model once in this
process with one intra-op thread, takes the task's requests in the runner's order (longest first),
and runs them at batch 1 and at batch 8 alternately ``--repeats`` times, for beam search with 5
beams (the task's decoding: MIO's) and for greedy decoding. Each adapter call is split into
  render:   media encoding (audio read + the SpeechTokenizer, one clip at a time),
  generate: transformers' ``generate`` (``MIOAdapter._generate_ids``, prefill included),
  rest:     prompt tokenisation, answer decoding, bookkeeping;
medians are printed with the ratios. A last pass at each batch size under ``torch.profiler``
gives the self CPU time of the tensor operators whose work grows with the number of rows
(batch x beams): the vocabulary's log-softmax and top-k, the matrix products (the LM head over
the 12,692-token vocabulary among them), the KV cache's concatenation and reordering,
attention. ``generate`` minus those operators is the per-call overhead (Python, small-tensor
bookkeeping) that batching amortises; the operators are not amortised. So
``bound = batch-1 seconds / (batch-8 seconds - batch-8 overhead)``: the ratio batch 8 could reach
if its per-call overhead were zero (approximate: the profiler adds a few microseconds to each
operator call, so the operators are slightly overstated and the bound slightly understated). Outputs are compared (identical at both batch sizes).
Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scaling import TASK, _split  # noqa: E402  (the same data as ``scaling.py batching``)

# Operators whose work grows with rows x vocabulary or rows x cached positions.
ROW_OPS = ("aten::topk", "aten::_log_softmax", "aten::mm", "aten::cat", "aten::index_select",
           "aten::_scaled_dot_product_flash_attention_for_cpu", "aten::add", "aten::copy_")


def _timed(clock: dict[str, float], key: str, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            clock[key] += time.perf_counter() - start
    return wrapper


def _pass(model, requests, batch: int, media: Path) -> tuple[dict[str, float], list]:
    clock: dict[str, float] = defaultdict(float)
    render, generate_ids = model.render, model._generate_ids
    model.render = _timed(clock, "render", render)
    model._generate_ids = _timed(clock, "generate", generate_ids)
    outputs = []
    try:
        start = time.perf_counter()
        for i in range(0, len(requests), batch):
            outputs += model.generate(requests[i:i + batch], media_dir=media)
        clock["total"] = time.perf_counter() - start
    finally:
        del model.render, model._generate_ids  # back to the class's methods
    clock["rest"] = clock["total"] - clock["render"] - clock["generate"]
    return clock, [(o.text, o.error) for o in outputs]


def _row_ops(model, requests, batch: int, media: Path) -> dict[str, float]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        _pass(model, requests, batch, media)
    seconds = {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages() if e.key in ROW_OPS}
    return dict(sorted(seconds.items(), key=lambda kv: -kv[1]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=16)
    args = parser.parse_args(argv)
    import torch

    from mio_eval.api import build, compose

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}, Python {platform.python_version()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} intra-op thread(s)")
    work = Path(tempfile.mkdtemp(prefix="breakdown-"))
    try:
        data = _split(work / "data", args.samples)
        subprocess.run([sys.executable, "-m", "mio_eval.models.mio_tiny", str(work / "tiny")], check=True,
                       capture_output=True, timeout=600)
        for label, extra in (("beam search, 5 beams (the task's: MIO's decoding)", []),
                             ("greedy (num_beams=1)", ["task.generation.num_beams=1"])):
            cfg = compose([f"task={TASK}", "model=mio_tiny", f"model.path={work / 'tiny'}", f"paths.data_dir={data}",
                           f"task.generation.max_new_tokens={args.new_tokens}", *extra])
            task, model = build(cfg)
            model.load()
            requests = sorted((task.request(s) for s in task.samples()), key=lambda r: -r.size())  # the runner's order
            _pass(model, requests, 8, work / "media")  # warm-up
            runs: dict[int, list[dict[str, float]]] = {1: [], 8: []}
            answers = {}
            for _ in range(args.repeats):
                for batch in (1, 8):
                    clock, answers[batch] = _pass(model, requests, batch, work / "media")
                    runs[batch].append(clock)
            med = {b: {k: statistics.median(c[k] for c in runs[b]) for k in ("render", "generate", "rest", "total")}
                   for b in runs}
            ops = {b: _row_ops(model, requests, b, work / "media") for b in (1, 8)}
            print(f"\n{label}: {len(requests)} requests, {args.new_tokens} new tokens, median of {args.repeats} "
                  f"alternating runs; identical outputs at batch 1 and 8: {answers[1] == answers[8]}")
            print(f"  {'':10}{'render':>10}{'generate':>10}{'rest':>10}{'total':>10}")
            for b in (1, 8):
                print(f"  batch {b:<4}" + "".join(f"{med[b][k]:>9.2f}s" for k in ("render", "generate", "rest", "total")))
            print(f"  ratio     {med[1]['render'] / med[8]['render']:>9.2f}x{med[1]['generate'] / med[8]['generate']:>9.2f}x"
                  f"{med[1]['rest'] / med[8]['rest']:>9.2f}x{med[1]['total'] / med[8]['total']:>9.2f}x")
            for b in (1, 8):
                total = sum(ops[b].values())
                print(f"  batch {b}: row-scaling operators (profiled pass) {total:.2f} s: "
                      + ", ".join(f"{k.removeprefix('aten::')} {v:.2f}" for k, v in ops[b].items()))
            overhead8 = max(med[8]["generate"] - sum(ops[8].values()), 0.0)
            print(f"  batch 8 per-call overhead in generate (generate - operators): {overhead8:.2f} s; bound with it "
                  f"at zero: {med[1]['total'] / (med[8]['total'] - overhead8):.2f}x end to end")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


if __name__ == "__main__":
    main()
