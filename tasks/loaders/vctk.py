"""VCTK on-disk layout: ``txt/<speaker>/<utt>.txt`` transcripts and, when present, recordings.

Recordings are looked up in the 0.92 release layout ``wav48_silence_trimmed/<spk>/<utt>_mic1.flac``
(``mic`` configurable) and then the older ``wav48/<spk>/<utt>.wav``. The embedded demo set
(``tts_demo``) uses the same layout with transcripts only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from mio_eval.errors import ConfigError
from mio_eval.tasks.loaders._data import data_not_found
from mio_eval.types import Sample, Text

__all__ = ["VCTKLoader"]


class VCTKLoader:
    def __init__(
        self,
        *,
        root: str,
        speakers: Sequence[str] | None = None,
        mic: str = "mic1",
        require_audio: bool = False,
        max_per_speaker: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.speakers = list(speakers) if speakers else None
        self.mic = mic
        self.require_audio = require_audio
        self.max_per_speaker = max_per_speaker

    def _reference_audio(self, speaker: str, utt: str) -> Path | None:
        for candidate in (
            self.root / "wav48_silence_trimmed" / speaker / f"{utt}_{self.mic}.flac",
            self.root / "wav48" / speaker / f"{utt}.wav",
        ):
            if candidate.exists():
                return candidate
        return None

    def __call__(self) -> list[Sample]:
        txt_root = self.root / "txt"
        if not txt_root.is_dir():
            raise data_not_found("VCTK transcripts", txt_root, key="root", expected="<root>/txt/<speaker>/*.txt")
        speaker_dirs = sorted(p for p in txt_root.iterdir() if p.is_dir())
        if self.speakers is not None:
            known = {p.name for p in speaker_dirs}
            unknown = sorted(set(self.speakers) - known)
            if unknown:
                raise ConfigError(f"VCTK speakers not found under {txt_root}: {', '.join(unknown)}")
            speaker_dirs = [p for p in speaker_dirs if p.name in set(self.speakers)]
        samples = []
        for spk_dir in speaker_dirs:
            files = sorted(spk_dir.glob("*.txt"))
            if self.max_per_speaker is not None:
                files = files[: self.max_per_speaker]
            for txt in files:
                utt = txt.stem
                text = " ".join(txt.read_text(encoding="utf-8").split())
                audio = self._reference_audio(spk_dir.name, utt)
                if audio is None and self.require_audio:
                    raise ConfigError(f"VCTK recording missing for {utt} under {self.root}")
                metadata = {"speaker": spk_dir.name}
                if audio is not None:
                    metadata["reference_audio"] = str(audio)
                samples.append(Sample(id=utt, parts=(Text(text),), targets=(text,), metadata=metadata))
        if not samples:
            raise ConfigError(f"no VCTK transcripts (*.txt) found under {txt_root}")
        return samples

