"""A model that needs no weights: echoes text, synthesises tones. For tests, demos and benchmarks.

It can also fail on purpose (``fail_ids``: a per-sample error; ``raise_ids``: the whole batch
raises, as a crashing backend would) and be slow (``delay_s`` per batch) for resume tests.
"""

from __future__ import annotations

import time
import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mio_eval.media import output_path, save_audio
from mio_eval.types import Audio, Modality, Output, Request

__all__ = ["DummyAdapter"]


class DummyAdapter:
    def __init__(
        self,
        *,
        name: str = "dummy",
        inputs: Sequence[str] = ("text", "image", "audio", "video"),
        outputs: Sequence[str] = ("text", "audio"),
        response: str | None = None,
        delay_s: float = 0.0,
        fail_ids: Sequence[str] = (),
        raise_ids: Sequence[str] = (),
        sample_rate: int = 16000,
        seconds_per_word: float = 0.25,
    ) -> None:
        self.name = name
        self.inputs = frozenset(Modality(m) for m in inputs)
        self.outputs = frozenset(Modality(m) for m in outputs)
        self.response = response
        self.delay_s = float(delay_s)
        self.fail_ids = frozenset(fail_ids)
        self.raise_ids = frozenset(raise_ids)
        self.sample_rate = int(sample_rate)
        self.seconds_per_word = float(seconds_per_word)
        self.calls = 0

    def load(self) -> None:
        """Nothing to load."""

    def _tone(self, request: Request) -> np.ndarray:
        # One short tone per word, pitch from a hash of the word: deterministic, audible. With
        # sampling on (generation do_sample + seed) the pitches shift with the seed, as a sampled
        # generation varies between seeds (what runner.repeats measures).
        words = request.text.split() or ["."]
        n = int(self.seconds_per_word * self.sample_rate)
        t = np.arange(n) / self.sample_rate
        shift = 37 * int(request.generation.get("seed") or 0) if request.generation.get("do_sample") else 0
        tones = [0.3 * np.sin(2 * np.pi * (200 + (zlib.crc32(w.encode()) + shift) % 600) * t) for w in words]
        return np.concatenate(tones).astype(np.float32)

    def generate(self, requests: Sequence[Request], *, media_dir: Path) -> list[Output]:
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        bad = [r.sample_id for r in requests if r.sample_id in self.raise_ids]
        if bad:
            raise RuntimeError(f"dummy backend crashed on {bad[0]}")
        outputs = []
        for request in requests:
            if request.sample_id in self.fail_ids:
                outputs.append(Output.failure("dummy: configured failure"))
            elif request.output_modality is Modality.AUDIO:
                path = save_audio(output_path(media_dir, request.sample_id, ".wav"), self._tone(request), self.sample_rate)
                outputs.append(Output(media=(Audio(str(path), self.sample_rate),)))
            else:
                text = self.response if self.response is not None else request.text
                outputs.append(Output(text=text, n_input_tokens=len(request.text.split()), n_output_tokens=len(text.split())))
        return outputs

    def provenance(self) -> Mapping[str, Any]:
        return {"model": "dummy", "response": self.response if self.response is not None else "echo"}
