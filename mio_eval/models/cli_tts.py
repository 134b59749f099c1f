"""What the command-line synthesisers (espeak-ng, CMU Flite) share: one request is one process
writing a wav atomically under the run's media dir, checked by its header (both tools can exit 0
without writing audio), and a batch runs its requests in parallel threads (``CommandLineTTS``)."""

from __future__ import annotations

import subprocess
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

from mio_eval.atomic import atomic_path
from mio_eval.media import output_path
from mio_eval.types import Audio, Modality, Output, Request

__all__ = ["CommandLineTTS", "synthesize", "in_parallel"]


def synthesize(label: str, request: Request, text: str, media_dir: Path, *,
               command: Callable[[Path], list[str]], stdin: str | None, timeout_s: float) -> Output:
    """Run ``command(tmp_wav)`` (``stdin`` fed to it); the wav must hold frames. Failures (empty
    text, exit status, no audio, time-out) are the sample's error, prefixed with ``label``."""
    if not text:
        return Output.failure(f"{label}: empty text")
    target = output_path(media_dir, request.sample_id, ".wav")
    try:
        with atomic_path(target) as tmp:
            proc = subprocess.run(command(tmp), input=stdin, capture_output=True, text=True, timeout=timeout_s,
                                  check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"exit {proc.returncode}: {proc.stderr.strip()[:200]}")
            try:
                with wave.open(str(tmp), "rb") as wav:
                    rate, frames = wav.getframerate(), wav.getnframes()
            except (wave.Error, EOFError) as exc:
                raise RuntimeError(f"wrote no audio ({exc}; {proc.stderr.strip()[:200]})") from None
            if frames == 0:
                raise RuntimeError("wrote no audio")
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        return Output.failure(f"{label}: {exc}")
    return Output(media=(Audio(str(target), rate),), n_input_tokens=len(text.split()))


def in_parallel(speak: Callable[[Request], Output], requests: Sequence[Request], workers: int) -> list[Output]:
    """``speak`` each request, ``workers`` processes at a time, outputs in request order."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(speak, requests))


class CommandLineTTS:
    """Base of a command-line synthesiser adapter: text in, a wav out. A subclass keeps its own
    keyword signature (the YAML's contract), finds its binary in ``load`` (setting ``_binary`` and
    ``_version``) and speaks one request in ``_speak(request, media_dir)``; ``generate`` loads on
    first use and speaks a batch ``workers`` processes at a time."""

    inputs = frozenset({Modality.TEXT})
    outputs = frozenset({Modality.AUDIO})

    def __init__(self, *, name: str, executable: str, workers: int, timeout_s: float) -> None:
        self.name = name
        self.executable = executable
        self.workers = max(1, int(workers))
        self.timeout_s = float(timeout_s)
        self._binary: str | None = None
        self._version = ""

    def load(self) -> None:
        raise NotImplementedError

    def _speak(self, request: Request, media_dir: Path) -> Output:
        raise NotImplementedError

    def generate(self, requests: Sequence[Request], *, media_dir: Path) -> list[Output]:
        if self._binary is None:
            self.load()
        return in_parallel(lambda r: self._speak(r, media_dir), requests, self.workers)
