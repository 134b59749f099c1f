"""Metrics: pure functions carry the math, small stateful classes accumulate over a split."""

from mio_eval.metrics.base import Metric, MetricResult
from mio_eval.metrics.normalizers import NORMALIZERS, get_normalizer
from mio_eval.metrics.wer import WER_MODES, WerCounts, WordErrorRate, wer_counts, word_error_rate

__all__ = [
    "Metric",
    "MetricResult",
    "NORMALIZERS",
    "get_normalizer",
    "WER_MODES",
    "WerCounts",
    "WordErrorRate",
    "wer_counts",
    "word_error_rate",
]
