"""The native SEED image tokenizer (mio_eval.models.mio.seed): a tiny model with the real
architecture, saved in the released file layout (seed_quantizer.pt + eva_vit_g.pth) and loaded
through the real loading code; key names and shapes at the real config against the key list
extracted from the original SEED modules (tests/data/seed_tokenizer_keys.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from mio_eval.errors import ConfigError  # noqa: E402
from mio_eval.models.mio.codecs import (  # noqa: E402
    SEED_DIR, UNCLIP_DIR, ImageCodec, ImageCodecError, SeedCodec, UnavailableImageCodec, load_image_codec)
from mio_eval.models.mio.seed import (  # noqa: E402
    EVA_VIT_FILE, SEED_QUANTIZER_FILE, TINY_SEED_CONFIG, SeedConfig, SeedImageTokenizer, build_tiny_seed,
    load_seed_tokenizer, save_seed_checkpoint, seed_transform)

KEYS = Path(__file__).resolve().parent / "data" / "seed_tokenizer_keys.json"


def _image(seed: int, size=(200, 160)):
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size[1], 0:size[0]]
    base = np.stack([xx * (seed + 1), yy * 2, xx + yy * seed], -1) % 256
    noise = rng.integers(0, 64, base.shape)
    return Image.fromarray(((base + noise) % 256).astype(np.uint8))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A MIO-like checkpoint directory with only the image parts: seed-tokenizer-2/ (tiny SEED
    in the released layout) and a tiny stable-diffusion-2-1-unclip/ pipeline (32-d embeddings)."""
    from mio_eval.models.mio.tiny import _unclip

    root = tmp_path_factory.mktemp("seed_ckpt")
    build_tiny_seed(root / SEED_DIR)
    _unclip(root, TINY_SEED_CONFIG.image_features_dim)
    return root


@pytest.fixture(scope="module")
def codec(checkpoint):
    return SeedCodec(checkpoint)


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


# --- key names and shapes: the real config against the original modules' key list -------------

def test_real_config_keys_and_shapes_match_the_original_modules():
    expected = json.loads(KEYS.read_text(encoding="utf-8"))
    with torch.device("meta"):  # 1.15 B parameters: shapes only
        model = SeedImageTokenizer(SeedConfig())
    vit = {k: list(v.shape) for k, v in model.visual_encoder.state_dict().items()}
    rest = {k: list(v.shape) for k, v in model.quantizer_state_dict().items()}
    assert (len(vit), len(rest)) == (511, 370) == (expected["counts"]["visual_encoder"], expected["counts"]["quantizer"])
    assert vit == expected["visual_encoder"]  # eva_vit_g.pth keys (unprefixed), same order
    assert set(rest) == set(expected["quantizer"])
    assert {k: rest[k] for k in expected["quantizer"]} == expected["quantizer"]
    assert sum(v.numel() for v in model.state_dict().values()) > 1.1e9


def test_tiny_config_is_the_same_architecture():
    """Same module tree at tiny sizes: the key names equal the real ones up to the layer counts."""
    import re

    def shape_free(keys):
        return {re.sub(r"\.\d+\.", ".N.", k) for k in keys}

    tiny = SeedImageTokenizer(TINY_SEED_CONFIG)
    expected = json.loads(KEYS.read_text(encoding="utf-8"))
    assert shape_free(tiny.visual_encoder.state_dict()) == shape_free(expected["visual_encoder"])
    assert shape_free(tiny.quantizer_state_dict()) == shape_free(expected["quantizer"])
    assert tiny.quantize.embedding.weight.shape == (8192, 32) and tiny.query_tokens.shape[1] == 32


# --- encode ------------------------------------------------------------------------------------

def test_codec_protocol_and_load_image_codec_picks_the_native_seed(checkpoint, codec):
    assert isinstance(codec, ImageCodec)
    assert (codec.n_codes, codec.codebook_size) == (32, 8192)
    picked = load_image_codec(checkpoint)
    assert isinstance(picked, SeedCodec)
    prov = picked.provenance()
    assert prov["architecture"] == "tiny" and prov["ignored_keys"] == {"quantizer": 0, "vit": 0}
    assert set(prov["sha256"]) == {SEED_QUANTIZER_FILE, EVA_VIT_FILE}


def test_encode_gives_32_ids_deterministic_and_batch_independent(checkpoint, codec):
    images = [_image(k, size) for k, size in enumerate([(200, 160), (224, 224), (97, 411)])]
    codes = [codec.encode(image) for image in images]
    for row in codes:
        assert len(row) == 32 and all(isinstance(c, int) and 0 <= c < 8192 for c in row)
    assert len({tuple(row) for row in codes}) > 1  # the image matters
    assert [codec.encode(image) for image in images] == codes
    assert codec.encode_batch(images) == codes
    assert codec.encode_batch(images[::-1]) == codes[::-1]
    assert SeedCodec(checkpoint).encode(images[0]) == codes[0]  # a fresh load: same weights, same ids


