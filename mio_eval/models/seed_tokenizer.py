"""A native PyTorch implementation of SEED's image tokenizer (the one MIO uses), loading the
released ``seed_quantizer.pt`` and ``eva_vit_g.pth`` offline, on current transformers.

MIO turns an image into 32 codes of an 8192-entry codebook and back with SEED-LLaMA's tokenizer
(``AILab-CVC/SEED`` ``models/seed_qformer/*``, vendored in ``MIO-Team/MIO`` ``image_tokenizer/``).
That code downloads ``bert-base-uncased`` and ``eva_vit_g.pth`` at construction
(``seed_qformer/blip2.py`` ``init_tokenizer`` / ``init_Qformer``, ``seed_qformer/eva_vit.py``
``create_eva_vit_g``; AILab-CVC/SEED @ 93b3cf4) and ``seed_qformer/qformer_causual.py`` imports
``apply_chunking_to_forward``, ``find_pruneable_heads_and_indices`` and ``prune_linear_layer`` from
``transformers.modeling_utils``, where transformers 4.57 no longer has them, so it cannot run
here. This module rebuilds the same network, with the same module and parameter names, so the real
state dicts load into it; nothing of the original code is imported.

Encode (``SeedImageTokenizer.encode``; original ``Blip2QformerQuantizer.get_codebook_indices``):

1. preprocessing (``seed_transform``): ``Resize((224, 224))`` without keeping the aspect ratio,
   ``ToTensor``, CLIP ``Normalize``. MIO feeds SEED through its ``clip_transform.yaml`` (torchvision's
   default **bilinear**); SEED's own ``ImageTokenizer.processor`` uses **bicubic** -- ``resize=`` picks.
2. EVA-ViT-g (``visual_encoder``): patch 14 conv, class token, absolute positions, 39 pre-norm
   blocks of width 1408 (16 heads, MLP 6144, qkv without bias but learned q/v biases), no final
   norm -- BLIP-2 keeps the first 39 of EVA-CLIP-g's 40 blocks -- then ``ln_vision`` (LayerNorm in fp32).
3. causal Q-Former (``Qformer.bert``): 32 learned ``query_tokens`` through BERT-base layers (768 wide,
   12 heads, 12 layers, GELU, post-LN, eps 1e-12) with cross-attention to the image features in
   every second layer (0, 2, ..., 10) and the query-only FFN (``intermediate_query``/``output_query``).
   Self-attention over the queries is causal (additive -10000 mask) -- the original switches this on
   exactly when there are 32 queries, and so does this code. The BERT config is built from
   bert-base-uncased's known values (``SeedConfig``); nothing is downloaded.
4. ``encode_task_layer`` (768 -> 768 -> tanh -> 32), then ``quantize``: the nearest of 8192 codebook
   rows by squared L2 (``|z|^2 + |e|^2 - 2 z.e``, argmin; no normalisation) -> ids ``[B, 32]``.

Decode to pixels (original ``get_codebook_entry`` + ``ImageTokenizer.decode``): exactly 32 ids ->
codebook rows -> ``decode_task_layer`` (32 -> 32 -> tanh -> 768) -> ``+ pos_embed_image`` -> 4 ViT
blocks (``blocks_image``, 12 heads) -> ``image_down`` (768 -> 256 -> 128 -> 32, ReLU, no bias) ->
flatten ``32 x 32`` -> ``distill_image_proj`` -> the 1024-d unCLIP image embedding -> diffusers'
``StableUnCLIPImg2ImgPipeline`` (``noise_level=0``, ``guidance_scale=10``, 20 steps, latents drawn once
from a seeded generator; MIO draws them unseeded in ``seed_llama_tokenizer.py``). ``pos_embed`` and ``blocks`` (SEED's
training-time reconstruction head) are unused at inference but are in the checkpoint, so they are here.

Weights (``load_seed_tokenizer``), read with ``torch.load(weights_only=True)`` or from a
``.safetensors`` file of the same stem, from ``<checkpoint>/seed-tokenizer-2/``:

* ``seed_quantizer.pt``: the 370 non-ViT tensors above (``ln_vision``, ``query_tokens``, ``Qformer.*``,
  ``quantize.*``, the task layers, both block stacks, ``image_down``, ``distill_image_proj``). Every
  one must be present with the right shape (loaded with ``strict=True``); keys the network does not
  have are ignored and counted in ``provenance()["ignored_keys"]``, as the original's
  ``load_state_dict(strict=False)`` does -- loading the released file into the original model
  reports "missing keys: 511 unexpected keys: 146" (OpenMOSS/AnyGPT#14): the 511 are exactly the
  ViT's tensors, so the file carries all 370 and 146 extras.
* ``eva_vit_g.pth``: the 511 ViT tensors (LAVIS' EVA-CLIP-g file). Blocks past ``vit_depth`` (the
  40th) are dropped, the position table is resized bicubically if its grid differs (as the original
  ``interpolate_pos_embed``), and the rest loads with ``strict=True``; other extras are counted.
  ``visual_encoder.*`` tensors inside ``seed_quantizer.pt``, if any, override it (the original loads
  the ViT file first, then the SEED checkpoint over the whole model).

A missing or unreadable file, a missing tensor or a wrong shape is one ``ConfigError`` line.

``SeedConfig()`` is the real architecture; ``TINY_SEED_CONFIG`` is the same architecture at tiny
widths and depths for CPU tests, and ``save_seed_checkpoint`` writes any model in the released file
layout (plus a ``seed_config.json`` that only tiny checkpoints carry).

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

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mio_eval.errors import ConfigError

__all__ = [
    "SeedConfig",
    "TINY_SEED_CONFIG",
    "SeedImageTokenizer",
    "SeedCodec",
    "seed_transform",
    "load_seed_tokenizer",
    "save_seed_checkpoint",
    "build_tiny_seed",
    "SEED_QUANTIZER_FILE",
    "EVA_VIT_FILE",
    "SEED_CONFIG_FILE",
]

SEED_QUANTIZER_FILE = "seed_quantizer.pt"
EVA_VIT_FILE = "eva_vit_g.pth"
SEED_CONFIG_FILE = "seed_config.json"  # only in checkpoints mio_eval builds (tiny configs)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


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


# --- the network (built lazily so that importing this module needs no torch) ----------------

def _classes():
    if _CLASSES:
        return _CLASSES
    import torch
    import torch.nn.functional as F
    from torch import nn

    class FP32LayerNorm(nn.LayerNorm):
        """BLIP-2's ``ln_vision``: normalise in fp32, return the input dtype."""

        def forward(self, x):
            weight = None if self.weight is None else self.weight.float()
            bias = None if self.bias is None else self.bias.float()
            return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).to(x.dtype)

    # EVA-ViT-g --------------------------------------------------------------------------------
    class PatchEmbed(nn.Module):
        def __init__(self, cfg: SeedConfig):
            super().__init__()
            self.proj = nn.Conv2d(3, cfg.vit_width, kernel_size=cfg.patch_size, stride=cfg.patch_size)
            self.image_size = cfg.image_size

        def forward(self, x):
            if x.shape[-2:] != (self.image_size, self.image_size):
                raise ValueError(f"SEED needs {self.image_size}x{self.image_size} input, got {tuple(x.shape[-2:])}")
            return self.proj(x).flatten(2).transpose(1, 2)

    class EvaAttention(nn.Module):
        def __init__(self, dim: int, heads: int):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3, bias=False)
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            b, n, _ = x.shape
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
            qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            return self.proj((attn @ v).transpose(1, 2).reshape(b, n, -1))

    class Mlp(nn.Module):
        def __init__(self, dim: int, hidden: int):
            super().__init__()
            self.fc1 = nn.Linear(dim, hidden)
            self.act = nn.GELU()
            self.fc2 = nn.Linear(hidden, dim)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    class EvaBlock(nn.Module):
        def __init__(self, cfg: SeedConfig):
            super().__init__()
            self.norm1 = nn.LayerNorm(cfg.vit_width, eps=1e-6)
            self.attn = EvaAttention(cfg.vit_width, cfg.vit_heads)
            self.norm2 = nn.LayerNorm(cfg.vit_width, eps=1e-6)
            self.mlp = Mlp(cfg.vit_width, int(cfg.vit_width * cfg.vit_mlp_ratio))

        def forward(self, x):
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class EvaViT(nn.Module):
        """EVA-ViT-g as BLIP-2 uses it: no final norm, all tokens returned."""

        def __init__(self, cfg: SeedConfig):
            super().__init__()
            self.patch_embed = PatchEmbed(cfg)
            grid = cfg.image_size // cfg.patch_size
            self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.vit_width))
            self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, cfg.vit_width))
            self.blocks = nn.ModuleList(EvaBlock(cfg) for _ in range(cfg.vit_depth))

        def forward(self, x):
            x = self.patch_embed(x)
            x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
            for block in self.blocks:
                x = block(x)
            return x

    # causal Q-Former (BERT names, query path only) ---------------------------------------------
    class BertSelfAttention(nn.Module):
        def __init__(self, cfg: SeedConfig, kv_width: int):
            super().__init__()
            self.heads = cfg.qformer_heads
            self.head_size = cfg.qformer_hidden // cfg.qformer_heads
            self.query = nn.Linear(cfg.qformer_hidden, cfg.qformer_hidden)
            self.key = nn.Linear(kv_width, cfg.qformer_hidden)
            self.value = nn.Linear(kv_width, cfg.qformer_hidden)

        def _split(self, x):
            return x.view(*x.shape[:-1], self.heads, self.head_size).permute(0, 2, 1, 3)

        def forward(self, hidden, context, mask):
            k, v, q = self._split(self.key(context)), self._split(self.value(context)), self._split(self.query(hidden))
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_size)
            if mask is not None:
                scores = scores + mask
            out = torch.matmul(nn.Softmax(dim=-1)(scores), v).permute(0, 2, 1, 3).contiguous()
            return out.view(*out.shape[:-2], self.heads * self.head_size)

    class BertOutput(nn.Module):  # BertSelfOutput and BertOutput: dense, residual, post-LN
        def __init__(self, cfg: SeedConfig, width: int):
            super().__init__()
            self.dense = nn.Linear(width, cfg.qformer_hidden)
            self.LayerNorm = nn.LayerNorm(cfg.qformer_hidden, eps=cfg.qformer_layer_norm_eps)

        def forward(self, hidden, residual):
            return self.LayerNorm(self.dense(hidden) + residual)

    class BertAttention(nn.Module):
        def __init__(self, cfg: SeedConfig, kv_width: int):
            super().__init__()
            self.self = BertSelfAttention(cfg, kv_width)
            self.output = BertOutput(cfg, cfg.qformer_hidden)

        def forward(self, hidden, context=None, mask=None):
            return self.output(self.self(hidden, hidden if context is None else context, mask), hidden)

    class BertIntermediate(nn.Module):
        def __init__(self, cfg: SeedConfig):
            super().__init__()
            self.dense = nn.Linear(cfg.qformer_hidden, cfg.qformer_intermediate)

        def forward(self, x):
            return F.gelu(self.dense(x))

    class QFormerLayer(nn.Module):
        def __init__(self, cfg: SeedConfig, index: int):
            super().__init__()
            self.attention = BertAttention(cfg, cfg.qformer_hidden)
            self.has_cross_attention = index % cfg.cross_attention_freq == 0
            if self.has_cross_attention:
                self.crossattention = BertAttention(cfg, cfg.vit_width)
            self.intermediate_query = BertIntermediate(cfg)
            self.output_query = BertOutput(cfg, cfg.qformer_intermediate)

        def forward(self, hidden, mask, image_embeds):
            hidden = self.attention(hidden, None, mask)
            if self.has_cross_attention:  # the encoder mask is all ones: adds 0
                hidden = self.crossattention(hidden, image_embeds, None)
            return self.output_query(self.intermediate_query(hidden), hidden)

    class QFormerEncoder(nn.Module):
        def __init__(self, cfg: SeedConfig):
            super().__init__()
            self.layer = nn.ModuleList(QFormerLayer(cfg, i) for i in range(cfg.qformer_layers))

    class QFormerEmbeddings(nn.Module):
        def __init__(self, cfg: SeedConfig):
            super().__init__()
            self.LayerNorm = nn.LayerNorm(cfg.qformer_hidden, eps=cfg.qformer_layer_norm_eps)
            # unused with query-only input, but a persistent buffer of the checkpoint
            self.register_buffer("position_ids", torch.arange(cfg.qformer_max_positions).expand((1, -1)))

    class QFormerBert(nn.Module):
        def __init__(self, cfg: SeedConfig):
            super().__init__()
            self.embeddings = QFormerEmbeddings(cfg)
            self.encoder = QFormerEncoder(cfg)

        def forward(self, queries, image_embeds):
            hidden = self.embeddings.LayerNorm(queries)
            n = queries.shape[1]
            mask = None
            if n == 32:  # the original makes query self-attention causal exactly when there are 32 queries
                ids = torch.arange(n, device=queries.device)
                causal = (ids[None, :] <= ids[:, None]).to(hidden.dtype)
                mask = ((1.0 - causal) * -10000.0)[None, None]
            for layer in self.encoder.layer:
                hidden = layer(hidden, mask, image_embeds)
            return hidden

    class QFormer(nn.Module):
        def __init__(self, cfg: SeedConfig):
            super().__init__()
            self.bert = QFormerBert(cfg)

    # decoder-side ViT blocks (timm-style, qkv with bias) ---------------------------------------
    class VitAttention(nn.Module):
        def __init__(self, dim: int, heads: int):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            b, n, c = x.shape
            qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
            return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))

    class VitBlock(nn.Module):
        def __init__(self, dim: int, heads: int):
            super().__init__()
            self.norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.attn = VitAttention(dim, heads)
            self.norm2 = nn.LayerNorm(dim, eps=1e-6)
            self.mlp = Mlp(dim, int(dim * 4.0))

        def forward(self, x):
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class Codebook(nn.Module):
        def __init__(self, cfg: SeedConfig):
            super().__init__()
            self.embedding = nn.Embedding(cfg.codebook_size, cfg.code_dim)

        def forward(self, z):
            """[B, n, d] -> nearest code ids [B, n] (squared L2, VectorQuantizer2's formula)."""
            flat = z.reshape(-1, z.shape[-1])
            weight = self.embedding.weight
            distances = (torch.sum(flat ** 2, dim=1, keepdim=True) + torch.sum(weight ** 2, dim=1)
                         - 2 * torch.einsum("bd,dn->bn", flat, weight.t()))
            return torch.argmin(distances, dim=1).reshape(z.shape[0], -1)

    class SeedImageTokenizer(nn.Module):
        """SEED's ``Blip2QformerQuantizer`` at inference: the same submodule and parameter names."""

        def __init__(self, cfg: SeedConfig = SeedConfig()):
            super().__init__()
            if cfg.qformer_hidden % cfg.qformer_heads or cfg.qformer_hidden % cfg.decode_heads:
                raise ConfigError("SEED config: qformer_hidden must divide by qformer_heads and decode_heads")
            if cfg.vit_width % cfg.vit_heads:
                raise ConfigError("SEED config: vit_width must divide by vit_heads")
            self.config = cfg
            hidden, n = cfg.qformer_hidden, cfg.num_query_tokens
            self.visual_encoder = EvaViT(cfg)
            self.ln_vision = FP32LayerNorm(cfg.vit_width)
            self.Qformer = QFormer(cfg)
            self.query_tokens = nn.Parameter(torch.zeros(1, n, hidden))
            self.quantize = Codebook(cfg)
            self.encode_task_layer = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, cfg.code_dim))
            self.decode_task_layer = nn.Sequential(nn.Linear(cfg.code_dim, cfg.code_dim), nn.Tanh(),
                                                   nn.Linear(cfg.code_dim, hidden))
            self.pos_embed = nn.Parameter(torch.zeros(1, n, hidden))
            self.blocks = nn.ModuleList(VitBlock(hidden, cfg.decode_heads) for _ in range(cfg.decode_depth))
            self.pos_embed_image = nn.Parameter(torch.zeros(1, n, hidden))
            self.blocks_image = nn.ModuleList(VitBlock(hidden, cfg.decode_heads) for _ in range(cfg.decode_depth))
            down, width = [], hidden
            for out in cfg.image_down:
                down += [nn.Linear(width, out, bias=False), nn.ReLU()]
                width = out
            self.image_down = nn.Sequential(*down[:-1])
            self.distill_image_proj = nn.Linear(n * width, cfg.image_features_dim)

        def image_features(self, pixels):
            """[B, 3, 224, 224] -> ``ln_vision(EVA-ViT-g(pixels))`` [B, 257, vit_width]."""
            return self.ln_vision(self.visual_encoder(pixels))

        def query_features(self, image_embeds):
            """Image features -> the Q-Former's last hidden state [B, 32, qformer_hidden]."""
            queries = self.query_tokens.expand(image_embeds.shape[0], -1, -1)
            return self.Qformer.bert(queries, image_embeds)

        def encode(self, pixels, *, return_features: bool = False):
            """[B, 3, 224, 224] -> LongTensor [B, 32] in [0, codebook_size)."""
            with torch.no_grad():
                vit = self.visual_encoder(pixels)
                image_embeds = self.ln_vision(vit)
                queries = self.query_features(image_embeds)
                z = self.encode_task_layer(queries)
                ids = self.quantize(z)
            if return_features:
                return ids, {"vit": vit, "ln_vision": image_embeds, "qformer": queries, "code_vectors": z}
            return ids

        def image_embedding(self, ids):
            """LongTensor [B, 32] -> the unCLIP image embedding [B, image_features_dim]."""
            n = self.config.num_query_tokens
            if ids.shape[-1] != n:  # the fixed 32-row position table (SEED qformer_quantizer.py)
                raise ValueError(f"need exactly {n} image codes, got {ids.shape[-1]}")
            with torch.no_grad():
                x = self.decode_task_layer(self.quantize.embedding(ids))
                x = x + self.pos_embed_image.repeat(x.shape[0], 1, 1)
                for block in self.blocks_image:
                    x = block(x)
                x = self.image_down(x)
                return self.distill_image_proj(x.reshape(x.shape[0], -1))

        def quantizer_state_dict(self) -> dict:
            """The tensors of ``seed_quantizer.pt`` (everything but the ViT)."""
            return {k: v for k, v in self.state_dict().items() if not k.startswith("visual_encoder.")}

    _CLASSES["SeedImageTokenizer"] = SeedImageTokenizer
    return _CLASSES


