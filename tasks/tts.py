"""Text-to-speech: the model speaks the text, an ASR judge transcribes it, WER against the text.

The judge is any adapter that reads audio and writes text: openai-whisper from a local
checkpoint (medium for the AnyGPT/MIO protocol, large-v3 for seed-tts-eval's), or pocketsphinx
offline. Its transcription is batched. Both WER aggregations are reported, each labelled:
``wer_corpus`` (total edits / total words) and ``wer_utt_mean`` (mean per-utterance WER,
seed-tts-eval).

Optional, each switched on in the task config:

* speaker similarity (``speaker_encoder``): cosine between speaker embeddings of the generated
  wav and the sample's reference recording (``speaker_reference: reference``) or the voice
  prompt given to the model (``prompt``), as ``speaker_sim``;
* round trip (``round_trip: true``): the model under test transcribes its own speech, giving
  ``wer_corpus_roundtrip`` / ``wer_utt_mean_roundtrip`` beside the judge's numbers (any-to-any
  models only: the model must read audio and write text).

Samples whose generation or transcription failed are not in the WER; they are counted in
``n_errors`` with their reasons in ``scores.jsonl``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from mio_eval.adapter import ModelAdapter
from mio_eval.capabilities import Capabilities
from mio_eval.errors import ConfigError
from mio_eval.generation import generation_settings
from mio_eval.metrics.normalizers import TextNormalizer, WhisperEnglish, check_text_normalizer
from mio_eval.metrics.wer import WER_MODES
from mio_eval.tasks.base import Generated, ScoreReport, media_path
from mio_eval.tasks.speech import Transcriber, WerScorer, check_wer_modes
from mio_eval.types import Audio, Modality, Output, Request, Sample, Text

__all__ = ["TTSTask", "SPEAKER_REFERENCES"]

SPEAKER_REFERENCES = ("reference", "prompt")


class TTSTask:
    input_modalities = frozenset({Modality.TEXT})
    output_modality = Modality.AUDIO
    scoring_keys: ClassVar[tuple[str, ...]] = ("judge", "normalizer", "wer_modes", "judge_batch_size",
                                               "speaker_encoder", "speaker_reference", "round_trip")

    def __init__(
        self,
        *,
        name: str,
        loader: Callable[[], list[Sample]],
        judge: ModelAdapter,
        prompt: str = "{text}",
        generation: Mapping[str, Any] | None = None,
        normalizer: TextNormalizer | None = None,
        wer_modes: Sequence[str] = WER_MODES,
        judge_batch_size: int = 8,
        speaker_encoder: Any | None = None,
        speaker_reference: str = "reference",
        round_trip: bool = False,
    ) -> None:
        self.name = name
        self.loader = loader
        self.prompt = prompt
        self.generation = generation_settings(generation)
        self.text_normalizer = check_text_normalizer(WhisperEnglish() if normalizer is None else normalizer)
        self.normalizer = self.text_normalizer.name  # the name results record
        self.wer_modes = check_wer_modes(wer_modes)
        self.judge = judge
        self.transcriber = Transcriber(judge, batch_size=judge_batch_size, role="judge")
        if speaker_reference not in SPEAKER_REFERENCES:
            raise ConfigError(f"speaker_reference must be one of {', '.join(SPEAKER_REFERENCES)}, "
                              f"got {speaker_reference!r}")
        self.speaker_encoder = speaker_encoder
        self.speaker_reference = speaker_reference
        self.round_trip = bool(round_trip)
        self._round_trip: Transcriber | None = None

    def bind(self, capabilities: Capabilities) -> None:
        """Called by the builder; only ``round_trip`` uses the model under test, as a speech reader."""
        if self.round_trip:
            self._round_trip = Transcriber(capabilities.speech_to_text(), batch_size=self.transcriber.batch_size,
                                           role="round-trip")

    def samples(self) -> list[Sample]:
        return self.loader()

    def preflight(self) -> None:
        """Fail before generation, not after, when a scoring checkpoint is missing."""
        self.transcriber.preflight()
        path = getattr(self.speaker_encoder, "path", None)
        if path is not None and not Path(path).exists():
            raise ConfigError(f"speaker encoder not found: {path} (task.speaker_encoder.path)")
        if self.round_trip and self._round_trip is None:
            raise ConfigError("round_trip=true needs the model under test (build the task through mio_eval.api)")

    def request(self, sample: Sample) -> Request:
        return Request(
            sample_id=sample.id,
            parts=(Text(self.prompt.format(text=sample.targets[0])),),
            output_modality=Modality.AUDIO,
            generation=self.generation,
            kind="tts",
        )

    def prediction(self, sample: Sample, output: Output) -> str:
        return media_path(output, Audio, "audio")

    def _speaker_reference(self, sample: Sample) -> str | None:
        key = "reference_audio" if self.speaker_reference == "reference" else "prompt_audio"
        return sample.metadata.get(key)

    def _speaker_similarity(self, ok: Sequence[Generated], rows: dict[str, dict[str, Any]]):
        from mio_eval.metrics.speaker import SpeakerSimilarity

        metric = SpeakerSimilarity(self.speaker_encoder)
        pairs = [(g, self._speaker_reference(g.sample)) for g in ok if rows[g.sample.id]["error"] is None]
        for g, ref in pairs:
            if ref is None:
                rows[g.sample.id]["speaker_sim_error"] = f"no {self.speaker_reference} audio for this sample"
        pairs = [(g, ref) for g, ref in pairs if ref is not None]
        values = metric.update([g.prediction for g, _ in pairs], [ref for _, ref in pairs])
        for (g, _), value in zip(pairs, values):
            if isinstance(value, str):
                rows[g.sample.id]["speaker_sim_error"] = value
            else:
                rows[g.sample.id]["speaker_sim"] = value
        return metric.compute()

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        ok = [g for g in generated if g.error is None]
        transcripts = self.transcriber([g.prediction for g in ok], work_dir)
        scorer = WerScorer(normalizer=self.text_normalizer, modes=self.wer_modes, hypothesis_key="transcript")
        rows: dict[str, dict[str, Any]] = {}
        for g in generated:
            if g.error is not None:
                rows[g.sample.id] = {"id": g.sample.id, "error": g.error, "stage": "generate"}
        for g, judged in zip(ok, transcripts):
            if judged.error is not None or judged.text is None:
                reason = judged.error or "judge returned no text"
                rows[g.sample.id] = {"id": g.sample.id, "error": f"judge: {reason}", "stage": "score"}
                continue
            rows[g.sample.id] = {"id": g.sample.id, "error": None, **scorer.add(g.sample.targets[0], judged.text)}
        for g in generated:  # the recorded speech, heard beside the generated one in `mio-eval view`
            if g.sample.metadata.get("reference_audio"):
                rows[g.sample.id]["reference_audio"] = g.sample.metadata["reference_audio"]
        metrics = scorer.compute()
        judges = [self.transcriber.provenance()]
        if self._round_trip is not None:
            scored = [g for g in ok if rows[g.sample.id]["error"] is None]
            own = self._round_trip([g.prediction for g in scored], work_dir)
            trip = WerScorer(normalizer=self.text_normalizer, modes=self.wer_modes, prefix="wer",
                             variant_suffix="roundtrip", hypothesis_key="roundtrip_transcript")
            for metric in trip.metrics.values():
                metric.name += "_roundtrip"
            for g, heard in zip(scored, own):
                if heard.error is not None or heard.text is None:
                    rows[g.sample.id]["roundtrip_error"] = heard.error or "model returned no text"
                    continue
                added = trip.add(g.sample.targets[0], heard.text)
                rows[g.sample.id].update(roundtrip_transcript=added["roundtrip_transcript"],
                                         roundtrip_wer=added["wer"], roundtrip_edits=added["edits"],
                                         roundtrip_ref_words=added["ref_words"])
            metrics += trip.compute(row_prefix="roundtrip_")
            judges.append(self._round_trip.provenance())
        if self.speaker_encoder is not None:
            from dataclasses import replace

            sim = self._speaker_similarity(ok, rows)
            metrics.append(replace(sim, extra={**dict(sim.extra), "per_sample": {"mean": "speaker_sim"}}))
            judges.append(dict(self.speaker_encoder.provenance()))
        return ScoreReport(
            metrics=tuple(metrics),
            per_sample=tuple(rows[g.sample.id] for g in generated),
            judges=tuple(judges),
            settings={"normalizer": self.normalizer, "wer_modes": list(self.wer_modes),
                      "judge_batch_size": self.transcriber.batch_size, "round_trip": self.round_trip,
                      "speaker_reference": self.speaker_reference if self.speaker_encoder is not None else None},
        )
