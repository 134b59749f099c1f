"""The native SEED tokenizer against the original SEED code's own outputs (issue #14).

``tests/reference/seed/`` was written by ``scripts/reference/seed_fixture.py``, which builds the
original ``Blip2QformerQuantizer`` (AILab-CVC/SEED @93b3cf4 ``models/seed_qformer``) at a small
config, loads weights drawn by ``tests/reference/seed_weights.py`` and records its outputs at every
stage (``outputs.npz``). No weights are committed: the test draws the same tensors for the
original's state-dict keys (recorded in ``seed_config.json``; ours must have exactly those), writes
them in the released file layout and loads them with our real loader (``load_seed_tokenizer``). Ours must give the same ids exactly and every feature within 1e-6 (fp32);
every LayerNorm must also match on a probe whose variance is its eps, so a changed eps fails.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from safetensors.torch import save_file  # noqa: E402

from mio_eval.models.mio.seed import load_seed_tokenizer, seed_transform  # noqa: E402
from mio_eval.models.mio.seed.config import SeedConfig  # noqa: E402
from mio_eval.models.mio.seed.network import SeedImageTokenizer  # noqa: E402

FIXTURE = Path(__file__).parent / "reference" / "seed"
sys.path.insert(0, str(FIXTURE.parent))
from seed_weights import draw_state  # noqa: E402
ATOL = 1e-6


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """The fixture's weights in the released layout: drawn for the original's keys, which must be
    exactly the keys (and shapes) of our network's released-layout state dict."""
    recorded = json.loads((FIXTURE / "seed_config.json").read_text())
    ours = SeedImageTokenizer(SeedConfig(**recorded["config"]))
    state = {**ours.quantizer_state_dict(),
             **{f"visual_encoder.{k}": v for k, v in ours.visual_encoder.state_dict().items()}}
    assert {k: list(v.shape) for k, v in state.items()} == recorded["state_dict"]
    state = draw_state(state)
    directory = tmp_path_factory.mktemp("seed_fixture")
    save_file({k: v.contiguous() for k, v in state.items() if not k.startswith("visual_encoder.")},
              str(directory / "seed_quantizer.safetensors"))
    save_file({k[len("visual_encoder."):]: v.contiguous() for k, v in state.items() if k.startswith("visual_encoder.")},
              str(directory / "eva_vit_g.safetensors"))
    (directory / "seed_config.json").write_text((FIXTURE / "seed_config.json").read_text())
    return directory


@pytest.fixture(scope="module")
def reference(checkpoint):
    model, info = load_seed_tokenizer(checkpoint)
    with np.load(FIXTURE / "outputs.npz") as outputs:
        return model, info, {k: torch.from_numpy(outputs[k]) for k in outputs.files}


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
