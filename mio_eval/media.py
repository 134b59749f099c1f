"""Reading and writing media files. No model code here.

Audio is read with soundfile, down-mixed to mono and resampled with ``scipy.signal.resample_poly``
(torchaudio does not import on our machines). Every failure raises ``MediaError`` with a reason
that becomes the sample's error.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mio_eval.atomic import atomic_path
from mio_eval.errors import MediaError

__all__ = ["AudioData", "load_audio", "resample", "save_audio", "output_path"]


@dataclass(frozen=True)
class AudioData:
    """Mono float32 samples in [-1, 1] plus what was done to obtain them."""

    samples: np.ndarray
    sample_rate: int
    source_rate: int
    source_channels: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``) by the reduced ratio of the rates."""
    if source_rate == target_rate:
        return samples
    from scipy.signal import resample_poly

    g = math.gcd(int(source_rate), int(target_rate))
    return resample_poly(samples, target_rate // g, source_rate // g).astype(np.float32)


def load_audio(path: str | Path, *, sample_rate: int | None = None) -> AudioData:
    """Read an audio file as mono float32, resampled to ``sample_rate`` when given."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise MediaError(f"audio file not found: {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"audio file is empty (0 bytes): {path}")
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise MediaError(f"cannot decode audio {path.name}: {exc}") from None
    if samples.shape[0] == 0:
        raise MediaError(f"audio file has no samples: {path}")
    channels = samples.shape[1]
    mono = samples.mean(axis=1) if channels > 1 else samples[:, 0]
    target = sample_rate or rate
    return AudioData(resample(mono, rate, target), target, rate, channels)


def save_audio(path: str | Path, samples: np.ndarray, sample_rate: int, *, subtype: str = "PCM_16") -> Path:
    """Write a mono wav atomically (16-bit PCM by default; ``subtype="FLOAT"`` for float)."""
    import soundfile as sf

    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1 or samples.size == 0:
        raise MediaError(f"refusing to write audio of shape {samples.shape} to {path}")
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(samples, -1.0, 1.0), int(sample_rate), subtype=subtype, format="WAV")
    return Path(path)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def output_path(media_dir: str | Path, sample_id: str, suffix: str) -> Path:
    """Where a generated file for ``sample_id`` goes: a readable, collision-free file name."""
    stem = _UNSAFE.sub("_", sample_id)[:80].strip("._") or "sample"
    if stem != sample_id:
        stem = f"{stem}-{hashlib.sha1(sample_id.encode()).hexdigest()[:8]}"
    return Path(media_dir) / f"{stem}{suffix}"
