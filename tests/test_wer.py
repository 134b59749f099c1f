"""WER: normaliser vectors from openai/whisper @ c0d2f62 ``tests/test_normalizer.py``, agreement with
jiwer and openai-whisper, aggregation."""

import doctest
import random
import subprocess
import sys

import jiwer
import pytest

import mio_eval.metrics.normalizers as normalizers_module
import mio_eval.metrics.wer as wer_module
from mio_eval.metrics.base import MetricResult
from mio_eval.metrics.normalizers import get_normalizer, seed_tts, whisper_english
from mio_eval.metrics.wer import WER_MODES, WerCounts, WordErrorRate, wer_counts, word_error_rate

REFS = ["the cat sat on the mat", "hello world"]
HYPS = ["the cat sat on mat", "hello there world"]

# openai/whisper @ c0d2f62 tests/test_normalizer.py plus rows verified by running the normaliser.
WHISPER_VECTORS = [
    ("Mr. Park visited Assoc. Prof. Kim Jr.", "mister park visited associate professor kim junior"),
    ("Let's", "let us"),
    ("he's like", "he is like"),
    ("she's been like", "she has been like"),
    ("10km", "10 km"),
    ("RC232", "rc 232"),
    ("two point five million", "2500000"),
    ("ninety percent", "90%"),
    ("nineteen ninety nine", "1999"),
    ("I won't go, uh, to the colour centre!", "i will not go to the color center"),
    ("It's 3:30 [noise] (laughs) okay", "it is 3 30 okay"),
    ("Dr. Smith's 1st-class ticket costs $20.50", "doctor smith is 1st class ticket costs $20.50"),
    ("HE HOPED THERE WOULD BE STEW FOR DINNER", "he hoped there would be stew for dinner"),
]

# Words that make the normaliser work: case, punctuation, contractions, numbers, fillers, spelling.
VOCAB = ("the The cat CAT sat on mat, park. Dr. it's don't won't uh um two 3 twenty-five colour "
         "centre $5 10% [noise] hello world!").split()


def _random_batch(rng, n, *, empty_hyps=True):
    refs = [" ".join(rng.choices(VOCAB, k=rng.randint(1, 10))) for _ in range(n)]
    hyps = [" ".join(rng.choices(VOCAB, k=rng.randint(0 if empty_hyps else 1, 10))) for _ in range(n)]
    return refs, hyps


def _tuple(counts):
    return counts.hits, counts.substitutions, counts.deletions, counts.insertions


# --- normaliser and WER vectors -------------------------------------------------------------

def test_corpus_vs_utterance_mean_reference_vector():
    assert word_error_rate(REFS, HYPS, mode="corpus") == 0.25  # 2 edits / 8 reference words
    assert round(word_error_rate(REFS, HYPS, mode="utterance_mean"), 4) == 0.3333  # (1/6 + 1/2) / 2
    assert word_error_rate(REFS, HYPS, mode="utterance_mean") == pytest.approx((1 / 6 + 1 / 2) / 2)
    assert word_error_rate(REFS, HYPS) == word_error_rate(REFS, HYPS, mode="corpus")  # default is corpus
    assert jiwer.wer(REFS, HYPS) == 0.25
    assert [_tuple(c) for c in wer_counts(REFS, HYPS)] == [(5, 0, 1, 0), (2, 0, 0, 1)]


@pytest.mark.parametrize("text,expected", WHISPER_VECTORS)
def test_whisper_normaliser_table(text, expected):
    from whisper.normalizers import EnglishTextNormalizer

    assert whisper_english(text) == expected
    assert EnglishTextNormalizer()(text) == expected
    assert get_normalizer("whisper_en")(text) == expected


def test_whisper_normaliser_equals_openai_whisper_on_random_text():
    from whisper.normalizers import EnglishTextNormalizer

    official = EnglishTextNormalizer()
    rng = random.Random(7)
    for _ in range(50):
        text = " ".join(rng.choices(VOCAB, k=rng.randint(1, 12)))
        assert whisper_english(text) == official(text), text


