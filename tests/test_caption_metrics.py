"""COCO caption metrics: vectors computed with pycocoevalcap 1.2 (salaniz/pycocoevalcap @ ad63453)
and agreement with pycocoevalcap itself.

JVM start-ups dominate the run time, so the reference pipeline (pycocoevalcap's PTBTokenizer on
references, then on hypotheses) runs once per module and METEOR's JVM is shared.
"""

import doctest
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

import mio_eval.metrics.caption as caption_module
from mio_eval.errors import ConfigError
from mio_eval.metrics.base import MetricResult
from mio_eval.metrics.caption import CiderD, cider, cider_per_image, coco_caption_scores, ptb_tokenize

# PTB tokenizer behaviour verified with the pycocoevalcap 1.2 jar under Java 17.
PTB_VECTORS = [
    ("A man's dog isn't on the grey/white sofa.", "a man 's dog is n't on the grey/white sofa"),
    ("The colour of the (red) car; it's 3.5 ft long... wow!",
     "the colour of the -lrb- red -rrb- car it 's 3.5 ft long wow"),
    ('Two people -- a man and a woman - walk "home" & eat.', "two people a man and a woman walk home & eat"),
    ("I can't believe they're gonna win, aren't they?", "i ca n't believe they 're gon na win are n't they"),
    ("A 1/2 eaten pizza costs $5 at 7:30 p.m. in the U.S.", "a 1/2 eaten pizza costs $ 5 at 7:30 p.m. in the u.s."),
    ("A dog's bone, the dogs' bones: {yes} [no]", "a dog 's bone the dogs bones -lcb- yes -rcb- -lsb- no -rsb-"),
    ("It's a well-known 3-year-old's toy*", "it 's a well-known 3-year-old 's toy *"),
    ("Café – naïve “quotes” and ‘single’ 😀 end", "café naïve quotes and single end"),
    ("line one\nline two", "line one line two"),
    ("", ""),
]

# CIDEr vectors verified with pycocoevalcap's CiderScorer on tokenised strings.
CIDER_VECTORS = [
    ({1: ["a b c d e"], 2: ["f g h i j"]}, {1: "a b c d e", 2: "f g h i j"}, 10.0, [10.0, 10.0]),
    ({1: ["x y z w v"], 2: ["p q r s t"]}, {1: "x y z", 2: "p q r s t"}, 7.434726703825023, [4.86945341, 10.0]),
    (
        {1: ["a man riding a horse", "a person on a horse"], 2: ["two dogs playing in snow", "dogs run in the snow"],
         3: ["a plate of food", "food on a white plate"]},
        {1: "a man on a horse", 2: "dogs playing in the snow", 3: "a plate with food"},
        3.1881495013894843,
        [3.39099343, 4.08333333, 2.09012174],
    ),
    (
        {1: ["a cat sits on a mat", "a cat is sitting on the mat", "there is a cat on the mat"],
         2: ["a dog runs in the park", "a brown dog running on grass", "the dog plays in a park"],
         3: ["a man rides a bicycle", "a person riding a bike down the street", "a man on a bike"]},
        {1: "a cat on a mat", 2: "a dog in a park", 3: "a man riding a bike"},
        2.7255564717363456,
        [3.25925504, 2.44926302, 2.46815135],
    ),
]

# Raw-caption material that gives the PTB lexer work: capitals, contractions, brackets, quotes,
# abbreviations before capitalised lines, numbers, slashes, dashes, unicode and an emoji.
RAW_WORDS = (
    "a A the The man Man WOMAN dog dog's dogs' isn't can't they're gonna cannot (red) [no] {yes} \"home\" "
    "'single' p.m. U.S. etc. Mr. a. e.g. Inc. St. 3.5 $5 7:30 1/2 grey/white well-known x-ray -- - , . ! ? ; : "
    "... & * Café naïve “quotes” – 😀 riding sitting on of with table horse bike street red white two"
).split()
TOKEN_WORDS = "a man woman dog on the of with table horse bike street red white two sitting riding".split()


def _raw_caption(rng: random.Random) -> str:
    if rng.random() < 0.06:
        return rng.choice(RAW_WORDS)  # one word (or one punctuation mark)
    text = " ".join(rng.choice(RAW_WORDS) for _ in range(rng.randint(2, 14)))
    text = text.replace(" ", rng.choice([" ", " ", "  ", "\t", "\n"]), 1)
    return text + rng.choice(["", ".", ".", "!", " .", "  ", " U.S.", " p.m."])


def _raw_data(seed: int, n_images: int = 220) -> tuple[dict, dict]:
    rng = random.Random(seed)
    refs = {1000 + i: [_raw_caption(rng) for _ in range(5)] for i in range(n_images)}
    preds = {i: _raw_caption(rng) for i in refs}
    preds[1000] = ""  # an empty hypothesis
    return refs, preds


