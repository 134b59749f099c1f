"""Speech recognition: the model transcribes each recording, WER against the transcript.

Both aggregations are reported and labelled (``wer_corpus``: total edits / total reference
words, the Whisper paper and lmms-eval LibriSpeech; ``wer_utt_mean``: mean per-utterance WER),
after the named normaliser (Whisper's EnglishTextNormalizer by default, on both sides).
An empty transcript is a valid answer (every word deleted); a missing or unreadable recording
is that sample's error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from mio_eval.metrics.normalizers import TextNormalizer
from mio_eval.metrics.wer import WER_MODES
from mio_eval.tasks.base import Generated, InvalidOutput, ScoreReport, describe_output
from mio_eval.tasks.speech import SpokenInputTask, WerScorer
from mio_eval.types import Modality, Output, Sample

__all__ = ["ASRTask"]


class ASRTask(SpokenInputTask):
    kind = "asr"
    output_modality = Modality.TEXT
    scoring_keys: ClassVar[tuple[str, ...]] = ("normalizer", "wer_modes")

    def __init__(
        self,
        *,
        name: str,
        loader: Callable[[], list[Sample]],
        prompt: str | None = None,
        generation: Mapping[str, Any] | None = None,
        normalizer: TextNormalizer | None = None,
        wer_modes: Sequence[str] = WER_MODES,
    ) -> None:  # options spelled out (not **kwargs): the signature is the YAML's contract
        self._spoken_input(name=name, loader=loader, prompt=prompt, generation=generation, normalizer=normalizer,
                           wer_modes=wer_modes)

    def prediction(self, sample: Sample, output: Output) -> str:
        if output.text is None:
            raise InvalidOutput(f"expected a transcript, got {describe_output(output)}")
        return output.text.strip()

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        scorer = WerScorer(normalizer=self.text_normalizer, modes=self.wer_modes)
        rows = []
        for g in generated:
            if g.error is not None:
                rows.append({"id": g.sample.id, "error": g.error, "stage": "generate"})
                continue
            rows.append({"id": g.sample.id, "error": None, **scorer.add(g.sample.targets[0], g.prediction)})
        return ScoreReport(
            metrics=tuple(scorer.compute()),
            per_sample=tuple(rows),
            settings={"normalizer": self.normalizer, "wer_modes": list(self.wer_modes)},
        )
