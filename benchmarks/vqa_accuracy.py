"""VQA accuracy: ``mio_eval.metrics.vqa.vqa_accuracies`` beside a straightforward per-question
implementation of the reference scorer's algorithm, on the same synthetic split, in one run.

    python benchmarks/vqa_accuracy.py [--questions 200000] [--repeats 3] [--seed 0]
                                      [--variants vqa2021[,vqa2016,lmms,lmms_tokenized]]

The split is seeded and VQAv2-shaped: 10 answers per question, ~38 % yes/no, ~12 % numbers,
the rest drawn from a Zipf-distributed vocabulary of 20,000 phrases; annotators agree with the
question's answer 70 % of the time and otherwise give a variant of it (case, final period,
article, number word, hyphen, comma) or another phrase; predictions are model-like ("Yes.",
"The red car", "two") or wrong. The baseline is what a port of the reference script does per
question: normalise the 10 answers and the prediction (21 punctuation checks, each re-running
the digit-comma regex, then the word maps), then compare each answer dict with the other nine.
Both sides must return identical floats (asserted). Reported: median seconds of ``--repeats``
runs and the ratio. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import platform
import random
import re
import statistics
import sys
import time

from mio_eval.metrics import vqa as vqa_module
from mio_eval.metrics.vqa import VQA_VARIANTS, vqa_accuracies

GOAL_RATIO = 10.0

# --- the straightforward baseline, per question, as the reference scripts do it -------------------

PUNCT = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
           "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = ["a", "an", "the"]
CONTRACTIONS = dict(vqa_module._CONTRACTIONS)  # the shared data table
PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
COMMA = {"official": re.compile(r"(\d)(\,)(\d)"), "lmms": re.compile(r"(?<=\d)(\,)+(?=\d)")}


def punctuation(in_text, comma):
    out_text = in_text
    for p in PUNCT:
        if (p + " " in in_text or " " + p in in_text) or (re.search(comma, in_text) is not None):
            out_text = out_text.replace(p, "")
        else:
            out_text = out_text.replace(p, " ")
    return PERIOD.sub("", out_text, re.UNICODE)


def digit_article(in_text):
    out = []
    for word in in_text.lower().split():
        word = NUMBERS.get(word, word)
        if word not in ARTICLES:
            out.append(word)
    for i, word in enumerate(out):
        if word in CONTRACTIONS:
            out[i] = CONTRACTIONS[word]
    return " ".join(out)


def clean(text):
    return text.replace("\n", " ").replace("\t", " ").strip()


def leave_one_out(pred, gts):
    accs = []
    for gt in gts:
        others = [item for item in gts if item != gt]
        matching = [item for item in others if item["answer"] == pred]
        accs.append(min(1, float(len(matching)) / 3))
    return accs


def baseline_question(variant, pred, answers):
    gts = [{"answer": a, "answer_id": i + 1} for i, a in enumerate(answers)]
    if variant == "vqa2021":
        for gt in gts:
            gt["answer"] = clean(gt["answer"])
        pred = clean(pred)
        if len({gt["answer"] for gt in gts}) > 1:
            for gt in gts:
                gt["answer"] = digit_article(punctuation(gt["answer"], COMMA["official"]))
            pred = digit_article(punctuation(pred, COMMA["official"]))
    elif variant == "vqa2016":
        pred = digit_article(punctuation(clean(pred), COMMA["official"]))
        if len({gt["answer"] for gt in gts}) > 1:
            for gt in gts:
                gt["answer"] = punctuation(gt["answer"], COMMA["official"])
    elif variant == "lmms":
        for gt in gts:
            gt["answer"] = digit_article(punctuation(clean(gt["answer"]), COMMA["lmms"]))
        pred = digit_article(punctuation(clean(pred), COMMA["lmms"]))
    else:  # lmms_tokenized: EvalAIAnswerProcessor.__call__ on both sides

        def call(item):
            item = clean(item.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip())
            return digit_article(punctuation(item, COMMA["lmms"]))

        for gt in gts:
            gt["answer"] = call(gt["answer"])
        pred = call(pred)
    accs = leave_one_out(pred, gts)
    if variant.startswith("lmms"):
        return float(statistics.mean(accs))
    return float(sum(accs)) / len(accs)


def baseline(variant, predictions, answers_lists):
    return [baseline_question(variant, p, a) for p, a in zip(predictions, answers_lists)]


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
    print("| variant | mio-eval vqa_accuracies | straightforward per question | ratio | mean accuracy "
          "| goal ≥ 10× |")
    print("|---|---|---|---|---|---|")
    ok = True
    for variant in variants:
        ours_s, ours = timed(lambda: vqa_accuracies(predictions, answers_lists, variant=variant), args.repeats)
        base_s, base = timed(lambda: baseline(variant, predictions, answers_lists), args.repeats)
        if ours != base:
            bad = next(i for i, (a, b) in enumerate(zip(ours, base)) if a != b)
            sys.exit(f"{variant}: values differ at question {bad}: {ours[bad]!r} != {base[bad]!r}")
        ratio = base_s / ours_s
        ok &= ratio >= GOAL_RATIO
        print(f"| {variant} | {ours_s:.3f} s ({1e6 * ours_s / args.questions:.1f} µs/q) | "
              f"{base_s:.2f} s ({1e6 * base_s / args.questions:.1f} µs/q) | **{ratio:.1f}×** | "
              f"{100 * sum(ours) / len(ours):.2f} | {'yes' if ratio >= GOAL_RATIO else 'no'} |")
    print()
    print("values identical to the baseline, question by question: yes")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
