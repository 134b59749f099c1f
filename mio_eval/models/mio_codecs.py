"""MIO's media codecs behind two small protocols: speech <-> RVQ codes, image <-> 32 codes.

* ``SpeechCodec``: SpeechTokenizer from the ``speechtokenizer==0.1.2`` package (the code MIO
  vendors in ``speech_tokenizer/``), read from ``<checkpoint>/SpeechTokenizer/{config.json,
  SpeechTokenizer.pt}``. Mono float32 at 16 kHz in (callers read audio with ``media.load_audio``,
  which down-mixes and resamples without torchaudio), 50 frames/s, the first 4 RVQ layers (layer 0
  = content, layers 1-3 = "timbre"), run under ``torch.inference_mode``. Decoding sums the given
  layers (1 = content only, or 4) and runs the SEANet decoder.
* ``ImageCodec``: MIO's SEED image tokenizer maps a 224x224 CLIP-normalised image to exactly 32
  codes in [0, 8192) and decodes 32 codes to an unCLIP image embedding rendered by diffusers'
  ``StableUnCLIPImg2ImgPipeline`` (noise_level 0, guidance 10, fixed latents). Two backends:

  - ``TinySeedCodec``: a tiny RANDOM stand-in with the same interface (``TinySeed`` below:
    patchify conv -> 32 learned queries through one attention layer -> nearest codebook entry;
    decode: codebook -> MLP -> flatten 32x32 -> linear -> unCLIP embedding -> a tiny unCLIP
    pipeline). It is NOT the SEED architecture (no EVA-ViT-g, no causal Q-Former); checkpoints
    with ``seed-tokenizer-2/tiny_seed.json`` get it. ``python -m mio_eval.models.mio_tiny`` now
    builds a tiny real-architecture SEED tokenizer instead (served by ``SeedCodec`` below).
  - ``seed_tokenizer.SeedCodec``: the native SEED tokenizer (EVA-ViT-g, causal Q-Former, 8192-code
    quantizer; parity-checked against the original code) from ``seed-tokenizer-2/seed_quantizer.pt``
    + ``eva_vit_g.pth``. If ``eva_vit_g.pth`` is absent (MIO would download it) or a file cannot
    be loaded, the checkpoint gets ``UnavailableImageCodec``, whose every call raises
    ``ImageCodecError`` with that one-line reason -- image requests fail per sample while text and
    speech tasks on the same checkpoint run.

Decoders load lazily (MIO loads the SD-unCLIP decoder even for text tasks: ``MIOTokenizer`` in
``tokenization_mio.py``, MIO-Team/MIO @ 6c0b5e6); the diffusion latents are drawn once from a
seeded generator (MIO draws them unseeded in ``seed_llama_tokenizer.py``, so its images differ
between processes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from mio_eval.errors import ConfigError, MediaError

__all__ = [
    "SpeechCodec",
    "ImageCodec",
    "ImageCodecError",
    "SpeechTokenizerCodec",
    "TinySeed",
    "TinySeedCodec",
    "UnavailableImageCodec",
    "load_image_codec",
    "clip_transform",
    "IMAGE_CODES",
    "IMAGE_VOCAB",
    "SPEECH_LAYERS",
    "SPEECH_DIR",
    "SEED_DIR",
    "UNCLIP_DIR",
    "TINY_SEED_CONFIG",
    "TINY_SEED_WEIGHTS",
]

IMAGE_CODES = 32  # SEED: 32 causal queries -> 32 codes per image
IMAGE_VOCAB = 8192  # SEED quantizer n_e
SPEECH_LAYERS = 4  # MIO uses RVQ layers 0..3 (content + 3 timbre layers)
SPEECH_DIR = "SpeechTokenizer"
SEED_DIR = "seed-tokenizer-2"
UNCLIP_DIR = "stable-diffusion-2-1-unclip"
TINY_SEED_CONFIG = "tiny_seed.json"  # marker: this checkpoint carries the random stand-in
TINY_SEED_WEIGHTS = "tiny_seed.pt"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ImageCodecError(RuntimeError):
    """An image cannot be encoded or decoded (wrong code count, backend unavailable)."""


@runtime_checkable
class SpeechCodec(Protocol):
    sample_rate: int
    codebook_size: int

    def encode(self, samples: np.ndarray) -> list[list[int]]:
        """Mono float32 at ``sample_rate`` -> ``SPEECH_LAYERS`` rows of codes (row 0 = content)."""

    def decode(self, codes: Sequence[Sequence[int]]) -> np.ndarray:
        """1..4 equal-length rows of codes (layer 0 first) -> mono float32 samples."""

    def provenance(self) -> dict[str, Any]: ...


@runtime_checkable
class ImageCodec(Protocol):
    n_codes: int
    codebook_size: int

    def encode(self, image: Any) -> list[int]:
        """An RGB PIL image -> exactly ``n_codes`` codes."""

    def decode(self, codes: Sequence[int]) -> Any:
        """Exactly ``n_codes`` codes -> an RGB PIL image (ImageCodecError otherwise)."""

    def provenance(self) -> dict[str, Any]: ...


def clip_transform(image: Any, size: int = 224) -> np.ndarray:
    """MIO's image transform without torchvision: ``Resize((224, 224))`` (bilinear on a PIL image,
    aspect ratio not kept), ``ToTensor``, CLIP ``Normalize`` -> float32 [3, size, size]."""
    from PIL import Image as PILImage

    resized = image.convert("RGB").resize((size, size), PILImage.BILINEAR)
    array = np.asarray(resized, dtype=np.float32).transpose(2, 0, 1) / 255.0
    mean = np.asarray(CLIP_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(CLIP_STD, dtype=np.float32)[:, None, None]
    return (array - mean) / std


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
        self.codebook_size = int(self.config.get("codebook_size", 1024))
        self.hop = int(np.prod(self.config.get("strides", [8, 5, 4, 2])))

    def encode(self, samples: np.ndarray) -> list[list[int]]:
        import torch

        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:  # SEANet has one input channel (stereo input crashes it)
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

        from mio_eval.models.whisper_asr import file_digest

        return {"backend": f"speechtokenizer {version('speechtokenizer')}", "path": str(self.directory),
                "sha256": file_digest(self.directory / "SpeechTokenizer.pt"), "sample_rate": self.sample_rate,
                "frames_per_s": self.sample_rate / self.hop, "layers": SPEECH_LAYERS}


# --- image: the tiny random stand-in ---------------------------------------------------------

def _tiny_seed_class():
    import torch
    from torch import nn

    class TinySeedModule(nn.Module):
        """Random stand-in with SEED's interface (224x224 in, 32 codes of 8192, embedding out)."""

        def __init__(self, *, width: int = 64, code_dim: int = 32, embed_dim: int = 32,
                     n_codes: int = IMAGE_CODES, codebook_size: int = IMAGE_VOCAB, patch: int = 28) -> None:
            super().__init__()
            self.n_codes = n_codes
            self.patchify = nn.Conv2d(3, width, patch, patch)
            self.queries = nn.Parameter(torch.randn(1, n_codes, width))
            self.attention = nn.MultiheadAttention(width, 4, batch_first=True)
            self.to_code = nn.Linear(width, code_dim)
            self.codebook = nn.Embedding(codebook_size, code_dim)
            nn.init.normal_(self.codebook.weight, std=0.2)  # about the scale of to_code's outputs
            self.decode_mlp = nn.Sequential(nn.Linear(code_dim, width), nn.Tanh(), nn.Linear(width, code_dim))
            self.to_embedding = nn.Linear(n_codes * code_dim, embed_dim)

        def encode_image(self, images: "torch.Tensor") -> "torch.Tensor":
            """[B, 3, 224, 224] -> LongTensor [B, 32] (nearest codebook entry per query)."""
            patches = self.patchify(images).flatten(2).transpose(1, 2)  # [B, 64, width]
            queries = self.queries.expand(images.shape[0], -1, -1)
            attended, _ = self.attention(queries, patches, patches)
            vectors = self.to_code(attended + queries)  # [B, 32, code_dim]; residual keeps queries apart
            distances = torch.cdist(vectors, self.codebook.weight.unsqueeze(0).expand(images.shape[0], -1, -1))
            return distances.argmin(dim=-1)

        def image_embedding(self, codes: "torch.Tensor") -> "torch.Tensor":
            """LongTensor [1, 32] -> [1, embed_dim] (the unCLIP image embedding)."""
            if codes.shape[-1] != self.n_codes:  # SEED's fixed 32-row position table (qformer_quantizer.py)
                raise ImageCodecError(f"need exactly {self.n_codes} image codes, got {codes.shape[-1]}")
            return self.to_embedding(self.decode_mlp(self.codebook(codes)).flatten(1))

    return TinySeedModule


