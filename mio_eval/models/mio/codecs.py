"""MIO's media codecs behind one small protocol (media <-> codes), and one shared unCLIP decoder.

* Speech (``SpeechTokenizerCodec``): SpeechTokenizer from the ``speechtokenizer==0.1.2`` package
  (the code MIO vendors in ``speech_tokenizer/``), read from ``<checkpoint>/SpeechTokenizer/
  {config.json, SpeechTokenizer.pt}``. Mono float32 at 16 kHz in (callers read audio with
  ``media.load_audio``, which down-mixes and resamples without torchaudio), 50 frames/s, the first
  4 RVQ layers (layer 0 = content, layers 1-3 = "timbre"), run under ``torch.inference_mode``.
  Decoding sums the given layers (1 = content only, or 4) and runs the SEANet decoder.
* Image (``SeedCodec``): the native SEED tokenizer (``mio_eval.models.mio.seed``) maps a
  224x224 CLIP-normalised image to exactly 32 codes in [0, 8192) and 32 codes to the unCLIP image
  embedding, rendered by ``UnCLIPDecoder``: diffusers' ``StableUnCLIPImg2ImgPipeline`` from
  ``<checkpoint>/stable-diffusion-2-1-unclip/`` (``noise_level=0``, ``guidance_scale=10``, 20 steps
  unless the checkpoint's ``seed_config.json`` says otherwise, latents drawn once from a seeded
  generator: MIO draws them unseeded, so its images differ between processes).
* ``load_image_codec``: the checkpoint's ``seed-tokenizer-2/`` (``seed_quantizer.pt`` +
  ``eva_vit_g.pth``, or ``.safetensors``) as a ``SeedCodec``; when a file is absent (MIO would
  download ``eva_vit_g.pth``) or cannot be loaded, an ``UnavailableImageCodec`` whose every call
  raises ``ImageCodecError`` with that one-line reason: image requests fail per sample while
  text and speech tasks on the same checkpoint run.

Decoders load on first use (MIO loads the SD-unCLIP decoder even for text tasks).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from mio_eval.checkpoints import file_digest
from mio_eval.errors import ConfigError, MediaError
from mio_eval.models.mio.seed.config import EVA_VIT_FILE, SEED_QUANTIZER_FILE, SeedConfig, seed_transform

__all__ = [
    "MediaCodec",
    "SpeechCodec",
    "ImageCodec",
    "ImageCodecError",
    "SpeechTokenizerCodec",
    "SeedCodec",
    "UnCLIPDecoder",
    "UnavailableImageCodec",
    "load_image_codec",
    "IMAGE_CODES",
    "IMAGE_VOCAB",
    "SPEECH_LAYERS",
    "SPEECH_CODEBOOK",
    "SPEECH_DIR",
    "SEED_DIR",
    "UNCLIP_DIR",
]

IMAGE_CODES = 32  # SEED: 32 causal queries -> 32 codes per image
IMAGE_VOCAB = 8192  # SEED quantizer n_e
SPEECH_LAYERS = 4  # MIO uses RVQ layers 0..3 (content + 3 timbre layers)
SPEECH_CODEBOOK = 1024  # SpeechTokenizer codebook: MIO's speech token n is layer n // 1024, code n % 1024
SPEECH_DIR = "SpeechTokenizer"
SEED_DIR = "seed-tokenizer-2"
UNCLIP_DIR = "stable-diffusion-2-1-unclip"


class ImageCodecError(RuntimeError):
    """An image cannot be encoded or decoded (wrong code count, backend unavailable)."""


@runtime_checkable
class MediaCodec(Protocol):
    """What the MIO adapter needs from a codec: media -> codes, codes -> media, provenance."""

    codebook_size: int

    def encode(self, media: Any) -> list: ...

    def decode(self, codes: Sequence) -> Any: ...

    def provenance(self) -> dict[str, Any]: ...


@runtime_checkable
class SpeechCodec(MediaCodec, Protocol):
    """``encode``: mono float32 at ``sample_rate`` -> ``SPEECH_LAYERS`` rows of codes (row 0 =
    content); ``decode``: 1..4 equal-length rows (layer 0 first) -> mono float32 samples."""

    sample_rate: int


@runtime_checkable
class ImageCodec(MediaCodec, Protocol):
    """``encode``: an RGB PIL image -> exactly ``n_codes`` codes; ``decode``: exactly ``n_codes``
    codes -> an RGB PIL image (``ImageCodecError`` otherwise)."""

    n_codes: int


def _torch_load(path: Path) -> Any:
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {' '.join(str(exc).split())[:300]}") from None


# --- speech ----------------------------------------------------------------------------------

class SpeechTokenizerCodec:
    """SpeechTokenizer (``speechtokenizer`` 0.1.2 model code; torchaudio is never imported)."""

    def __init__(self, directory: str | Path, *, device: str = "cpu") -> None:
        directory = Path(directory)
        config_path, weights = directory / "config.json", directory / "SpeechTokenizer.pt"
        for path in (config_path, weights):
            if not path.is_file():
                raise ConfigError(f"SpeechTokenizer file missing: {path}")
        import warnings

        self.config = json.loads(config_path.read_text(encoding="utf-8"))
        with warnings.catch_warnings():  # torch.jit.script and weight_norm deprecations in its code
            warnings.simplefilter("ignore", FutureWarning)
            from speechtokenizer.model import SpeechTokenizer

            model = SpeechTokenizer(self.config)
        model.load_state_dict(_torch_load(weights))
        self.model = model.to(device).eval()
        self.device = device
        self.directory = directory
        self.sample_rate = int(self.config.get("sample_rate", 16000))
        self.codebook_size = int(self.config.get("codebook_size", SPEECH_CODEBOOK))
        self.hop = int(np.prod(self.config.get("strides", [8, 5, 4, 2])))

    def encode(self, samples: np.ndarray) -> list[list[int]]:
        import torch

        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:  # SEANet has one input channel (stereo crashes it in MIO)
            raise MediaError(f"speech codec needs mono audio, got shape {samples.shape}")
        if len(samples) < self.hop:
            raise MediaError(f"audio too short for one speech frame ({len(samples)} samples < {self.hop})")
        with torch.inference_mode():
            wav = torch.from_numpy(samples).to(self.device).view(1, 1, -1)
            codes = self.model.encode(wav, n_q=SPEECH_LAYERS)  # (n_q, batch, frames)
        return [row[0].tolist() for row in codes.cpu()]

    def decode(self, codes: Sequence[Sequence[int]]) -> np.ndarray:
        import torch

        rows = [list(r) for r in codes]
        if not rows or not rows[0] or len({len(r) for r in rows}) != 1 or len(rows) > SPEECH_LAYERS:
            raise MediaError(f"speech codes must be 1..{SPEECH_LAYERS} non-empty rows of equal length")
        if any(not 0 <= c < self.codebook_size for r in rows for c in r):
            raise MediaError(f"speech code out of range [0, {self.codebook_size})")
        with torch.inference_mode():
            tensor = torch.tensor(rows, dtype=torch.long, device=self.device).unsqueeze(1)  # (k, 1, T)
            wav = self.model.decode(tensor)  # (1, 1, T * hop)
        return wav.reshape(-1).float().cpu().numpy()

    def provenance(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {"backend": f"speechtokenizer {version('speechtokenizer')}", "path": str(self.directory),
                "sha256": file_digest(self.directory / "SpeechTokenizer.pt"), "sample_rate": self.sample_rate,
                "frames_per_s": self.sample_rate / self.hop, "layers": SPEECH_LAYERS}


# --- image -----------------------------------------------------------------------------------

class UnCLIPDecoder:
    """unCLIP image embedding -> RGB PIL image through diffusers' ``StableUnCLIPImg2ImgPipeline``
    (``<checkpoint>/stable-diffusion-2-1-unclip/``, loaded on the first call) with latents drawn
    once from ``seed`` (MIO: ``[1, 4, 96, 96]``, unseeded)."""

    def __init__(self, checkpoint: str | Path, *, device: str = "cpu", dtype: str = "float32", seed: int = 0,
                 num_inference_steps: int = 20) -> None:
        self.directory = Path(checkpoint) / UNCLIP_DIR
        self.device, self.dtype, self.seed = device, dtype, int(seed)
        self.num_inference_steps = int(num_inference_steps)
        self.pipeline = None
        self._latents = None

    def load(self):
        if self.pipeline is None:
            import torch
            from diffusers import StableUnCLIPImg2ImgPipeline

            if not self.directory.is_dir():
                raise ImageCodecError(f"unCLIP decoder directory missing: {self.directory}")
            pipeline = StableUnCLIPImg2ImgPipeline.from_pretrained(str(self.directory), local_files_only=True,
                                                                   torch_dtype=getattr(torch, self.dtype))
            pipeline.set_progress_bar_config(disable=True)
            self.pipeline = pipeline.to(self.device)
            unet = pipeline.unet.config
            generator = torch.Generator().manual_seed(self.seed)
            self._latents = torch.randn((1, unet.in_channels, unet.sample_size, unet.sample_size),
                                        generator=generator).to(getattr(torch, self.dtype))
        return self.pipeline

    def __call__(self, embedding: Any) -> Any:
        import torch

        pipeline = self.load()
        with torch.inference_mode():
            result = pipeline(prompt="", image_embeds=embedding.to(pipeline.unet.dtype), noise_level=0,
                              guidance_scale=10.0, num_inference_steps=self.num_inference_steps,
                              latents=self._latents.clone().to(self.device),
                              generator=torch.Generator().manual_seed(self.seed))  # noise_level 0 still draws noise
        return result.images[0]

    def provenance(self) -> dict[str, Any]:
        return {"decoder": f"diffusers StableUnCLIPImg2ImgPipeline ({UNCLIP_DIR})",
                "num_inference_steps": self.num_inference_steps, "latent_seed": self.seed}


class SeedCodec:
    """The native SEED tokenizer behind ``ImageCodec``: ``<checkpoint>/seed-tokenizer-2/`` for the
    tokenizer, ``UnCLIPDecoder`` for pixels. ``resize``: ``bilinear`` (MIO's ``clip_transform.yaml``)
    or ``bicubic`` (SEED's own processor)."""

    def __init__(self, checkpoint: str | Path, *, device: str = "cpu", seed: int = 0, dtype: str = "float32",
                 resize: str = "bilinear", num_inference_steps: int | None = None) -> None:
        import torch

        from mio_eval.models.mio.seed.weights import load_seed_tokenizer

        self.checkpoint = Path(checkpoint)
        self.directory = self.checkpoint / SEED_DIR
        if resize not in ("bilinear", "bicubic"):
            raise ConfigError(f"SEED resize must be 'bilinear' or 'bicubic', got {resize!r}")
        self.model, self.info = load_seed_tokenizer(self.directory, device=device, dtype=dtype)
        self.config: SeedConfig = self.model.config
        self.n_codes = self.config.num_query_tokens
        self.codebook_size = self.config.codebook_size
        self.device, self.dtype, self.seed, self.resize = device, dtype, int(seed), resize
        # MIO: 20 steps; a tiny checkpoint's seed_config.json may ask for fewer
        self.num_inference_steps = int(num_inference_steps or self.info["num_inference_steps"] or 20)
        self.decoder = UnCLIPDecoder(self.checkpoint, device=device, dtype=dtype, seed=self.seed,
                                     num_inference_steps=self.num_inference_steps)
        self._torch = torch

    @property
    def _pipeline(self):
        """The unCLIP pipeline once loaded (None before the first decode)."""
        return self.decoder.pipeline

    def pixels(self, images: Sequence[Any]):
        torch = self._torch
        arrays = [seed_transform(image, self.config.image_size, self.resize) for image in images]
        return torch.from_numpy(np.stack(arrays)).to(device=self.device, dtype=getattr(torch, self.dtype))

    def encode_batch(self, images: Sequence[Any]) -> list[list[int]]:
        """RGB PIL images -> 32 codes each."""
        with self._torch.inference_mode():
            ids = self.model.encode(self.pixels(images))
        return [row.tolist() for row in ids.cpu()]

    def encode(self, image: Any) -> list[int]:
        return self.encode_batch([image])[0]

    def embedding(self, codes: Sequence[int]):
        """32 codes -> the unCLIP image embedding [1, image_features_dim]."""
        codes = list(codes)
        if len(codes) != self.n_codes:
            raise ImageCodecError(f"need exactly {self.n_codes} image codes, got {len(codes)}")
        if any(not 0 <= int(c) < self.codebook_size for c in codes):
            raise ImageCodecError(f"image code out of range [0, {self.codebook_size})")
        with self._torch.inference_mode():
            return self.model.image_embedding(self._torch.tensor([codes], device=self.device))

    def decode(self, codes: Sequence[int]) -> Any:
        return self.decoder(self.embedding(codes))

    def provenance(self) -> dict[str, Any]:
        files = {Path(self.info["quantizer_file"]), Path(self.info["vit_file"])}
        return {"backend": "native SEED image tokenizer (mio_eval.models.mio.seed)",
                "sha256": {p.name: file_digest(p) for p in sorted(files)},
                "ignored_keys": self.info["ignored_keys"], "dropped_vit_blocks": self.info["dropped_vit_blocks"],
                "architecture": "real" if self.config == SeedConfig() else "tiny", "dtype": self.dtype,
                "resize": self.resize, **self.decoder.provenance()}


class UnavailableImageCodec:
    """Stands in when the checkpoint's image tokenizer cannot be run here; every call raises."""

    n_codes = IMAGE_CODES
    codebook_size = IMAGE_VOCAB

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def encode(self, image: Any) -> list[int]:
        raise ImageCodecError(self.reason)

    def decode(self, codes: Sequence[int]) -> Any:
        raise ImageCodecError(self.reason)

    def provenance(self) -> dict[str, Any]:
        return {"backend": None, "unavailable": self.reason}


def load_image_codec(checkpoint: str | Path, *, device: str = "cpu", seed: int = 0,
                     dtype: str = "float32") -> ImageCodec:
    """The image codec a MIO checkpoint directory carries (see the module docstring). ``dtype``
    (float32 | float16 | bfloat16) applies to the SEED tokenizer and the unCLIP decoder."""
    seed_dir = Path(checkpoint) / SEED_DIR
    quantizer = Path(SEED_QUANTIZER_FILE)
    if not any((seed_dir / name).is_file() for name in (quantizer.name, quantizer.with_suffix(".safetensors").name)):
        return UnavailableImageCodec(f"no image tokenizer in the checkpoint ({seed_dir} has no {SEED_QUANTIZER_FILE})")
    if not any((seed_dir / name).is_file() for name in (EVA_VIT_FILE, "eva_vit_g.safetensors")):
        return UnavailableImageCodec(f"SEED image tokenizer file missing: {seed_dir / EVA_VIT_FILE} (MIO downloads it "
                                     "from the LAVIS bucket; put it there)")
    try:
        return SeedCodec(checkpoint, device=device, seed=seed, dtype=dtype)
    except ConfigError as exc:
        return UnavailableImageCodec(str(exc))
