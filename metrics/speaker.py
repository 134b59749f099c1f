"""Speaker similarity (SIM): cosine between speaker embeddings of generated and reference speech.

What seed-tts-eval computes (``BytedanceSpeech/seed-tts-eval`` @ 752f429, ``cal_sim.sh`` ->
UniSpeech ``downstreams/speaker_verification/verification.py``): ``ECAPA_TDNN_SMALL(feat_dim=1024,
feat_type="wavlm_large")`` -- WavLM-large hidden states (fetched at run time with
``torch.hub.load("s3prl/s3prl", "wavlm_large")``) mixed by learned layer weights into an
ECAPA-TDNN, a 256-d embedding, weights ``wavlm_large_finetune.pth`` (UniSpeech's speaker
verification fine-tune). Audio: first channel, resampled to 16 kHz, full length, one clip at a
time; score = cosine(embedding(generated), embedding(prompt)); reported as the mean, 3 decimals.

What we compute: the same pairing, cosine and mean, but the embedding is transformers'
``WavLMForXVector`` (e.g. ``microsoft/wavlm-base-plus-sv``: WavLM-base-plus + TDNN x-vector head,
512-d), loaded from a local directory. That checkpoint family is not seed-tts-eval's: the UniSpeech
``.pth`` is an s3prl/ECAPA state dict that transformers cannot load, and it needs s3prl and network
access at run time. **Numbers from the two are not comparable** (different network, training and
embedding space; cosines of x-vectors from the SV head sit in a different range). Our results carry
``variant="wavlm_xvector"`` and the model id so a table never mixes them. Minor difference: stereo
files are averaged to mono here (``mio_eval.media.load_audio``), seed-tts-eval takes channel 0.

Batching: as in ``mio_eval.models.wav2vec2_asr``, clips share a padded encoder pass only when
padding is exact (attention mask + layer-norm conv front end); group-norm checkpoints such as
wavlm-base-plus-sv run one clip per pass (seed-tts-eval also embeds one clip at a time). The
x-vector head always runs on each clip's own frames: transformers' batched pooling counts frames
computed from padding (see ``SpeakerEncoder._forward``), so embeddings never depend on the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mio_eval.errors import ConfigError, MediaError
from mio_eval.media import load_audio
from mio_eval.metrics.base import MetricResult
from mio_eval.models.wav2vec2_asr import checkpoint_dir, from_pretrained, padding_is_exact, weights_digests
from mio_eval.progress import progress

__all__ = [
    "Embedding",
    "PairScore",
    "SpeakerEncoder",
    "SpeakerSimilarity",
    "cosine_similarity",
    "score_pairs",
    "speaker_similarity",
]

SAMPLE_RATE = 16000


@dataclass(frozen=True, eq=False)
class Embedding:
    """The speaker embedding of one file, or the reason there is none."""

    path: str
    vector: np.ndarray | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class PairScore:
    """The cosine of one (generated, reference) pair, or why it could not be scored."""

    value: float | None
    error: str | None = None


def cosine_similarity(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Cosine of the angle between two vectors, in float64 (range -1..1).

    >>> cosine_similarity([3, 4], [4, 3])
    0.96
    >>> cosine_similarity([3, 4], [-6, -8])
    -1.0
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"cosine of vectors of different sizes: {a.size} and {b.size}")
    norms = float(np.linalg.norm(a)) * float(np.linalg.norm(b))
    if norms == 0.0:
        raise ValueError("cosine with a zero vector is undefined")
    return float(np.clip(np.dot(a, b) / norms, -1.0, 1.0))


class SpeakerEncoder:
    """transformers ``WavLMForXVector`` from a local directory: audio files -> x-vectors.

    ``model_id`` names the checkpoint in provenance (default: the directory name).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        model_id: str | None = None,
        device: str = "cpu",
        batch_size: int = 8,
        force_batching: bool = False,
    ) -> None:
        self.path = Path(path)
        self.model_id = model_id or self.path.name
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self.force_batching = bool(force_batching)
        self.model = None
        self.feature_extractor = None
        self._digests: dict[str, str] = {}
        self._batched = False

    def load(self) -> None:
        if self.model is not None:
            return
        checkpoint_dir(self.path, "speaker encoder")
        self._digests = weights_digests(self.path)
        from transformers import AutoFeatureExtractor, WavLMForXVector

        self.feature_extractor = from_pretrained(AutoFeatureExtractor, self.path, "speaker encoder")
        rate = self.feature_extractor.sampling_rate
        if rate != SAMPLE_RATE:
            raise ConfigError(f"speaker encoder: feature extractor expects {rate} Hz, we feed {SAMPLE_RATE} Hz")
        model = from_pretrained(WavLMForXVector, self.path, "speaker encoder")
        self.model = model.to(self.device).eval()
        self._batched = self.force_batching or padding_is_exact(model.config, self.feature_extractor)

    @property
    def dim(self) -> int | None:
        return int(self.model.config.xvector_output_dim) if self.model is not None else None

    def _forward(self, clips: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The padded batch goes through the WavLM encoder (exact with a mask, see ``load``); the
        x-vector head then runs on each clip's own frames. ``WavLMForXVector.forward`` pools a
        padded batch over ``_get_tdnn_output_lengths``, which ignores ``tdnn_dilation``
        (transformers 4.57 ``modeling_wavlm.py``): with the default dilations (1,2,3,1,1) it
        averages 6 frames computed from padding. On an unpadded clip the two paths agree."""
        import torch

        model = self.model
        features = self.feature_extractor(list(clips), sampling_rate=SAMPLE_RATE, padding=True, return_tensors="pt")
        mask = features.get("attention_mask")
        weighted = bool(model.config.use_weighted_layer_sum)
        with torch.inference_mode():
            out = model.wavlm(features["input_values"].to(self.device),
                              attention_mask=None if mask is None else mask.to(self.device),
                              output_hidden_states=weighted)
            if weighted:  # as WavLMForXVector.forward
                weights = torch.nn.functional.softmax(model.layer_weights, dim=-1)
                hidden = (torch.stack(out.hidden_states, dim=1) * weights.view(-1, 1, 1)).sum(dim=1)
            else:
                hidden = out[0]
            frames = model._get_feat_extract_output_lengths(torch.tensor([len(c) for c in clips]))
            vectors = []
            for k, n in enumerate(frames.tolist()):
                x = model.projector(hidden[k:k + 1, :n])
                for layer in model.tdnn:
                    x = layer(x)
                stats = torch.cat([x.mean(dim=1), x.std(dim=1)], dim=-1)
                vectors.append(model.feature_extractor(stats)[0].float().cpu().numpy())
        return vectors

    def _read(self, path: str) -> np.ndarray:
        import torch

        samples = load_audio(path, sample_rate=SAMPLE_RATE).samples
        # Statistics pooling needs two TDNN frames (a std over one frame is NaN): about 0.3 s with
        # the default TDNN (kernels 5,3,3,1,1, dilations 1,2,3,1,1 over 20 ms frames).
        frames = int(self.model._get_feat_extract_output_lengths(torch.tensor([len(samples)]))[0])
        config = self.model.config
        if frames - sum((k - 1) * d for k, d in zip(config.tdnn_kernel, config.tdnn_dilation)) < 2:
            raise MediaError(f"audio too short for a speaker embedding ({len(samples)} samples at 16 kHz): "
                             f"{Path(path).name}")
        return samples

    def embed(self, paths: Sequence[str | Path]) -> list[Embedding]:
        """One ``Embedding`` per path, in order; an unreadable file is an error entry, not an exception.

        A path given several times is embedded once.
        """
        self.load()
        unique = list(dict.fromkeys(str(p) for p in paths))
        found: dict[str, Embedding] = {}
        clips: list[tuple[str, np.ndarray]] = []
        with progress(total=len(unique), desc="scoring: WavLM speaker embeddings", unit="file") as bar:
            for path in unique:
                try:
                    clips.append((path, self._read(path)))
                except MediaError as exc:
                    found[path] = Embedding(path, error=str(exc))
                    bar.update(1)
            clips.sort(key=lambda item: -len(item[1]))  # less padding; results do not depend on it
            size = self.batch_size if self._batched else 1
            for start in range(0, len(clips), size):
                chunk = clips[start:start + size]
                for (path, _), vector in zip(chunk, self._forward([clip for _, clip in chunk])):
                    found[path] = Embedding(path, vector=vector)
                bar.update(len(chunk))
        return [found[str(p)] for p in paths]

    def provenance(self) -> Mapping[str, Any]:
        from importlib.metadata import version

        config = self.model.config if self.model is not None else None
        return {
            "model": "transformers WavLMForXVector",
            "model_id": self.model_id,
            "path": str(self.path),
            "name_or_path": getattr(config, "_name_or_path", None),
            "embedding_dim": self.dim,
            "weights_sha256": dict(self._digests),
            "package": f"transformers {version('transformers')}",
            "audio": {"sample_rate": SAMPLE_RATE, "channels": "mean to mono", "length": "full"},
            "batching": "padded+attention_mask" if self._batched else "one_clip_per_forward",
        }


def score_pairs(
    generated: Sequence[str | Path], references: Sequence[str | Path], encoder: SpeakerEncoder
) -> list[PairScore]:
    """Cosine of each (generated, reference-or-prompt) pair; a pair with an unreadable side gets its reason."""
    if len(generated) != len(references):
        raise ValueError(f"{len(generated)} generated files but {len(references)} references")
    embeddings = encoder.embed([*generated, *references])
    scores = []
    for gen, ref in zip(embeddings[: len(generated)], embeddings[len(generated):]):
        errors = [f"{side}: {e.error}" for side, e in (("generated", gen), ("reference", ref)) if not e.ok]
        scores.append(PairScore(None, "; ".join(errors)) if errors else
                      PairScore(cosine_similarity(gen.vector, ref.vector)))
    return scores


def speaker_similarity(
    generated: Sequence[str | Path], references: Sequence[str | Path], encoder: SpeakerEncoder
) -> list[float | None]:
    """Cosine per (generated, reference) pair; None where either file could not be embedded."""
    return [score.value for score in score_pairs(generated, references, encoder)]


class SpeakerSimilarity:
    """Mean speaker similarity over a split: ``update`` per batch of pairs, ``compute`` once."""

    higher_is_better = True
    variant = "wavlm_xvector"

    def __init__(self, encoder: SpeakerEncoder, *, name: str = "speaker_sim") -> None:
        self.encoder = encoder
        self.name = name
        self.reset()

    @property
    def provenance(self) -> str:
        return (f"transformers WavLMForXVector {self.encoder.model_id}; cosine(generated, reference) of "
                f"x-vectors, 16 kHz mono, full length; not comparable with seed-tts-eval's WavLM-large "
                f"ECAPA-TDNN SIM")

    def reset(self) -> None:
        self.scores: list[float] = []
        self.n_errors = 0

    def update(self, generated: Sequence[str | Path], references: Sequence[str | Path]) -> list[float | str]:
        """Score pairs; per pair the cosine, or (a ``str``) the reason it could not be scored."""
        pairs = score_pairs(generated, references, self.encoder)
        self.scores.extend(p.value for p in pairs if p.value is not None)
        self.n_errors += sum(p.value is None for p in pairs)
        return [p.value if p.value is not None else p.error for p in pairs]

    def compute(self) -> MetricResult:
        value = float(np.mean(self.scores)) if self.scores else None
        return MetricResult(
            name=self.name,
            value=value,
            higher_is_better=True,
            variant=self.variant,
            provenance=self.provenance,
            scale=1.0,
            n=len(self.scores),
            extra={"n_errors": self.n_errors, "decimals": 3, "embedding_dim": self.encoder.dim,
                   "model_id": self.encoder.model_id},
        )
