"""Seeded adversarial VQA questions for the parity fixture (``tests/reference/vqa_reference.json.gz``).

The same generator feeds the reference scorers (``scripts/reference/vqa_fixture.py``, which runs the
original ``vqaEval.py`` and lmms-eval code) and our ``mio_eval.metrics.vqa`` (``tests/test_parity_vqa.py``),
so the fixture only stores the seed, the count, a digest of the generated questions and the reference
accuracies. Two parts:

* **coverage**: for every contraction key and value of the reference table (and lower-cased forms of
  its capitalised keys), every article, every number word and every punctuation mark, questions
  whose accuracy flips when that one entry is missing or changed (prediction in one spelling, four
  of ten annotators in the other, the rest distinct distractors, so every variant normalises);
* **random**: seeded questions from adversarial pieces (punctuation with and without spaces,
  ``digit,digit`` runs and ``1,,2``, more than 32 periods, digits and number words, articles,
  contractions with and without the apostrophe, upper case, ``\\n``/``\\t``/edge spaces, Unicode
  letters, digits and spaces), 1 to 11 answers, some lists all identical.

``questions(seed, n_random)`` is deterministic for a given Python (``random.Random`` with an integer
seed is stable across versions); ``digest`` pins the exact strings.
"""

from __future__ import annotations

import hashlib
import json
import random

__all__ = ["CONTRACTIONS_PROBE", "questions", "digest"]

SEED = 20240926
N_RANDOM = 20_000

# The reference table (vqaEval.py / EvalAIAnswerProcessor), as probe words: key -> value. Written
# out here independently of mio_eval.metrics.vqa so the probe cannot follow a change of the module.
CONTRACTIONS_PROBE = (
    "aint:ain't arent:aren't cant:can't couldve:could've couldnt:couldn't couldn'tve:couldn't've "
    "couldnt've:couldn't've didnt:didn't doesnt:doesn't dont:don't hadnt:hadn't hadnt've:hadn't've "
    "hadn'tve:hadn't've hasnt:hasn't havent:haven't hed:he'd hed've:he'd've he'dve:he'd've hes:he's "
    "howd:how'd howll:how'll hows:how's Id've:I'd've I'dve:I'd've Im:I'm Ive:I've isnt:isn't itd:it'd "
    "itd've:it'd've it'dve:it'd've itll:it'll let's:let's maam:ma'am mightnt:mightn't "
    "mightnt've:mightn't've mightn'tve:mightn't've mightve:might've mustnt:mustn't mustve:must've "
    "neednt:needn't notve:not've oclock:o'clock oughtnt:oughtn't ow's'at:'ow's'at 'ows'at:'ow's'at "
    "'ow'sat:'ow's'at shant:shan't shed've:she'd've she'dve:she'd've she's:she's shouldve:should've "
    "shouldnt:shouldn't shouldnt've:shouldn't've shouldn'tve:shouldn't've somebody'd:somebodyd "
    "somebodyd've:somebody'd've somebody'dve:somebody'd've somebodyll:somebody'll somebodys:somebody's "
    "someoned:someone'd someoned've:someone'd've someone'dve:someone'd've someonell:someone'll "
    "someones:someone's somethingd:something'd somethingd've:something'd've something'dve:something'd've "
    "somethingll:something'll thats:that's thered:there'd thered've:there'd've there'dve:there'd've "
    "therere:there're theres:there's theyd:they'd theyd've:they'd've they'dve:they'd've theyll:they'll "
    "theyre:they're theyve:they've twas:'twas wasnt:wasn't wed've:we'd've we'dve:we'd've weve:we've "
    "werent:weren't whatll:what'll whatre:what're whats:what's whatve:what've whens:when's "
    "whered:where'd wheres:where's whereve:where've whod:who'd whod've:who'd've who'dve:who'd've "
    "wholl:who'll whos:who's whove:who've whyll:why'll whyre:why're whys:why's wont:won't "
    "wouldve:would've wouldnt:wouldn't wouldnt've:wouldn't've wouldn'tve:wouldn't've yall:y'all "
    "yall'll:y'all'll y'allll:y'all'll yall'd've:y'all'd've y'alld've:y'all'd've y'all'dve:y'all'd've "
    "youd:you'd youd've:you'd've you'dve:you'd've youll:you'll youre:you're youve:you've"
)
_PAIRS = [tuple(p.split(":")) for p in CONTRACTIONS_PROBE.split()]
_ARTICLES = ("a", "an", "the", "A", "An", "THE")
_NUMBER_WORDS = ("none", "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
_OTHER_PUNCT = ("'", ":", "#", "$", "%", "&", "*", "~", "|", "^", ".", "...", "…", "–", "—", "“", "”", "¿", "¡")
_WORDS = (
    "yes", "no", "cat", "dog", "red", "blue", "hot dog", "t-shirt", "tennis", "frisbee", "man", "woman",
    "left", "right", "pizza", "giraffe", "umbrella", "kite", "surfing", "skiing", "mr. smith", "u.s.a.",
    "st. louis", "new york", "o'clock", "cat's toy", "dog's", "it's", "its", "let's go", "rock 'n' roll",
    "10:30", "3.5", ".5", "5.", "1,000", "1000", "1,000,000", "1,,2", "12,5", "a,b", "2nd", "100%", "$5",
    "café", "naïve", "Straße", "ÉCOLE", "ﬁsh", "Ⅻ", "٣", "２", "日本", "ελληνικά", "😀", "İstanbul",
    "none of the above", "no one", "someone", "nothing", "unanswerable", "unsuitable",
)
_SPACES = (" ", "  ", "\t", "\n", "\u00a0", "\u2009", "\u3000", "\r")


def _pick_word(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.45:
        return rng.choice(_WORDS)
    if r < 0.65:
        return rng.choice(rng.choice(_PAIRS))
    if r < 0.80:
        return rng.choice(_NUMBER_WORDS) if rng.random() < 0.6 else str(rng.randrange(0, 2000))
    if r < 0.92:
        return rng.choice(_ARTICLES)
    return "".join(rng.choice("abcxyz0123456789.,'-") for _ in range(rng.randint(1, 6)))


def _phrase(rng: random.Random) -> str:
    return " ".join(_pick_word(rng) for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))))


