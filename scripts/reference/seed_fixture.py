"""Write ``tests/reference/seed/``: a small SEED tokenizer with seeded random weights, built and run
by the **original** SEED code, and its outputs at every stage.

Reference: AILab-CVC/SEED @93b3cf408196735ec4820ad2eb4d9dc4a670003d (``models/seed_qformer/*`` and
``models/transforms.py``; MIO vendors the same network code in MIO-Team/MIO ``image_tokenizer/``).
Read with ``git archive`` at that commit into a temporary directory; never committed.

The original code downloads ``bert-base-uncased`` and ``eva_vit_g.pth`` at construction and imports
helpers that transformers 4.4x removed from ``modeling_utils``. Four patches are applied from outside
its files, none of them touching the network's computation:

1. ``apply_chunking_to_forward``, ``find_pruneable_heads_and_indices``, ``prune_linear_layer``
   re-exported into ``transformers.modeling_utils`` from ``transformers.pytorch_utils``;
2. ``Blip2Base.init_tokenizer`` returns None (the BERT tokenizer never sees an image);
3. ``BertConfig.from_pretrained("bert-base-uncased")`` / ``BertLMHeadModel.from_pretrained`` become
   ``BertConfig(**bert-base-uncased's values, with the small sizes below)`` / ``BertLMHeadModel(config)``;
4. ``create_eva_vit_g`` becomes the same ``eva_vit.VisionTransformer(...)`` call at a small width and
   depth, in fp32, with no weight file.

Small config (``seed_config.json``): 56 px input (4 x 4 patches), ViT 48 wide x 3 blocks x 4 heads,
Q-Former 48 wide x 4 layers x 12 heads, 32 causal queries, a 1024 x 32 codebook, 2 decode blocks,
the original's hard-coded ``image_down`` (256, 128, 32) and a 64-d image embedding. Weights: the
not committed: every floating tensor of the original's ``state_dict()`` is drawn by
``tests/reference/seed_weights.py`` (NumPy's ``default_rng`` seeded by the tensor's name; queries,
position tables, LayerNorm affines and the codebook at scales that keep activations alive and let the
ids depend on the image) and loaded strictly into the original; the test draws the same tensors for
our loader. ``seed_config.json`` records the original's state-dict keys and shapes.

``outputs.npz``: the preprocessed pixels of ``image_*.png`` (SEED's ``get_transform('clip',
keep_ratio=False)``) plus one random tensor; per stage the original's ViT output, ``ln_vision``, the
Q-Former's last hidden state, ``encode_task_layer``, the ids of ``get_codebook_indices``, the
unCLIP embedding of ``get_codebook_entry`` for those ids and for random ids; and, for every
LayerNorm module of the original, its output on a probe whose variance is the module's eps (so a
changed eps shows at fp32 precision).

Usage: ``python scripts/reference/seed_fixture.py [--cache DIR]`` (``REF_AILAB_CVC_SEED`` = a local clone).
"""

from __future__ import annotations

import json
import sys
import tempfile
import types
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sources import arguments, extract, source  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "reference"))
from seed_weights import draw_state  # noqa: E402

REPO, COMMIT = "AILab-CVC/SEED", "93b3cf408196735ec4820ad2eb4d9dc4a670003d"
OUT = ROOT / "tests" / "reference" / "seed"
BERT_BASE = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
                 attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
                 initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=0, position_embedding_type="absolute")
SMALL = dict(image_size=56, vit_width=48, vit_depth=3, vit_heads=4, qformer_hidden=48, qformer_layers=4,
             qformer_heads=12, qformer_intermediate=96, codebook_size=1024, decode_depth=2, image_features_dim=64)
# Only the sizes: every architectural constant (eps, patch, MLP ratio, heads of the decode blocks,
# image_down, code width...) comes from SeedConfig's defaults, so the test checks those too.
OUR_CONFIG = dict(SMALL)