_CLASSES: dict[str, Any] = {}


def SeedImageTokenizer(config: SeedConfig | None = None):  # noqa: N802 - a factory: no torch at import
    """A new (randomly initialised) ``SeedImageTokenizer`` module for ``config`` (default: the real one)."""
    return _classes()["SeedImageTokenizer"](config or SeedConfig())


# --- loading ---------------------------------------------------------------------------------

def _weights_file(directory: Path, name: str) -> Path:
    """``name`` or the ``.safetensors`` file of the same stem; ConfigError if neither exists."""
    path = directory / name
    if path.is_file():
        return path
    alt = path.with_suffix(".safetensors")
    if alt.is_file():
        return alt
    raise ConfigError(f"SEED image tokenizer file missing: {path} (or {alt.name})")


def _read_state_dict(path: Path) -> dict:
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one config error line
        raise ConfigError(f"cannot read {path}: {' '.join(str(exc).split())[:300]}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path} is not a flat state dict of tensors")
    return state


def _load_strict(module, state: dict, path: Path, what: str) -> list[str]:
    """Load ``module`` from ``state`` with ``strict=True`` over the module's own keys; keys the
    module does not have are returned (ignored, as the original's strict=False load ignores them)."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        raise ConfigError(f"{path}: {len(missing)} of the {len(expected)} {what} tensors are missing "
                          f"(first: {missing[0]}); not a SEED {what} file for this config?")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ConfigError(f"{path}: {key} has shape {tuple(state[key].shape)}, "
                              f"the {what} needs {tuple(tensor.shape)}")
    module.load_state_dict({k: state[k] for k in expected}, strict=True)
    return sorted(k for k in state if k not in expected)


def _resize_pos_embed(pos_embed, num_patches: int):
    """The original ``interpolate_pos_embed``: bicubic resize of the patch grid, class token kept."""
    import torch

    old, new = int((pos_embed.shape[-2] - 1) ** 0.5), int(num_patches ** 0.5)
    if old == new:
        return pos_embed
    dim = pos_embed.shape[-1]
    tokens = pos_embed[:, 1:].float().reshape(-1, old, old, dim).permute(0, 3, 1, 2)
    tokens = torch.nn.functional.interpolate(tokens, size=(new, new), mode="bicubic", align_corners=False)
    return torch.cat((pos_embed[:, :1].float(), tokens.permute(0, 2, 3, 1).flatten(1, 2)), dim=1)


def load_seed_tokenizer(directory: str | Path, *, config: SeedConfig | None = None, device: str = "cpu",
                        dtype: str = "float32"):
    """``SeedImageTokenizer`` from ``directory`` (``seed-tokenizer-2/``): ``seed_quantizer.pt`` +
    ``eva_vit_g.pth`` (see the module docstring). ``config`` defaults to ``seed_config.json`` in the
    directory if there is one, else the real architecture. Returns ``(model, info)``."""
    import torch

    directory = Path(directory)
    extra: dict[str, Any] = {}
    config_path = directory / SEED_CONFIG_FILE
    if config_path.is_file():
        try:
            extra = json.loads(config_path.read_text(encoding="utf-8"))
            file_config = SeedConfig.from_dict(extra["config"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"bad SEED config {config_path}: {exc}") from None
        config = config or file_config
    config = config or SeedConfig()
    if dtype not in ("float32", "float16", "bfloat16"):
        raise ConfigError(f"SEED dtype must be float32, float16 or bfloat16, got {dtype!r}")
    quantizer_path = _weights_file(directory, SEED_QUANTIZER_FILE)
    quantizer_state = _read_state_dict(quantizer_path)
    vit_in_quantizer = {k[len("visual_encoder."):]: quantizer_state.pop(k)
                        for k in [k for k in quantizer_state if k.startswith("visual_encoder.")]}
    model = SeedImageTokenizer(config)
    n_vit = len(model.visual_encoder.state_dict())
    if len(vit_in_quantizer) >= n_vit:  # the SEED file carries the whole ViT: no eva_vit_g.pth needed
        vit_path, vit_state = quantizer_path, {}
    else:
        vit_path = _weights_file(directory, EVA_VIT_FILE)
        vit_state = _read_state_dict(vit_path)
    # BLIP-2 keeps the first vit_depth blocks of EVA-CLIP-g (40 -> 39)
    dropped = [k for k in vit_state if k.startswith("blocks.") and int(k.split(".")[1]) >= config.vit_depth]
    for key in dropped:
        del vit_state[key]
    if "pos_embed" in vit_state:
        vit_state["pos_embed"] = _resize_pos_embed(vit_state["pos_embed"], (config.image_size // config.patch_size) ** 2)
    vit_state.update(vit_in_quantizer)  # the SEED checkpoint is loaded over the ViT file
    ignored_vit = _load_strict(model.visual_encoder, vit_state, vit_path, "EVA-ViT")
    ignored = _load_strict(_WithoutVit(model), quantizer_state, quantizer_path, "SEED quantizer")
    model = model.to(device=device, dtype=getattr(torch, dtype)).eval()
    info = {"config": config.to_dict(), "quantizer_file": str(quantizer_path), "vit_file": str(vit_path),
            "ignored_keys": {"quantizer": len(ignored), "vit": len(ignored_vit) + len(dropped)},
            "dropped_vit_blocks": sorted({int(k.split(".")[1]) for k in dropped}), "dtype": dtype,
            "num_inference_steps": extra.get("num_inference_steps")}
    return model, info


class _WithoutVit:
    """``load_strict`` adaptor: the model's state dict minus ``visual_encoder.*``."""

    def __init__(self, model) -> None:
        self.model = model

    def state_dict(self) -> dict:
        return self.model.quantizer_state_dict()

    def load_state_dict(self, state: dict, strict: bool = True):
        full = {f"visual_encoder.{k}": v for k, v in self.model.visual_encoder.state_dict().items()}
        full.update(state)
        return self.model.load_state_dict(full, strict=strict)


