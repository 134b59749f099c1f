"""espeak-ng (Debian package) as a text-to-speech model: a real offline formant synthesiser.

Each request runs ``espeak-ng -v <voice> -s <rate> -w <file> --stdin``; a batch runs its
requests in parallel processes. Output: 22,050 Hz mono 16-bit wav under the run's media dir.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any, Mapping

from mio_eval.errors import ConfigError
from mio_eval.models.cli_tts import CommandLineTTS, synthesize
from mio_eval.types import Output, Request

__all__ = ["EspeakTTS"]


class EspeakTTS(CommandLineTTS):
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
    ) -> None:  # knobs spelled out (not **kwargs): the signature is the YAML's contract
        super().__init__(name=name, executable=executable, workers=workers, timeout_s=timeout_s)
        self.voice = voice
        self.rate = int(rate)
        self.pitch = pitch

    def load(self) -> None:
        self._binary = shutil.which(self.executable)
        if self._binary is None:
            raise ConfigError(f"{self.executable} not found on PATH: apt-get install espeak-ng")
        proc = subprocess.run([self._binary, "--version"], capture_output=True, text=True, check=False)
        self._version = proc.stdout.strip()

    def _command(self, target: Path) -> list[str]:
        cmd = [self._binary, "-v", self.voice, "-s", str(self.rate)]
        if self.pitch is not None:
            cmd += ["-p", str(self.pitch)]
        return cmd + ["-w", str(target), "--stdin"]

    def _speak(self, request: Request, media_dir: Path) -> Output:
        text = request.text.strip()
        return synthesize("espeak", request, text, media_dir, command=self._command, stdin=text,
                          timeout_s=self.timeout_s)

    def provenance(self) -> Mapping[str, Any]:
        return {"model": "espeak-ng", "version": self._version, "voice": self.voice, "rate": self.rate,
                "pitch": self.pitch}
