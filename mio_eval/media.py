"""Reading and writing media files. No model code here.

Audio is read with soundfile (wav, flac, ogg, mp3 with libsndfile >= 1.1) and, for what
libsndfile cannot open (m4a/aac, opus in webm, mp4 audio, mp3 with an older libsndfile), with
PyAV. It is down-mixed to mono (mean of the channels) and resampled with
``scipy.signal.resample_poly`` (torchaudio does not import on our machines); ``AudioData`` keeps
the decoder, the source rate and the channel count, and ``AUDIO_PROCESSING`` describes the
down-mix and resampler for provenance. Every failure (missing, empty, truncated, non-audio,
undecodable) raises ``MediaError`` with a reason that becomes the sample's error.
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

__all__ = ["CLIP_MEAN", "CLIP_STD", "AUDIO_PROCESSING", "AudioData", "load_audio", "load_image", "resample",
           "save_audio", "output_path", "request_audio", "video_frames", "read_video_frames", "uniform_indices",
           "stride_indices", "INDEX_ROUNDING"]

# OpenAI CLIP's pixel Normalize (openai/CLIP ``clip/clip.py`` ``_transform``; open_clip
# ``OPENAI_DATASET_MEAN`` / ``OPENAI_DATASET_STD``; the clip-vit-* ``preprocessor_config.json``),
# which SEED's and MIO's image transforms use too. The one home of these numbers.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

AUDIO_PROCESSING = {
    "decoder": "soundfile (libsndfile); PyAV for formats libsndfile cannot open",
    "downmix": "mean of channels",
    "resampler": "scipy.signal.resample_poly (up/down by the reduced rate ratio)",
}


@dataclass(frozen=True)
class AudioData:
    """Mono float32 samples in [-1, 1] plus what was done to obtain them."""

    samples: np.ndarray
    sample_rate: int
    source_rate: int
    source_channels: int
    decoder: str = "soundfile"

    @property
    def processing(self) -> dict[str, object]:
        """What was done to the file's audio: decoder, down-mix, resampling."""
        return {"decoder": self.decoder, "source_rate": self.source_rate, "source_channels": self.source_channels,
                "downmix": "mean" if self.source_channels > 1 else None,
                "resampled_to": self.sample_rate if self.sample_rate != self.source_rate else None}

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


# Writers that stream a WAV to a pipe (espeak-ng --stdout, ffmpeg to stdout) cannot know its
# length and put a placeholder data size near 2**31 or 2**32; such a header is not truncation.
_STREAMING_WAV_SIZE = 0x7FFF0000


def _truncation(info_text: str) -> str | None:
    """libsndfile notes ``data : N (should be M)`` when a WAV's data chunk is cut short."""
    for line in info_text.splitlines():
        if line.startswith("data") and "should be" in line:
            declared, actual = line.split(":", 1)[1].split("(should be")
            declared, actual = declared.strip(), actual.strip(" )")
            if declared.isdigit() and int(declared) >= _STREAMING_WAV_SIZE:
                return None
            return f"header declares {declared} bytes of audio, the file holds {actual}"
    return None


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    with sf.SoundFile(str(path)) as fh:
        truncated = _truncation(getattr(fh, "extra_info", "") or "")
        if truncated:
            raise MediaError(f"audio file is truncated ({truncated}): {path.name}")
        samples = fh.read(dtype="float32", always_2d=True)
        return samples, fh.samplerate


def _read_pyav(path: Path) -> tuple[np.ndarray, int]:
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise MediaError(f"no audio stream in {path.name}")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        chunks = []
        for frame in container.decode(stream):
            array = frame.to_ndarray()  # planar: (channels, n); packed: (1, n * channels)
            channels = len(frame.layout.channels)
            if frame.format.is_planar:
                chunks.append(array.T)
            else:
                chunks.append(array.reshape(-1, channels))
    if not chunks:
        return np.zeros((0, 1), dtype=np.float32), int(rate)
    samples = np.concatenate(chunks).astype(np.float32)
    if np.issubdtype(chunks[0].dtype, np.integer):
        samples /= float(np.iinfo(chunks[0].dtype).max) + 1.0
    return samples, int(rate)