def save_seed_checkpoint(model, directory: str | Path, *, safetensors: bool = False,
                         num_inference_steps: int | None = None) -> Path:
    """Write ``model`` in the released layout: ``seed_quantizer.pt`` (all but the ViT) and
    ``eva_vit_g.pth`` (the ViT, unprefixed); plus ``seed_config.json`` (config and decoder steps)
    unless this is the real architecture with default settings (the released checkpoint has none)."""
    import torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    parts = {SEED_QUANTIZER_FILE: model.quantizer_state_dict(), EVA_VIT_FILE: model.visual_encoder.state_dict()}
    for name, state in parts.items():
        state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        if safetensors:
            from safetensors.torch import save_file

            save_file(state, str((directory / name).with_suffix(".safetensors")))
        else:
            torch.save(state, directory / name)
    if model.config != SeedConfig() or num_inference_steps is not None:
        payload = {"what": "mio_eval SEED tokenizer settings (the released checkpoint has none: real architecture)",
                   "config": model.config.to_dict()}
        if num_inference_steps is not None:
            payload["num_inference_steps"] = int(num_inference_steps)
        (directory / SEED_CONFIG_FILE).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return directory


def build_tiny_seed(directory: str | Path, *, config: SeedConfig = TINY_SEED_CONFIG, seed: int = 0,
                    num_inference_steps: int | None = 2) -> Path:
    """A random tiny SEED tokenizer with the real architecture, saved in the released layout.
    PyTorch's default init, except the tensors SEED's init leaves at zero (queries and position
    tables: zero queries would all give the same code) and the codebook, drawn at the scale of
    ``encode_task_layer``'s outputs (SEED's U(+-1/8192) would send every query to a few rows)."""
    import torch

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


