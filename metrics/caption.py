"""COCO captioning metrics: CIDEr-D exactly as pycocoevalcap 1.2 computes it, without its slow paths.

Pipeline (``COCOEvalCap.evaluate``, salaniz/pycocoevalcap @ ad63453 ``eval.py``): PTB-tokenise references and
hypotheses with the Stanford jar that ships inside pycocoevalcap, drop punctuation tokens, then
CIDEr-D with document frequencies taken from the *references of the whole evaluated split*
(``ref_len = ln(N images)``), so scoring a subset or averaging batches changes the number.

What differs from running pycocoevalcap, and why the numbers do not:

* One JVM for everything. Each block of captions (references, hypotheses) is written to its own
  file and the jar's ``-ioFileList`` mode lexes each file separately in one process, so every
  caption sees the same neighbours and end of file as in pycocoevalcap's separate calls (the
  lexer looks ahead across lines: ``"a."`` before a capitalised line becomes ``"a"``).
* Temp files live in a ``tempfile.TemporaryDirectory``, never in site-packages (pycocoevalcap
  writes next to the jar, which fails on read-only installs).
* CIDEr-D is vectorised with numpy (n-grams as integer ids, one sort per step) instead of
  dictionaries per reference per image; equal to ``CiderScorer`` to ~1e-15 (tests check 1e-9).
* Deliberate fix: pycocoevalcap replaces only ``\\n`` inside a caption, but the lexer also breaks
  lines at ``\\r``, ``\\v``, ``\\f``, U+2028 and U+2029, which silently shifts every later caption
  onto the wrong image. They become spaces here, and the line count is checked.

Replicated quirks: brackets come out as ``-lrb-``... and are kept (the filter list is upper-case);
the length penalty counts *bigrams* (``words - 1``; 0 for a one-word caption); one image scores
0.0 (``ln 1 = 0`` kills every weight). Raw CIDEr ~1.2 is printed as 120.4 in papers (scale 100).
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
import tempfile
from itertools import chain
from pathlib import Path
from typing import Hashable, Mapping, Sequence

import numpy as np

from mio_eval.errors import ConfigError, MioEvalError
from mio_eval.metrics.base import MetricResult

__all__ = [
    "PTB_PUNCTUATION",
    "ptb_tokenize",
    "cider",
    "cider_per_image",
    "coco_caption_scores",
    "CiderD",
]

logger = logging.getLogger(__name__)

PTB_JAR = "stanford-corenlp-3.4.1.jar"
# pycocoevalcap tokenizer/ptbtokenizer.py PUNCTUATIONS, verbatim (upper-case brackets: see above).
PTB_PUNCTUATION = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
# Every character the 3.4.1 lexer treats as a line break (found by lexing all of Cc/Cf/Z*/Co/Cn).
_LINE_BREAKS = str.maketrans({c: " " for c in "\n\r\x0b\x0c\u2028\u2029"})
_JAVA_HINT = "install a Java runtime, e.g. `apt-get install default-jre-headless`"
_ORDERS = 4  # CIDEr-D n-gram orders 1..4
_SIGMA = 6.0  # CIDEr-D Gaussian length penalty


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise ConfigError(
            f"`java` is not on PATH; the COCO caption metrics run Stanford's PTB tokenizer jar: {_JAVA_HINT}"
        )
    return java


def _ptb_jar() -> Path:
    try:
        spec = importlib.util.find_spec("pycocoevalcap.tokenizer.ptbtokenizer")
    except ModuleNotFoundError:
        spec = None
    if spec is None or spec.origin is None:
        raise ConfigError("pycocoevalcap is not installed (it ships the PTB tokenizer jar): "
                          "pip install 'pycocoevalcap>=1.2'")
    jar = Path(spec.origin).parent / PTB_JAR
    if not jar.is_file():
        raise ConfigError(f"PTB tokenizer jar missing at {jar}: pip install --force-reinstall 'pycocoevalcap>=1.2'")
    return jar


def _ptb_blocks(blocks: Sequence[Sequence[str]]) -> list[list[str]]:
    """Tokenise each block as pycocoevalcap's ``PTBTokenizer.tokenize`` would in its own call; one JVM."""
    for block in blocks:
        for text in block:
            if not isinstance(text, str):
                raise TypeError(f"captions must be str, got {type(text).__name__}: {text!r}")
    out: list[list[str]] = [[] for _ in blocks]
    todo = [i for i, block in enumerate(blocks) if len(block)]
    if not todo:
        return out
    # C1-only JIT and the serial GC: a short-lived lexer on 2 cores starts ~2x faster; same output.
    cmd = [_java(), "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", str(_ptb_jar()),
           "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase", "-ioFileList", "files.txt"]
    with tempfile.TemporaryDirectory(prefix="mio_eval_ptb_") as tmp:
        listing = []
        for i in todo:
            # No trailing newline: the last caption meets end of file, as in pycocoevalcap.
            Path(tmp, f"in{i}.txt").write_bytes("\n".join(t.translate(_LINE_BREAKS) for t in blocks[i]).encode())
            listing.append(f"in{i}.txt\tout{i}.txt\n")
        Path(tmp, "files.txt").write_text("".join(listing))
        proc = subprocess.run(cmd, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stderr = proc.stderr.decode(errors="replace")
        if proc.returncode != 0:
            raise MioEvalError(f"PTB tokenizer failed (exit {proc.returncode}): {stderr.strip()[-500:]}")
        for line in stderr.splitlines():
            if "Untokenizable" in line:  # e.g. emoji: the jar drops them, as in pycocoevalcap
                logger.info("PTB tokenizer: %s", line.strip())
        for i in todo:
            lines = Path(tmp, f"out{i}.txt").read_bytes().decode().split("\n")
            if len(lines) != len(blocks[i]):
                raise MioEvalError(f"PTB tokenizer returned {len(lines)} lines for {len(blocks[i])} captions")
            out[i] = [" ".join(w for w in line.rstrip().split(" ") if w not in PTB_PUNCTUATION) for line in lines]
    return out


def ptb_tokenize(texts: Sequence[str]) -> list[str]:
    """PTB-tokenise, lower-case and strip punctuation, as pycocoevalcap's ``PTBTokenizer`` (one JVM call).

    Output line *i* belongs to input *i*; an empty caption gives ``''``. Raises ``ConfigError``
    without ``java`` or the jar.

    >>> ptb_tokenize(["A man's dog isn't on the grey/white sofa.", ""])
    ["a man 's dog is n't on the grey/white sofa", '']
    """
    return _ptb_blocks([list(texts)])[0]


def _aligned(
    references: Mapping[Hashable, Sequence[str]], predictions: Mapping[Hashable, str]
) -> tuple[list[Hashable], list[list[str]], list[str]]:
    no_pred = [i for i in references if i not in predictions]
    no_ref = [i for i in predictions if i not in references]
    if no_pred or no_ref:
        parts = [f"{len(ids)} ids {what} (first: {ids[:5]!r})"
                 for ids, what in ((no_pred, "have references but no prediction"),
                                   (no_ref, "have a prediction but no references")) if ids]
        raise ValueError("references and predictions must have the same ids: " + "; ".join(parts))
    ids = list(references)
    refs, hyps = [], []
    for i in ids:
        r, h = references[i], predictions[i]
        if isinstance(r, str) or not len(r):
            raise ValueError(f"id {i!r}: references must be a non-empty list of strings, got {r!r}")
        if not isinstance(h, str):
            raise TypeError(f"id {i!r}: the prediction must be one string, got {type(h).__name__}")
        refs.append(list(r))
        hyps.append(h)
    return ids, refs, hyps


def _tokenize_pairs(refs: list[list[str]], hyps: list[str]) -> tuple[list[list[str]], list[str]]:
    """References and hypotheses in one JVM, each block lexed as its own pycocoevalcap call."""
    flat, tok_hyps = _ptb_blocks([list(chain.from_iterable(refs)), hyps])
    tok_refs, start = [], 0
    for r in refs:
        tok_refs.append(flat[start : start + len(r)])
        start += len(r)
    return tok_refs, tok_hyps


def _distinct(a: np.ndarray) -> np.ndarray:
    # Sort-based: numpy 2.x's hash-based np.unique (no return_* flags) is ~20x slower on int64 keys.
    a = np.sort(a)
    return a[np.concatenate(([True], a[1:] != a[:-1]))] if len(a) else a


def _cider_d(refs: list[list[str]], hyps: list[str]) -> np.ndarray:
    """Per-image CIDEr-D of tokenised strings; ``CiderScorer.compute_score`` restated over integer n-gram ids.

    Sentences are hypotheses (index = image) then all references. An n-gram of order k at a
    position gets a dense id from (id of its (k-1)-gram prefix, next word) with one ``np.unique``
    per order; (sentence, n-gram) pairs are counted with one more. Everything after is bincounts.
    """
    n_img = len(hyps)
    n_refs = np.fromiter(map(len, refs), np.int64, n_img)
    words = [s.split() for s in chain(hyps, chain.from_iterable(refs))]
    n_sent = len(words)
    img_of_sent = np.concatenate([np.arange(n_img), np.repeat(np.arange(n_img), n_refs)])
    lens = np.fromiter(map(len, words), np.int64, n_sent)
    flat = list(chain.from_iterable(words))
    n_tok = len(flat)
    vocab = {w: i for i, w in enumerate(dict.fromkeys(flat))}
    wid = np.fromiter(map(vocab.__getitem__, flat), np.int64, n_tok)
    sent_of_tok = np.repeat(np.arange(n_sent), lens)
    left = lens[sent_of_tok] - (np.arange(n_tok) - (np.cumsum(lens) - lens)[sent_of_tok])  # words from here on

    entry_sent, entry_gram, order_sizes = [], [], []
    prefix = np.empty(n_tok, np.int64)  # dense id of the (k-1)-gram starting at each position
    offset = 0
    for k in range(_ORDERS):
        pos = np.flatnonzero(left > k)
        codes = wid[pos] if k == 0 else prefix[pos] * len(vocab) + wid[pos + k]
        uniq, dense = np.unique(codes, return_inverse=True)
        prefix[pos] = dense
        entry_sent.append(sent_of_tok[pos])
        entry_gram.append(dense + offset)
        order_sizes.append(len(uniq))
        offset += len(uniq)
    n_gram = offset
    if n_gram == 0:
        return np.zeros(n_img)
    gram_order = np.repeat(np.arange(_ORDERS), order_sizes)
    key, tf = np.unique(np.concatenate(entry_sent) * n_gram + np.concatenate(entry_gram), return_counts=True)
    sent, gram = np.divmod(key, n_gram)
    order = gram_order[gram]

    # Document frequency: images whose references contain the n-gram (hypotheses never count).
    is_ref = sent >= n_img
    ref_key = img_of_sent[sent[is_ref]] * n_gram + gram[is_ref]
    df = np.bincount(_distinct(ref_key) % n_gram, minlength=n_gram).astype(float)
    idf = np.log(float(n_img)) - np.log(np.maximum(1.0, df))
    weight = tf * idf[gram]  # raw count, not length-normalised (as the reference)
    norm = np.sqrt(np.bincount(sent * _ORDERS + order, weights=weight * weight, minlength=n_sent * _ORDERS))
    norm = norm.reshape(n_sent, _ORDERS)

    # Clipped dot product of each reference with its image's hypothesis: sum min(h, r) * r.
    hyp_key, hyp_w = key[~is_ref], weight[~is_ref]  # hypothesis sentence index == image index
    ref_w, ref_sent, ref_order = weight[is_ref], sent[is_ref], order[is_ref]
    dot = np.zeros(n_sent * _ORDERS)
    if len(hyp_key):
        at = np.minimum(np.searchsorted(hyp_key, ref_key), len(hyp_key) - 1)
        hit = hyp_key[at] == ref_key
        contrib = np.minimum(hyp_w[at[hit]], ref_w[hit]) * ref_w[hit]
        dot = np.bincount(ref_sent[hit] * _ORDERS + ref_order[hit], weights=contrib, minlength=n_sent * _ORDERS)
    dot = dot.reshape(n_sent, _ORDERS)[n_img:]
    ref_img = img_of_sent[n_img:]
    denom = norm[ref_img] * norm[n_img:]
    ok = (norm[ref_img] != 0) & (norm[n_img:] != 0)
    sim = np.where(ok, dot / np.where(ok, denom, 1.0), dot)

    # The reference's "length" adds term counts of n-gram index 1, i.e. bigrams: words - 1 (0 for one word).
    bigrams = np.maximum(lens - 1, 0).astype(float)
    delta = bigrams[ref_img] - bigrams[n_img:]
    sim *= (np.e ** (-(delta**2) / (2 * _SIGMA**2)))[:, None]
    per_ref = sim.sum(axis=1) / _ORDERS
    return np.bincount(ref_img, weights=per_ref, minlength=n_img) / n_refs * 10.0


def _scores(references, predictions, tokenize: bool) -> tuple[list[Hashable], np.ndarray]:
    ids, refs, hyps = _aligned(references, predictions)
    if not ids:
        raise ValueError("CIDEr of zero images is undefined")
    if tokenize:
        refs, hyps = _tokenize_pairs(refs, hyps)
    return ids, _cider_d(refs, hyps)


def cider_per_image(
    references: Mapping[Hashable, Sequence[str]], predictions: Mapping[Hashable, str], *, tokenize: bool = True
) -> dict[Hashable, float]:
    """Raw CIDEr-D of each image (in ``references`` order); IDF over all images given. See ``cider``."""
    ids, scores = _scores(references, predictions, tokenize)
    return dict(zip(ids, scores.tolist()))


def cider(
    references: Mapping[Hashable, Sequence[str]], predictions: Mapping[Hashable, str], *, tokenize: bool = True
) -> float:
    """Raw corpus CIDEr-D (mean over images) as pycocoevalcap's ``Cider().compute_score(gts, res)``.

    ``references`` maps an image id to its reference captions, ``predictions`` the same ids to one
    caption each (``ValueError`` otherwise). The document frequencies come from all references
    passed, so pass the whole split at once. ``tokenize=True`` runs the PTB tokenizer on both
    sides in one JVM; ``False`` takes already-tokenised strings split on whitespace.

    Hand check (worked by hand from pycocoevalcap's ``cider/cider_scorer.py``): idf = ln 2
    everywhere; cosines 0.7746, 0.7071, 0.5774, 0; penalty exp(-4/72) -> image 1 scores 4.8695, image 2 (identical) 10.

    >>> round(cider({1: ["x y z w v"], 2: ["p q r s t"]}, {1: "x y z", 2: "p q r s t"}, tokenize=False), 4)
    7.4347
    """
    return float(np.mean(_scores(references, predictions, tokenize)[1]))


def coco_caption_scores(
    references: Mapping[Hashable, Sequence[str]], predictions: Mapping[Hashable, str]
) -> dict[str, float]:
    """Bleu_1..4, METEOR, ROUGE_L (pycocoevalcap's own scorers) and CIDEr, from one tokenisation pass.

    Keys as ``COCOEvalCap.eval`` names them; raw values (papers print x100). SPICE is left out
    (it downloads Stanford CoreNLP models at first use).
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge

    ids, refs, hyps = _aligned(references, predictions)
    if not ids:
        raise ValueError("caption scores of zero images are undefined")
    _java()  # a clear ConfigError before METEOR's own Popen would fail on a missing java
    _ptb_jar()
    # METEOR's JVM needs seconds to load its paraphrase table: start it first, so that it loads
    # while we tokenise and score the rest. Its __del__ ends the process when the name goes.
    meteor = Meteor()
    try:
        refs, hyps = _tokenize_pairs(refs, hyps)
        gts = dict(zip(ids, refs))
        res = {i: [h] for i, h in zip(ids, hyps)}
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        scores = {f"Bleu_{n}": float(b) for n, b in enumerate(bleu, start=1)}
        rouge = float(Rouge().compute_score(gts, res)[0])
        cider_d = float(np.mean(_cider_d(refs, hyps)))
        scores["METEOR"] = float(meteor.compute_score(gts, res)[0])
    finally:
        del meteor
    scores["ROUGE_L"] = rouge
    scores["CIDEr"] = cider_d
    return scores


class CiderD:
    """CIDEr-D over a whole split: ``update`` per batch, ``compute`` once (IDF needs every image).

    After ``compute``, ``per_image`` maps each id to its raw score, for per-sample rows.
    """

    higher_is_better = True
    variant = "cider_d_pycocoevalcap"
    provenance = "pycocoevalcap 1.2 CIDEr-D (PTB tokenizer jar)"

    def __init__(self, *, tokenize: bool = True, name: str = "cider") -> None:
        self.name = name
        self.tokenize = tokenize
        self.reset()

    def reset(self) -> None:
        self._references: dict[Hashable, list[str]] = {}
        self._predictions: dict[Hashable, str] = {}
        self.per_image: dict[Hashable, float] = {}

    def update(self, ids: Sequence[Hashable], references: Sequence[Sequence[str]], predictions: Sequence[str]) -> None:
        if not len(ids) == len(references) == len(predictions):
            raise ValueError(f"{len(ids)} ids, {len(references)} reference lists, {len(predictions)} predictions")
        batch_refs = dict(zip(ids, references))
        batch_preds = dict(zip(ids, predictions))
        seen: set[Hashable] = set()
        repeated = []
        for i in ids:
            if i in self._references or i in seen:
                repeated.append(i)
            seen.add(i)
        if repeated:
            raise ValueError(f"ids seen twice (first: {repeated[:5]!r}); CIDEr takes one prediction per image")
        _aligned(batch_refs, batch_preds)  # type checks before anything is stored
        self._references.update((i, list(r)) for i, r in batch_refs.items())
        self._predictions.update(batch_preds)

    def compute(self) -> MetricResult:
        value = None
        if self._references:
            self.per_image = cider_per_image(self._references, self._predictions, tokenize=self.tokenize)
            value = float(np.mean(list(self.per_image.values())))
        provenance = self.provenance if self.tokenize else f"{self.provenance}; input given pre-tokenised"
        return MetricResult(
            name=self.name,
            value=value,
            higher_is_better=True,
            variant=self.variant,
            provenance=provenance,
            scale=100.0,
            n=len(self._references),
        )