def load_audio(path: str | Path, *, sample_rate: int | None = None) -> AudioData:
    """Read an audio file as mono float32, resampled to ``sample_rate`` when given."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"audio file not found: {path}")
    if path.is_dir():
        raise MediaError(f"audio path is a directory: {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"audio file is empty (0 bytes): {path}")
    decoder = "soundfile"
    try:
        samples, rate = _read_soundfile(path)
    except MediaError:
        raise
    except Exception as sf_exc:  # LibsndfileError / RuntimeError / TypeError: try PyAV before giving up
        try:
            samples, rate = _read_pyav(path)
            decoder = "pyav"
        except Exception as av_exc:  # noqa: BLE001 - av.error.* and anything else is a bad file
            raise MediaError(f"cannot decode audio {path.name}: soundfile: {_one_line(sf_exc)}; "
                             f"PyAV: {_one_line(av_exc)}") from None
        if samples.shape[0] == 0:  # PyAV's probing accepts some non-audio files and decodes nothing
            raise MediaError(f"cannot decode audio {path.name}: soundfile: {_one_line(sf_exc)}; "
                             "PyAV: no audio samples decoded") from None
    if samples.shape[0] == 0:
        raise MediaError(f"audio file has no samples: {path}")
    if not np.isfinite(samples).all():
        raise MediaError(f"audio file holds NaN or infinite samples: {path.name}")
    channels = samples.shape[1]
    mono = samples.mean(axis=1) if channels > 1 else samples[:, 0]
    target = sample_rate or rate
    return AudioData(resample(np.ascontiguousarray(mono, dtype=np.float32), rate, target), target, rate, channels,
                     decoder)


def request_audio(request, *, label: str, sample_rate: int) -> np.ndarray:
    """The samples of a request's one recording (an ASR model's input), mono at ``sample_rate``;
    MediaError ``"<label>: expected one audio part, got N"`` or the file's own reason."""
    from mio_eval.types import Audio

    audio = [p for p in request.parts if isinstance(p, Audio)]
    if len(audio) != 1:
        raise MediaError(f"{label}: expected one audio part, got {len(audio)}")
    return load_audio(audio[0].path, sample_rate=sample_rate).samples


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


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


def _rgb(image):
    """An open PIL image as 8-bit RGB: 16-bit and 32-bit grey (``I;16``, ``I``) scaled to 8 bits
    (PIL's own ``convert`` would clip them to white); other modes through PIL's ``convert``."""
    from PIL import Image as PILImage

    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        if image.mode == "I" and array.max() > 65535:
            top = float(2**32 - 1)
        grey = np.clip(np.rint(array * (255.0 / top)), 0, 255).astype(np.uint8)
        return PILImage.fromarray(grey, mode="L").convert("RGB")
    return image.convert("RGB")


def load_image(path, *, rgb: bool = True):
    """An image file (or a PIL image, passed through) as an 8-bit RGB PIL image; MediaError with
    the reason when it cannot be read. The one image loader: tasks, metrics and adapters call it.

    Conversions, each a valid format rather than an error: 16-bit and 32-bit grey (``I;16``,
    ``I``) are scaled to 8 bits (PIL's own ``convert`` would clip them to white); CMYK, palette,
    grey, and alpha images go through PIL's conversion (alpha dropped, not composited). A
    truncated or undecodable file is an error (PIL is told not to pad truncated images).
    ``rgb=False`` returns the decoded image in its own mode (a loaded copy): CLIP preprocessing
    converts only after cropping, as open_clip's ``MaybeConvertMode`` does."""
    from PIL import Image as PILImage
    from PIL import ImageFile

    if isinstance(path, PILImage.Image):
        return _rgb(path) if rgb else path
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"image file not found: {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"image file is empty (0 bytes): {path}")
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with PILImage.open(path) as image:
            image.load()
            return _rgb(image) if rgb else image.copy()
    except Exception as exc:  # PIL raises UnidentifiedImageError, OSError, SyntaxError, ...
        raise MediaError(f"cannot decode image {path.name}: {' '.join(str(exc).split())}") from None