def test_model_encode_matches_the_loaded_state_dicts(checkpoint):
    """Loading goes through seed_quantizer.pt + eva_vit_g.pth; the loaded model equals the files."""
    model, info = load_seed_tokenizer(checkpoint / SEED_DIR)
    quantizer = torch.load(checkpoint / SEED_DIR / SEED_QUANTIZER_FILE, weights_only=True)
    vit = torch.load(checkpoint / SEED_DIR / EVA_VIT_FILE, weights_only=True)
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in quantizer.items())
    assert all(torch.equal(state[f"visual_encoder.{k}"], v) for k, v in vit.items())
    assert len(state) == len(quantizer) + len(vit)
    assert info["config"] == TINY_SEED_CONFIG.to_dict()
    pixels = torch.from_numpy(np.stack([seed_transform(_image(1)), seed_transform(_image(2))]))
    ids, features = model.encode(pixels, return_features=True)
    assert ids.shape == (2, 32) and ids.dtype == torch.long
    assert features["ln_vision"].shape == (2, 257, TINY_SEED_CONFIG.vit_width)
    assert features["qformer"].shape == (2, 32, TINY_SEED_CONFIG.qformer_hidden)
    # the Q-Former is causal over its 32 queries: query 0 cannot see the others
    changed = model.query_tokens.detach().clone()
    changed[0, 1:] += 1.0
    with torch.no_grad():
        model.query_tokens.copy_(changed)
    _, after = model.encode(pixels, return_features=True)
    assert torch.allclose(after["qformer"][:, 0], features["qformer"][:, 0], atol=1e-6)
    assert not torch.allclose(after["qformer"][:, 1:], features["qformer"][:, 1:])


def test_preprocessing_resizes_without_keeping_aspect_and_normalises():
    array = seed_transform(_image(0, (300, 100)))
    assert array.shape == (3, 224, 224) and array.dtype == np.float32
    bicubic = seed_transform(_image(0, (300, 100)), resize="bicubic")
    assert not np.array_equal(array, bicubic)
    with pytest.raises(ConfigError):
        seed_transform(_image(0), resize="nearest")


# --- decode ------------------------------------------------------------------------------------

def test_decode_gives_an_image_and_checks_the_codes(codec):
    from PIL import Image

    codes = codec.encode(_image(3))
    image = codec.decode(codes)
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (16, 16)
    assert np.array_equal(np.asarray(codec.decode(codes)), np.asarray(image))  # seeded latents
    assert codec.embedding(codes).shape == (1, TINY_SEED_CONFIG.image_features_dim)
    with pytest.raises(ImageCodecError, match="exactly 32"):
        codec.decode(codes[:31])
    with pytest.raises(ImageCodecError, match="out of range"):
        codec.decode([8192] * 32)


# --- loading policy: the released files' quirks, missing files, bad tensors -------------------

@pytest.fixture()
def tiny_files(tmp_path):
    folder = build_tiny_seed(tmp_path / SEED_DIR, num_inference_steps=None)
    return folder


def test_released_file_quirks_are_handled(tiny_files):
    """eva_vit_g.pth has one block more (BLIP-2 keeps 39 of 40) and seed_quantizer.pt carries
    tensors the network does not use (146 in the released file): dropped / ignored, counted."""
    reference, _ = load_seed_tokenizer(tiny_files)
    vit = torch.load(tiny_files / EVA_VIT_FILE, weights_only=True)
    depth = TINY_SEED_CONFIG.vit_depth
    vit.update({k.replace("blocks.0.", f"blocks.{depth}."): v.clone() for k, v in vit.items() if k.startswith("blocks.0.")})
    torch.save(vit, tiny_files / EVA_VIT_FILE)
    quantizer = torch.load(tiny_files / SEED_QUANTIZER_FILE, weights_only=True)
    quantizer["Qformer.cls.predictions.bias"] = torch.zeros(7)
    quantizer["Qformer.bert.encoder.layer.0.output.dense.weight"] = torch.zeros(3, 3)
    torch.save(quantizer, tiny_files / SEED_QUANTIZER_FILE)
    model, info = load_seed_tokenizer(tiny_files)
    assert info["dropped_vit_blocks"] == [depth] and info["ignored_keys"] == {"quantizer": 2, "vit": 13}
    pixels = torch.from_numpy(seed_transform(_image(4)))[None]
    assert torch.equal(model.encode(pixels), reference.encode(pixels))


def test_position_table_of_another_grid_is_resized(tiny_files):
    vit = torch.load(tiny_files / EVA_VIT_FILE, weights_only=True)
    vit["pos_embed"] = torch.randn(1, 1 + 20 * 20, TINY_SEED_CONFIG.vit_width)
    torch.save(vit, tiny_files / EVA_VIT_FILE)
    model, _ = load_seed_tokenizer(tiny_files)
    assert model.visual_encoder.pos_embed.shape == (1, 257, TINY_SEED_CONFIG.vit_width)
    assert torch.equal(model.visual_encoder.pos_embed[0, 0], vit["pos_embed"][0, 0])