def build_original(src: Path):
    import torch
    import transformers.modeling_utils as modeling_utils
    import transformers.pytorch_utils as pytorch_utils

    for name in ("apply_chunking_to_forward", "find_pruneable_heads_and_indices", "prune_linear_layer"):  # patch 1
        setattr(modeling_utils, name, getattr(pytorch_utils, name))
    (src / "models" / "__init__.py").write_text("")
    sys.path.insert(0, str(src))
    from models.seed_qformer import blip2, eva_vit, qformer_causual, qformer_quantizer

    blip2.Blip2Base.init_tokenizer = classmethod(lambda cls, truncation_side="right": None)  # patch 2

    def bert_config(_name):  # patch 3
        return qformer_causual.BertConfig(**{**BERT_BASE, "hidden_size": SMALL["qformer_hidden"],
                                             "num_hidden_layers": SMALL["qformer_layers"],
                                             "num_attention_heads": SMALL["qformer_heads"],
                                             "intermediate_size": SMALL["qformer_intermediate"]})

    blip2.BertConfig = types.SimpleNamespace(from_pretrained=bert_config)
    blip2.BertLMHeadModel = types.SimpleNamespace(
        from_pretrained=lambda _name, config: qformer_causual.BertLMHeadModel(config))

    def create_eva_vit_g(img_size=224, drop_path_rate=0.4, use_checkpoint=False, precision="fp16"):  # patch 4
        return eva_vit.VisionTransformer(
            img_size=img_size, patch_size=14, use_mean_pooling=False, embed_dim=SMALL["vit_width"],
            depth=SMALL["vit_depth"], num_heads=SMALL["vit_heads"], mlp_ratio=4.3637, qkv_bias=True,
            drop_path_rate=drop_path_rate, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_checkpoint=use_checkpoint)

    blip2.create_eva_vit_g = create_eva_vit_g
    model = qformer_quantizer.Blip2QformerQuantizer(
        vit_model="eva_clip_g", img_size=SMALL["image_size"], drop_path_rate=0, vit_precision="fp32",
        num_query_token=32, codebook_embed_dim=32, n_embed=SMALL["codebook_size"], decode_depth=SMALL["decode_depth"],
        image_features_dim=SMALL["image_features_dim"])
    return model.eval()


def images():
    """Three deterministic pictures of different sizes (written as PNG beside the fixture)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(7)
    out = []
    for w, h in ((64, 48), (30, 90), (112, 112)):
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1)
        noise = rng.integers(0, 60, size=(h, w, 3))
        out.append(Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)))
    return out


def main(argv=None) -> int:
    args = arguments(__doc__, argv)
    import numpy as np
    import torch

    git_dir = source(REPO, COMMIT, cache=args.cache)
    with tempfile.TemporaryDirectory() as tmp:
        src = extract(git_dir, COMMIT, ["models/seed_qformer", "models/transforms.py"], Path(tmp))
        torch.manual_seed(0)
        model = build_original(src)
        from models.transforms import get_transform

        OUT.mkdir(parents=True, exist_ok=True)
        pics = images()
        transform = get_transform(type="clip", keep_ratio=False, image_size=SMALL["image_size"])
        for i, pic in enumerate(pics):
            pic.save(OUT / f"image_{i}.png")
        g = torch.Generator().manual_seed(1)
        pixels = torch.stack([transform(p) for p in pics] + [torch.randn(3, SMALL["image_size"], SMALL["image_size"], generator=g)])
        with torch.no_grad():
            model.load_state_dict(draw_state(model.state_dict()), strict=True)

            vit = model.visual_encoder(pixels)
            ln = model.ln_vision(vit)
            queries = model.Qformer.bert(query_embeds=model.query_tokens.expand(len(pixels), -1, -1),
                                         encoder_hidden_states=ln,
                                         encoder_attention_mask=torch.ones(ln.shape[:-1], dtype=torch.long),
                                         return_dict=True).last_hidden_state
            code_vectors = model.encode_task_layer(queries)
            ids, _ = model.get_codebook_indices(pixels)
            random_ids = torch.randint(0, SMALL["codebook_size"], (2, 32), generator=g)
            outputs = {"pixels": pixels, "vit": vit, "ln_vision": ln, "qformer": queries, "code_vectors": code_vectors,
                       "ids": ids, "embedding": model.get_codebook_entry(ids),
                       "random_ids": random_ids, "random_embedding": model.get_codebook_entry(random_ids)}
            probes = {}
            for name, module in model.named_modules():
                if isinstance(module, torch.nn.LayerNorm):
                    x = torch.randn(2, 5, module.normalized_shape[0], generator=g) * module.eps ** 0.5
                    outputs[f"ln_probe_in/{name}"] = x
                    outputs[f"ln_probe_out/{name}"] = module(x)
                    probes[name] = module.eps
        assert len(set(ids.flatten().tolist())) > 15, "ids do not depend on the input"
        keys = {k: list(v.shape) for k, v in model.state_dict().items()}
        np.savez_compressed(OUT / "outputs.npz", **{k: v.detach().numpy() for k, v in outputs.items()})
        (OUT / "seed_config.json").write_text(json.dumps({
            "what": f"mio_eval SEED tokenizer settings for the parity fixture written by the original code ({REPO}@{COMMIT}, "
                    "scripts/reference/seed_fixture.py)",
            "config": OUR_CONFIG, "layer_norms": probes, "state_dict": keys}, indent=2) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {OUT} ({total} bytes; {len(ids.flatten().unique())} distinct ids of {ids.numel()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
