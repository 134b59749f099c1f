"""Metrics: pure functions carry the math, small stateful classes accumulate over a split.

Heavy or optional pieces (the CIDEr tokenizer's JVM, speaker encoders) load lazily inside their
functions; importing this package imports neither torch nor Java.
"""

from mio_eval.metrics.aesthetic import AestheticPredictor
from mio_eval.metrics.base import Metric, MetricResult
from mio_eval.metrics.caption import CiderD, cider, cider_per_image, coco_caption_scores, ptb_tokenize
from mio_eval.metrics.choice import ChoiceAccuracy, extract_choice, rank_choices
from mio_eval.metrics.clip_score import clip_image_similarity, clip_text_similarity
from mio_eval.metrics.normalizers import NORMALIZERS, get_normalizer
from mio_eval.metrics.ssim import SSIM, ssim, ssim_settings
from mio_eval.metrics.vqa import VQA_VARIANTS, VQAAccuracy, vqa_accuracies, vqa_accuracy
from mio_eval.metrics.wer import WER_MODES, WerCounts, WordErrorRate, wer_counts, word_error_rate

__all__ = [
    "AestheticPredictor",
    "ChoiceAccuracy",
    "SSIM",
    "CiderD",
    "Metric",
    "MetricResult",
    "NORMALIZERS",
    "VQAAccuracy",
    "VQA_VARIANTS",
    "WER_MODES",
    "WerCounts",
    "WordErrorRate",
    "cider",
    "clip_image_similarity",
    "clip_text_similarity",
    "cider_per_image",
    "coco_caption_scores",
    "extract_choice",
    "get_normalizer",
    "ptb_tokenize",
    "rank_choices",
    "ssim",
    "ssim_settings",
    "vqa_accuracies",
    "vqa_accuracy",
    "wer_counts",
    "word_error_rate",
]