INDEX_ROUNDING = ("nearest", "floor")


def uniform_indices(total: int, n: int, *, rounding: str = "nearest") -> list[int]:
    """``n`` evenly spaced indices into ``total`` items (frames, or keyframes to thin): the
    positions ``linspace(0, total - 1, n)``, ``rounding="nearest"`` rounded half to even (numpy
    ``round``; Video-LLaVA / SEED-Bench style uniform sampling), ``"floor"`` truncated
    (``np.linspace(..., dtype=int)``, as MME-Unify's ``extract_keyframes``). Repeats when
    ``total < n``; first and last always kept.

    >>> uniform_indices(10, 4), uniform_indices(10, 4, rounding="floor"), uniform_indices(2, 3)
    ([0, 3, 6, 9], [0, 3, 6, 9], [0, 0, 1])
    >>> uniform_indices(8, 3), uniform_indices(8, 3, rounding="floor")
    ([0, 4, 7], [0, 3, 7])
    """
    if rounding == "nearest":
        return np.linspace(0, total - 1, n).round().astype(int).tolist()
    if rounding == "floor":
        return np.linspace(0, total - 1, n, dtype=int).tolist()
    raise ValueError(f"rounding must be one of {', '.join(INDEX_ROUNDING)}, got {rounding!r}")


def stride_indices(total: int) -> list[int]:
    """MIO's uniform fallback: every ``max(1, total // 10)``-th frame (about 10, sometimes 11)."""
    return list(range(0, total, max(1, total // 10)))


def video_frames(path: str | Path, n: int) -> list:
    """``n`` RGB PIL frames at ``linspace(0, frames - 1, n)`` rounded (repeats when the clip is
    shorter than ``n`` frames); MediaError when the file cannot be decoded."""
    import av

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"video file not found: {path}")
    if n < 1:
        raise MediaError(f"video_frames must be >= 1, got {n}")

    def decode(wanted: set[int] | None):
        kept = {}
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            count = 0
            for index, frame in enumerate(container.decode(stream)):
                count = index + 1
                if wanted is not None and index in wanted:
                    kept[index] = frame.to_image().convert("RGB")
                    if len(kept) == len(wanted):
                        break
            return count, kept, stream.frames

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"no video stream in {path.name}")
            total = container.streams.video[0].frames
        if total <= 0:  # the container does not say: count by decoding
            total, _, _ = decode(None)
        for _ in range(2):  # a second pass when the header over-counts frames
            if total <= 0:
                raise MediaError(f"video has no frames: {path}")
            indices = uniform_indices(total, n)
            count, kept, _ = decode(set(indices))
            if all(i in kept for i in indices):
                return [kept[i] for i in indices]
            total = count
        raise MediaError(f"cannot decode the sampled frames of {path.name}")
    except MediaError:
        raise
    except Exception as exc:  # av.error.*, IndexError on a stream-less container, ...
        raise MediaError(f"cannot decode video {path.name}: {exc}") from None


def read_video_frames(path) -> list:
    """Every frame of a video as PIL RGB images (PyAV); unreadable or empty -> MediaError."""
    import av

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"video not found: {path}")
    try:
        with av.open(str(path)) as container:
            frames = [frame.to_image().convert("RGB") for frame in container.decode(video=0)]
    except (av.error.FFmpegError, IndexError, ValueError) as exc:
        raise MediaError(f"cannot decode video {path}: {' '.join(str(exc).split())}") from None
    if not frames:
        raise MediaError(f"video has no frames: {path}")
    return frames
