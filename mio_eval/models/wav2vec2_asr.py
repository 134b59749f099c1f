"""transformers Wav2Vec2ForCTC as a speech recogniser: the paper's Wav2vec 2.0 ASR baseline.

Loads a local model directory (``save_pretrained`` output or a hub snapshot, e.g.
``facebook/wav2vec2-base-960h``) with ``Wav2Vec2ForCTC`` and ``Wav2Vec2Processor`` (feature
extractor + CTC tokenizer from the same directory); never downloads. Audio is read at 16 kHz mono,
full length (no chunking), fp32. Decoding is greedy CTC, as the model card: argmax per frame, then
the tokenizer's ``batch_decode`` collapses repeats and drops blanks. Each clip's frames are cut to
its own length first, so padded frames never emit characters.

Batching. Padding is exact only when the feature extractor returns an attention mask *and* the
conv front end uses layer norm (``feat_extract_norm="layer"``, the large/lv60 checkpoints).
Group-norm checkpoints (``wav2vec2-base-960h``) normalise each conv channel over the whole padded
clip and were trained without a mask, so HF's zero padding changes their logits slightly; they run
one clip per forward pass (the model card evaluates with ``batch_size=1``), so a transcript never
depends on its batch companions. ``force_batching=True`` pads them anyway (faster, inexact).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.checkpoints import checkpoint_dir, weights_digests
from mio_eval.errors import ConfigError, MediaError
from mio_eval.media import request_audio
from mio_eval.models.hf_base import from_pretrained
from mio_eval.types import Audio, Modality, Output, Request

# checkpoint_dir, from_pretrained and weights_digests are re-exported for metrics.speaker (their homes:
# mio_eval.checkpoints, mio_eval.models.hf_base).
__all__ = ["Wav2Vec2ASR", "checkpoint_dir", "from_pretrained", "weights_digests", "padding_is_exact"]

SAMPLE_RATE = 16000


def padding_is_exact(config: Any, feature_extractor: Any) -> bool:
    """Whether zero padding + attention mask reproduce the unpadded outputs of a wav2vec2-style model."""
    return bool(getattr(feature_extractor, "return_attention_mask", False)) and (
        getattr(config, "feat_extract_norm", "layer") == "layer")


def _ctc_tokens(ids: Sequence[int], blank: int) -> int:
    """How many tokens greedy CTC emits: repeats collapsed, blanks dropped."""
    count, previous = 0, None
    for token in ids:
        if token != previous and token != blank:
            count += 1
        previous = token
    return count


class Wav2Vec2ASR:
    inputs = frozenset({Modality.AUDIO})
    outputs = frozenset({Modality.TEXT})

    def __init__(
        self,
        *,
        path: str,
        name: str = "wav2vec2",
        force_batching: bool = False,
        device: str = "cpu",
    ) -> None:
        self.name = name
        self.path = Path(path)
        self.force_batching = bool(force_batching)
        self.device = device
        self.model = None
        self.processor = None
        self._digests: dict[str, str] = {}
        self._batched = False

    def load(self) -> None:
        if self.model is not None:
            return
        checkpoint_dir(self.path, "wav2vec2")
        self._digests = weights_digests(self.path)
        from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor

        self.processor = from_pretrained(Wav2Vec2Processor, self.path, "wav2vec2")
        model = from_pretrained(Wav2Vec2ForCTC, self.path, "wav2vec2")
        self.model = model.to(self.device).eval()
        rate = self.processor.feature_extractor.sampling_rate
        if rate != SAMPLE_RATE:
            raise ConfigError(f"wav2vec2: feature extractor expects {rate} Hz, this adapter feeds {SAMPLE_RATE} Hz")
        self._batched = self.force_batching or padding_is_exact(model.config, self.processor.feature_extractor)

    def _frames(self, n_samples: Sequence[int]) -> list[int]:
        import torch

        lengths = self.model._get_feat_extract_output_lengths(torch.tensor(list(n_samples)))
        return [int(n) for n in lengths]

    def _transcribe(self, clips: Sequence[Any]) -> list[tuple[str, int]]:
        import torch

        features = self.processor.feature_extractor(list(clips), sampling_rate=SAMPLE_RATE, padding=True,
                                                    return_tensors="pt")
        kwargs = {}
        if "attention_mask" in features:
            kwargs["attention_mask"] = features["attention_mask"].to(self.device)
        with torch.inference_mode():
            logits = self.model(features["input_values"].to(self.device), **kwargs).logits
        ids = logits.argmax(dim=-1).cpu()
        sequences = [ids[k, :n].tolist() for k, n in enumerate(self._frames([len(c) for c in clips]))]
        texts = self.processor.batch_decode(sequences)
        blank = self.processor.tokenizer.pad_token_id
        return [(text.strip(), _ctc_tokens(seq, blank)) for text, seq in zip(texts, sequences)]

    def generate(self, requests: Sequence[Request], *, media_dir: Path) -> list[Output]:
        self.load()
        outputs: list[Output | None] = [None] * len(requests)
        clips: list[tuple[int, Any]] = []
        for i, request in enumerate(requests):
            try:
                samples = request_audio(request, label="wav2vec2", sample_rate=SAMPLE_RATE)
            except MediaError as exc:
                outputs[i] = Output.failure(str(exc))
                continue
            if self._frames([len(samples)])[0] < 1:  # shorter than one conv window (25 ms)
                clip = next(p for p in request.parts if isinstance(p, Audio))
                outputs[i] = Output.failure(f"wav2vec2: audio too short ({len(samples)} samples at 16 kHz) "
                                            f"for one frame: {Path(clip.path).name}")
                continue
            clips.append((i, samples))
        groups = [clips] if self._batched else [[clip] for clip in clips]
        for group in (g for g in groups if g):
            for (i, _), (text, n_tokens) in zip(group, self._transcribe([samples for _, samples in group])):
                outputs[i] = Output(text=text, n_output_tokens=n_tokens)
        return outputs  # type: ignore[return-value]

    def provenance(self) -> Mapping[str, Any]:
        from importlib.metadata import version

        config = self.model.config if self.model is not None else None
        return {
            "model": "transformers Wav2Vec2ForCTC",
            "name": self.name,
            "path": str(self.path),
            "name_or_path": getattr(config, "_name_or_path", None),
            "model_type": getattr(config, "model_type", None),
            "weights_sha256": dict(self._digests),
            "package": f"transformers {version('transformers')}",
            "decoding": {"method": "greedy_ctc", "sample_rate": SAMPLE_RATE,
                         "batching": "padded+attention_mask" if self._batched else "one_clip_per_forward",
                         "force_batching": self.force_batching},
        }
