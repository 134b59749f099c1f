"""VQA accuracy: ``mio_eval.metrics.vqa.vqa_accuracies`` beside the ORIGINAL reference scorers, on the
same synthetic split, in one run.

    python benchmarks/vqa_accuracy.py [--questions 200000] [--repeats 3] [--seed 0]
                                      [--variants vqa2021[,vqa2016,lmms,lmms_tokenized,lmms_2024]]
                                      [--cache DIR]

Baselines (fetched at benchmark time into ``--cache`` with git, never committed; set
``REF_GT_VISION_LAB_VQA`` / ``REF_EVOLVINGLMMS_LAB_LMMS_EVAL`` to local clones to skip cloning):
``vqa2016`` / ``vqa2021`` run GT-Vision-Lab/VQA ``vqaEval.py`` @458a8b2 / @a013f00 (``VQAEval.evaluate``
over the whole split, its two Python 2 print statements made calls); ``lmms`` / ``lmms_2024`` run
lmms-eval ``vqav2_process_results`` @75571cf / @7548ebe per question, ``lmms_tokenized`` its
``ok_vqa_process_results`` @75571cf (the loading code is ``scripts/reference/vqa_fixture.py``'s).

The split is seeded and VQAv2-shaped: 10 answers per question, ~38 % yes/no, ~12 % numbers,
the rest drawn from a Zipf-distributed vocabulary of 20,000 phrases; annotators agree with the
question's answer 70 % of the time and otherwise give a variant of it (case, final period,
article, number word, hyphen, comma) or another phrase; predictions are model-like ("Yes.",
"The red car", "two") or wrong. Both sides must return identical floats (asserted). Reported:
median seconds of ``--repeats`` runs and the ratio. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "reference"))

from mio_eval.metrics.vqa import VQA_VARIANTS, vqa_accuracies  # noqa: E402
from vqa_fixture import LMMS, OFFICIAL, lmms_module, lmms_scores, official_scores  # noqa: E402
from _sources import source  # noqa: E402

GOAL_RATIO = 10.0
LMMS_TASK = {"lmms": "vqav2", "lmms_2024": "vqav2", "lmms_tokenized": "ok_vqa"}


def reference_scorer(variant: str, cache: Path, scratch: Path):
    """``pairs -> accuracies`` with the original code of ``variant``."""
    if variant in OFFICIAL:
        git_dir = source("GT-Vision-Lab/VQA", OFFICIAL[variant], cache=cache)
        return lambda pairs: official_scores(git_dir, OFFICIAL[variant], pairs)
    git_dir = source("EvolvingLMMs-Lab/lmms-eval", LMMS[variant], cache=cache)
    module = lmms_module(git_dir, LMMS[variant], LMMS_TASK[variant], scratch)
    return lambda pairs: lmms_scores(module, LMMS_TASK[variant], pairs)


# --- the synthetic split ---------------------------------------------------------------------------

SYLLABLES = ["ba", "ko", "ri", "te", "mu", "sa", "lo", "ne", "pi", "dor", "ven", "gal", "tur", "mis", "chel"]
COLOURS = ["red", "blue", "white", "black", "green", "yellow", "brown", "gray", "orange", "pink"]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def make_split(n_questions, seed):
    rng = random.Random(seed)
    words = COLOURS + ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3))) for _ in range(4000)]
    vocab = []
    while len(vocab) < 20000:
        phrase = " ".join(rng.choice(words) for _ in range(rng.choice([1, 1, 1, 2, 2, 3])))
        if rng.random() < 0.03:
            phrase = phrase.replace(" ", "-", 1) if " " in phrase else phrase + "'s"
        vocab.append(phrase)
    weights = [1 / (rank + 1) for rank in range(len(vocab))]  # Zipf
    cum = list(_accumulate(weights))

    def variant_of(answer):
        r = rng.random()
        if r < 0.25:
            return answer.capitalize()
        if r < 0.45:
            return answer + "."
        if r < 0.6:
            return "the " + answer
        if r < 0.7 and answer.isdigit() and int(answer) <= 10:
            return NUMBER_WORDS[int(answer)]
        if r < 0.8:
            return answer.replace(" ", ", ", 1)
        if r < 0.9:
            return answer.replace(" ", "-", 1)
        return f" {answer}\n"

    predictions, answers_lists = [], []
    for _ in range(n_questions):
        r = rng.random()
        if r < 0.38:
            truth, other = rng.choice([("yes", "no"), ("no", "yes")])
        elif r < 0.5:
            k = min(int(rng.expovariate(0.35)), 30)
            truth, other = str(k), str(k + rng.choice([-1, 1, 2]))
        else:
            truth, other = rng.choices(vocab, cum_weights=cum, k=2)
        answers = []
        for _ in range(10):
            a = rng.random()
            answers.append(truth if a < 0.7 else other if a < 0.85 else variant_of(truth) if a < 0.95
                           else rng.choices(vocab, cum_weights=cum)[0])
        p = rng.random()
        pred = truth if p < 0.35 else variant_of(truth) if p < 0.6 else other if p < 0.8 else \
            rng.choices(vocab, cum_weights=cum)[0]
        if rng.random() < 0.1:
            pred = f"The answer is {pred}."
        predictions.append(pred)
        answers_lists.append(answers)
    return predictions, answers_lists


def _accumulate(values):
    total = 0.0
    for v in values:
        total += v
        yield total


# --- timing --------------------------------------------------------------------------------------------


def timed(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default="vqa2021", help="comma-separated; any of " + ", ".join(VQA_VARIANTS))
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mio-eval-reference")
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in VQA_VARIANTS:
            parser.error(f"unknown variant {v!r}; choose from {', '.join(VQA_VARIANTS)}")

    start = time.perf_counter()
    predictions, answers_lists = make_split(args.questions, args.seed)
    distinct = len(set(predictions).union(*map(set, answers_lists)))
    print(f"# {args.questions:,} questions x 10 answers (seed {args.seed}), {distinct:,} distinct strings, "
          f"built in {time.perf_counter() - start:.1f} s")
    print(f"# Python {platform.python_version()}, {platform.machine()}, median of {args.repeats}")
    print()
    print("| variant | mio-eval vqa_accuracies | original reference scorer | ratio | mean accuracy "
          "| goal ≥ 10× |")
    print("|---|---|---|---|---|---|")
    ok = True
    pairs = list(zip(predictions, answers_lists))
    scratch = tempfile.TemporaryDirectory()
    for variant in variants:
        reference = reference_scorer(variant, args.cache, Path(scratch.name))
        ours_s, ours = timed(lambda: vqa_accuracies(predictions, answers_lists, variant=variant), args.repeats)
        base_s, base = timed(lambda: reference(pairs), args.repeats)
        if ours != base:
            bad = next(i for i, (a, b) in enumerate(zip(ours, base)) if a != b)
            sys.exit(f"{variant}: values differ at question {bad}: {ours[bad]!r} != {base[bad]!r}")
        ratio = base_s / ours_s
        ok &= ratio >= GOAL_RATIO
        print(f"| {variant} | {ours_s:.3f} s ({1e6 * ours_s / args.questions:.1f} µs/q) | "
              f"{base_s:.2f} s ({1e6 * base_s / args.questions:.1f} µs/q) | **{ratio:.1f}×** | "
              f"{100 * sum(ours) / len(ours):.2f} | {'yes' if ratio >= GOAL_RATIO else 'no'} |")
    print()
    print("values identical to the original scorers, question by question: yes")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