def TinySeed(**kwargs: Any):  # noqa: N802 - a factory so that importing this module needs no torch
    """A new random ``TinySeedModule`` (see the module docstring)."""
    return _tiny_seed_class()(**kwargs)


class TinySeedCodec:
    """The random stand-in behind ``ImageCodec`` (``<checkpoint>/seed-tokenizer-2/tiny_seed.*``),
    decoding through the checkpoint's (tiny) ``stable-diffusion-2-1-unclip`` pipeline."""

    n_codes = IMAGE_CODES

    def __init__(self, checkpoint: str | Path, *, device: str = "cpu", seed: int = 0) -> None:
        import torch

        self.checkpoint = Path(checkpoint)
        seed_dir = self.checkpoint / SEED_DIR
        self.settings = json.loads((seed_dir / TINY_SEED_CONFIG).read_text(encoding="utf-8"))
        self.model = TinySeed(**self.settings["model"])
        self.model.load_state_dict(_torch_load(seed_dir / TINY_SEED_WEIGHTS))
        self.model = self.model.to(device).eval()
        self.codebook_size = int(self.settings["model"].get("codebook_size", IMAGE_VOCAB))
        self.device = device
        self.seed = int(seed)
        self._pipeline = None
        self._latents = None
        self._torch = torch

    def encode(self, image: Any) -> list[int]:
        torch = self._torch
        pixels = torch.from_numpy(clip_transform(image, self.settings.get("image_size", 224)))
        with torch.inference_mode():
            codes = self.model.encode_image(pixels.unsqueeze(0).to(self.device))
        return codes[0].tolist()

    def _load_decoder(self):
        if self._pipeline is None:
            from diffusers import StableUnCLIPImg2ImgPipeline

            path = self.checkpoint / UNCLIP_DIR
            if not path.is_dir():
                raise ImageCodecError(f"unCLIP decoder directory missing: {path}")
            pipeline = StableUnCLIPImg2ImgPipeline.from_pretrained(str(path), local_files_only=True)
            pipeline.set_progress_bar_config(disable=True)
            self._pipeline = pipeline.to(self.device)
            unet = pipeline.unet.config
            generator = self._torch.Generator().manual_seed(self.seed)
            size = unet.sample_size
            self._latents = self._torch.randn((1, unet.in_channels, size, size), generator=generator)
        return self._pipeline

    def decode(self, codes: Sequence[int]) -> Any:
        torch = self._torch
        codes = list(codes)
        if len(codes) != self.n_codes:
            raise ImageCodecError(f"need exactly {self.n_codes} image codes, got {len(codes)}")
        if any(not 0 <= c < self.codebook_size for c in codes):
            raise ImageCodecError(f"image code out of range [0, {self.codebook_size})")
        pipeline = self._load_decoder()
        with torch.inference_mode():
            embedding = self.model.image_embedding(torch.tensor([codes], device=self.device))
            result = pipeline(prompt="", image_embeds=embedding, noise_level=0, guidance_scale=10.0,
                              num_inference_steps=int(self.settings.get("num_inference_steps", 20)),
                              latents=self._latents.clone().to(self.device),
                              # noise_level 0 still mixes in a little noise: seed it too
                              generator=torch.Generator().manual_seed(self.seed))
        return result.images[0]

    def provenance(self) -> dict[str, Any]:
        from mio_eval.models.whisper_asr import file_digest

        return {"backend": "tiny random SEED stand-in (not SEED)",
                "sha256": file_digest(self.checkpoint / SEED_DIR / TINY_SEED_WEIGHTS),
                "decoder": f"diffusers StableUnCLIPImg2ImgPipeline ({UNCLIP_DIR})", "latent_seed": self.seed}


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
    (float32 | float16 | bfloat16) applies to the native SEED tokenizer."""
    seed_dir = Path(checkpoint) / SEED_DIR
    if (seed_dir / TINY_SEED_CONFIG).is_file():
        return TinySeedCodec(checkpoint, device=device, seed=seed)
    if (seed_dir / "seed_quantizer.pt").is_file() or (seed_dir / "seed_quantizer.safetensors").is_file():
        from mio_eval.models.seed_tokenizer import EVA_VIT_FILE, SeedCodec

        if not any((seed_dir / name).is_file() for name in (EVA_VIT_FILE, "eva_vit_g.safetensors")):
            return UnavailableImageCodec(f"SEED image tokenizer file missing: {seed_dir / EVA_VIT_FILE} (MIO downloads it "
                                         "from the LAVIS bucket; put it there)")
        try:
            return SeedCodec(checkpoint, device=device, seed=seed, dtype=dtype)
        except ConfigError as exc:
            return UnavailableImageCodec(str(exc))
    return UnavailableImageCodec(f"no image tokenizer in the checkpoint ({seed_dir} has neither "
                                 f"seed_quantizer.pt nor {TINY_SEED_CONFIG})")
