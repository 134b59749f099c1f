"""SEED's image tokenizer (the one MIO uses), native PyTorch, loading the released
``seed_quantizer.pt`` and ``eva_vit_g.pth`` offline, on current transformers.

MIO turns an image into 32 codes of an 8192-entry codebook and back with SEED-LLaMA's tokenizer
(``AILab-CVC/SEED`` ``models/seed_qformer/*``, vendored in ``MIO-Team/MIO`` ``image_tokenizer/``).
That code downloads ``bert-base-uncased`` and ``eva_vit_g.pth`` at construction and imports helpers
removed from ``transformers.modeling_utils``, so it cannot run here.
This package rebuilds the same network, with the same module and parameter names, so the real
state dicts load into it; nothing of the original code is imported.

* ``config``: ``SeedConfig`` (the released architecture), ``TINY_SEED_CONFIG``, the file names and
  ``seed_transform`` (MIO's preprocessing) -- no torch at import.
* ``network``: ``SeedImageTokenizer`` (plain top-level ``nn.Module`` classes; imports torch).
* ``weights``: ``load_seed_tokenizer`` / ``save_seed_checkpoint`` (the released file layout).
* ``tiny``: ``build_tiny_seed`` (a random tiny model with the real architecture, for CPU tests).

Importing this package imports no torch: the names of ``network``, ``weights`` and ``tiny`` load
their module on first access. The image codec MIO calls (``SeedCodec``, with the unCLIP decoder)
is in ``mio_eval.models.mio.codecs``.

Parity with the original code (random weights; the original is never committed here). The original
``Blip2QformerQuantizer`` was built from MIO's vendored ``image_tokenizer/models`` (MIO-Team/MIO
@6c0b5e6, identical network code to AILab-CVC/SEED @93b3cf4) in /tmp under torch 2.14.1, transformers
4.57.6, timm 1.0.31, with four patches applied from outside its files: (1) ``apply_chunking_to_forward``,
``find_pruneable_heads_and_indices``, ``prune_linear_layer`` re-exported into
``transformers.modeling_utils`` from ``transformers.pytorch_utils``; (2) ``Blip2Base.init_tokenizer``
stubbed (the BERT tokenizer is not used to tokenize images); (3) ``BertConfig.from_pretrained`` /
``BertLMHeadModel.from_pretrained("bert-base-uncased")`` replaced by ``BertConfig(**values)`` /
``BertLMHeadModel(config)`` (random init); (4) ``create_eva_vit_g`` replaced by the same
``eva_vit.VisionTransformer`` call with configurable width/depth and no weight file. Its
``state_dict()`` at the real config has 881 keys (511 ``visual_encoder.*`` + 370); this module's key
names and shapes equal it exactly (``tests/data/seed_tokenizer_keys.json`` is that key list). At a
small config (ViT 96 wide x 3 blocks, 6 heads; Q-Former 96 wide x 4 layers, 12 heads; 32 queries;
8192 x 32 codebook; the real ``image_down`` and 1024-d projection) with random weights (plus random
position tables and q/v biases, which SEED initialises to zero, and a codebook drawn around the
batch's own code vectors so that ids depend on the image), its state dict was copied into this
module with ``strict=True``. On 6 inputs (4 PIL images of different sizes through MIO's
``get_transform`` and 2 random tensors), in fp32, in one batch and one by one: ids equal 192/192;
max abs difference 0.0 on the ViT output, ``ln_vision``, the Q-Former's last hidden state,
``encode_task_layer`` and the decoded unCLIP embeddings (also for random ids) -- the same operations
in the same order; ``seed_transform`` equals torchvision's transforms exactly (bilinear: MIO's
``get_transform('clip', keep_ratio=False)``; bicubic: SEED's ``processor`` settings).
At the real config (1.15 B parameters, random weights, same procedure): ids equal 64/64 on 2
images, max abs difference 0.0 on every intermediate and on the embeddings. Real file layout: the
original's real-config state dict written as the released files (``eva_vit_g.pth`` in fp16 with a
40th block, ``seed_quantizer.pt`` with 2 extra unused tensors), read by ``load_seed_tokenizer``
(40th block dropped, 2 + 13 keys ignored) and by the original's own strict=False loads: ids equal
64/64, embedding difference 0.0.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from mio_eval.models.mio.seed.config import (
    CLIP_MEAN,
    CLIP_STD,
    EVA_VIT_FILE,
    SEED_CONFIG_FILE,
    SEED_QUANTIZER_FILE,
    TINY_SEED_CONFIG,
    SeedConfig,
    seed_transform,
)

__all__ = [
    "SeedConfig",
    "TINY_SEED_CONFIG",
    "seed_transform",
    "SEED_QUANTIZER_FILE",
    "EVA_VIT_FILE",
    "SEED_CONFIG_FILE",
    "CLIP_MEAN",
    "CLIP_STD",
    "SeedImageTokenizer",
    "load_seed_tokenizer",
    "save_seed_checkpoint",
    "build_tiny_seed",
]

_LAZY = {"SeedImageTokenizer": "network", "load_seed_tokenizer": "weights", "save_seed_checkpoint": "weights",
         "build_tiny_seed": "tiny"}


def __getattr__(name: str) -> Any:  # PEP 562: the torch modules load on first use
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