def _token_data(seed: int, n_images: int = 300) -> tuple[dict, dict]:
    """Already-tokenised strings: varying numbers of refs, duplicates, 1-word and empty captions."""
    rng = random.Random(seed)
    pool = TOKEN_WORDS[: rng.randint(6, len(TOKEN_WORDS))]

    def sentence() -> str:
        return " ".join(rng.choice(pool) for _ in range(rng.choice([0, 1, 1, 2, 3, 5, 8, 12, 15])))

    refs = {f"img{i}": [sentence() for _ in range(rng.randint(1, 6))] for i in range(n_images)}
    refs["img0"] = ["a man", "a man", "a man"]
    preds = {i: sentence() for i in refs}
    preds["img0"] = "a man"
    return refs, preds


def _reference_tokenize(refs: dict, preds: dict) -> tuple[dict, dict]:
    """pycocoevalcap's own tokenisation: two calls, as ``COCOEvalCap.evaluate`` makes them."""
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": c} for c in r] for i, r in refs.items()})
    res = tokenizer.tokenize({i: [{"caption": preds[i]}] for i in refs})
    return gts, res


@pytest.fixture(scope="module")
def raw():
    """Random raw captions, pycocoevalcap's tokenisation and CIDEr of them, and a METEOR JVM.

    METEOR's JVM takes 5-15 s to load its paraphrase table; it is started here so that it loads
    while the tests before the last one (which uses it) run.
    """
    meteor = Meteor()
    refs, preds = _raw_data(seed=7)
    gts, res = _reference_tokenize(refs, preds)
    score, scores = Cider().compute_score(gts, res)
    yield {"refs": refs, "preds": preds, "gts": gts, "res": res, "cider": score, "per_image": scores, "meteor": meteor}
    meteor.meteor_p.kill()
    meteor.meteor_p.wait()


def test_ptb_tokenizer_vectors():
    assert ptb_tokenize([text for text, _ in PTB_VECTORS]) == [want for _, want in PTB_VECTORS]
    assert ptb_tokenize([]) == []


def test_ptb_tokenize_equals_pycocoevalcap(raw):
    flat = [c for r in raw["refs"].values() for c in r]
    assert ptb_tokenize(flat) == [c for r in raw["gts"].values() for c in r]


def test_cider_with_tokenizer_equals_pycocoevalcap(raw, monkeypatch):
    seen = {}
    real = caption_module._tokenize_pairs

    def spy(refs, hyps):
        seen["refs"], seen["hyps"] = out = real(refs, hyps)
        return out

    monkeypatch.setattr(caption_module, "_tokenize_pairs", spy)
    per_image = cider_per_image(raw["refs"], raw["preds"])  # one JVM for both sides
    # Each side tokenised exactly as pycocoevalcap's separate calls tokenise it.
    assert seen["refs"] == list(raw["gts"].values())
    assert seen["hyps"] == [raw["res"][i][0] for i in raw["refs"]]
    assert list(per_image) == list(raw["refs"])
    np.testing.assert_allclose(list(per_image.values()), raw["per_image"], rtol=0, atol=1e-9)
    assert float(np.mean(list(per_image.values()))) == pytest.approx(raw["cider"], abs=1e-9)
    assert 0.01 < raw["cider"]  # the data is not degenerate


@pytest.mark.parametrize("refs, preds, want, want_per_image", CIDER_VECTORS)
def test_cider_vectors(refs, preds, want, want_per_image):
    assert cider(refs, preds, tokenize=False) == pytest.approx(want, abs=1e-9)
    per_image = cider_per_image(refs, preds, tokenize=False)
    assert list(per_image) == list(refs)
    np.testing.assert_allclose(list(per_image.values()), want_per_image, rtol=0, atol=1e-8)


def test_single_image_scores_zero():
    assert cider({"x": ["a cat on a mat", "a cat"]}, {"x": "a cat on a mat"}, tokenize=False) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cider_equals_pycocoevalcap_on_tokenised_data(seed):
    refs, preds = _token_data(seed)
    want, want_per_image = Cider().compute_score(refs, {i: [p] for i, p in preds.items()})
    got = cider_per_image(refs, preds, tokenize=False)
    np.testing.assert_allclose(list(got.values()), want_per_image, rtol=0, atol=1e-9)
    assert cider(refs, preds, tokenize=False) == pytest.approx(want, abs=1e-9)


def test_batch_accumulation_equals_one_shot(raw):
    metric = CiderD()
    ids = list(raw["refs"])
    for start, stop in [(0, 1), (1, 40), (40, 41), (41, 150), (150, len(ids))]:
        batch = ids[start:stop]
        metric.update(batch, [raw["refs"][i] for i in batch], [raw["preds"][i] for i in batch])
    result = metric.compute()
    assert isinstance(result, MetricResult)
    assert result.value == pytest.approx(raw["cider"], abs=1e-9)
    assert (result.name, result.higher_is_better, result.variant, result.scale, result.n) == (
        "cider", True, "cider_d_pycocoevalcap", 100.0, len(ids))
    assert result.provenance == "pycocoevalcap 1.2 CIDEr-D (PTB tokenizer jar)"
    np.testing.assert_allclose(list(metric.per_image.values()), raw["per_image"], rtol=0, atol=1e-9)


