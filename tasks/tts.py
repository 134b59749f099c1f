"""Text-to-speech: the model speaks the text, an ASR judge transcribes it, WER against the text.

The judge is any adapter that reads audio and writes text (openai-whisper from a local
checkpoint, or pocketsphinx offline). Both WER aggregations are reported, each labelled:
``wer_corpus`` (total edits / total words) and ``wer_utt_mean`` (mean per-utterance WER,
seed-tts-eval). Samples whose generation or transcription failed are not in the WER; they are
counted in ``n_errors`` with their reasons in ``scores.jsonl``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from mio_eval.adapter import ModelAdapter, check_capabilities
from mio_eval.errors import ConfigError
from mio_eval.metrics.normalizers import get_normalizer
from mio_eval.metrics.wer import WER_MODES, WordErrorRate
from mio_eval.tasks.base import Generated, InvalidOutput, ScoreReport
from mio_eval.types import Audio, Modality, Output, Request, Sample, Text

__all__ = ["TTSTask"]


class TTSTask:
    input_modalities = frozenset({Modality.TEXT})
    output_modality = Modality.AUDIO
    scoring_keys: ClassVar[tuple[str, ...]] = ("judge", "normalizer", "wer_modes", "judge_batch_size")

    def __init__(
        self,
        *,
        name: str,
        loader: Callable[[], list[Sample]],
        judge: ModelAdapter,
        prompt: str = "{text}",
        generation: Mapping[str, Any] | None = None,
        normalizer: str = "whisper_en",
        wer_modes: Sequence[str] = WER_MODES,
        judge_batch_size: int = 8,
    ) -> None:
        self.name = name
        self.loader = loader
        self.judge = judge
        self.prompt = prompt
        self.generation = dict(generation or {})
        get_normalizer(normalizer)  # fail at construction on an unknown name
        self.normalizer = normalizer
        self.wer_modes = tuple(wer_modes)
        for mode in self.wer_modes:
            if mode not in WER_MODES:
                raise ValueError(f"unknown WER mode {mode!r}; choose from {WER_MODES}")
        self.judge_batch_size = int(judge_batch_size)
        check_capabilities(judge, needs_inputs=frozenset({Modality.AUDIO}), produces=Modality.TEXT)
        self._judge_loaded = False

    def samples(self) -> list[Sample]:
        return self.loader()

    def preflight(self) -> None:
        """Fail before generation, not after, when the judge's checkpoint is missing."""
        path = getattr(self.judge, "path", None)
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"ASR judge checkpoint not found: {path} (task.judge.whisper_path)")

    def request(self, sample: Sample) -> Request:
        return Request(
            sample_id=sample.id,
            parts=(Text(self.prompt.format(text=sample.targets[0])),),
            output_modality=Modality.AUDIO,
            generation=self.generation,
        )

    def prediction(self, sample: Sample, output: Output) -> str:
        audio = [p for p in output.media if isinstance(p, Audio)]
        if not audio:
            kinds = ", ".join(sorted(m.value for m in output.modalities())) or "nothing"
            raise InvalidOutput(f"expected audio, got {kinds}")
        return audio[0].path

    def _transcribe(self, paths: Sequence[str], work_dir: Path) -> list[Output]:
        if not self._judge_loaded:
            self.judge.load()
            self._judge_loaded = True
        outputs: list[Output] = []
        for start in range(0, len(paths), self.judge_batch_size):
            chunk = paths[start : start + self.judge_batch_size]
            requests = [Request(sample_id=str(start + i), parts=(Audio(p),)) for i, p in enumerate(chunk)]
            outputs.extend(self.judge.generate(requests, media_dir=work_dir))
        return outputs

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        ok = [g for g in generated if g.error is None]
        transcripts = self._transcribe([g.prediction for g in ok], work_dir)
        metrics = {mode: WordErrorRate(mode=mode, normalizer=self.normalizer) for mode in self.wer_modes}
        norm = get_normalizer(self.normalizer)
        rows: dict[str, dict[str, Any]] = {}
        for g in generated:
            if g.error is not None:
                rows[g.sample.id] = {"id": g.sample.id, "error": g.error, "stage": "generate"}
        for g, judged in zip(ok, transcripts):
            if judged.error is not None or judged.text is None:
                reason = judged.error or "judge returned no text"
                rows[g.sample.id] = {"id": g.sample.id, "error": f"judge: {reason}", "stage": "score"}
                continue
            reference = g.sample.targets[0]
            counts = None
            for metric in metrics.values():
                counts = metric.update([reference], [judged.text])[0]
            rows[g.sample.id] = {
                "id": g.sample.id,
                "error": None,
                "reference": reference,
                "transcript": judged.text,
                "reference_normalized": norm(reference),
                "transcript_normalized": norm(judged.text),
                "wer": counts.wer,
                "substitutions": counts.substitutions,
                "deletions": counts.deletions,
                "insertions": counts.insertions,
                "ref_words": counts.ref_words,
            }
        return ScoreReport(
            metrics=tuple(m.compute() for m in metrics.values()),
            per_sample=tuple(rows[g.sample.id] for g in generated),
            judges=(dict(self.judge.provenance()),),
            settings={"normalizer": self.normalizer, "wer_modes": list(self.wer_modes)},
        )
