"""The text processing of the VQA scorers (``vqaEval.py`` of GT-Vision-Lab/VQA and lmms-eval's
``EvalAIAnswerProcessor``): punctuation, digit/article and contraction tables, the per-variant
string normalisers, and the leave-one-out accuracy averaging, kept together so every table sits
beside the code it configures. ``mio_eval.metrics.vqa`` builds the named variants on them (its
docstring says which reference each follows, with commits).
"""

from __future__ import annotations

import re
import statistics
from typing import Callable, Iterable, Sequence

__all__ = ["process_punctuation", "process_digit_article"]


_PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
_PUNCT_CHARS = frozenset(_PUNCT)
_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
            "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = frozenset({"a", "an", "the"})
# 120 entries, identical in vqaEval.py and EvalAIAnswerProcessor. The capitalised keys (Im, Ive,
# Id've, I'dve) can never match because words are lower-cased first; ``somebody'd -> somebodyd``
# is the references' own oddity. Kept verbatim so the map is the reference's.
_CONTRACTIONS = dict(pair.split(":") for pair in """
aint:ain't arent:aren't cant:can't couldve:could've couldnt:couldn't couldn'tve:couldn't've
couldnt've:couldn't've didnt:didn't doesnt:doesn't dont:don't hadnt:hadn't hadnt've:hadn't've
hadn'tve:hadn't've hasnt:hasn't havent:haven't hed:he'd hed've:he'd've he'dve:he'd've hes:he's
howd:how'd howll:how'll hows:how's Id've:I'd've I'dve:I'd've Im:I'm Ive:I've isnt:isn't itd:it'd
itd've:it'd've it'dve:it'd've itll:it'll let's:let's maam:ma'am mightnt:mightn't
mightnt've:mightn't've mightn'tve:mightn't've mightve:might've mustnt:mustn't mustve:must've
neednt:needn't notve:not've oclock:o'clock oughtnt:oughtn't ow's'at:'ow's'at 'ows'at:'ow's'at
'ow'sat:'ow's'at shant:shan't shed've:she'd've she'dve:she'd've she's:she's shouldve:should've
shouldnt:shouldn't shouldnt've:shouldn't've shouldn'tve:shouldn't've somebody'd:somebodyd
somebodyd've:somebody'd've somebody'dve:somebody'd've somebodyll:somebody'll somebodys:somebody's
someoned:someone'd someoned've:someone'd've someone'dve:someone'd've someonell:someone'll
someones:someone's somethingd:something'd somethingd've:something'd've something'dve:something'd've
somethingll:something'll thats:that's thered:there'd thered've:there'd've there'dve:there'd've
therere:there're theres:there's theyd:they'd theyd've:they'd've they'dve:they'd've theyll:they'll
theyre:they're theyve:they've twas:'twas wasnt:wasn't wed've:we'd've we'dve:we'd've weve:we've
werent:weren't whatll:what'll whatre:what're whats:what's whatve:what've whens:when's
whered:where'd wheres:where's whereve:where've whod:who'd whod've:who'd've who'dve:who'd've
wholl:who'll whos:who's whove:who've whyll:why'll whyre:why're whys:why's wont:won't
wouldve:would've wouldnt:wouldn't wouldnt've:wouldn't've wouldn'tve:wouldn't've yall:y'all
yall'll:y'all'll y'allll:y'all'll yall'd've:y'all'd've y'alld've:y'all'd've y'all'dve:y'all'd've
youd:you'd youd've:you'd've you'dve:you'd've youll:you'll youre:you're youve:you've
""".split())
# One lookup for the whole word step: number words first, then contractions (the references map
# numbers, drop articles, then map contractions; no number word is a contraction key or value).
_WORD_MAP = {**_CONTRACTIONS, **_NUMBERS}

# The references' period regex: the "lookbehind" ``(?!<=\d)`` is a malformed negative lookahead
# that always holds, so this removes every period not followed by a digit.
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
# Both references pass ``re.UNICODE`` (== 32) positionally as ``count``: at most 32 periods go.
_PERIOD_COUNT = int(re.UNICODE)
_COMMA = {
    "official": re.compile(r"(\d)(\,)(\d)"),
    "lmms": re.compile(r"(?<=\d)(\,)+(?=\d)"),
}