def test_whisper_normaliser_without_torch_in_a_fresh_interpreter():
    # Scoring text loads whisper's normaliser files without whisper/__init__ (which imports torch).
    code = (
        "import sys\n"
        "from mio_eval.metrics.normalizers import whisper_english\n"
        "print(whisper_english('I won\\'t go, uh, to the colour centre!'))\n"
        "print('torch' in sys.modules, 'whisper' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["i will not go to the color center", "False False"]


# --- agreement with jiwer ---------------------------------------------------------------------

def test_corpus_mode_equals_jiwer_list_input_on_normalised_text():
    rng = random.Random(0)
    for n in (1, 3, 8, 20, 37):
        refs, hyps = _random_batch(rng, n)
        norm_r = [whisper_english(r) for r in refs]
        norm_h = [whisper_english(h) for h in hyps]
        if not any(r.split() for r in norm_r):
            continue
        assert word_error_rate(refs, hyps, mode="corpus") == pytest.approx(jiwer.wer(norm_r, norm_h), abs=1e-12)
        # The seed-tts normaliser path is the same computation on other strings.
        seed_r, seed_h = [seed_tts(r) for r in refs], [seed_tts(h) for h in hyps]
        assert word_error_rate(refs, hyps, normalizer="seed_tts") == pytest.approx(jiwer.wer(seed_r, seed_h))


def test_per_utterance_counts_equal_jiwer_process_words():
    rng = random.Random(3)
    refs, hyps = _random_batch(rng, 40)
    norm_r = [whisper_english(r) for r in refs]
    norm_h = [whisper_english(h) for h in hyps]
    counts = wer_counts(norm_r, norm_h)
    assert len(counts) == 40 and all(isinstance(c, WerCounts) for c in counts)
    for r, h, c in zip(norm_r, norm_h, counts):
        single = jiwer.process_words(r, h)
        assert _tuple(c) == (single.hits, single.substitutions, single.deletions, single.insertions)
        assert c.ref_words == len(r.split()) and c.errors == c.substitutions + c.deletions + c.insertions
        assert c.wer == pytest.approx(jiwer.wer(r, h))
    # utterance_mean is the plain mean of those per-utterance WERs.
    assert word_error_rate(refs, hyps, mode="utterance_mean") == pytest.approx(
        sum(jiwer.wer(r, h) for r, h in zip(norm_r, norm_h)) / 40)


def test_empty_reference_matches_jiwer():
    assert wer_counts([""], ["x y"])[0].wer == jiwer.wer("", "x y") == 2
    assert wer_counts([""], [""])[0].wer == jiwer.wer("", "") == 0
    assert word_error_rate(["a b", ""], ["a x", "z"], normalizer="none") == jiwer.wer(["a b", ""], ["a x", "z"])
    # No reference words at all: the corpus value is the insertion count, as jiwer.
    assert word_error_rate(["", ""], ["", "x"], normalizer="none") == jiwer.wer(["", ""], ["", "x"]) == 1
    # A reference that normalises to nothing ("uh" is a filler) behaves like an empty one.
    assert whisper_english("uh") == ""
    assert word_error_rate(["uh", "hello world"], ["hi", "hello world"]) == jiwer.wer(["", "hello world"],
                                                                                     ["hi", "hello world"])
    with pytest.raises(ValueError, match="zero utterances"):
        word_error_rate([], [])
    with pytest.raises(ValueError, match="hypotheses"):
        word_error_rate(REFS, HYPS[:1])


# --- stateful metric --------------------------------------------------------------------------

def _split(items_a, items_b, cuts):
    bounds = [0, *cuts, len(items_a)]
    return [(items_a[s:e], items_b[s:e]) for s, e in zip(bounds, bounds[1:])]


@pytest.mark.parametrize("mode", WER_MODES)
def test_update_over_batch_splits_equals_one_update(mode):
    rng = random.Random(11)
    refs, hyps = _random_batch(rng, 30, empty_hyps=True)
    whole = WordErrorRate(mode=mode)
    whole.update(refs, hyps)
    expected = whole.compute()
    assert expected.value == pytest.approx(word_error_rate(refs, hyps, mode=mode))
    for n_chunks in (1, 2, 3, 30):
        cuts = sorted(rng.sample(range(1, 30), n_chunks - 1))
        metric = WordErrorRate(mode=mode)
        for batch_refs, batch_hyps in _split(refs, hyps, cuts):
            returned = metric.update(batch_refs, batch_hyps)
            assert len(returned) == len(batch_refs)
        result = metric.compute()
        assert result.value == pytest.approx(expected.value, abs=1e-12)
        assert result.n == expected.n == 30
    metric.reset()
    assert metric.compute().value is None and metric.compute().n == 0


def test_utterance_mean_differs_from_corpus_when_lengths_differ():
    metric_c, metric_m = WordErrorRate(mode="corpus"), WordErrorRate(mode="utterance_mean")
    for metric in (metric_c, metric_m):
        metric.update(["a b c d e f g h i j"], ["a b c d e f g h i j"])  # 0 errors of 10
        metric.update(["yes"], ["no"])  # 1 error of 1
    assert metric_c.compute().value == pytest.approx(1 / 11)
    assert metric_m.compute().value == pytest.approx(0.5)


# --- normalisers ------------------------------------------------------------------------------

def test_seed_tts_normaliser():
    assert seed_tts("Hello,  World! It's 3.5 km.") == "hello world it's 35 km"
    assert seed_tts("Don't STOP: rock'n'roll?") == "don't stop rock'n'roll"  # apostrophes kept
    assert seed_tts("“Quoted” text—ok。，") == "quoted textok"  # Chinese/typographic punctuation removed
    assert seed_tts("Twenty-five 25 Mr. Smith") == "twentyfive 25 mr smith"  # no number/title expansion
    assert seed_tts("colour centre") == "colour centre"  # no spelling map
    assert get_normalizer("none")("Hello, World!") == "Hello, World!"


def test_unknown_mode_or_normaliser_is_a_value_error():
    with pytest.raises(ValueError, match="mode"):
        WordErrorRate(mode="median")
    with pytest.raises(ValueError, match="mode"):
        word_error_rate(REFS, HYPS, mode="mean")
    with pytest.raises(ValueError, match="normalizer"):
        word_error_rate(REFS, HYPS, normalizer="nope")
    with pytest.raises(ValueError, match="normalizer"):
        WordErrorRate(normalizer="whisper")
    with pytest.raises(ValueError, match="normalizer"):
        get_normalizer("")


# --- MetricResult -----------------------------------------------------------------------------

def test_metric_result_fields():
    corpus = WordErrorRate()
    assert corpus.compute().value is None
    corpus.update(REFS, HYPS)
    result = corpus.compute()
    assert isinstance(result, MetricResult)
    assert (result.name, result.value, result.n) == ("wer_corpus", 0.25, 2)
    assert result.higher_is_better is False and result.scale == 100.0
    assert result.variant == "corpus+whisper_en"
    assert "jiwer" in result.provenance and "whisper_en" in result.provenance

    mean = WordErrorRate(mode="utterance_mean", normalizer="seed_tts")
    mean.update(REFS, HYPS)
    result = mean.compute()
    assert (result.name, result.variant) == ("wer_utt_mean", "utterance_mean+seed_tts")
    assert result.higher_is_better is False and result.scale == 100.0
    assert WordErrorRate(name="tts_wer").compute().name == "tts_wer"

    data = result.to_json()
    assert "name" not in data and data["variant"] == "utterance_mean+seed_tts" and data["scale"] == 100.0
    assert MetricResult.from_json("wer_utt_mean", data) == result


def test_doctests():
    for module in (wer_module, normalizers_module):
        failed, attempted = doctest.testmod(module, raise_on_error=False)
        assert attempted > 0 and failed == 0, module.__name__
