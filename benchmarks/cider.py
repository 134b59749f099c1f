"""COCO CIDEr-D: mio-eval beside pycocoevalcap, timed side by side in one run.

    python benchmarks/cider.py [--images 5000] [--refs 5] [--repeats 3] [--seed 0]
                               [--all-metrics-images 500]   # 0 skips part 2

Part 1, CIDEr-D on synthetic caption-like data (seeded; raw strings with capitals and
punctuation, so the PTB tokenizer has work to do), end to end from raw strings:

(a) lmms-eval style: the pipeline shape of lmms-eval's ``coco_cap/utils.py``
    ``coco_aggregation_result`` for its ``coco_CIDEr`` metric: build a pycocotools ``COCO`` index
    and ``loadRes``, ``COCOEvalCap``, construct the seven scorers (``Meteor()`` starts its JVM),
    PTB-tokenise references and hypotheses (two JVMs), score the one metric. lmms-eval repeats
    all of this once per metric (seven times per coco_cap task); only the CIDEr pass is timed here.
(b) one plain pycocoevalcap pass: ``PTBTokenizer`` on references, on hypotheses, ``Cider()``.
(c) ours: ``mio_eval.metrics.caption.cider_per_image`` (= ``cider``, kept per image for the
    check): one JVM for both sides, numpy CIDEr-D.
Also the CIDEr step alone on the same pre-tokenised strings (``Cider().compute_score`` vs ours).

Part 2, all seven COCO numbers on a smaller set (METEOR is slow): lmms-eval style, seven
aggregations each re-tokenising, vs ``coco_caption_scores`` (one tokenisation pass).

Values are asserted equal (1e-9); times are the median of ``--repeats`` rounds, the pipelines
interleaved in each round. Ratios, not seconds, are what to compare across machines.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import statistics
import sys
import time

import numpy as np

from mio_eval.metrics.caption import _cider_d, cider_per_image, coco_caption_scores

COCO_METRICS = ["Bleu_4", "Bleu_3", "Bleu_2", "Bleu_1", "METEOR", "ROUGE_L", "CIDEr"]

# A small caption world: scenes are (subject, action, object/place); references paraphrase them.
SUBJECTS = ("man woman boy girl child person player skier surfer dog cat horse cow giraffe elephant zebra bear "
            "bird sheep couple group family chef worker cyclist skateboarder baby lady guy kid").split()
ADJECTIVES = ("young old small large big little brown black white red blue green yellow tall happy smiling "
              "wooden grassy snowy busy empty colorful striped spotted older adult baby").split()
ACTIONS = ("riding holding eating sitting standing walking playing throwing catching carrying looking "
           "flying laying jumping running grazing drinking cutting pulling watching").split()
OBJECTS = ("frisbee kite ball bike bicycle motorcycle skateboard surfboard umbrella pizza sandwich cake "
           "banana phone laptop bench table bed couch train bus truck car boat plane clock sign toilet "
           "sink kitchen field beach street road water snow grass fence tree building window").split()
PREPS = ("on", "in", "at", "near", "with", "next to", "by", "under", "behind", "along", "across", "in front of")
ARTICLES = ("a", "a", "the", "two", "some", "A", "The", "one")
TAILS = ("", "", "", ".", ".", ".", " .", "!", ", outside.", " in the background.", " on a sunny day.",
         " (in color).", " -- nice", " that's it.", "; very cute.")


def _phrase(rng: random.Random, noun: str) -> str:
    adj = f"{rng.choice(ADJECTIVES)} " if rng.random() < 0.5 else ""
    return f"{rng.choice(ARTICLES)} {adj}{noun}"


def _caption(rng: random.Random, scene: tuple[str, str, str], noise: float) -> str:
    subj, act, obj = (rng.choice(pool) if rng.random() < noise else word
                      for word, pool in zip(scene, (SUBJECTS, ACTIONS, OBJECTS)))
    verb = f"is {act}" if rng.random() < 0.8 else act
    words = f"{_phrase(rng, subj)} {verb} {rng.choice(PREPS)} {_phrase(rng, obj)}"
    if rng.random() < 0.4:
        words += f" {rng.choice(PREPS)} {_phrase(rng, rng.choice(OBJECTS))}"
    if rng.random() < 0.03:
        words = rng.choice(OBJECTS)  # a one-word caption
    text = words + rng.choice(TAILS)
    return text[0].upper() + text[1:] if rng.random() < 0.7 else text


def make_data(n_images: int, n_refs: int, seed: int) -> tuple[dict[int, list[str]], dict[int, str]]:
    rng = random.Random(seed)
    refs, preds = {}, {}
    for i in range(n_images):
        image_id = 100000 + 7 * i  # COCO-like integer ids
        scene = (rng.choice(SUBJECTS), rng.choice(ACTIONS), rng.choice(OBJECTS))
        refs[image_id] = [_caption(rng, scene, 0.15) for _ in range(n_refs)]
        preds[image_id] = _caption(rng, scene, 0.3)
    return refs, preds


@contextlib.contextmanager
def quiet():
    """Silence pycocotools' prints and the jars' stderr (fd level: they are child processes)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def lmms_style(refs: dict[int, list[str]], preds: dict[int, str], metric: str) -> tuple[float, list[float]]:
    """One lmms-eval ``coco_aggregation_result(results, metric)`` pass, reproduced with the same calls."""
    from pycocoevalcap.eval import Bleu, Cider, COCOEvalCap, Meteor, Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    from pycocotools.coco import COCO

    scorers = [(Bleu(4), "Bleu_1"), (Bleu(4), "Bleu_2"), (Bleu(4), "Bleu_3"), (Bleu(4), "Bleu_4"),
               (Meteor(), "METEOR"), (Rouge(), "ROUGE_L"), (Cider(), "CIDEr")]
    scorers_dict = {name: scorer for scorer, name in scorers}
    dataset, stored, idx = {"annotations": [], "images": []}, [], 0
    for image_id, answers in refs.items():  # one result per doc, as lmms-eval's process_results
        stored.append({"image_id": image_id, "caption": preds[image_id]})
        for answer in answers:
            dataset["annotations"].append({"image_id": image_id, "caption": answer, "id": idx})
            idx += 1
        dataset["images"].append({"id": image_id})
    coco = COCO()
    coco.dataset = dataset
    coco.createIndex()
    coco_eval = COCOEvalCap(coco, coco.loadRes(stored))
    gts = {i: coco_eval.coco.imgToAnns[i] for i in coco_eval.params["image_id"]}
    res = {i: coco_eval.cocoRes.imgToAnns[i] for i in coco_eval.params["image_id"]}
    tokenizer = PTBTokenizer()
    gts, res = tokenizer.tokenize(gts), tokenizer.tokenize(res)
    score, scores = scorers_dict[metric].compute_score(gts, res)
    if isinstance(score, list):  # Bleu returns all four orders
        n = int(metric.split("_")[-1])
        score, scores = score[n - 1], scores[n - 1]
    return float(score), list(map(float, scores))


