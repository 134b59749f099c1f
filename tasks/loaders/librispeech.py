"""LibriSpeech on-disk layout (openslr.org/12): ``<root>/<split>/<speaker>/<chapter>/``
holding ``<speaker>-<chapter>.trans.txt`` (one ``<utt-id> <TRANSCRIPT>`` line per utterance)
and ``<utt-id>.flac`` recordings (16 kHz mono).

``root`` may point at the folder that holds the split folders (``LibriSpeech/``) or at the
split folder itself. Every transcript line becomes one sample, in the order of the sorted
speaker/chapter folders and the file's own line order (the order the Whisper notebook and
lmms-eval iterate). Transcripts are upper case as released; ``lowercase=True`` gives TTS models
ordinary text. A missing recording is a per-sample error at generation time (the audio
reader reports it), not a silently dropped utterance; ``require_audio=True`` refuses it up front.
"""

from __future__ import annotations

from pathlib import Path

from mio_eval.errors import ConfigError
from mio_eval.jsonl import read_lines
from mio_eval.tasks.loaders._data import data_not_found
from mio_eval.types import Audio, Sample

__all__ = ["LibriSpeechLoader", "LIBRISPEECH_SPLIT_SIZES"]

# Utterances per official split (openslr.org/12), for validation of a local copy (data, one table per format).
LIBRISPEECH_SPLIT_SIZES = {
    "test-clean": 2620,
    "test-other": 2939,
    "dev-clean": 2703,
    "dev-other": 2864,
}


class LibriSpeechLoader:
    def __init__(self, *, root: str, split: str = "test-clean", require_audio: bool = False,
                 max_samples: int | None = None, lowercase: bool = False) -> None:
        self.root = Path(root)
        self.lowercase = lowercase
        self.split = split
        self.require_audio = require_audio
        self.max_samples = max_samples
        self.expected_size = LIBRISPEECH_SPLIT_SIZES.get(split)

    def split_dir(self) -> Path:
        for candidate in (self.root / self.split, self.root / "LibriSpeech" / self.split, self.root):
            if candidate.is_dir() and candidate.name == self.split:
                return candidate
        raise data_not_found(f"LibriSpeech split {self.split!r}", self.root / self.split, key="root")

    def __call__(self) -> list[Sample]:
        split_dir = self.split_dir()
        transcripts = sorted(split_dir.glob("*/*/*.trans.txt"))
        if not transcripts:
            raise ConfigError(f"no LibriSpeech transcripts (<speaker>/<chapter>/*.trans.txt) under {split_dir}")
        samples: list[Sample] = []
        missing: list[str] = []
        for trans in transcripts:
            speaker, chapter = trans.parent.parent.name, trans.parent.name
            for n, line in read_lines(trans, what="LibriSpeech transcript"):
                if not line.strip():
                    continue
                utt, _, text = line.strip().partition(" ")
                if not text.strip() or not utt.startswith(f"{speaker}-{chapter}-"):
                    raise ConfigError(f"malformed LibriSpeech transcript line {trans}:{n}: {line[:80]!r}")
                audio = trans.parent / f"{utt}.flac"
                if self.require_audio and not audio.is_file():
                    missing.append(str(audio))
                text = " ".join(text.split())
                samples.append(Sample(
                    id=utt, parts=(Audio(str(audio)),), targets=(text.lower() if self.lowercase else text,),
                    metadata={"speaker": speaker, "chapter": chapter, "reference_audio": str(audio)},
                ))
        if missing:
            shown = ", ".join(missing[:3])
            raise ConfigError(f"{len(missing)} LibriSpeech recordings missing (e.g. {shown})")
        if self.max_samples is not None:
            samples = samples[: self.max_samples]
        return samples
