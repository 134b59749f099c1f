"""espeak-ng (Debian package) as a text-to-speech model: a real offline formant synthesiser.

Each request runs ``espeak-ng -v <voice> -s <rate> -w <file> --stdin``; a batch runs its
requests in parallel processes. Output: 22,050 Hz mono 16-bit wav under the run's media dir.
"""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.atomic import atomic_path
from mio_eval.errors import ConfigError
from mio_eval.media import output_path
from mio_eval.types import Audio, Modality, Output, Request

__all__ = ["EspeakTTS"]

SAMPLE_RATE = 22050


class EspeakTTS:
    inputs = frozenset({Modality.TEXT})
    outputs = frozenset({Modality.AUDIO})

    def __init__(
        self,
        *,
        name: str = "espeak",
        executable: str = "espeak-ng",
        voice: str = "en-us",
        rate: int = 150,
        pitch: int | None = None,
        workers: int = 2,
        timeout_s: float = 60.0,
    ) -> None:
        self.name = name
        self.executable = executable
        self.voice = voice
        self.rate = int(rate)
        self.pitch = pitch
        self.workers = max(1, int(workers))
        self.timeout_s = float(timeout_s)
        self._binary: str | None = None
        self._version = ""

    def load(self) -> None:
        self._binary = shutil.which(self.executable)
        if self._binary is None:
            raise ConfigError(f"{self.executable} not found on PATH: apt-get install espeak-ng")
        proc = subprocess.run([self._binary, "--version"], capture_output=True, text=True, check=False)
        self._version = proc.stdout.strip()

    def _speak(self, request: Request, media_dir: Path) -> Output:
        text = request.text.strip()
        if not text:
            return Output.failure("espeak: empty text")
        target = output_path(media_dir, request.sample_id, ".wav")
        cmd = [self._binary, "-v", self.voice, "-s", str(self.rate)]
        if self.pitch is not None:
            cmd += ["-p", str(self.pitch)]
        try:
            with atomic_path(target) as tmp:
                proc = subprocess.run(cmd + ["-w", str(tmp), "--stdin"], input=text, capture_output=True,
                                      text=True, timeout=self.timeout_s, check=False)
                if proc.returncode != 0:
                    raise RuntimeError(f"exit {proc.returncode}: {proc.stderr.strip()[:200]}")
                if tmp.stat().st_size <= 44:
                    raise RuntimeError("wrote no audio")
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            return Output.failure(f"espeak: {exc}")
        return Output(media=(Audio(str(target), SAMPLE_RATE),), n_input_tokens=len(text.split()))

    def generate(self, requests: Sequence[Request], *, media_dir: Path) -> list[Output]:
        if self._binary is None:
            self.load()
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(lambda r: self._speak(r, media_dir), requests))

    def provenance(self) -> Mapping[str, Any]:
        return {"model": "espeak-ng", "version": self._version, "voice": self.voice, "rate": self.rate,
                "pitch": self.pitch}
