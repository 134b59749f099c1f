"""CMU Flite (Debian package ``flite``) as a text-to-speech model: a real offline synthesiser.

Flite ("festival-lite", http://cmuflite.org, https://github.com/festvox/flite) ships with
built-in English voices: ``rms``, ``awb``, ``slt`` (CMU ARCTIC clustergen voices, 16 kHz),
``kal16`` (diphone, 16 kHz) and ``kal`` (diphone, 8 kHz); ``flite -lv`` lists them. A voice may
also be a path to a ``.flitevox`` file. Each request runs
``flite -voice <voice> [--setf duration_stretch=<x>] -t <text> -o <file>``; a batch runs its
requests in parallel processes. Output: mono 16-bit wav at the voice's own rate (read from the
written header) under the run's media dir, written atomically.

Flite itself is lax: an unknown voice name silently falls back to its default voice, and a
file it cannot write is only a message on stderr with exit status 0. So ``load`` checks the
voice against ``flite -lv`` (ConfigError, exit 2, listing the choices) and each request checks
that audio was written; empty text is a per-sample error, never a silent wav.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any, Mapping

from mio_eval.errors import ConfigError
from mio_eval.models.cli_tts import CommandLineTTS, synthesize
from mio_eval.types import Output, Request

__all__ = ["FliteTTS", "flite_voices"]

INSTALL_HINT = "apt-get install flite"


def flite_voices(binary: str) -> list[str]:
    """The built-in voices ``<binary> -lv`` lists (``Voices available: kal awb_time ...``)."""
    proc = subprocess.run([binary, "-lv"], capture_output=True, text=True, check=False, timeout=30)
    listing = (proc.stdout + proc.stderr).split(":", 1)
    return listing[1].split() if len(listing) == 2 else []


def _is_file_voice(voice: str) -> bool:
    return "/" in voice or voice.endswith(".flitevox")


class FliteTTS(CommandLineTTS):
    def __init__(
        self,
        *,
        name: str = "flite",
        executable: str = "flite",
        voice: str = "rms",
        duration_stretch: float | None = None,
        workers: int = 2,
        timeout_s: float = 60.0,
    ) -> None:  # knobs spelled out (not **kwargs): the signature is the YAML's contract
        super().__init__(name=name, executable=executable, workers=workers, timeout_s=timeout_s)
        self.voice = str(voice)
        self.duration_stretch = None if duration_stretch is None else float(duration_stretch)
        if self.duration_stretch is not None and self.duration_stretch <= 0:
            raise ConfigError(f"flite duration_stretch must be > 0, got {duration_stretch}")
        self._voice_sha256: str | None = None

    def load(self) -> None:
        """Find the binary and check the voice; ConfigError (exit 2) with the fix when either is missing."""
        binary = shutil.which(self.executable)
        if binary is None:
            raise ConfigError(f"{self.executable} not found on PATH: {INSTALL_HINT} (Debian/Ubuntu package 'flite')")
        if _is_file_voice(self.voice):
            if not self.voice.startswith(("http://", "https://")):
                path = Path(self.voice)
                if not path.is_file():
                    raise ConfigError(f"flite voice file not found: {self.voice} (model.voice)")
                self._voice_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        else:
            voices = flite_voices(binary)
            if self.voice not in voices:
                raise ConfigError(f"flite has no voice {self.voice!r} (model.voice); "
                                  f"{binary} -lv lists: {', '.join(voices) or 'none'}")
        proc = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False, timeout=30)
        # "  Carnegie Mellon University, ...\n  version: flite-2.2-current Sep 2018 (http://cmuflite.org)"
        lines = [line.strip() for line in proc.stdout.splitlines() if "version" in line]
        self._version = lines[0].removeprefix("version:").strip() if lines else proc.stdout.strip()
        self._binary = binary

    def _command(self, text: str, target: Path) -> list[str]:
        cmd = [self._binary, "-voice", self.voice]
        if self.duration_stretch is not None:
            cmd += ["--setf", f"duration_stretch={self.duration_stretch}"]
        return cmd + ["-t", text, "-o", str(target)]

    def _speak(self, request: Request, media_dir: Path) -> Output:
        # flite exits 0 even when it could not write the file: synthesize checks the header.
        text = " ".join(request.text.split())
        return synthesize("flite", request, text, media_dir, command=lambda tmp: self._command(text, tmp),
                          stdin=None, timeout_s=self.timeout_s)

    def provenance(self) -> Mapping[str, Any]:
        info: dict[str, Any] = {"model": "cmu-flite", "version": self._version, "voice": self.voice,
                                "duration_stretch": self.duration_stretch}
        if self._voice_sha256 is not None:
            info["voice_sha256"] = self._voice_sha256
        return info
