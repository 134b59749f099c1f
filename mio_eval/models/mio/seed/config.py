"""SEED tokenizer settings, file names and preprocessing (no torch at import).

``SeedConfig()`` is the released architecture (AILab-CVC/SEED @ 93b3cf4,
``models/seed_qformer/qformer_quantizer.py``; BERT values of ``bert-base-uncased``);
``TINY_SEED_CONFIG`` is the same architecture at tiny widths and depths for CPU tests.
``seed_transform`` is MIO's image preprocessing without torchvision.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from mio_eval.errors import ConfigError
from mio_eval.media import CLIP_MEAN, CLIP_STD  # re-exported: OpenAI CLIP's Normalize, as SEED and MIO

__all__ = ["SeedConfig", "TINY_SEED_CONFIG", "seed_transform", "SEED_QUANTIZER_FILE", "EVA_VIT_FILE",
           "SEED_CONFIG_FILE", "CLIP_MEAN", "CLIP_STD"]

SEED_QUANTIZER_FILE = "seed_quantizer.pt"
EVA_VIT_FILE = "eva_vit_g.pth"
SEED_CONFIG_FILE = "seed_config.json"  # only in checkpoints mio_eval builds (tiny configs)


@dataclass(frozen=True)
class SeedConfig:
    """SEED tokenizer hyper-parameters; the defaults are the released model's."""

    image_size: int = 224
    patch_size: int = 14
    vit_width: int = 1408  # EVA-ViT-g
    vit_depth: int = 39  # 40 in EVA-CLIP-g; BLIP-2 drops the last block
    vit_heads: int = 16  # 1408 // 88
    vit_mlp_ratio: float = 4.3637  # -> 6144
    qformer_hidden: int = 768  # bert-base-uncased
    qformer_layers: int = 12
    qformer_heads: int = 12
    qformer_intermediate: int = 3072
    qformer_max_positions: int = 512
    qformer_layer_norm_eps: float = 1e-12
    cross_attention_freq: int = 2
    num_query_tokens: int = 32
    codebook_size: int = 8192
    code_dim: int = 32
    decode_depth: int = 4  # blocks (reconstruction head, unused) and blocks_image
    decode_heads: int = 12
    image_down: tuple[int, ...] = (256, 128, 32)
    image_features_dim: int = 1024  # the unCLIP image embedding

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["image_down"] = list(self.image_down)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SeedConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown SEED config keys: {', '.join(unknown)}")
        data = dict(data)
        if "image_down" in data:
            data["image_down"] = tuple(int(x) for x in data["image_down"])
        return cls(**data)


# Same architecture, tiny widths and depths (CPU tests): 32 queries (the causal switch needs 32),
# the full 8192 x 32 codebook, a 32-d image embedding (the tiny unCLIP pipeline's).
TINY_SEED_CONFIG = SeedConfig(vit_width=32, vit_depth=2, vit_heads=4, vit_mlp_ratio=2.0, qformer_hidden=48,
                              qformer_layers=2, qformer_heads=4, qformer_intermediate=96, qformer_max_positions=64,
                              decode_depth=2, image_down=(32, 16, 8), image_features_dim=32)


# --- preprocessing ---------------------------------------------------------------------------

def seed_transform(image: Any, size: int = 224, resize: str = "bilinear") -> np.ndarray:
    """PIL image -> float32 [3, size, size]: ``Resize((size, size))`` (PIL ``bilinear`` as MIO's
    ``clip_transform.yaml``, or ``bicubic`` as SEED's ``ImageTokenizer.processor``; torchvision's
    Resize on a PIL image is this PIL call), ``ToTensor``, CLIP ``Normalize``."""
    from PIL import Image as PILImage

    filters = {"bilinear": PILImage.BILINEAR, "bicubic": PILImage.BICUBIC}
    if resize not in filters:
        raise ConfigError(f"SEED resize must be one of {sorted(filters)}, got {resize!r}")
    resized = image.convert("RGB").resize((size, size), filters[resize])
    array = np.asarray(resized, dtype=np.float32).transpose(2, 0, 1) / 255.0
    mean = np.asarray(CLIP_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(CLIP_STD, dtype=np.float32)[:, None, None]
    return (array - mean) / std