def _perturb(rng: random.Random, text: str) -> str:
    """One spelling of ``text`` a model or an annotator might write."""
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        op = rng.randrange(11)
        if op == 0:
            text = text.upper() if rng.random() < 0.5 else text.capitalize()
        elif op == 1:
            text = rng.choice(_ARTICLES) + " " + text
        elif op == 2:  # punctuation inside, with or without spaces around
            p = rng.choice(_PUNCT + _OTHER_PUNCT)
            i = rng.randint(0, len(text))
            sep = rng.choice(("", "", " "))
            text = text[:i] + sep + p + rng.choice(("", sep)) + text[i:]
        elif op == 3:
            text = text + rng.choice((".", "!", "?", ".", " .", "..", "'", '"', ")"))
        elif op == 4:
            text = rng.choice(_SPACES) + text + rng.choice(_SPACES)
        elif op == 5:  # contraction spelled the other way
            for key, value in _PAIRS:
                if key in text.split():
                    text = text.replace(key, value, 1)
                    break
                if value in text.split():
                    text = text.replace(value, key, 1)
                    break
        elif op == 6:  # number word <-> digit
            words = text.split()
            for j, w in enumerate(words):
                if w in _NUMBER_WORDS:
                    words[j] = str(_NUMBER_WORDS.index(w) if w != "none" else 0)
                    break
                if w.isdigit() and int(w) <= 10:
                    words[j] = _NUMBER_WORDS[int(w)] if w != "0" or rng.random() < 0.5 else "none"
                    break
            text = " ".join(words) if words else text
        elif op == 7:  # commas in numbers
            text = text.replace("000", ",000", 1) if "000" in text else text + rng.choice((" 1,000", ",", " 2,,3"))
        elif op == 8:
            text = "." * rng.choice((31, 32, 33, 40)) + text if rng.random() < 0.3 else text.replace(" ", rng.choice(_SPACES))
        elif op == 9:
            text = text.replace("'", rng.choice(("", "’", " '", "'")))
        else:
            text = text.lower()
    return text


def _random_question(rng: random.Random) -> tuple[str, list[str]]:
    core = _phrase(rng)
    n = rng.choices((10, 1, 2, 3, 5, 9, 11), weights=(70, 4, 4, 6, 6, 5, 5))[0]
    if rng.random() < 0.15:  # all annotators identical
        same = _perturb(rng, core) if rng.random() < 0.5 else core
        answers = [same] * n
    else:
        k = rng.randint(0, n)
        answers = [_perturb(rng, core) if rng.random() < 0.5 else core for _ in range(k)]
        answers += [_phrase(rng) if rng.random() < 0.5 else _perturb(rng, _phrase(rng)) for _ in range(n - k)]
        rng.shuffle(answers)
    r = rng.random()
    prediction = core if r < 0.2 else _perturb(rng, core) if r < 0.85 else _phrase(rng)
    return prediction, answers


def _coverage() -> list[tuple[str, list[str]]]:
    """Questions that flip when one table entry is missing or changed."""
    out: list[tuple[str, list[str]]] = []
    fill = ["kite", "frisbee", "umbrella", "pizza", "giraffe", "tennis"]

    def both_ways(a: str, b: str) -> None:
        out.append((a, [b] * 4 + fill))
        out.append((b, [a] * 4 + fill))
        out.append((f"two {a}", [f"2 {b}"] * 3 + fill + ["2"]))

    for key, value in _PAIRS:
        both_ways(key, value)
        if key != key.lower():
            both_ways(key.lower(), value)
            both_ways(key.lower(), value.lower())
    for article in _ARTICLES:
        both_ways(f"{article} cat", "cat")
        both_ways(f"red {article} dog", "red dog")
    for word in ("some", "this", "that", "of", "and", "in", "on", "to", "is", "s", "'s", "an'", "th"):
        both_ways(f"{word} cat", "cat")  # not articles: must stay
    for i, word in enumerate(_NUMBER_WORDS):
        both_ways(word, "0" if word == "none" else str(i))
    for p in _PUNCT:
        both_ways(f"hot{p}dog", "hot dog")
        both_ways(f"hot {p}dog", "hotdog")
        both_ways(f"1{p}000", "1000")
    return out


def questions(seed: int = SEED, n_random: int = N_RANDOM) -> list[tuple[str, list[str]]]:
    """``(prediction, answers)`` pairs: the coverage questions, then ``n_random`` seeded ones."""
    rng = random.Random(seed)
    return _coverage() + [_random_question(rng) for _ in range(n_random)]


def digest(pairs: list[tuple[str, list[str]]]) -> str:
    """SHA-256 of the questions' canonical JSON (pins the generator's output)."""
    blob = json.dumps(pairs, ensure_ascii=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()
