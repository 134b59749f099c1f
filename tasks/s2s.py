"""Speech-to-speech: a spoken question in, a spoken answer out; an ASR judge transcribes the
answer and the transcript is scored against the reference answer text.

Metrics, each labelled:

* ``answer_accuracy``: 1 when a reference answer, normalised, occurs as a whole-word span of the
  normalised transcript (the "answer contained" rule of spoken-QA evaluations such as
  SpeechGPT's and Moshi's Web/Llama Questions); the mean over scored samples;
* ``wer_corpus`` / ``wer_utt_mean`` of the transcript against the first reference answer (useful
  when the reference is a full spoken answer rather than a short span).

The judge, its batching and the normaliser are shared with the TTS task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from mio_eval.adapter import ModelAdapter
from mio_eval.metrics.base import MetricResult
from mio_eval.metrics.normalizers import TextNormalizer
from mio_eval.metrics.wer import WER_MODES
from mio_eval.tasks.base import Generated, ScoreReport, media_path
from mio_eval.tasks.speech import SpokenInputTask, Transcriber, WerScorer
from mio_eval.types import Audio, Modality, Output, Sample

__all__ = ["SpeechToSpeechTask", "answer_contained"]


def answer_contained(transcript: str, answers: Sequence[str], normalize: Callable[[str], str]) -> bool:
    """Whether any normalised answer appears as a whole-word span of the normalised transcript."""
    heard = f" {normalize(transcript)} "
    return any(f" {normalize(a)} " in heard for a in answers if normalize(a))


class SpeechToSpeechTask(SpokenInputTask):
    kind = "s2s"
    output_modality = Modality.AUDIO
    scoring_keys: ClassVar[tuple[str, ...]] = ("judge", "normalizer", "wer_modes", "judge_batch_size")

    def __init__(
        self,
        *,
        name: str,
        loader: Callable[[], list[Sample]],
        judge: ModelAdapter,
        prompt: str | None = None,
        generation: Mapping[str, Any] | None = None,
        normalizer: TextNormalizer | None = None,
        wer_modes: Sequence[str] = WER_MODES,
        judge_batch_size: int = 8,
    ) -> None:  # options spelled out (not **kwargs): the signature is the YAML's contract
        self._spoken_input(name=name, loader=loader, prompt=prompt, generation=generation, normalizer=normalizer,
                           wer_modes=wer_modes)
        self.judge = judge
        self.transcriber = Transcriber(judge, batch_size=judge_batch_size, role="judge")

    def preflight(self) -> None:
        self.transcriber.preflight()

    def prediction(self, sample: Sample, output: Output) -> str:
        return media_path(output, Audio, "a spoken answer")

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        ok = [g for g in generated if g.error is None]
        transcripts = self.transcriber([g.prediction for g in ok], work_dir)
        norm = self.text_normalizer
        scorer = WerScorer(normalizer=self.text_normalizer, modes=self.wer_modes, hypothesis_key="transcript")
        rows: dict[str, dict[str, Any]] = {}
        correct: list[bool] = []
        for g in generated:
            if g.error is not None:
                rows[g.sample.id] = {"id": g.sample.id, "error": g.error, "stage": "generate"}
        for g, judged in zip(ok, transcripts):
            if judged.error is not None or judged.text is None:
                rows[g.sample.id] = {"id": g.sample.id, "error": f"judge: {judged.error or 'no text'}",
                                     "stage": "score"}
                continue
            hit = answer_contained(judged.text, g.sample.targets, norm)
            correct.append(hit)
            rows[g.sample.id] = {"id": g.sample.id, "error": None, "answers": list(g.sample.targets),
                                 "correct": hit, **scorer.add(g.sample.targets[0], judged.text)}
        accuracy = MetricResult(
            name="answer_accuracy",
            value=sum(correct) / len(correct) if correct else None,
            higher_is_better=True,
            variant=f"contains+{self.normalizer}",
            provenance="reference answer contained (whole words) in the judge's transcript after normalisation",
            scale=100.0,
            n=len(correct),
            extra={"per_sample": {"mean": "correct"}},
        )
        return ScoreReport(
            metrics=(accuracy, *scorer.compute()),
            per_sample=tuple(rows[g.sample.id] for g in generated),
            judges=(self.transcriber.provenance(),),
            settings={"normalizer": self.normalizer, "wer_modes": list(self.wer_modes),
                      "judge_batch_size": self.transcriber.batch_size},
        )
