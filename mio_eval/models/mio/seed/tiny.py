"""A random tiny SEED tokenizer with the real architecture, in the released file layout, for CPU
tests and the tiny MIO checkpoint (imported lazily: this module imports torch)."""

from __future__ import annotations

from pathlib import Path

import torch

from mio_eval.models.mio.seed.config import TINY_SEED_CONFIG, SeedConfig
from mio_eval.models.mio.seed.network import SeedImageTokenizer
from mio_eval.models.mio.seed.weights import save_seed_checkpoint

__all__ = ["build_tiny_seed"]


def build_tiny_seed(directory: str | Path, *, config: SeedConfig = TINY_SEED_CONFIG, seed: int = 0,
                    num_inference_steps: int | None = 2) -> Path:
    """A random tiny SEED tokenizer with the real architecture, saved in the released layout.
    PyTorch's default init, except the tensors SEED's init leaves at zero (queries and position
    tables: zero queries would all give the same code) and the codebook, drawn at the scale of
    ``encode_task_layer``'s outputs (SEED's U(+-1/8192) would send every query to a few rows)."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = SeedImageTokenizer(config)
        with torch.no_grad():
            model.query_tokens.normal_(0.0, 1.0)
            for param in (model.pos_embed, model.pos_embed_image, model.visual_encoder.pos_embed,
                          model.visual_encoder.cls_token):
                param.normal_(0.0, 0.02)
            model.quantize.embedding.weight.normal_(0.0, 0.3)
    finally:
        torch.random.set_rng_state(state)
    return save_seed_checkpoint(model, directory, num_inference_steps=num_inference_steps)