def test_batch_accumulation_pretokenised_and_reset():
    refs, preds = _token_data(3)
    metric = CiderD(tokenize=False)
    ids = list(refs)
    for start in range(0, len(ids), 64):
        batch = ids[start : start + 64]
        metric.update(batch, [refs[i] for i in batch], [preds[i] for i in batch])
    assert metric.compute().value == cider(refs, preds, tokenize=False)
    assert metric.per_image == cider_per_image(refs, preds, tokenize=False)
    metric.reset()
    empty = metric.compute()
    assert (empty.value, empty.n) == (None, 0)


def test_mismatched_ids_raise():
    refs = {1: ["a b"], 2: ["c d"], 3: ["e f"]}
    with pytest.raises(ValueError, match=r"have references but no prediction \(first: \[2, 3\]\)"):
        cider(refs, {1: "a b"}, tokenize=False)
    with pytest.raises(ValueError, match=r"have a prediction but no references \(first: \[9\]\)"):
        cider(refs, {1: "a", 2: "c", 3: "e", 9: "x"}, tokenize=False)
    with pytest.raises(ValueError, match="zero images"):
        cider({}, {}, tokenize=False)
    with pytest.raises(ValueError, match="non-empty list"):
        cider({1: []}, {1: "a"}, tokenize=False)
    with pytest.raises(ValueError, match="non-empty list"):
        cider({1: "a b"}, {1: "a"}, tokenize=False)
    with pytest.raises(TypeError, match="one string"):
        cider({1: ["a b"]}, {1: ["a b"]}, tokenize=False)
    metric = CiderD(tokenize=False)
    metric.update([1], [["a b"]], ["a b"])
    with pytest.raises(ValueError, match="seen twice"):
        metric.update([2, 1], [["c"], ["a"]], ["c", "a"])
    with pytest.raises(ValueError, match="seen twice"):
        metric.update([3, 3], [["c"], ["c"]], ["c", "c"])
    with pytest.raises(ValueError, match="2 ids, 1 reference lists"):
        metric.update([4, 5], [["c"]], ["c", "d"])
    assert metric.compute().n == 1  # failed batches stored nothing


def test_missing_java_is_a_config_error(monkeypatch):
    monkeypatch.setattr(caption_module.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="apt-get install default-jre-headless"):
        ptb_tokenize(["a dog"])
    with pytest.raises(ConfigError, match="java"):
        cider({1: ["a"], 2: ["b"]}, {1: "a", 2: "b"})
    assert cider({1: ["a"], 2: ["b"]}, {1: "a", 2: "b"}, tokenize=False) == 2.5  # no JVM needed


def test_missing_jar_is_a_config_error(monkeypatch):
    monkeypatch.setattr(caption_module, "PTB_JAR", "no-such-corenlp.jar")
    with pytest.raises(ConfigError, match="jar missing"):
        ptb_tokenize(["a dog"])


def test_line_breaks_keep_captions_aligned_and_temp_files_outside_site_packages(monkeypatch):
    # pycocoevalcap replaces only "\n"; the lexer also breaks lines at these, shifting later captions.
    calls = []
    real_run = subprocess.run

    def spy(cmd, **kwargs):
        calls.append(kwargs["cwd"])
        return real_run(cmd, **kwargs)

    monkeypatch.setattr(caption_module.subprocess, "run", spy)
    texts = [f"A{sep}dog." for sep in ("\r", "\r\n", "\x0b", "\x0c", "\u2028", "\u2029", "\n")] + ["", "Last one!"]
    assert ptb_tokenize(texts) == ["a dog"] * 7 + ["", "last one"]
    jar_dir = Path(caption_module._ptb_jar()).parent
    assert len(calls) == 1 and jar_dir not in Path(calls[0]).parents and not Path(calls[0]).exists()


def test_doctests():
    failed, attempted = doctest.testmod(caption_module, raise_on_error=False)
    assert attempted >= 2 and failed == 0


def test_coco_caption_scores_equal_pycocoevalcap_scorers(raw, monkeypatch):
    # Last in the file: the METEOR JVM started by the fixture has had the other tests' time to load.
    ids = list(raw["refs"])[:40]  # METEOR is slow: a small set
    refs, preds = {i: raw["refs"][i] for i in ids}, {i: raw["preds"][i] for i in ids}
    gts, res = _reference_tokenize(refs, preds)
    meteor = raw["meteor"]  # one METEOR JVM for both sides
    monkeypatch.setattr("pycocoevalcap.meteor.meteor.Meteor", lambda: meteor)
    want = dict(zip(["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"], Bleu(4).compute_score(gts, res, verbose=0)[0]))
    want["METEOR"] = meteor.compute_score(gts, res)[0]
    want["ROUGE_L"] = Rouge().compute_score(gts, res)[0]
    want["CIDEr"] = Cider().compute_score(gts, res)[0]
    got = coco_caption_scores(refs, preds)
    assert list(got) == ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr"]
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    assert 0 < want["METEOR"] < 1 and 0 < want["Bleu_1"] < 1
