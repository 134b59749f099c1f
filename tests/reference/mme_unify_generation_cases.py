"""Deterministic inputs of the MME-Unify generation / unify parity fixture
(``tests/reference/mme_unify_generation/reference.json``).

The same builder feeds the official scorers (``scripts/reference/mme_unify_generation_fixture.py``)
and ours (``tests/test_parity_mme_unify_generation.py``):

* **tiny models** with weights drawn from numpy's PCG64 (stable across numpy / torch versions, unlike
  ``torch.manual_seed`` initialisers): a transformers ``CLIPModel`` (ViT 224 px / patch 32, width 32,
  projection 16, ``logit_scale = ln 100`` as the released OpenAI checkpoints; byte-level vocabulary
  of CLIP's 512 single-character tokens, no merges) saved with ``save_pretrained`` beside its
  tokenizer and ``CLIPImageProcessor``; torchvision AlexNet (LPIPS trunk) and ResNet-50 (FVD
  features) state dicts. The official side loads them in place of the hub checkpoints, ours through
  its own loading code; ``weights_digest`` pins them.
* **a dataset** in MME-Unify's on-disk layout (``Unify_Dataset/...`` JSON + media under one root)
  for the generation subtasks (FIR / TIE / TIG images; CIVG / TVG / VP H.264 videos) and the unify
  tasks (IEE / CSQ / AL / SD / VCoT), and the **model answers**: generated images / videos and raw
  text replies, adversarial where the scorers' rules differ (a resize, a reply with extra words, a
  lower-case letter, no letter, a missing image, an 80-word prompt of one-letter words, a TVG item
  without a reference video, a VCoT walk whose last step has no image).

``build(root)`` writes everything under ``root`` and returns the answer key (sample id -> text /
image / video, the oracle model's format) and the per-item official inputs.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SEED", "build", "official_unify_variants", "tiny_clip", "alexnet_state", "resnet50_state", "weights_digest", "LONG_PROMPT",
           "KEYFRAME_VIDEOS"]

SEED = 20261202
# 80 one-letter words: 82 tokens with the byte-level vocabulary. The video scorer keeps the first 70
# words (72 tokens), the image scorer truncates at 77 tokens.
LONG_PROMPT = " ".join("abcdefghij"[i % 10] for i in range(80))
UNICODE_PROMPT = "Make the café sign say “naïve” — 東京 😀, twice!"


def _rng(tag: str) -> np.random.Generator:
    return np.random.default_rng([SEED, int(hashlib.sha256(tag.encode()).hexdigest()[:8], 16)])


# --- tiny models ----------------------------------------------------------------------------------


def _fill(state: dict, tag: str, *, scale_for=None) -> dict:
    """Every float tensor of ``state`` redrawn from PCG64: conv / linear weights N(0, sqrt(2 / fan_in)),
    norms' weights 1 and biases 0, other biases N(0, 0.01), BN running stats (0, 1)."""
    import torch

    rng = _rng(tag)
    out = {}
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            out[name] = torch.zeros(tuple(tensor.shape), dtype=tensor.dtype)
            continue
        shape = tuple(tensor.shape)
        if name.endswith("running_mean"):
            value = np.zeros(shape)
        elif name.endswith("running_var"):
            value = np.ones(shape)
        elif (".bn" in name or "downsample.1" in name or name.startswith("bn") or "norm" in name) and name.endswith("weight"):
            value = np.full(shape, scale_for(name) if scale_for else 1.0)
        elif name.endswith("bias") or len(shape) < 2:
            value = rng.normal(0.0, 0.01, shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            value = rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
        out[name] = torch.from_numpy(np.asarray(value, dtype=np.float32))
    return out


def _meta_state(builder) -> dict:
    import torch

    with torch.device("meta"):  # shapes only: no initialisation cost
        return builder(weights=None).state_dict()


def alexnet_state(path: Path) -> Path:
    """A torchvision AlexNet state dict holding the ``features.*`` tensors (all LPIPS uses)."""
    import torch
    import torchvision

    path = Path(path)
    state = {k: v for k, v in _meta_state(torchvision.models.alexnet).items() if k.startswith("features.")}
    torch.save(_fill(state, "alexnet"), path)
    return path


def resnet50_state(path: Path) -> Path:
    """A torchvision ResNet-50 state dict; each residual branch's last BN scaled by 0.2 so the random
    network's activations stay bounded through its 16 blocks."""
    import torch
    import torchvision

    path = Path(path)
    state = _meta_state(torchvision.models.resnet50)
    torch.save(_fill(state, "resnet50", scale_for=lambda n: 0.2 if n.endswith("bn3.weight") else 1.0), path)
    return path


def tiny_clip(path: Path) -> Path:
    """A transformers CLIPModel folder (model, byte-level tokenizer, image processor)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"))
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=vocab["<|startoftext|>"],
                         eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"]),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=224, patch_size=32),
        projection_dim=16,
    )
    model = CLIPModel(config)
    state = _fill(model.state_dict(), "clip")
    state["logit_scale"] = torch.tensor(math.log(100.0))
    for name in state:  # embeddings and transformer weights at CLIP's own small scale
        if name.endswith("embedding.weight") or name.endswith("class_embedding"):
            state[name] = state[name] * 0.05
    model.load_state_dict(state)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    CLIPImageProcessor().save_pretrained(path)
    return path


def weights_digest(files: list[Path]) -> str:
    """sha256 over the tensors (names, shapes, float32 bytes) of the given checkpoints."""
    import torch
    from safetensors.torch import load_file

    h = hashlib.sha256()
    for f in files:
        state = load_file(str(f)) if str(f).endswith(".safetensors") else torch.load(f, map_location="cpu",
                                                                                  weights_only=True)
        for name in sorted(state):
            t = state[name].contiguous()
            h.update(name.encode() + str(tuple(t.shape)).encode() + t.numpy().tobytes())
    return h.hexdigest()


# --- media ----------------------------------------------------------------------------------------


def _pattern(tag: str, w: int, h: int) -> np.ndarray:
    """A smooth random image (low-frequency noise + stripes), distinct per tag."""
    rng = _rng(tag)
    small = rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), 3)).astype(np.float64)
    from PIL import Image

    big = np.asarray(Image.fromarray(small.astype(np.uint8)).resize((w, h), Image.BILINEAR), np.float64)
    stripes = (np.arange(h)[:, None, None] % rng.integers(3, 9)) == 0
    return np.clip(big + 60 * stripes * rng.choice([-1, 1]), 0, 255).astype(np.uint8)


def _save_png(root: Path, rel: str, array: np.ndarray) -> str:
    from PIL import Image

    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return rel


def _noisy(array: np.ndarray, tag: str, amount: int) -> np.ndarray:
    noise = _rng(tag).integers(-amount, amount + 1, array.shape)
    return np.clip(array.astype(int) + noise, 0, 255).astype(np.uint8)


def write_video(path: Path, frames: list[np.ndarray], *, fps: int = 8) -> Path:
    """H.264 yuv420p MP4 (libx264, crf 0, one thread): PyAV and OpenCV decode it identically."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.options = {"crf": "0", "threads": "1"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _frames(tag: str, n: int, *, size: int = 32, cut_every: int = 0) -> list[np.ndarray]:
    """``n`` frames drifting by one pixel each; ``cut_every`` > 0 switches scene every so many frames."""
    scenes = [_pattern(f"{tag}/scene{k}", size, size) for k in range(max(1, n // max(cut_every, 1) + 1))]
    out = []
    for i in range(n):
        base = scenes[i // cut_every] if cut_every else scenes[0]
        out.append(np.roll(base, i, axis=1))
    return out


# Keyframe selection alone (no features): ours vs the official extract_keyframes, index by index.
KEYFRAME_VIDEOS = {"still": dict(n=20), "cut_every_1": dict(n=20, cut_every=1), "cut_every_2": dict(n=40, cut_every=2),
                   "cut_every_3": dict(n=50, cut_every=3), "few_cuts": dict(n=24, cut_every=6)}


# --- dataset --------------------------------------------------------------------------------------


def _dump(root: Path, rel: str, items: list[dict]) -> None:
    path = root / "Unify_Dataset" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(items, ensure_ascii=False, indent=2), encoding="utf-8")


def _generation(root: Path, out: Path, key: dict, official: dict) -> None:
    items = []

    def img(rel, tag, w, h):
        return _save_png(root, rel, _pattern(tag, w, h))

    def answer(sid, file):
        key[sid] = {"image" if file.endswith(".png") else "video": str(file)} if file else {}

    # FIR: identical (PSNR inf, LPIPS 0), noisy same size, another size (min-size resize)
    fir = [("same", 80, 72, None), ("noisy", 80, 72, (80, 72)), ("resized", 80, 72, (70, 66))]
    for n, (name, w, h, gen_size) in enumerate(fir):
        ref = img(f"Fine-Grained_Image_Reconstruction/ImageNet/{n}.png", f"fir{n}", w, h)
        array = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(root / ref).convert("RGB"))
        if gen_size is None:
            gen = array
        else:
            from PIL import Image

            gen = _noisy(np.asarray(Image.fromarray(array).resize(gen_size, Image.BILINEAR)), f"fir{n}g", 25)
        gen_rel = _save_png(out, f"FIR-{100 + n}.png", gen)
        items.append({"category": "Fine-Grained_Image_Reconstruction", "Text_Prompt": " ", "source": "ImageNet",
                      "subcategory": " ", "data": {"image": ref}, "id": 100 + n})
        answer(f"FIR-{100 + n}", str(out / gen_rel))
    prompts = ["make the sky purple", UNICODE_PROMPT, LONG_PROMPT]
    sizes = [(80, 72), (90, 68), (69, 91)]  # AlexNet (LPIPS) needs >= ~64 px
    for n, (prompt, (w, h)) in enumerate(zip(prompts, sizes)):
        src = img(f"Text-Image_Editing/Emu_Edit/image/{n}.png", f"tie{n}s", 80, 72)
        edited = img(f"Text-Image_Editing/Emu_Edit/edited_image/{n}.png", f"tie{n}e", 80, 72)
        gen_rel = _save_png(out, f"TIE-{200 + n}.png", _pattern(f"tie{n}g", w, h))
        items.append({"category": "Text-Image_Editing", "Text_Prompt": prompt, "source": "Emu_Edit",
                      "subcategory": "style", "data": {"image": src, "edited_image": edited}, "id": 200 + n})
        answer(f"TIE-{200 + n}", str(out / gen_rel))
    for n, (prompt, (w, h)) in enumerate(zip(["a baseball game at dusk", LONG_PROMPT, "Ünïcödé ✓"], sizes[::-1])):
        ref = img(f"Text-Image_Generation/COCO/image/{n}.png", f"tig{n}r", 96, 80)
        gen_rel = _save_png(out, f"TIG-{300 + n}.png", _pattern(f"tig{n}g", w, h))
        items.append({"category": "Text-Image_Generation", "Text_Prompt": prompt, "source": "COCO",
                      "subcategory": " ", "data": {"image": ref}, "id": 300 + n})
        answer(f"TIG-{300 + n}", str(out / gen_rel))
    # skipped by both: a generation error (no answer -> per-sample error) and an empty output
    items.append({"category": "Text-Image_Generation", "Text_Prompt": "failed", "source": "COCO", "subcategory": " ",
                  "data": {"image": img("Text-Image_Generation/COCO/image/9.png", "tig9r", 96, 80)}, "id": 309})
    official["errors"] = {"TIG-309": "generation error"}
    items.append({"category": "Fine-Grained_Image_Reconstruction", "Text_Prompt": " ", "source": "ImageNet",
                  "subcategory": " ", "data": {"image": img("Fine-Grained_Image_Reconstruction/ImageNet/9.png", "fir9",
                                                            80, 72)}, "id": 109})
    key["FIR-109"] = {}

    # videos: 2-3 frames of 32 px (ResNet-50 at 224 px is the cost), references 3-4 frames
    def video(rel, tag, n, **kw):
        write_video(root / rel, _frames(tag, n, **kw))
        return rel

    def gen_video(sid, tag, n, **kw):
        path = write_video(out / f"{sid}.mp4", _frames(tag, n, **kw))
        key[sid] = {"video": str(path)}

    civg = [("a portal opens", 2, "civg0"), (LONG_PROMPT, 3, "civg1")]
    for n, (prompt, frames, tag) in enumerate(civg):
        data = {"image": img(f"Conditional_Image_to_Video_Generation/TIP-I2V/{n}.png", f"{tag}i", 32, 32),
                "video": video(f"Conditional_Image_to_Video_Generation/TIP-I2V-Videos/{n}.mp4", f"{tag}r", 3)}
        items.append({"category": "Conditional_Image_to_Video_Generation", "Text_Prompt": prompt, "source": "TIP-I2V",
                      "subcategory": "Portal", "data": data, "id": 400 + n})
        gen_video(f"CIVG-{400 + n}", f"{tag}g", frames)
    items.append({"category": "Text-to-Video_Generation", "Text_Prompt": "a man explains signs", "source": "MSR-VTT",
                  "subcategory": " ", "data": {"image": video("Text-to-Video_Generation/MSR-VTT_Edited/0.mp4", "tvg0r", 4)},
                  "id": 500})
    gen_video("TVG-500", "tvg0g", 2)
    # 69 of the 200 real TVG items have "data": {} (no reference video)
    items.append({"category": "Text-to-Video_Generation", "Text_Prompt": "no reference video", "source": "MSR-VTT",
                  "subcategory": " ", "data": {}, "id": 501})
    gen_video("TVG-501", "tvg1g", 2)
    for n in range(2):  # the first is the reference itself (distance 0), so the all-equal quirk does not apply
        data = {"image": img(f"Image-to-Video_Generation/Pexel_Videos/Image/{n}.png", f"vp{n}i", 32, 32),
                "video": video(f"Image-to-Video_Generation/Pexel_Videos/Video/{n}.mp4", f"vp{n}r", 3)}
        items.append({"category": "Video prediction", "Text_Prompt": f"A child walking a dog {n}.",
                      "source": "Pexel Videos", "subcategory": " ", "data": data, "id": 600 + n})
        if n == 0:
            key["VP-600"] = {"video": str(root / data["video"])}
        else:
            gen_video("VP-601", "vp1g", 2)
    _dump(root, "Generation/Generation_Unified.json", items)
    for name, spec in KEYFRAME_VIDEOS.items():
        write_video(out / "keyframes" / f"{name}.mp4", _frames(f"kf/{name}", **spec))


def _four(root: Path, prefix: str, keys: list[str], ext: str = ".png") -> dict[str, str]:
    return {k: _save_png(root, f"{prefix}/{k}{ext}", _pattern(f"{prefix}/{k}", 40, 40)) for k in keys}


def _unify(root: Path, out: Path, key: dict) -> None:
    base = "Uinfy_capability"

    def copy(sid, rel, tweak=0):
        array = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(root / rel).convert("RGB"))
        if tweak:
            array = _noisy(array, sid, tweak)
        return str(out / _save_png(out, f"{sid}.png", array))

    # (reply text, image: candidate index to copy | None, noise)
    mcq_replies = [("Answer: B", 0, 0), ("answer: b", 1, 0), ("The answer is (C).", 0, 40), ("", 0, 0),
                   ("A or B", 2, 0), ("Answer: A", None, 0)]
    labels_gold = ["B", "C", "C", "A", "B", "A"]
    for code, rel, sub, keys, ext, extra in [
            ("CSQ", "Common_Sense_Question/Common_Sense_Question.json", "Common_Sense_Question",
             ["image", "fake_image1", "fake_image2", "fake_image3"], ".jpg", {}),
            ("AL", "Auxiliary_Lines/Auxiliary_Lines..json", "Math_Reasoning",
             ["image", "image_Auxiliary_lines", "image_Auxiliary_lines_negative1", "image_Auxiliary_lines_negative2",
              "image_Auxiliary_lines_negative3"], ".png", {}),
            ("SD", "SpotDiff/Spot_Diff.json", "SpotDiff",
             ["img_a", "img_b", "img_diff_a", "img_diff_a_negative1", "img_diff_a_negative2", "img_diff_a_negative3"],
             ".jpg", {})]:
        items = []
        cand_keys = [k for k in keys if k not in ("img_a", "img_b") and not (code == "AL" and k == "image")]
        for n, ((reply, pick, noise), gold) in enumerate(zip(mcq_replies, labels_gold)):
            data = {}
            for k in keys:  # png files named .jpg as some of the dataset's; PIL reads by content
                data[k] = _save_png(root, f"{sub}/{n}/{k}{ext}", _pattern(f"{code}{n}/{k}", 40, 40))
            item = {"question": f"Question {n}?", "choice": ["A: 30", "B: 16", "C: 38", "D: 32"], "answer": gold,
                    "category": base, "subcategory": sub, "data": data, "id": 700 + n}
            items.append(item)
            sid = f"{code}-{700 + n}"
            key[sid] = {"text": reply} if reply else {}
            if pick is not None:
                key[sid]["image"] = copy(sid, data[cand_keys[pick]], noise)
        _dump(root, f"{base}/{rel}", items)

    iee = []
    explanations = ["Explanation: a red apple pie on a plate", "explanation: violin music", "no label, just text",
                    "Explanation:", LONG_PROMPT]
    for n, text in enumerate(explanations):
        data = _four(root, f"Text-Image_Editing/Emu_Edit/iee{n}", ["image", "edited_image", "fake_image1", "fake_image2",
                                                                   "fake_image3"])
        iee.append({"subcategory": "style", "category": "Text-Image_Editing", "question": "Make it watercolor.",
                    "data": data, "choice": ["D: zebra quilt", "C: violin music", "B: rocket fuel", "A: apple pie"],
                    "answer": "CDABC"[n], "question_id": 800 + n})
        sid = f"IEE-{800 + n}"
        key[sid] = {"text": text, "image": copy(sid, data[["edited_image", "fake_image2"][n % 2]], 30 * (n == 2))}
    _dump(root, f"{base}/Image_Editing_and_Explaning/Unified_Explanation.json", iee)

    vcot = []
    walks = [(["Up", "Left", "Finish"], [[2, 3], [1, 3], [1, 2]], 2),
             (["Down", "Down", "Right", "Finish"], [[1, 1], [1, 2], [2, 2], [2, 2]], 3)]
    replies = {("VCoT-900", 0): ("Action: Up\nLocation: [2, 3]", 0), ("VCoT-900", 1): ("Action: left\nLocation: (1,3)", 0),
               ("VCoT-900", 2): ("Action: Finish\nLocation: [1, 2]", 1),
               ("VCoT-901", 0): ("I go Down to [1, 1]", 0), ("VCoT-901", 1): ("Action: Down\nLocation: [2, 1]", 1),
               ("VCoT-901", 2): ("Action: Right\nLocation: [2, 2]", 2), ("VCoT-901", 3): ("Left or Right", None)}
    for n, (actions, coords, n_images) in enumerate(walks):
        steps = {f"Step_{i}": _save_png(root, f"Visual_CoT/VSP/data_3x3/{n}/step_{i}.png",
                                        _pattern(f"vcot{n}/{i}", 40, 40)) for i in range(n_images)}
        vcot.append({"category": "Visual CoT", "subcategory": "data_3x3",
                     "data": {"Action": actions, "Coordinate": coords, **steps}, "id": 900 + n})
        for k in range(len(actions)):
            text, pick = replies[(f"VCoT-{900 + n}", k)]
            sid = f"VCoT-{900 + n}-step{k}"
            key[sid] = {"text": text}
            if pick is not None:
                key[sid]["image"] = copy(sid, steps[f"Step_{pick}"], 0)
    _dump(root, f"{base}/Visual_CoT/Visual_CoT.json", vcot)


def official_unify_variants(configs: Path) -> list[str]:
    """Overrides selecting the reference's IEE label rule (list position) and VCoT denominator
    (N items x longest walk): string options, or rule classes chosen by ``_target_`` (the layout
    after the multiple-choice refactor), whichever ``configs/task/mme_unify_unify.yaml`` has."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(Path(configs) / "task" / "mme_unify_unify.yaml")
    if isinstance(cfg.get("iee_text_label"), str):
        return ["task.iee_text_label=position", "task.vcot_denominator=official"]
    return ["task.iee_text_label._target_=mio_eval.tasks.mme_unify.unify.ListPosition",
            "task.vcot_denominator._target_=mio_eval.metrics.mme_unify.OfficialDenominator"]


def build(root: Path) -> dict[str, Any]:
    """Write the dataset under ``root/MME-Unify`` and the model's answers under ``root/answers``;
    returns ``{"data_root", "answers_dir", "key", "official"}`` (``key``: the oracle answer key)."""
    root = Path(root)
    data, out = root / "MME-Unify", root / "answers"
    out.mkdir(parents=True, exist_ok=True)
    key: dict[str, Any] = {}
    official: dict[str, Any] = {}
    _generation(data, out, key, official)
    _unify(data, out, key)
    (out / "key.json").write_text(json.dumps(key, ensure_ascii=False, indent=1), encoding="utf-8")
    return {"data_root": data, "answers_dir": out, "key": key, "official": official}


def media_digest(root: Path) -> str:
    """sha256 over every image's and video's decoded RGB pixels (relative path + frames) under
    ``root``: stable across PNG / H.264 encoder versions, sensitive to any pixel the scorers see."""
    import av
    from PIL import Image

    h = hashlib.sha256()
    for f in sorted(Path(root).rglob("*")):
        if not f.is_file() or f.suffix not in (".png", ".jpg", ".mp4"):
            continue
        h.update(str(f.relative_to(root)).encode())
        if f.suffix == ".mp4":
            with av.open(str(f)) as container:
                for frame in container.decode(video=0):
                    h.update(frame.to_ndarray(format="rgb24").tobytes())
        else:
            with Image.open(f) as image:
                h.update(np.asarray(image.convert("RGB")).tobytes())
    return h.hexdigest()
