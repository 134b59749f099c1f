import doctest
import random

import jiwer
import pytest

import mio_eval.metrics.normalizers as normalizers_module
import mio_eval.metrics.wer as wer_module
from mio_eval.metrics import WordErrorRate, wer_counts, word_error_rate
from mio_eval.metrics.normalizers import seed_tts, whisper_english

REFS = ["the cat sat on the mat", "hello world"]
HYPS = ["the cat sat on mat", "hello there world"]

# metrics.md section 6 (official openai-whisper tests plus verified rows).
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


def test_reference_vectors_corpus_vs_utterance_mean():
    assert word_error_rate(REFS, HYPS, mode="corpus") == 0.25
    assert word_error_rate(REFS, HYPS, mode="utterance_mean") == pytest.approx(1 / 3)


@pytest.mark.parametrize("text,expected", WHISPER_VECTORS)
def test_whisper_normaliser_vectors_and_package(text, expected):
    from whisper.normalizers import EnglishTextNormalizer

    assert whisper_english(text) == expected
    assert EnglishTextNormalizer()(text) == expected


def _random_batch(rng, n):
    vocab = "a the cat dog sat ran on in mat park red blue two 3 it's don't".split()
    refs = [" ".join(rng.choices(vocab, k=rng.randint(1, 9))) for _ in range(n)]
    hyps = [" ".join(rng.choices(vocab, k=rng.randint(0, 9))) for _ in range(n)]
    return refs, hyps


def test_corpus_mode_equals_jiwer_on_normalised_text():
    rng = random.Random(0)
    for _ in range(5):
        refs, hyps = _random_batch(rng, 20)
        norm_r = [whisper_english(r) for r in refs]
        norm_h = [whisper_english(h) for h in hyps]
        assert word_error_rate(refs, hyps) == pytest.approx(jiwer.wer(norm_r, norm_h), abs=1e-12)
        for r, h, counts in zip(norm_r, norm_h, wer_counts(norm_r, norm_h)):
            single = jiwer.process_words(r, h)
            assert (counts.hits, counts.substitutions, counts.deletions, counts.insertions) == (
                single.hits, single.substitutions, single.deletions, single.insertions)
            assert counts.wer == pytest.approx(jiwer.wer(r, h))


@pytest.mark.parametrize("mode", ["corpus", "utterance_mean"])
def test_batch_split_invariance(mode):
    refs, hyps = _random_batch(random.Random(1), 24)
    whole = WordErrorRate(mode=mode)
    whole.update(refs, hyps)
    for sizes in ([24], [1] * 24, [5, 7, 12], [23, 1]):
        metric, start = WordErrorRate(mode=mode), 0
        for size in sizes:
            metric.update(refs[start:start + size], hyps[start:start + size])
            start += size
        assert metric.compute().value == pytest.approx(whole.compute().value, abs=1e-12)


def test_empty_reference_matches_jiwer():
    assert wer_counts([""], ["x y"])[0].wer == jiwer.wer("", "x y")
    assert wer_counts([""], [""])[0].wer == jiwer.wer("", "")
    assert word_error_rate(["a b", ""], ["a x", "z"], normalizer="none") == jiwer.wer(["a b", ""], ["a x", "z"])


def test_seed_tts_normaliser():
    assert seed_tts("Hello,  World! It's 3.5 km.") == "hello world it's 35 km"
    assert seed_tts("“Quoted” text—ok。") == "quoted textok"
    assert seed_tts("Twenty-five") == "twentyfive"  # no number normalisation


def test_metric_result_metadata_and_errors():
    metric = WordErrorRate(mode="utterance_mean", normalizer="seed_tts")
    assert metric.compute().value is None
    metric.update(REFS, HYPS)
    result = metric.compute()
    assert (result.name, result.higher_is_better, result.scale, result.n) == ("wer_utt_mean", False, 100.0, 2)
    assert result.variant == "utterance_mean+seed_tts"
    with pytest.raises(ValueError):
        WordErrorRate(mode="median")
    with pytest.raises(ValueError):
        word_error_rate(REFS, HYPS, normalizer="nope")
    with pytest.raises(ValueError):
        word_error_rate(REFS, HYPS[:1])


def test_doctests():
    for module in (wer_module, normalizers_module):
        failed, attempted = doctest.testmod(module)
        assert attempted > 0 and failed == 0