# --- the ImageCodec --------------------------------------------------------------------------

class SeedCodec:
    """The native SEED tokenizer behind ``mio_codecs.ImageCodec``: ``<checkpoint>/seed-tokenizer-2/``
    for the tokenizer, ``<checkpoint>/stable-diffusion-2-1-unclip/`` (loaded on first decode) for pixels."""

    def __init__(self, checkpoint: str | Path, *, device: str = "cpu", seed: int = 0, dtype: str = "float32",
                 resize: str = "bilinear", num_inference_steps: int | None = None) -> None:
        import torch

        from mio_eval.models.mio_codecs import SEED_DIR

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
        self._pipeline = None
        self._latents = None
        self._torch = torch

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
        from mio_eval.models.mio_codecs import ImageCodecError

        codes = list(codes)
        if len(codes) != self.n_codes:
            raise ImageCodecError(f"need exactly {self.n_codes} image codes, got {len(codes)}")
        if any(not 0 <= int(c) < self.codebook_size for c in codes):
            raise ImageCodecError(f"image code out of range [0, {self.codebook_size})")
        with self._torch.inference_mode():
            return self.model.image_embedding(self._torch.tensor([codes], device=self.device))

    def _load_decoder(self):
        if self._pipeline is None:
            from diffusers import StableUnCLIPImg2ImgPipeline

            from mio_eval.models.mio_codecs import UNCLIP_DIR, ImageCodecError

            path = self.checkpoint / UNCLIP_DIR
            if not path.is_dir():
                raise ImageCodecError(f"unCLIP decoder directory missing: {path}")
            torch = self._torch
            pipeline = StableUnCLIPImg2ImgPipeline.from_pretrained(str(path), local_files_only=True,
                                                                   torch_dtype=getattr(torch, self.dtype))
            pipeline.set_progress_bar_config(disable=True)
            self._pipeline = pipeline.to(self.device)
            unet = pipeline.unet.config
            generator = torch.Generator().manual_seed(self.seed)  # MIO: [1, 4, 96, 96], unseeded
            self._latents = torch.randn((1, unet.in_channels, unet.sample_size, unet.sample_size),
                                        generator=generator).to(getattr(torch, self.dtype))
        return self._pipeline

    def decode(self, codes: Sequence[int]) -> Any:
        embedding = self.embedding(codes)
        pipeline = self._load_decoder()
        torch = self._torch
        with torch.inference_mode():
            result = pipeline(prompt="", image_embeds=embedding.to(pipeline.unet.dtype), noise_level=0,
                              guidance_scale=10.0, num_inference_steps=self.num_inference_steps,
                              latents=self._latents.clone().to(self.device),
                              generator=torch.Generator().manual_seed(self.seed))  # noise_level 0 still draws noise
        return result.images[0]

    def provenance(self) -> dict[str, Any]:
        from mio_eval.models.mio_codecs import UNCLIP_DIR
        from mio_eval.models.whisper_asr import file_digest

        files = {Path(self.info["quantizer_file"]), Path(self.info["vit_file"])}
        return {"backend": "native SEED image tokenizer (mio_eval.models.seed_tokenizer)",
                "sha256": {p.name: file_digest(p) for p in sorted(files)},
                "ignored_keys": self.info["ignored_keys"], "dropped_vit_blocks": self.info["dropped_vit_blocks"],
                "architecture": "real" if self.config == SeedConfig() else "tiny", "dtype": self.dtype,
                "resize": self.resize, "decoder": f"diffusers StableUnCLIPImg2ImgPipeline ({UNCLIP_DIR})",
                "num_inference_steps": self.num_inference_steps, "latent_seed": self.seed}
