"""SEED's image tokenizer network in PyTorch (imported lazily: this module imports torch).

The network of SEED-LLaMA's ``Blip2QformerQuantizer`` (AILab-CVC/SEED @ 93b3cf4,
``models/seed_qformer/*``; vendored in MIO-Team/MIO @ 6c0b5e6 ``image_tokenizer/``) at inference,
with the same submodule and parameter names so the released state dicts load into it; nothing of
the original code is imported.

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
from a seeded generator; MIO draws them unseeded). ``pos_embed`` and ``blocks`` (SEED's
training-time reconstruction head) are unused at inference but are in the checkpoint, so they are here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mio_eval.errors import ConfigError
from mio_eval.models.mio.seed.config import SeedConfig

__all__ = ["SeedImageTokenizer"]


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

    def __init__(self, cfg: SeedConfig | None = None):
        super().__init__()
        cfg = cfg or SeedConfig()
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
        if ids.shape[-1] != n:  # the fixed 32-row position table
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
