"""openai-whisper as a speech recogniser: the ASR judge of TTS tasks and the Whisper ASR baseline.

Loads a local checkpoint with ``whisper.load_model(path)`` (no download). Decoding follows the
Whisper LibriSpeech notebook: log-mel of the 30 s padded clip, batched ``whisper.decode`` with
``language``, ``without_timestamps=True``, temperature 0 (greedy unless ``beam_size``), no
temperature fallback, fp32 on CPU. Clips longer than 30 s go through ``model.transcribe`` with
the same options and ``condition_on_previous_text=False``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.checkpoints import file_digest
from mio_eval.errors import ConfigError, MediaError
from mio_eval.media import request_audio
from mio_eval.types import Modality, Output, Request

__all__ = ["WhisperASR"]

WHISPER_RATE = 16000
WINDOW_S = 30.0


class WhisperASR:
    inputs = frozenset({Modality.AUDIO})
    outputs = frozenset({Modality.TEXT})

    def __init__(
        self,
        *,
        path: str,
        name: str = "whisper",
        language: str | None = "en",
        task: str = "transcribe",
        beam_size: int | None = None,
        max_new_tokens: int | None = None,
        device: str = "cpu",
    ) -> None:  # knobs spelled out (not **kwargs): the signature is the YAML's contract
        self.name = name
        self.path = Path(path)
        self.language = language
        self.task = task
        self.beam_size = beam_size
        self.max_new_tokens = max_new_tokens
        self.device = device
        self.model = None
        self._digest = ""

    def load(self) -> None:
        if self.model is not None:
            return
        if not self.path.is_file():
            raise ConfigError(f"Whisper checkpoint not found: {self.path}")
        import whisper

        try:  # openai-whisper loads with torch.load(weights_only=True): no code runs from the file
            self.model = whisper.load_model(str(self.path), device=self.device)
        except Exception as exc:  # noqa: BLE001 - UnpicklingError, KeyError, RuntimeError (shapes)...
            raise ConfigError(f"cannot load Whisper checkpoint {self.path}: {type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:300]}") from None
        self._digest = file_digest(self.path)

    def _options(self):
        import whisper

        return whisper.DecodingOptions(
            task=self.task,
            language=self.language,
            temperature=0.0,
            beam_size=self.beam_size,
            sample_len=self.max_new_tokens,
            without_timestamps=True,
            fp16=False,
        )

    def generate(self, requests: Sequence[Request], *, media_dir: Path) -> list[Output]:
        import torch
        import whisper

        self.load()
        outputs: list[Output | None] = [None] * len(requests)
        short: list[tuple[int, Any]] = []
        for i, request in enumerate(requests):
            try:
                samples = request_audio(request, label="whisper", sample_rate=WHISPER_RATE)
            except MediaError as exc:
                outputs[i] = Output.failure(str(exc))
                continue
            if len(samples) > WINDOW_S * WHISPER_RATE:
                result = self.model.transcribe(
                    samples, language=self.language, task=self.task, temperature=0.0, beam_size=self.beam_size,
                    condition_on_previous_text=False, without_timestamps=True, fp16=False,
                )
                outputs[i] = Output(text=result["text"].strip())
            else:
                mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(samples)),
                                                  n_mels=self.model.dims.n_mels)
                short.append((i, mel))
        if short:
            mels = torch.stack([mel for _, mel in short]).to(self.model.device)
            with torch.inference_mode():
                results = whisper.decode(self.model, mels, self._options())
            for (i, _), result in zip(short, results):
                outputs[i] = Output(text=result.text.strip(), n_output_tokens=len(result.tokens))
        return outputs  # type: ignore[return-value]

    def provenance(self) -> Mapping[str, Any]:
        from importlib.metadata import version

        dims = dict(vars(self.model.dims)) if self.model is not None else {}
        return {
            "model": "openai-whisper",
            "name": self.name,
            "path": str(self.path),
            "sha256": self._digest,
            "dims": dims,
            "package": f"openai-whisper {version('openai-whisper')}",
            "decoding": {"language": self.language, "task": self.task, "temperature": 0.0,
                         "beam_size": self.beam_size, "without_timestamps": True,
                         "max_new_tokens": self.max_new_tokens},
        }
