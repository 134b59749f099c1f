"""The native SEED tokenizer against the original SEED code's own outputs (issue #14).

``tests/reference/seed/`` was written by ``scripts/reference/seed_fixture.py``, which builds the
original ``Blip2QformerQuantizer`` (AILab-CVC/SEED @93b3cf4 ``models/seed_qformer``) at a small
config with seeded random weights and records its outputs at every stage. The weights are the
original's ``state_dict()`` in the released file layout, loaded here by our real loader
(``load_seed_tokenizer``). Ours must give the same ids exactly and every feature within 1e-6 (fp32);
every LayerNorm must also match on a probe whose variance is its eps, so a changed eps fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from safetensors.torch import load_file  # noqa: E402

from mio_eval.models.mio.seed import load_seed_tokenizer, seed_transform  # noqa: E402

FIXTURE = Path(__file__).parent / "reference" / "seed"
ATOL = 1e-6


@pytest.fixture(scope="module")
def reference():
    model, info = load_seed_tokenizer(FIXTURE)
    return model, info, load_file(str(FIXTURE / "outputs.safetensors"))


def _close(ours, theirs, what):
    diff = (ours.float() - theirs.float()).abs().max().item()
    assert ours.shape == theirs.shape and diff <= ATOL, f"{what}: max abs difference {diff:g} (shape {tuple(ours.shape)})"


def test_fixture_is_small_and_loads_strictly(reference):
    model, info, _ = reference
    assert sum(p.stat().st_size for p in FIXTURE.iterdir()) < 3_000_000
    # Every tensor of the original's state dict has a place in ours, and nothing is left over.
    assert info["ignored_keys"] == {"quantizer": 0, "vit": 0}


def test_preprocessing_equals_seed_get_transform(reference):
    _, info, ref = reference
    size = info["config"]["image_size"]
    from PIL import Image

    for i in range(3):
        pixels = seed_transform(Image.open(FIXTURE / f"image_{i}.png"), size=size, resize="bilinear")
        _close(torch.from_numpy(np.ascontiguousarray(pixels)), ref["pixels"][i], f"pixels of image_{i}.png")


@pytest.mark.parametrize("batched", [True, False], ids=["batch", "one_by_one"])
def test_every_stage_equals_the_original(reference, batched):
    model, _, ref = reference
    pixels = ref["pixels"]
    chunks = [pixels] if batched else [pixels[i:i + 1] for i in range(len(pixels))]
    parts = [model.encode(chunk, return_features=True) for chunk in chunks]
    ids = torch.cat([p[0] for p in parts])
    feats = {k: torch.cat([p[1][k] for p in parts]) for k in parts[0][1]}
    _close(feats["vit"], ref["vit"], "EVA-ViT output")
    _close(feats["ln_vision"], ref["ln_vision"], "ln_vision")
    _close(feats["qformer"], ref["qformer"], "Q-Former last hidden state")
    _close(feats["code_vectors"], ref["code_vectors"], "encode_task_layer")
    assert torch.equal(ids, ref["ids"]), "quantizer codes differ from get_codebook_indices"
    assert len(ids.unique()) > 10  # the codes depend on the image
    _close(model.image_embedding(ref["ids"]), ref["embedding"], "decoded unCLIP embedding")
    _close(model.image_embedding(ref["random_ids"]), ref["random_embedding"], "embedding of random ids")


def test_every_layer_norm_equals_the_original_at_its_eps(reference):
    model, _, ref = reference
    expected = json.loads((FIXTURE / "seed_config.json").read_text())["layer_norms"]
    ours = {name for name, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)}
    assert ours == set(expected), f"LayerNorm modules differ: {sorted(ours ^ set(expected))}"
    with torch.no_grad():
        for name in sorted(expected):
            module = model.get_submodule(name)
            _close(module(ref[f"ln_probe_in/{name}"]), ref[f"ln_probe_out/{name}"], f"{name} (eps {expected[name]:g})")
