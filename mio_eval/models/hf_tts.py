"""transformers text-to-speech models: VITS (MMS-TTS) and SpeechT5 + HiFi-GAN, from local directories.

``kind="auto"`` reads ``config.model_type`` (``vits`` or ``speecht5``). Nothing is downloaded.

VITS (``facebook/mms-tts-eng``): ``VitsModel`` + ``AutoTokenizer``; a batch is one padded forward
pass with the tokenizer's attention mask, and each waveform is cut to the model's own
``sequence_lengths``. VITS samples noise (prior latents and the stochastic duration predictor), so
``torch.manual_seed(seed)`` runs before each forward pass, ``seed`` being the request's
``generation["seed"]`` if set, else ``self.seed``; requests with different seeds go in separate
passes. The noise tensor is drawn for the whole padded batch, so with ``noise_scale > 0`` a
sample's waveform depends on its batch companions (same ``runner.batch_size`` and sample set =
same audio). ``per_sample=True`` synthesises each request alone right after seeding: its audio
then depends only on (text, seed), whatever the batch size, order or resume point; slower. Even
without noise the padded batch is not bit-identical to batch-1 near each waveform's end, because
HF's HiFi-GAN decoder convolves past the valid frames (masked by zeros, not cut).

SpeechT5 (``microsoft/speecht5_tts`` + ``microsoft/speecht5_hifigan``): ``SpeechT5ForTextToSpeech``
+ ``SpeechT5Processor`` + ``SpeechT5HifiGan`` vocoder, a speaker x-vector from a ``.npy`` file
(512-d, e.g. from ``Matthijs/cmu-arctic-xvectors``). Synthesis is autoregressive with a prenet
dropout that stays on at inference (Tacotron 2 §2.2), so each request runs alone after
``torch.manual_seed(seed)``: one request per pass keeps its audio independent of the batch.

Waveforms are written at the model's sampling rate (VITS ``config.sampling_rate``, SpeechT5 the
vocoder's) to ``output_path(media_dir, sample_id, ".wav")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.checkpoints import checkpoint_dir, file_digest, weights_digests
from mio_eval.errors import ConfigError, MediaError
from mio_eval.media import output_path, save_audio
from mio_eval.models.hf_base import from_pretrained
from mio_eval.types import Audio, Modality, Output, Request

__all__ = ["HFTextToSpeech", "KINDS"]

KINDS = ("auto", "vits", "speecht5")


class HFTextToSpeech:
    inputs = frozenset({Modality.TEXT})
    outputs = frozenset({Modality.AUDIO})

    def __init__(
        self,
        *,
        path: str,
        name: str = "hf_tts",
        kind: str = "auto",
        vocoder_path: str | None = None,
        speaker_embedding: str | None = None,
        seed: int = 0,
        per_sample: bool = False,
        noise_scale: float | None = None,
        noise_scale_duration: float | None = None,
        speaking_rate: float | None = None,
        threshold: float = 0.5,
        max_len_ratio: float = 20.0,
        device: str = "cpu",
        subtype: str = "PCM_16",
    ) -> None:
        if kind not in KINDS:
            raise ConfigError(f"hf_tts: unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
        self.name = name
        self.path = Path(path)
        self.kind = kind
        self.vocoder_path = Path(vocoder_path) if vocoder_path else None
        self.speaker_embedding = Path(speaker_embedding) if speaker_embedding else None
        self.seed = int(seed)
        self.per_sample = bool(per_sample)
        self.noise_scale = noise_scale
        self.noise_scale_duration = noise_scale_duration
        self.speaking_rate = speaking_rate
        self.threshold = float(threshold)
        self.max_len_ratio = float(max_len_ratio)
        self.device = device
        self.subtype = subtype
        self.model_type: str | None = None
        self.model = None
        self.tokenizer = None
        self.vocoder = None
        self.sampling_rate: int | None = None
        self._speaker = None
        self._digests: dict[str, Any] = {}

    # --- loading ------------------------------------------------------------------------------

    def load(self) -> None:
        if self.model is not None:
            return
        checkpoint_dir(self.path, "hf_tts")
        from transformers import AutoConfig

        model_type = from_pretrained(AutoConfig, self.path, "hf_tts").model_type
        if model_type not in ("vits", "speecht5"):
            raise ConfigError(f"hf_tts: {self.path} holds a {model_type!r} model; supported: vits, speecht5")
        if self.kind != "auto" and self.kind != model_type:
            raise ConfigError(f"hf_tts: kind={self.kind} but {self.path} holds a {model_type!r} model")
        self._digests = {"model": weights_digests(self.path)}
        if model_type == "vits":
            self._load_vits()
        else:
            self._load_speecht5()
        self.model_type = model_type

    def _load_vits(self) -> None:
        from transformers import AutoTokenizer, VitsModel

        self.tokenizer = from_pretrained(AutoTokenizer, self.path, "hf_tts")
        model = from_pretrained(VitsModel, self.path, "hf_tts").to(self.device).eval()
        # The sampling knobs live on the module (copied from the config at init): override there.
        for knob in ("noise_scale", "noise_scale_duration", "speaking_rate"):
            if getattr(self, knob) is not None:
                setattr(model, knob, float(getattr(self, knob)))
        self.sampling_rate = int(model.config.sampling_rate)
        self.model = model

    def _load_speecht5(self) -> None:
        import numpy as np
        import torch
        from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5Processor

        if self.vocoder_path is None:
            raise ConfigError("hf_tts: SpeechT5 needs a vocoder: set vocoder_path (e.g. microsoft/speecht5_hifigan)")
        if self.speaker_embedding is None:
            raise ConfigError("hf_tts: SpeechT5 needs a speaker x-vector: set speaker_embedding to a .npy file")
        checkpoint_dir(self.vocoder_path, "hf_tts vocoder")
        if not self.speaker_embedding.is_file():
            raise ConfigError(f"hf_tts: speaker embedding not found: {self.speaker_embedding}")
        model = from_pretrained(SpeechT5ForTextToSpeech, self.path, "hf_tts")
        try:
            vector = np.load(self.speaker_embedding).astype(np.float32).reshape(1, -1)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"hf_tts: cannot read speaker embedding {self.speaker_embedding}: {exc}") from None
        if vector.shape[1] != model.config.speaker_embedding_dim:
            raise ConfigError(f"hf_tts: speaker embedding has {vector.shape[1]} values, the model wants "
                              f"{model.config.speaker_embedding_dim}")
        self._speaker = torch.from_numpy(vector).to(self.device)
        self.tokenizer = from_pretrained(SpeechT5Processor, self.path, "hf_tts").tokenizer
        self.vocoder = from_pretrained(SpeechT5HifiGan, self.vocoder_path, "hf_tts vocoder").to(self.device).eval()
        self.model = model.to(self.device).eval()
        self.sampling_rate = int(self.vocoder.config.sampling_rate)
        self._digests["vocoder"] = weights_digests(self.vocoder_path)
        self._digests["speaker_embedding"] = file_digest(self.speaker_embedding)

    # --- synthesis ----------------------------------------------------------------------------

    def _seed(self, request: Request) -> int:
        seed = request.generation.get("seed")
        return self.seed if seed is None else int(seed)

    def _vits(self, batch: Sequence[Request]) -> list[Any]:
        """One padded forward pass; each waveform cut to its ``sequence_lengths``."""
        import torch

        inputs = self.tokenizer([r.text.strip() for r in batch], padding=True, return_tensors="pt")
        with torch.inference_mode():
            out = self.model(input_ids=inputs["input_ids"].to(self.device),
                             attention_mask=inputs["attention_mask"].to(self.device))
        lengths = [int(n) for n in out.sequence_lengths]
        return [out.waveform[k, :n].float().cpu().numpy() for k, n in enumerate(lengths)]

    def _speecht5(self, request: Request) -> Any:
        import torch

        ids = self.tokenizer(request.text.strip(), return_tensors="pt")["input_ids"].to(self.device)
        with torch.inference_mode():
            wave = self.model.generate_speech(ids, self._speaker, threshold=self.threshold,
                                              maxlenratio=self.max_len_ratio, vocoder=self.vocoder)
        return wave.reshape(-1).float().cpu().numpy()

    def _n_tokens(self, text: str) -> int:
        return len(self.tokenizer(text)["input_ids"])

    def _check(self, request: Request) -> str | None:
        """The reason a request cannot be synthesised, or None."""
        text = request.text.strip()
        if not text:
            return f"{self.name}: empty text"
        ids = self.tokenizer(text)["input_ids"]
        if self.model_type == "vits":
            # VITS intersperses a blank (id 0) between characters; nothing else left = nothing to say.
            blank = {self.tokenizer.pad_token_id} | ({0} if getattr(self.tokenizer, "add_blank", False) else set())
            if all(t in blank for t in ids):
                return f"{self.name}: no character of the text is in the VITS vocabulary: {text[:60]!r}"
        else:
            limit, n = self.model.config.max_text_positions, len(ids)
            if n > limit:
                return f"{self.name}: text is {n} tokens, SpeechT5 reads at most {limit}"
        return None

    def _save(self, request: Request, wave: Any, media_dir: Path) -> Output:
        target = output_path(media_dir, request.sample_id, ".wav")
        try:
            save_audio(target, wave, self.sampling_rate, subtype=self.subtype)
        except MediaError as exc:
            return Output.failure(f"{self.name}: {exc}")
        return Output(media=(Audio(str(target), self.sampling_rate),),
                      n_input_tokens=self._n_tokens(request.text.strip()))

    def generate(self, requests: Sequence[Request], *, media_dir: Path) -> list[Output]:
        import torch

        self.load()
        outputs: list[Output | None] = [None] * len(requests)
        ready: list[int] = []
        for i, request in enumerate(requests):
            reason = self._check(request)
            if reason:
                outputs[i] = Output.failure(reason)
            else:
                ready.append(i)
        alone = self.model_type == "speecht5" or self.per_sample
        groups: dict[Any, list[int]] = {}
        for i in ready:  # one pass per (seed) group, or per request
            groups.setdefault(i if alone else self._seed(requests[i]), []).append(i)
        for members in groups.values():
            torch.manual_seed(self._seed(requests[members[0]]))
            if self.model_type == "speecht5":
                waves = [self._speecht5(requests[members[0]])]
            else:
                waves = self._vits([requests[i] for i in members])
            for i, wave in zip(members, waves):
                outputs[i] = self._save(requests[i], wave, media_dir)
        return outputs  # type: ignore[return-value]

    def provenance(self) -> Mapping[str, Any]:
        from importlib.metadata import version

        config = self.model.config if self.model is not None else None
        settings: dict[str, Any] = {"seed": self.seed, "seed_source": "request generation.seed, else seed",
                                    "sampling_rate": self.sampling_rate, "subtype": self.subtype}
        if self.model_type == "vits":
            settings.update(noise_scale=self.model.noise_scale, noise_scale_duration=self.model.noise_scale_duration,
                            speaking_rate=self.model.speaking_rate,
                            batching="one request per pass" if self.per_sample else "padded batch per seed")
        elif self.model_type == "speecht5":
            settings.update(threshold=self.threshold, max_len_ratio=self.max_len_ratio,
                            batching="one request per pass")
        return {
            "model": f"transformers {type(self.model).__name__}" if self.model is not None else "transformers",
            "name": self.name,
            "kind": self.model_type or self.kind,
            "path": str(self.path),
            "name_or_path": getattr(config, "_name_or_path", None),
            "vocoder_path": str(self.vocoder_path) if self.vocoder_path else None,
            "speaker_embedding": str(self.speaker_embedding) if self.speaker_embedding else None,
            "weights_sha256": dict(self._digests),
            "package": f"transformers {version('transformers')}",
            "synthesis": settings,
        }
