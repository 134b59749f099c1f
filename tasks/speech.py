"""Pieces shared by the speech tasks (ASR, TTS, speech-to-speech): the ASR judge call and the
per-utterance WER rows.

The judge is any adapter that reads audio and writes text; its transcription is batched
(``judge_batch_size`` files per call, as one padded Whisper decode) where seed-tts-eval runs one
file at a time. WER rows keep the raw and normalised texts and the alignment counts per
utterance so a corpus number can be recomputed or re-aggregated from ``scores.jsonl`` alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from mio_eval.adapter import ModelAdapter, check_capabilities
from mio_eval.batching import generate_batches
from mio_eval.errors import ConfigError
from mio_eval.metrics.base import MetricResult
from mio_eval.metrics.normalizers import TextNormalizer, WhisperEnglish, check_text_normalizer, text_normalizer
from mio_eval.metrics.wer import WER_MODES, WerCounts, WordErrorRate
from mio_eval.progress import progress
from mio_eval.tasks.base import TaskBase
from mio_eval.types import Audio, Modality, Output, Request, Sample, Text

__all__ = ["SpokenInputTask", "Transcriber", "WerScorer", "audio_request", "check_wer_modes"]


def audio_request(sample: Sample, prompt: str | None, *, output_modality: Modality,
                  generation: Mapping[str, Any], kind: str) -> Request:
    """The sample's recordings, then the instruction (if any) as a text part."""
    audio = tuple(p for p in sample.parts if isinstance(p, Audio))
    parts = audio + ((Text(prompt),) if prompt else ())
    return Request(sample_id=sample.id, parts=parts, output_modality=output_modality, generation=generation, kind=kind)


def check_wer_modes(modes: Sequence[str]) -> tuple[str, ...]:
    for mode in modes:
        if mode not in WER_MODES:
            raise ConfigError(f"unknown WER mode {mode!r}; choose from {', '.join(WER_MODES)}")
    if not modes:
        raise ConfigError("wer_modes is empty; choose from " + ", ".join(WER_MODES))
    return tuple(modes)


class SpokenInputTask(TaskBase):
    """Base of the tasks whose input is a recording (ASR, speech-to-speech): the optional text
    instruction, the generation settings, the WER normaliser and modes, the input modalities and
    the request (the recordings, then the instruction). A subclass sets ``kind`` and
    ``output_modality`` and calls ``_spoken_input`` from its own keyword signature."""

    kind: ClassVar[str]
    output_modality: ClassVar[Modality]

    def _spoken_input(self, *, name: str, loader: Callable[[], list[Sample]], prompt: str | None,
                      generation: Mapping[str, Any] | None, normalizer: TextNormalizer | None,
                      wer_modes: Sequence[str]) -> None:
        self._task(name=name, loader=loader, prompt=prompt or None, generation=generation)
        self.text_normalizer = check_text_normalizer(WhisperEnglish() if normalizer is None else normalizer)
        self.normalizer = self.text_normalizer.name  # the name results record
        self.wer_modes = check_wer_modes(wer_modes)
        # An instruction is a text part: only models that read text can take it (Whisper cannot).
        self.input_modalities = frozenset({Modality.AUDIO} | ({Modality.TEXT} if self.prompt else set()))

    def request(self, sample: Sample) -> Request:
        return audio_request(sample, self.prompt, output_modality=self.output_modality, generation=self.generation,
                             kind=self.kind)


class Transcriber:
    """An ASR adapter used as a judge: loaded once, fed ``batch_size`` files per call."""

    def __init__(self, judge: ModelAdapter, *, batch_size: int = 8, role: str = "judge") -> None:
        check_capabilities(judge, needs_inputs=frozenset({Modality.AUDIO}), produces=Modality.TEXT)
        if int(batch_size) < 1:
            raise ConfigError(f"{role} batch size must be >= 1, got {batch_size}")
        self.judge = judge
        self.batch_size = int(batch_size)
        self.role = role
        self._loaded = False

    def preflight(self) -> None:
        """Fail before generation when a file-based judge's checkpoint is missing."""
        path = getattr(self.judge, "path", None)
        if path is not None and not Path(path).exists():
            raise ConfigError(f"ASR {self.role} checkpoint not found: {path}")

    def __call__(self, paths: Sequence[str], work_dir: Path) -> list[Output]:
        """One transcript (or a per-file failure) per path, in order. A batch that raises (or
        answers another number of transcripts) is retried file by file, so one bad file costs one
        sample: each file keeps its retry's result (a one-file batch too: a judge that fails once
        then succeeds gives the transcript), and a retry that fails again gives that file's error
        (``mio_eval.batching.generate_batch`` with ``retry_single``)."""
        if not paths:
            return []
        if not self._loaded:
            self.judge.load()
            self._loaded = True
        requests = [Request(sample_id=f"{self.role}-{i}", parts=(Audio(p),)) for i, p in enumerate(paths)]
        with progress(total=len(paths), desc=f"scoring: ASR {self.role}", unit="file") as bar:
            return generate_batches(self.judge, requests, media_dir=work_dir, batch_size=self.batch_size,
                                    retry_single=True, length_error="{got} transcripts for {want} files",
                                    on_batch=bar.update)

    def provenance(self) -> dict[str, Any]:
        info = dict(self.judge.provenance())
        info.setdefault("role", self.role)
        info["batch_size"] = self.batch_size
        return info


class WerScorer:
    """WER in each requested aggregation over one split, plus a row per utterance."""

    def __init__(self, *, normalizer: TextNormalizer | str, modes: Sequence[str], prefix: str = "wer",
                 variant_suffix: str = "", hypothesis_key: str = "hypothesis") -> None:
        self._norm = text_normalizer(normalizer)
        self.normalizer = self._norm.name
        self.modes = check_wer_modes(modes)
        self.metrics = {
            mode: WordErrorRate(mode=mode, normalizer=self._norm,
                                name=f"{prefix}_{'corpus' if mode == 'corpus' else 'utt_mean'}")
            for mode in self.modes
        }
        self.variant_suffix = variant_suffix
        self.hypothesis_key = hypothesis_key

    def add(self, reference: str, hypothesis: str) -> dict[str, Any]:
        counts: WerCounts | None = None
        for metric in self.metrics.values():
            counts = metric.update([reference], [hypothesis])[0]
        assert counts is not None
        return {
            "reference": reference,
            self.hypothesis_key: hypothesis,
            "reference_normalized": self._norm(reference),
            f"{self.hypothesis_key}_normalized": self._norm(hypothesis),
            "wer": counts.wer,
            "edits": counts.errors,
            "substitutions": counts.substitutions,
            "deletions": counts.deletions,
            "insertions": counts.insertions,
            "ref_words": counts.ref_words,
        }

    def compute(self, *, row_prefix: str = "") -> list[MetricResult]:
        """The metrics, each saying how to rebuild it from ``scores.jsonl`` rows (for the gate's
        paired bootstrap): corpus = ratio of summed ``edits`` to ``ref_words``; mean = of ``wer``."""
        from dataclasses import replace

        results = []
        for mode, metric in self.metrics.items():
            result = metric.compute()
            spec = ({"ratio": [f"{row_prefix}edits", f"{row_prefix}ref_words"]} if mode == "corpus"
                    else {"mean": f"{row_prefix}wer"})
            variant = f"{result.variant}+{self.variant_suffix}" if self.variant_suffix else result.variant
            results.append(replace(result, variant=variant, extra={**dict(result.extra), "per_sample": spec}))
        return results
