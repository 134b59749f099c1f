"""Word error rate: jiwer's alignment behind two named aggregations and three normalisers.

``corpus`` = total edits / total reference words (jiwer with list input; the Whisper paper,
lmms-eval LibriSpeech, the "Whisper 2.7" baseline row). ``utterance_mean`` = mean of the
per-utterance WERs (seed-tts-eval ``average_wer.py``). They differ: see the doctest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from mio_eval.metrics.base import MetricResult
from mio_eval.metrics.normalizers import TextNormalizer, text_normalizer

__all__ = ["WerCounts", "wer_counts", "word_error_rate", "WordErrorRate", "WER_MODES"]

WER_MODES = ("corpus", "utterance_mean")


@dataclass(frozen=True)
class WerCounts:
    """Edit counts of one utterance after normalisation."""

    hits: int
    substitutions: int
    deletions: int
    insertions: int

    @property
    def ref_words(self) -> int:
        return self.hits + self.substitutions + self.deletions

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """Per-utterance WER; with an empty reference it is the insertion count, as jiwer.wer."""
        return self.errors / self.ref_words if self.ref_words else float(self.insertions)


def wer_counts(references: Sequence[str], hypotheses: Sequence[str]) -> list[WerCounts]:
    """Align already-normalised pairs with ``jiwer.process_words``; counts per utterance."""
    import jiwer

    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        return []
    out = jiwer.process_words(list(references), list(hypotheses))
    counts = []
    for chunks in out.alignments:
        tally = {"equal": 0, "substitute": 0, "delete": 0, "insert": 0}
        for chunk in chunks:
            if chunk.type == "insert":
                tally["insert"] += chunk.hyp_end_idx - chunk.hyp_start_idx
            else:
                tally[chunk.type] += chunk.ref_end_idx - chunk.ref_start_idx
        counts.append(WerCounts(tally["equal"], tally["substitute"], tally["delete"], tally["insert"]))
    return counts


def aggregate(counts: Sequence[WerCounts], mode: str) -> float:
    if mode not in WER_MODES:
        raise ValueError(f"unknown WER mode {mode!r}; choose one of {WER_MODES}")
    if not counts:
        raise ValueError("word error rate of zero utterances is undefined")
    if mode == "corpus":
        ref_words = sum(c.ref_words for c in counts)
        return sum(c.errors for c in counts) / ref_words if ref_words else float(sum(c.insertions for c in counts))
    return sum(c.wer for c in counts) / len(counts)


def word_error_rate(
    references: Sequence[str],
    hypotheses: Sequence[str],
    *,
    mode: str = "corpus",
    normalizer: str | TextNormalizer = "whisper_en",
) -> float:
    """WER of ``hypotheses`` against ``references`` after the normaliser (an object or its name).

    >>> refs = ["the cat sat on the mat", "hello world"]
    >>> hyps = ["the cat sat on mat", "hello there world"]
    >>> word_error_rate(refs, hyps, mode="corpus")
    0.25
    >>> round(word_error_rate(refs, hyps, mode="utterance_mean"), 4)
    0.3333
    """
    norm = text_normalizer(normalizer)
    return aggregate(wer_counts([norm(r) for r in references], [norm(h) for h in hypotheses]), mode)


class WordErrorRate:
    """Stateful WER over a whole split: ``update`` per batch, ``compute`` once."""

    higher_is_better = False
    provenance = "jiwer.process_words alignment"

    def __init__(self, *, mode: str = "corpus", normalizer: str | TextNormalizer = "whisper_en",
                 name: str | None = None) -> None:
        if mode not in WER_MODES:
            raise ValueError(f"unknown WER mode {mode!r}; choose one of {WER_MODES}")
        self.mode = mode
        self._norm = text_normalizer(normalizer)
        self.normalizer = self._norm.name  # recorded in variant and provenance
        self.name = name or f"wer_{'corpus' if mode == 'corpus' else 'utt_mean'}"
        self.variant = f"{mode}+{self.normalizer}"
        self.reset()

    def reset(self) -> None:
        self.counts: list[WerCounts] = []

    def update(self, references: Sequence[str], hypotheses: Sequence[str]) -> list[WerCounts]:
        counts = wer_counts([self._norm(r) for r in references], [self._norm(h) for h in hypotheses])
        self.counts.extend(counts)
        return counts

    def compute(self) -> MetricResult:
        value = aggregate(self.counts, self.mode) if self.counts else None
        return MetricResult(
            name=self.name,
            value=value,
            higher_is_better=False,
            variant=self.variant,
            provenance=f"{self.provenance}; normalizer {self.normalizer}; {self.mode}",
            scale=100.0,
            n=len(self.counts),
        )