def process_punctuation(text: str, *, comma_rule: str = "official") -> str:
    """The references' ``processPunctuation``.

    Each of ``; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? !`` is deleted when it is followed or
    preceded by a space somewhere in the *original* text, or when the text has a digit-comma-digit
    run (then all of them are deleted); otherwise it becomes a space. Then every period not followed
    by a digit is deleted (at most 32). ``comma_rule`` picks the official or lmms-eval comma regex.

    >>> process_punctuation("red,white"), process_punctuation("100,978"), process_punctuation("U.S.A.")
    ('red white', '100978', 'USA')
    """
    out = text
    if not _PUNCT_CHARS.isdisjoint(text):
        comma = _COMMA[comma_rule].search(text) is not None
        for p in _PUNCT:
            if p in out:
                delete = comma or (p + " " in text) or (" " + p in text)
                out = out.replace(p, "" if delete else " ")
    if "." in out:
        out = _PERIOD.sub("", out, _PERIOD_COUNT)
    return out


def process_digit_article(text: str) -> str:
    """The references' ``processDigitArticle``: lower-case, split on whitespace, number words
    ``none zero one ... ten`` -> digits (``none`` -> ``0``), drop ``a an the``, expand the
    contraction map (``dont`` -> ``don't``), join with single spaces.

    >>> process_digit_article("The Two dogs dont")
    "2 dogs don't"
    """
    get = _WORD_MAP.get
    return " ".join([get(w, w) for w in text.lower().split() if w not in _ARTICLES])


def _clean(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def _norm_official(text: str) -> str:
    return process_digit_article(process_punctuation(text))


def _norm_lmms(text: str) -> str:
    return process_digit_article(process_punctuation(_clean(text), comma_rule="lmms"))


def _norm_lmms_tokenized(text: str) -> str:
    # EvalAIAnswerProcessor.word_tokenize, then __call__'s own cleaning.
    text = text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    return process_digit_article(process_punctuation(_clean(text), comma_rule="lmms"))


# --- leave-one-out mean -------------------------------------------------------------------------


def _terms(n: int, positions: Iterable[int]) -> list[float]:
    hits = set(positions)
    m = len(hits)
    return [min(1, (m - 1 if i in hits else m) / 3) for i in range(n)]


def _mean_sequential(values: list[float]) -> float:
    # vqaEval.py: float(sum(gtAcc)) / len(gtAcc), summed left to right.
    return float(sum(values)) / len(values)


def _mean_exact(values: list[float]) -> float:
    # lmms-eval: statistics.mean (exact rational sum, one rounding).
    return float(statistics.mean(values))


class _LeaveOneOut:
    """Question accuracy from the answer count ``n`` and the positions that match.

    Only the match count matters, except for the official left-to-right float sum with 2 or 3
    matches, where the order of the 1/3 and 2/3 terms can move the last bit: those cases are keyed
    by the positions themselves. Every value is computed once by the reference formula, then cached.
    """

    def __init__(self, exact: bool) -> None:
        self._mean = _mean_exact if exact else _mean_sequential
        self._exact = exact
        self._by_count: dict[tuple[int, int], float] = {}
        self._by_positions: dict[tuple[int, tuple[int, ...]], float] = {}

    def __call__(self, pred: str, gts: Sequence[str]) -> float:
        n = len(gts)
        m = gts.count(pred)
        if m == 0:
            return 0.0
        if self._exact or m == 1 or m >= 4:
            # m == 1: the one zero term adds nothing, whatever its place.
            key = (n, m)
            value = self._by_count.get(key)
            if value is None:
                value = self._by_count[key] = self._mean(_terms(n, range(m)))
            return value
        positions = tuple(i for i, g in enumerate(gts) if g == pred)
        pkey = (n, positions)
        value = self._by_positions.get(pkey)
        if value is None:
            value = self._by_positions[pkey] = self._mean(_terms(n, positions))
        return value


_LOO = {"exact": _LeaveOneOut(exact=True), "sequential": _LeaveOneOut(exact=False)}


class _Memo(dict):
    """``str -> normalised str`` with the normaliser called once per distinct string."""

    def __init__(self, fn: Callable[[str], str]) -> None:
        super().__init__()
        self.fn = fn

    def __missing__(self, key: str) -> str:
        value = self[key] = self.fn(key)
        return value


# --- the normalisers: one class per reference, chosen in the task YAML by ``_target_`` ---------