def plain_pycocoevalcap(refs: dict[int, list[str]], preds: dict[int, str]) -> tuple[float, list[float]]:
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": c} for c in r] for i, r in refs.items()})
    res = tokenizer.tokenize({i: [{"caption": preds[i]}] for i in refs})
    score, scores = Cider().compute_score(gts, res)
    return float(score), list(map(float, scores))


def ours(refs: dict[int, list[str]], preds: dict[int, str]) -> tuple[float, list[float]]:
    per_image = cider_per_image(refs, preds)  # what cider() computes, kept per image for the check
    return float(np.mean(list(per_image.values()))), list(per_image.values())


def timed(fn, *args):
    with quiet():
        start = time.perf_counter()
        out = fn(*args)
        return time.perf_counter() - start, out


def check_equal(name: str, got: tuple[float, list[float]], want: tuple[float, list[float]]) -> None:
    diff = max([abs(got[0] - want[0])] + [abs(a - b) for a, b in zip(got[1], want[1])])
    if len(got[1]) != len(want[1]) or diff > 1e-9:
        raise AssertionError(f"{name}: differs from pycocoevalcap by {diff:g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--refs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all-metrics-images", type=int, default=500, help="part 2 size; 0 skips it")
    args = parser.parse_args()

    refs, preds = make_data(args.images, args.refs, args.seed)
    print(f"{platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
          f"{args.images} images x {args.refs} refs, seed {args.seed}, median of {args.repeats}")
    print("example:", refs[100000][0], "|", preds[100000])

    # Pre-tokenised copies for the CIDEr-step-only comparison.
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    with quiet():
        gts = PTBTokenizer().tokenize({i: [{"caption": c} for c in r] for i, r in refs.items()})
        res = PTBTokenizer().tokenize({i: [{"caption": preds[i]}] for i in refs})
    tok_refs, tok_hyps = list(gts.values()), [res[i][0] for i in gts]

    times: dict[str, list[float]] = {k: [] for k in ("a", "b", "c", "step_ref", "step_ours")}
    value = None
    for _ in range(args.repeats):
        t, a = timed(lmms_style, refs, preds, "CIDEr")
        times["a"].append(t)
        t, b = timed(plain_pycocoevalcap, refs, preds)
        times["b"].append(t)
        t, c = timed(ours, refs, preds)
        times["c"].append(t)
        check_equal("(a) lmms-eval style", a, b)
        check_equal("(c) ours", c, b)
        t, ref_step = timed(Cider().compute_score, gts, res)
        times["step_ref"].append(t)
        t, our_step = timed(_cider_d, tok_refs, tok_hyps)
        times["step_ours"].append(t)
        check_equal("CIDEr step", (float(our_step.mean()), our_step.tolist()),
                    (float(ref_step[0]), ref_step[1].tolist()))
        value = b[0]
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nCIDEr-D = {value:.6f} (x100 = {100 * value:.2f}); all pipelines equal to 1e-9, per image too")
    print(f"{'pipeline':<44}{'median s':>10}{'ours faster by':>16}")
    for key, label in (("a", "(a) lmms-eval style (coco_CIDEr aggregation)"), ("b", "(b) plain pycocoevalcap pass"),
                       ("c", "(c) mio-eval cider()")):
        print(f"{label:<44}{med[key]:>10.3f}{med[key] / med['c']:>15.1f}x")
    print(f"{'CIDEr step only, pycocoevalcap CiderScorer':<44}{med['step_ref']:>10.3f}"
          f"{med['step_ref'] / med['step_ours']:>15.1f}x")
    print(f"{'CIDEr step only, mio-eval (numpy)':<44}{med['step_ours']:>10.3f}")
    print("all rounds:", {k: [round(x, 3) for x in v] for k, v in times.items()})

    if args.all_metrics_images:
        small = dict(list(refs.items())[: args.all_metrics_images])
        small_preds = {i: preds[i] for i in small}
        t_lmms, t_ours = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            with quiet():
                lmms = {m: lmms_style(small, small_preds, m)[0] for m in COCO_METRICS}
            t_lmms.append(time.perf_counter() - start)
            t, mine = timed(coco_caption_scores, small, small_preds)
            t_ours.append(t)
            for m in COCO_METRICS:
                if abs(mine[m] - lmms[m]) > 1e-9:
                    raise AssertionError(f"{m}: {mine[m]} vs lmms-eval style {lmms[m]}")
        a, c = statistics.median(t_lmms), statistics.median(t_ours)
        print(f"\nAll 7 COCO metrics, {len(small)} images: " + ", ".join(f"{m} {mine[m]:.4f}" for m in COCO_METRICS))
        print(f"lmms-eval style, 7 aggregations: {a:.3f} s; coco_caption_scores: {c:.3f} s; "
              f"ours faster by {a / c:.1f}x")
        print("all rounds:", [round(x, 3) for x in t_lmms], [round(x, 3) for x in t_ours])


if __name__ == "__main__":
    main()
