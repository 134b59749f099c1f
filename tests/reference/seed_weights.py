"""The SEED parity fixture's weights, drawn at test time instead of committed.

Every floating-point tensor of the tokenizer's state dict (the released layout: the quantizer's
keys, and the ViT's under ``visual_encoder.``) is drawn from NumPy's ``default_rng`` seeded by the
CRC-32 of its name (a generator whose stream NumPy keeps stable across versions), at a scale that
keeps activations alive through the small network. ``scripts/reference/seed_fixture.py`` loads
the same tensors into the original SEED code (AILab-CVC/SEED @93b3cf4) to write the reference
outputs; ``tests/test_parity_seed.py`` draws them again for our loader. Integer buffers
(``position_ids``) keep the values the module builds.
"""

from __future__ import annotations

import math
import zlib
from typing import Mapping

import numpy as np

__all__ = ["draw", "draw_state"]

_SMALL_SCALE = ("pos_embed", "pos_embed_image", "cls_token", "q_bias", "v_bias")


def draw(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """The float32 tensor named ``name`` (a released-layout key) of ``shape``."""
    x = np.random.default_rng(zlib.crc32(name.encode("utf-8"))).standard_normal(shape)
    module, _, kind = name.rpartition(".")
    last = module.rpartition(".")[2].lower()
    if name == "query_tokens":
        value = x  # SEED's init leaves them at zero: equal queries would all give one code
    elif name == "quantize.embedding.weight":
        value = 0.6 * x  # about the spread of encode_task_layer's outputs (std ~0.64), so the codes vary
    elif "norm" in last or last == "ln_vision":
        value = 1.0 + 0.1 * x if kind == "weight" else 0.1 * x
    elif kind in _SMALL_SCALE or name in _SMALL_SCALE or len(shape) < 2:
        value = 0.02 * x
    else:
        value = x / math.sqrt(math.prod(shape[1:]))  # fan-in scaling, as PyTorch's default init
    return value.astype(np.float32)


def draw_state(state: Mapping[str, "object"]) -> dict[str, "object"]:
    """``state`` (name -> torch tensor) with every floating tensor replaced by :func:`draw`."""
    import torch

    return {name: torch.from_numpy(draw(name, tuple(t.shape))) if t.is_floating_point() else t.clone()
            for name, t in state.items()}
