"""CLIP-I / CLIP-T (GILL ``evals/compute_clip_similarity_vist.py``, kohjingyu/gill @ 4600b71): cosine
vectors on fixed embeddings, the PIL+numpy preprocessing
against open_clip's torchvision transform and transformers' CLIPImageProcessor, and tiny random
CLIP models built offline and loaded through each backend's real loading code."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mio_eval.errors import ConfigError
from mio_eval.metrics.clip_score import (
    CLIPImageSimilarity,
    CLIPTextSimilarity,
    HFClipEncoder,
    OpenClipEncoder,
    clip_image_similarity,
    clip_t_from_cosines,
    clip_text_similarity,
    cosine_rows,
    preprocess_image,
)
from mio_eval.metrics.clip_t import ClipTClamped, ClipTUnclamped, check_clip_t_rule

TINY_OPEN_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def _image(w, h, seed=0, mode="RGB"):
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    # smooth structure on top of noise, so resampling matters
    arr[..., 0] = (np.arange(w)[None, :] * 255 // max(w - 1, 1)).astype(np.uint8)
    image = Image.fromarray(arr, "RGB")
    return image.convert(mode) if mode != "RGB" else image


class FixedEncoder:
    """Returns given embeddings (keyed by image size / text) — the metric math without a model."""

    model_id = "fixed"

    def __init__(self, images, texts=None):
        self.images, self.texts = images, texts or {}

    def encode_images(self, images):
        return np.array([self.images[im.size] for im in images], dtype=np.float64)

    def encode_texts(self, texts):
        return np.array([self.texts[t] for t in texts], dtype=np.float64)

    def provenance(self):
        return {"backend": "fixed"}


# --- vectors (GILL's cosine) ---------------------------------------------------------------------


def test_cosine_vectors_on_fixed_embeddings():
    assert cosine_rows(np.array([[1.0, 0.0]]), np.array([[0.6, 0.8]]))[0] == pytest.approx(0.6)
    # identical -> 1.0 (x100 = 100); scale invariance
    assert cosine_rows(np.array([[3.0, 4.0]]), np.array([[0.3, 0.4]]))[0] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        cosine_rows(np.zeros((1, 2)), np.ones((1, 2)))


def test_clip_t_variants():
    assert clip_t_from_cosines([0.31]) == [pytest.approx(31.0)]
    assert clip_t_from_cosines([-0.05]) == [pytest.approx(-5.0)]  # MME-Unify / GILL style: unclamped
    assert clip_t_from_cosines([-0.05], variant="torchmetrics") == [0.0]  # torchmetrics: clamped
    with pytest.raises(ValueError):
        clip_t_from_cosines([0.1], variant="hessel")
    # The same cosines under the two rules a task selects by _target_ (recorded names unchanged).
    assert ClipTUnclamped()([0.31, -0.05]) == [pytest.approx(31.0), pytest.approx(-5.0)]
    assert ClipTClamped()([0.31, -0.05]) == [pytest.approx(31.0), 0.0]
    assert (ClipTUnclamped.name, ClipTClamped.name) == ("mme_unify", "torchmetrics")
    with pytest.raises(ConfigError, match=r"^task.clip_t_variant must be a CLIP-T rule given by _target_ .*"
                                          r"task.clip_t_variant._target_=mio_eval.metrics.clip_t.ClipTClamped\), "
                                          r"got 'torchmetrics'$"):
        check_clip_t_rule("torchmetrics")


def test_clip_i_and_t_functions_and_shells_on_fixed_embeddings():
    a, b = _image(8, 8), _image(9, 9)
    enc = FixedEncoder({(8, 8): [1.0, 0.0], (9, 9): [0.6, 0.8]}, {"cat": [0.6, 0.8], "dog": [-0.05, 0.99875]})
    assert clip_image_similarity([a, a], [b, a], enc) == [pytest.approx(60.0), pytest.approx(100.0)]
    assert clip_text_similarity([b], ["cat"], enc) == [pytest.approx(100.0)]
    metric = CLIPImageSimilarity(enc)
    metric.update([a], [b])
    metric.update([a], [a])  # batch-split inputs accumulate
    result = metric.compute()
    assert result.value == pytest.approx(0.8) and result.scale == 100 and result.n == 2
    assert result.extra["model"] == "fixed" and result.variant == "cosine_unclamped"
    clamped = CLIPTextSimilarity(enc, variant="torchmetrics")
    clamped.update([a], ["dog"])
    raw = CLIPTextSimilarity(enc)
    raw.update([a], ["dog"])
    assert clamped.compute().value == 0.0 and raw.compute().value == pytest.approx(-0.05)
    assert raw.compute().variant == "mme_unify" and clamped.compute().variant == "torchmetrics"
    assert CLIPImageSimilarity(enc).compute().value is None


# --- preprocessing --------------------------------------------------------------------------------

SIZES = [(224, 224), (300, 200), (201, 333), (640, 481), (50, 40), (227, 400), (1000, 229)]


@pytest.mark.parametrize("w,h", SIZES)
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_preprocess_equals_open_clip_torchvision_transform(w, h, mode):
    pytest.importorskip("torchvision")
    from open_clip.transform import image_transform

    transform = image_transform(224, is_train=False)
    image = _image(w, h, seed=w * h, mode=mode)
    ours = preprocess_image(image)
    theirs = transform(image).numpy()
    assert ours.shape == theirs.shape == (3, 224, 224)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("w,h", SIZES)
def test_preprocess_hf_rounding_equals_clip_image_processor(w, h):
    from transformers import CLIPImageProcessor

    processor = CLIPImageProcessor()  # the defaults are openai/clip-vit-*'s: 224, bicubic, crop 224
    image = _image(w, h, seed=w + h)
    theirs = processor(images=image, return_tensors="np")["pixel_values"][0]
    np.testing.assert_allclose(preprocess_image(image, crop_rounding="hf"), theirs, rtol=0, atol=1e-5)


def test_crop_rounding_rules_differ_where_expected():
    # resized long side 227 (h - crop = 3): torchvision offset round(1.5)=2, transformers 3//2=1
    image = _image(224, 227, seed=1)
    assert not np.allclose(preprocess_image(image), preprocess_image(image, crop_rounding="hf"))
    square = _image(224, 224, seed=1)
    np.testing.assert_array_equal(preprocess_image(square), preprocess_image(square, crop_rounding="hf"))


# --- tiny random models through the real loading code --------------------------------------------


@pytest.fixture(scope="module")
def tiny_open_clip(tmp_path_factory):
    import open_clip
    import torch

    root = tmp_path_factory.mktemp("open_clip")
    config = root / "configs" / "mio-tiny-clip.json"
    config.parent.mkdir()
    config.write_text(json.dumps(TINY_OPEN_CLIP))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model = open_clip.create_model("mio-tiny-clip")
    weights = root / "tiny.pt"
    torch.save(model.state_dict(), weights)
    return {"arch": "mio-tiny-clip", "pretrained": str(weights), "model_config": str(config), "model": model}


@pytest.fixture(scope="module")
def tiny_hf_clip(tmp_path_factory):
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    root = tmp_path_factory.mktemp("hf_clip")
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = {tok: i for i, tok in enumerate(["<|startoftext|>", "<|endoftext|>", *letters, *(x + "</w>" for x in letters)])}
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"))
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=224, patch_size=32),
        projection_dim=16,
    )
    torch.manual_seed(0)
    path = root / "tiny-clip"
    CLIPModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    CLIPImageProcessor().save_pretrained(path)
    return str(path)


def test_open_clip_backend_loads_local_file_and_matches_direct_model(tiny_open_clip):
    import torch

    enc = OpenClipEncoder(arch=tiny_open_clip["arch"], pretrained=tiny_open_clip["pretrained"],
                          model_config=tiny_open_clip["model_config"])
    assert enc._model is None  # construction is cheap
    images = [_image(64, 48, seed=3), _image(40, 90, seed=4)]
    feats = enc.encode_images(images)
    assert feats.shape == (2, 16)
    # our preprocessing fed to the model == open_clip's own preprocess fed to the same weights
    model = tiny_open_clip["model"].eval()
    with torch.no_grad():
        direct = model.encode_image(torch.stack([enc.transform(im) for im in images])).numpy()
    np.testing.assert_allclose(feats, direct, rtol=1e-4, atol=1e-5)
    texts = enc.encode_texts(["a photo of a cat", "x " * 200])  # over-long text is truncated, not an error
    assert texts.shape == (2, 16)
    prov = enc.provenance()
    assert prov["arch"] == "mio-tiny-clip" and prov["backend"] == "open_clip" and "logit_scale" in prov


def test_hf_backend_loads_local_dir_and_matches_clip_processor(tiny_hf_clip):
    import torch
    from transformers import CLIPModel, CLIPProcessor

    enc = HFClipEncoder(path=tiny_hf_clip)
    images = [_image(300, 227, seed=5), _image(224, 224, seed=6)]
    feats = enc.encode_images(images)
    model = CLIPModel.from_pretrained(tiny_hf_clip).eval()
    processor = CLIPProcessor.from_pretrained(tiny_hf_clip)
    with torch.no_grad():
        inputs = processor(images=images, text=["a cat", "dog"], return_tensors="pt", padding=True)
        out = model(**inputs)
    np.testing.assert_allclose(feats, out.image_embeds.numpy() * np.linalg.norm(feats, axis=1, keepdims=True),
                               rtol=1e-4, atol=1e-5)
    # CLIP-T as MME-Unify reads it: logits_per_image = logit_scale * cos; ours = 100 * cos
    ours = clip_text_similarity(images, ["a cat", "dog"], enc)
    scale = model.logit_scale.exp().item()
    expected = [out.logits_per_image[i, i].item() / scale * 100 for i in range(2)]
    assert ours == pytest.approx(expected, rel=1e-4, abs=1e-4)
    assert enc.provenance()["model_id"] == "hf:tiny-clip"


def test_identical_images_score_clip_i_100_with_both_backends(tiny_open_clip, tiny_hf_clip, tmp_path):
    image = _image(120, 80, seed=9)
    image.save(tmp_path / "gt.png")
    for enc in (HFClipEncoder(path=tiny_hf_clip),
                OpenClipEncoder(arch=tiny_open_clip["arch"], pretrained=tiny_open_clip["pretrained"],
                                model_config=tiny_open_clip["model_config"])):
        metric = CLIPImageSimilarity(enc)
        metric.update([tmp_path / "gt.png"], [image])  # a path and a PIL image
        result = metric.compute()
        assert result.value * result.scale == pytest.approx(100.0, abs=1e-4)
        assert result.extra["model"] == enc.model_id


def test_clip_encoding_passes_show_a_progress_bar(tiny_open_clip, tiny_hf_clip, capsys, monkeypatch):
    from mio_eval import progress

    monkeypatch.delenv("MIO_EVAL_PROGRESS", raising=False)
    monkeypatch.setattr(progress, "DELAY_S", 0.0)  # every pass counts as long
    images = [_image(64, 48, seed=1), _image(48, 64, seed=2), _image(32, 32, seed=3)]
    for enc in (HFClipEncoder(path=tiny_hf_clip, batch_size=2),
                OpenClipEncoder(arch=tiny_open_clip["arch"], pretrained=tiny_open_clip["pretrained"],
                                model_config=tiny_open_clip["model_config"], batch_size=2)):
        enc.encode_images(images)
        enc.encode_texts(["a cat", "a dog"])
        err = capsys.readouterr().err
        assert "scoring: CLIP images" in err and "3/3" in err and "scoring: CLIP texts" in err and "2/2" in err
        progress.set_enabled(False)
        try:
            assert enc.encode_images(images).shape[0] == 3
        finally:
            progress.set_enabled(True)
        assert capsys.readouterr().err == ""


def test_missing_checkpoint_is_a_config_error(tmp_path):
    from mio_eval.errors import ConfigError

    with pytest.raises(ConfigError, match="not found"):
        OpenClipEncoder(arch="ViT-B-32", pretrained=str(tmp_path / "nope.pt")).load()
    with pytest.raises(ConfigError, match="not found"):
        HFClipEncoder(path=str(tmp_path / "nope")).load()