def test_safetensors_files_load_the_same(tiny_files, tmp_path):
    model, _ = load_seed_tokenizer(tiny_files)
    save_seed_checkpoint(model, tmp_path / "st", safetensors=True)
    assert sorted(p.name for p in (tmp_path / "st").iterdir()) == [
        "eva_vit_g.safetensors", "seed_config.json", "seed_quantizer.safetensors"]
    again, _ = load_seed_tokenizer(tmp_path / "st")
    pixels = torch.from_numpy(seed_transform(_image(5)))[None]
    assert torch.equal(again.encode(pixels), model.encode(pixels))


def test_missing_files_are_one_clear_config_error(tmp_path, tiny_files):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError) as exc:
        load_seed_tokenizer(empty)
    assert SEED_QUANTIZER_FILE in _one_line(exc) and "missing" in str(exc.value)
    (tiny_files / EVA_VIT_FILE).unlink()
    with pytest.raises(ConfigError) as exc:
        load_seed_tokenizer(tiny_files)
    assert EVA_VIT_FILE in _one_line(exc) and "missing" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        SeedCodec(empty)  # a checkpoint directory without seed-tokenizer-2/
    assert SEED_QUANTIZER_FILE in _one_line(exc)


def test_a_checkpoint_without_eva_vit_gets_an_unavailable_codec(tmp_path):
    build_tiny_seed(tmp_path / SEED_DIR)
    (tmp_path / SEED_DIR / EVA_VIT_FILE).unlink()
    codec = load_image_codec(tmp_path)
    assert isinstance(codec, UnavailableImageCodec) and EVA_VIT_FILE in codec.reason
    with pytest.raises(ImageCodecError, match=EVA_VIT_FILE):
        codec.encode(_image(0))


def test_missing_or_misshapen_tensors_and_unsafe_pickles_are_config_errors(tiny_files):
    quantizer = torch.load(tiny_files / SEED_QUANTIZER_FILE, weights_only=True)
    del quantizer["quantize.embedding.weight"]
    torch.save(quantizer, tiny_files / SEED_QUANTIZER_FILE)
    with pytest.raises(ConfigError) as exc:
        load_seed_tokenizer(tiny_files)
    assert "quantize.embedding.weight" in _one_line(exc) and "missing" in str(exc.value)

    quantizer["quantize.embedding.weight"] = torch.zeros(8192, 16)
    torch.save(quantizer, tiny_files / SEED_QUANTIZER_FILE)
    with pytest.raises(ConfigError) as exc:
        load_seed_tokenizer(tiny_files)
    assert "(8192, 16)" in _one_line(exc) and "(8192, 32)" in str(exc.value)

    torch.save({"weights": Path("not a tensor")}, tiny_files / SEED_QUANTIZER_FILE)  # weights_only refuses it
    with pytest.raises(ConfigError) as exc:
        load_seed_tokenizer(tiny_files)
    assert "cannot read" in _one_line(exc)


def test_unknown_config_keys_are_rejected(tiny_files):
    path = tiny_files / "seed_config.json"
    payload = json.loads(path.read_text(encoding="utf-8"))
    payload["config"]["vit_widht"] = 3
    path.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(ConfigError, match="vit_widht"):
        load_seed_tokenizer(tiny_files)


def test_unclip_dir_is_loaded_lazily(tmp_path):
    build_tiny_seed(tmp_path / SEED_DIR)
    codec = SeedCodec(tmp_path)  # no stable-diffusion-2-1-unclip/: encoding still works
    codes = codec.encode(_image(6))
    assert len(codes) == 32 and codec._pipeline is None
    with pytest.raises(ImageCodecError, match=UNCLIP_DIR):
        codec.decode(codes)


def test_the_tiny_mio_checkpoint_carries_a_tiny_real_architecture_seed(tmp_path):
    from mio_eval.models.mio.tiny import _tiny_seed

    _tiny_seed(tmp_path, 32)
    assert sorted(p.name for p in (tmp_path / SEED_DIR).iterdir()) == [EVA_VIT_FILE, "seed_config.json",
                                                                      SEED_QUANTIZER_FILE]
    codec = load_image_codec(tmp_path)
    assert isinstance(codec, SeedCodec) and codec.num_inference_steps == 2
    assert codec.config.image_features_dim == 32 and len(codec.encode(_image(7))) == 32


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_runs_on_cpu(checkpoint, dtype):
    """MIO runs SEED in fp16 (``ln_vision`` normalises in fp32 whatever the weights' dtype)."""
    codec = SeedCodec(checkpoint, dtype=dtype)
    codes = codec.encode(_image(8))
    assert len(codes) == 32 and all(0 <= c < 8192 for c in codes)
    assert codec.embedding(codes).dtype == getattr(torch, dtype)
