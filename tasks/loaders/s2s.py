"""Speech-to-speech items as JSONL: one spoken question and its reference answer(s) per line.

    {"id": "q1", "audio": "audio/q1.wav", "answer": "Paris", "question": "What is the capital of France?"}

``audio`` is relative to the JSONL file's folder (or absolute); ``answer`` a string or a list
of acceptable answers; ``question`` (the question's transcript) is optional metadata.
"""

from __future__ import annotations

from pathlib import Path

from mio_eval.errors import ConfigError
from mio_eval.jsonl import read_jsonl
from mio_eval.tasks.loaders._data import data_not_found
from mio_eval.types import Audio, Sample

__all__ = ["SpeechQALoader"]


class SpeechQALoader:
    def __init__(self, *, path: str, max_samples: int | None = None) -> None:
        self.path = Path(path)
        self.max_samples = max_samples

    def __call__(self) -> list[Sample]:
        if not self.path.is_file():
            raise data_not_found("speech QA file", self.path, key="path")
        samples = []
        for n, item in read_jsonl(self.path, what="speech QA file"):
            try:
                answers = item["answer"]
                answers = [answers] if isinstance(answers, str) else list(answers)
                if not answers or not all(isinstance(a, str) and a.strip() for a in answers):
                    raise ValueError("answer must be a non-empty string or list of strings")
                audio = Path(item["audio"])
                sample_id = str(item.get("id", n))
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"{self.path}:{n}: malformed item ({type(exc).__name__}: {exc})") from None
            audio = audio if audio.is_absolute() else self.path.parent / audio
            metadata = {"question": item.get("question"), "reference_audio": str(audio)}
            samples.append(Sample(id=sample_id, parts=(Audio(str(audio)),), targets=tuple(answers), metadata=metadata))
            if self.max_samples is not None and len(samples) >= self.max_samples:
                break
        if not samples:
            raise ConfigError(f"{self.path} holds no items")
        return samples
