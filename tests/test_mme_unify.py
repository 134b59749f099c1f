"""MME-Unify (aba122/MME-Unify @ 0956091): the FVD mapping and its all-equal quirk, the MME-U mean, PSNR / LPIPS /
ResNet-50 distance on fixed inputs, loaders on fixtures written in the repo's exact JSON layout,
and each family end to end with an oracle adapter (ground-truth answers and media) and tiny random
CLIP / AlexNet / ResNet-50 weights loaded through the real loading code."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from mio_eval import run
from mio_eval.api import build_task, compose
from mio_eval.errors import ConfigError
from mio_eval.metrics.image_quality import (
    LPIPS,
    ResNet50Features,
    fvd_to_score,
    keyframe_indices,
    normalize_video_scores,
    psnr,
    read_video_frames,
    uniform_indices,
    video_feature_distance,
)
from mio_eval.tasks.loaders.mme_unify import MMEUnifyLoader, split_choice
from mio_eval.tasks.mme_unify import mme_unify_scores, parse_vcot, read_official_prompts, scores_from_metrics
from mio_eval.tasks.mme_unify.generation import KeyFrames, MinSizePair, NoPairResize, UniformFrames
from mio_eval.types import Image, Modality, Output, Text, Video
from test_clip_metrics import tiny_hf_clip  # noqa: F401 - shared fixture

TVG_FALLBACK = "Text-to-Video_Generation/MSR-VTT_Edited/181.mp4"
COLORS = [(230, 30, 30), (30, 200, 40), (40, 60, 220), (240, 220, 30), (200, 40, 200), (20, 210, 210),
          (128, 128, 128), (250, 140, 20), (10, 10, 10), (245, 245, 245)]


# --- vectors ----------------------------------------------------------------------------------------


def test_fvd_mapping_vectors():
    assert fvd_to_score(1) == 100.0 and fvd_to_score(500.5) == 50.0 and fvd_to_score(1000) == 0.0
    # a rounded table would say 1500 -> -50.0; the formula gives -50.05005... (unclipped either way)
    assert fvd_to_score(1500) == pytest.approx(-50.05005005)


def test_all_equal_quirk():
    assert normalize_video_scores([700.0]) == [100.0]  # a single sample
    assert normalize_video_scores([3000.0, 3000.0]) == [100.0, 100.0]  # all equal, whatever the value
    assert normalize_video_scores([700.0], all_equal_quirk=False) == [pytest.approx(30.03003)]
    assert normalize_video_scores([1.0, 1000.0]) == [100.0, 0.0]
    assert normalize_video_scores([]) == []


def test_mme_u_mean_and_scores_from_metrics():
    out = mme_unify_scores(understanding={"SIPU": 60.0, "MITIU": 60.0, "VPU": 60.0},
                           generation={c: 30.0 for c in ("FIR", "TIE", "TIG", "CIVG", "TVG", "VP")},
                           unify={c: 15.0 for c in ("IEE", "CSQ", "AL", "SD", "VCoT")})
    assert (out["US"], out["GS"], out["Unify"], out["Overall"]) == (60.0, 30.0, 15.0, 35.0)
    assert all(out["complete"].values())
    assert out["overall_missing"] is None
    partial = mme_unify_scores(understanding={"SIPU": 60.0}, generation={}, unify={"CSQ": 15.0})
    assert partial["Overall"] is None and partial["GS"] is None and not partial["complete"]["US"]
    # Every family has a score, but not every subtask: no Overall, and the reason says what is missing.
    runs = [{"metrics": {"score/SIPU": {"value": 50.0}, "score/VPU": {"value": 70.0}, "US": {"value": 60.0}}},
            {"metrics": {"score/FIR": {"value": 30.0}}}, {"metrics": {"score/VCoT": {"value": 15.0}}}]
    scores = scores_from_metrics(runs)
    assert scores["Overall"] is None and scores["US"] == pytest.approx(60.0)
    assert scores["overall_missing"] == ("US lacks MITIU; GS lacks TIE, TIG, CIVG, TVG, VP; "
                                         "Unify lacks IEE, CSQ, AL, SD")
    # All subtasks present: Overall; one of them from a limited run: no Overall again.
    full = [{"metrics": {f"score/{c}": {"value": 60.0} for c in ("SIPU", "MITIU", "VPU")}},
            {"metrics": {f"score/{c}": {"value": 30.0} for c in ("FIR", "TIE", "TIG", "CIVG", "TVG", "VP")}},
            {"metrics": {f"score/{c}": {"value": 15.0} for c in ("IEE", "CSQ", "AL", "SD", "VCoT")}}]
    assert scores_from_metrics(full)["Overall"] == pytest.approx(35.0)
    full[2] = {**full[2], "complete": False, "limit": 20}
    limited = scores_from_metrics(full)
    assert limited["Overall"] is None and limited["overall_missing"] == "Unify has partial IEE, CSQ, AL, SD, VCoT"
    assert limited["complete"] == {"US": True, "GS": True, "Unify": False}


def test_choice_labels_and_vcot_parser():
    assert split_choice("（C） 右中心") == ("C", "右中心")
    assert split_choice("(E) none") == ("E", "none") and split_choice("B. yes") == ("B", "yes")
    assert split_choice("D: 26 + 4 \\sqrt { 3 }") == ("D", "26 + 4 \\sqrt { 3 }")
    assert split_choice("no label") == (None, "no label")
    assert parse_vcot("Action: Down\nLocation: [3, 3]\nImage: x") == ("Down", [3, 3])
    assert parse_vcot("I move left") == ("Left", None)
    assert parse_vcot("Left or Up?") == (None, None)


# --- image and video metrics --------------------------------------------------------------------


def _noise(w, h, seed):
    return PILImage.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_psnr_settings():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a.copy()
    b[0, 0, 0] = 110  # mse = 100 / 192
    expected = 10 * math.log10(255 ** 2 / (100 / 192))
    assert psnr(PILImage.fromarray(b), PILImage.fromarray(a), resize="reference") == pytest.approx(expected)
    # min_size ([0,1] floats, data_range 1) gives the same number when no resize is needed
    assert psnr(PILImage.fromarray(b), PILImage.fromarray(a), resize="min_size") == pytest.approx(expected, rel=1e-5)
    assert psnr(PILImage.fromarray(a), PILImage.fromarray(a)) == math.inf
    big = _noise(40, 30, 1)
    assert math.isfinite(psnr(big, _noise(20, 15, 2))) and math.isfinite(psnr(big, _noise(20, 15, 2), resize="min_size"))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random torchvision AlexNet and ResNet-50 state dicts, saved as the real checkpoints are."""
    import torch
    import torchvision

    root = tmp_path_factory.mktemp("tv")
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), root / "alexnet.pth")
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), root / "resnet50.pth")
    return {"alexnet": str(root / "alexnet.pth"), "resnet50": str(root / "resnet50.pth")}


def test_lpips_loads_local_backbone_through_the_package(weights):
    import torch

    metric = LPIPS(backbone_path=weights["alexnet"])
    a, b = _noise(64, 64, 3), _noise(70, 60, 4)
    assert metric(a, a) == 0.0 and metric(a, b) > 0
    state = torch.load(weights["alexnet"], weights_only=True)
    assert torch.equal(getattr(metric._model.net.slice1, "0").weight, state["features.0.weight"])
    assert torch.equal(getattr(metric._model.net.slice5, "10").weight, state["features.10.weight"])
    # the reference's [0,1] input is a different (labelled) number
    other = LPIPS(backbone_path=weights["alexnet"], input_range="mme_unify_0_1")
    assert other(a, b) != pytest.approx(metric(a, b)) and other.variant == "alex-v0.1/mme_unify_0_1/min_size"
    with pytest.raises(ConfigError, match="not found"):
        LPIPS(backbone_path="/nonexistent/alexnet.pth").load()


def _write_video(path, frames, fps=8):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.options = {"crf": "0"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _clip_frames(n, seed, size=32):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    return [np.roll(base, i, axis=1) for i in range(n)]


def test_keyframes_and_uniform_indices():
    still = [np.zeros((8, 8, 3), np.uint8)] * 20
    assert keyframe_indices(still, num_frames=4) == [0, 6, 12, 19]  # no scene change -> uniform
    cuts = [np.full((8, 8, 3), 0 if (i // 2) % 2 == 0 else 255, np.uint8) for i in range(40)]
    keys = keyframe_indices(cuts, num_frames=4)  # a cut every 2 frames: 20 keys -> 4 evenly chosen
    assert len(keys) == 4 and keys[0] == 0
    assert uniform_indices(3, 5) == [0, 1, 2]  # duplicates collapse as in the reference's read loop


def test_frame_sampler_and_pair_resize_are_chosen_by_target(tmp_path):
    # A cut every 3 frames: the reference's key frames are the cuts, uniform sampling is not.
    cuts = [np.full((8, 8, 3), 0 if (i // 3) % 2 == 0 else 255, np.uint8) for i in range(12)]
    assert KeyFrames()(cuts, 4) == [0, 3, 6, 9] and UniformFrames()(cuts, 4) == [0, 3, 7, 11]
    # Pairing a 48x40 generation with a 32x24 reference: MME-Unify resizes both to the smaller size.
    gen, ref = _png(tmp_path, "g.png", (10, 20, 30)), _png(tmp_path, "r.png", (10, 20, 30), size=(32, 24))
    pairs = {cls.name: [np.asarray(x).shape for x in cls()(str(tmp_path / gen), str(tmp_path / ref))]
             for cls in (MinSizePair, NoPairResize)}
    assert pairs == {"min_size": [(24, 32, 3)] * 2, "none": [(40, 48, 3), (24, 32, 3)]}
    here = "mio_eval.tasks.mme_unify.generation"
    default = build_task(compose(["task=mme_unify_generation_image", "model=dummy"]))
    chosen = build_task(compose(["task=mme_unify_generation_image", "model=dummy",
                                 f"task.pair_resize._target_={here}.NoPairResize",
                                 f"task.video_frames._target_={here}.UniformFrames"]))
    assert (default.pair_resize, default.video_frames) == ("min_size", "keyframes")
    assert (chosen._variant("clip_i"), chosen._variant("fvd")) == ("cosine_x100/pair_resize=none",
                                                                   "resnet50_sqeuclid/uniform/none")
    clamped = build_task(compose(["task=mme_unify_generation_image", "model=dummy",
                                  "task.clip_t_variant._target_=mio_eval.metrics.clip_t.ClipTClamped"]))
    assert (default._variant("clip_t"), clamped._variant("clip_t")) == ("mme_unify", "torchmetrics")
    for knob, old, target in (("pair_resize", "none", f"{here}.NoPairResize"),
                              ("video_frames", "uniform", f"{here}.UniformFrames"),
                              ("clip_t_variant", "torchmetrics", "mio_eval.metrics.clip_t.ClipTClamped")):
        with pytest.raises(ConfigError, match=rf"^task.{knob} must be .* given by _target_ .*"
                                              rf"task.{knob}._target_={target}\), got '{old}'$"):
            build_task(compose(["task=mme_unify_generation_image", "model=dummy", f"task.{knob}={old}"]))


def test_video_distance_zero_for_same_video(weights, tmp_path):
    extractor = ResNet50Features(weights_path=weights["resnet50"])
    video = _write_video(tmp_path / "v.mp4", _clip_frames(6, 0))
    frames = read_video_frames(video)
    assert len(frames) == 6
    assert video_feature_distance(frames, frames, extractor) == 0.0
    assert video_feature_distance(frames[:2], [_noise(32, 32, 9)], extractor) > 0


# --- fixture dataset in the repo's exact layout ---------------------------------------------------


def _png(root, rel, color, size=(48, 40)):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    arr[:] = color
    arr[::4, :, :] = 255 - np.array(color, np.uint8)  # stripes so images differ in structure too
    PILImage.fromarray(arr).save(path)
    return rel


def _dump(root, rel, items):
    path = root / "Unify_Dataset" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(items, ensure_ascii=False, indent=4), encoding="utf-8")


@pytest.fixture(scope="module")
def mme_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "MME-Unify"
    c = iter(range(1000))
    color = lambda: COLORS[next(c) % len(COLORS)]  # noqa: E731
    und = [
        {"image": [_png(root, "Single_Image_Perception_and_Understanding/MME_RealWorld/1.png", color())],
         "question": "图像中的遮阳篷三轮车在哪里？", "answer": "C", "category": "Single_Image_Perception_and_Understanding",
         "choice": ["（A） 左上角", "（B） 左下角", "（C） 右中心", "（D） 右上角", "（E） 没有"], "source": "MME_RealWorld",
         "subcategory": "Perception/Monitoring", "question_id": 1521},
        {"image": [_png(root, "Single_Image_Perception_and_Understanding/MME/2.png", color())],
         "question": "Is this Jeff Bridges?", "answer": "B", "subcategory": "celebrity",
         "category": "Single_Image_Perception_and_Understanding", "choice": ["A. no", "B. yes"], "source": "MME",
         "question_id": 1347},
        {"answer": "D", "data_type": "Interleaved Image", "level": "L2",
         "question": "This is the menu.\n<img>This is the bill.\n<img>How much was spent?",
         "image": [_png(root, "Multiple_Images_and_Text_Interlaced/SEED-Bench_v2/614.png", color()),
                   _png(root, "Multiple_Images_and_Text_Interlaced/SEED-Bench_v2/615.png", color())],
         "choice": ["A: 2 dollars.", "B: 1 dollars.", "C: 3 dollars.", "D: 6 dollars."], "source": "SEED-Bench_v2",
         "subcategory": "Interleaved Image & Text Comprehension", "category": "Multiple_Images_and_Text_Interlaced",
         "question_id": 1247},
        {"question": "Which animal is the character?", "answer": "B", "choice": ["A. A bat.", "B. A dragon.",
         "C. A bird.", "D. A crocodile."], "subcategory": "Object Recognition",
         "category": "Video_Perception_and_Understanding", "source": "Video-MME",
         "image": ["Video_Perception_and_Understanding/Video-MME/153.mp4"], "question_id": 1554},
    ]
    vid = root / "Video_Perception_and_Understanding/Video-MME/153.mp4"
    vid.parent.mkdir(parents=True)
    _write_video(vid, _clip_frames(4, 1))
    _dump(root, "Understanding/Understanding_Unified.json", und)

    def video(rel, seed):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        _write_video(root / rel, _clip_frames(5, seed))
        return rel

    gen = [
        {"category": "Fine-Grained_Image_Reconstruction", "Text_Prompt": " ", "source": "ImageNet", "subcategory": " ",
         "data": {"image": _png(root, "Fine-Grained_Image_Reconstruction/ImageNet/442111.png", color())}, "id": 925},
        {"category": "Text-Image_Editing", "Text_Prompt": "make it blue", "source": "Emu_Edit", "subcategory": "style",
         "data": {"image": _png(root, "Text-Image_Editing/Emu_Edit/image/90.png", color()),
                  "edited_image": _png(root, "Text-Image_Editing/Emu_Edit/edited_image/90.png", color())}, "id": 925},
        {"category": "Text-Image_Generation", "Text_Prompt": "a baseball game", "source": "COCO", "subcategory": " ",
         "data": {"image": _png(root, "Text-Image_Generation/COCO/image/184.png", color(), size=(64, 48))}, "id": 1323},
        {"category": "Conditional_Image_to_Video_Generation", "Text_Prompt": "a portal", "source": "TIP-I2V",
         "subcategory": "Portal", "data": {"image": _png(root, "Conditional_Image_to_Video_Generation/TIP-I2V/109.png",
                                                         color()),
                                           "video": video("Conditional_Image_to_Video_Generation/TIP-I2V-Videos/a.mp4", 2)},
         "id": 810},
        {"category": "Text-to-Video_Generation", "Text_Prompt": "a man explains signs", "source": "MSR-VTT",
         "subcategory": " ", "data": {"image": video("Text-to-Video_Generation/MSR-VTT_Edited/181.mp4", 3)}, "id": 958},
        {"category": "Text-to-Video_Generation", "Text_Prompt": "no reference", "source": "MSR-VTT",
         "subcategory": " ", "data": {}, "id": 959},
        {"category": "Video prediction", "Text_Prompt": "A child walking a dog.", "source": "Pexel Videos",
         "subcategory": " ", "data": {"image": _png(root, "Image-to-Video_Generation/Pexel_Videos/Image/3.png", color()),
                                      "video": video("Image-to-Video_Generation/Pexel_Videos/Video/3.mp4", 4)},
         "id": 1166},
    ]
    _dump(root, "Generation/Generation_Unified.json", gen)

    def four(prefix, keys, ext=".png"):
        return {k: _png(root, f"{prefix}/{k}{ext}", color()) for k in keys}

    iee = [{"subcategory": "style", "category": "Text-Image_Editing", "question": "Make it watercolor.",
            "data": {**four("Text-Image_Editing/Emu_Edit/x90", ["image", "edited_image", "fake_image1", "fake_image2",
                                                                "fake_image3"])},
            "choice": ["D: zebra quilt", "C: violin music", "B: rocket fuel", "A: apple pie"], "answer": "C",
            "question_id": 17}]
    csq = [{"question": "Which flag?", "choice": ["A: British Flag", "B: American Flag", "C: Canadian Flag",
                                                  "D: Mexican Flag"], "answer": "B",
            "data": four("Common_Sense_Questions", ["image", "fake_image1", "fake_image2", "fake_image3"], ".jpg"),
            "category": "Uinfy_capability", "subcategory": "Common_Sense_Question", "id": 22}]
    # the HF upload has some files as .jfif where the JSON says .jpg
    jfif = root / csq[0]["data"]["fake_image3"]
    jfif.rename(jfif.with_suffix(".jfif"))
    al_keys = ["image", "image_Auxiliary_lines", "image_Auxiliary_lines_negative1", "image_Auxiliary_lines_negative2",
               "image_Auxiliary_lines_negative3"]
    al = [{"question": f"Find the area ({k}).", "choice": ["A: 30", "B: 16", "C: 38", "D: 32"], "answer": "C",
           "category": "Uinfy_capability", "subcategory": "Math_Reasoning",
           "data": four(f"Math_Reasoning/Auxiliary_Lines/{k}", al_keys), "id": 45} for k in range(2)]  # repeated id
    sd = [{"id": 13, "data": four("Spot_Diff/00858_14", ["img_a", "img_b", "img_diff_a", "img_diff_a_negative1",
                                                         "img_diff_a_negative2", "img_diff_a_negative3"], ".jpg"),
           "category": "Uinfy_capability", "subcategory": "SpotDiff", "choice": ["A: 14", "B: 11", "C: 19", "D: 10"],
           "answer": "A"}]
    vcot = [{"category": "Visual CoT", "subcategory": "data_3x3",
             "data": {"Action": ["Up", "Left", "Finish"], "Coordinate": [[2, 3], [1, 3], [1, 2]],
                      **{f"Step_{i}": _png(root, f"Visual_CoT/VSP/data_3x3/58/step_{i}.png", color()) for i in range(2)}},
             "id": 40}]
    base = "Uinfy_capability"
    _dump(root, f"{base}/Image_Editing_and_Explaning/Unified_Explanation.json", iee)
    _dump(root, f"{base}/Common_Sense_Question/Common_Sense_Question.json", csq)
    _dump(root, f"{base}/Auxiliary_Lines/Auxiliary_Lines..json", al)
    _dump(root, f"{base}/SpotDiff/Spot_Diff.json", sd)
    _dump(root, f"{base}/Visual_CoT/Visual_CoT.json", vcot)
    return root


def test_understanding_loader(mme_root):
    samples = MMEUnifyLoader(root=str(mme_root), family="understanding")()
    by_id = {s.id: s for s in samples}
    assert list(by_id) == ["SIPU-1521", "SIPU-1347", "MITIU-1247", "VPU-1554"]
    zh = by_id["SIPU-1521"]
    assert zh.metadata["labels"] == ["A", "B", "C", "D", "E"] and zh.choices[2] == "右中心"
    assert zh.metadata["gold_index"] == 2 and zh.targets == ("C",)
    inter = by_id["MITIU-1247"].parts  # <img> markers interleave the two images with the text
    assert [type(p) for p in inter] == [Text, Image, Text, Image, Text]
    assert isinstance(by_id["VPU-1554"].parts[0], Video)
    only = MMEUnifyLoader(root=str(mme_root), family="understanding", subtasks=["VPU"])()
    assert [s.id for s in only] == ["VPU-1554"]


def test_generation_and_unify_loaders(mme_root):
    gen = {s.id: s for s in MMEUnifyLoader(root=str(mme_root), family="generation")()}
    assert set(gen) == {"FIR-925", "TIE-925", "TIG-1323", "CIVG-810", "TVG-958", "TVG-959", "VP-1166"}
    assert gen["TIE-925"].targets[0].endswith("edited_image/90.png")
    assert gen["TVG-959"].targets == () and gen["TVG-958"].targets[0].endswith("181.mp4")
    assert [type(p) for p in gen["VP-1166"].parts] == [Image, Text]
    uni = {s.id: s for s in MMEUnifyLoader(root=str(mme_root), family="unify")()}
    assert {"IEE-17", "CSQ-22", "AL-45", "AL-45-1", "SD-13", "VCoT-40-step0", "VCoT-40-step2"} <= set(uni)
    csq = uni["CSQ-22"]
    assert csq.metadata["candidates"][3].endswith(".jfif")  # substituted and recorded
    assert list(csq.metadata["media_substitutions"].values())[0].endswith("fake_image3.jfif")
    assert uni["IEE-17"].metadata["labels"] == ["D", "C", "B", "A"] and uni["IEE-17"].metadata["gold_index"] == 1
    last = uni["VCoT-40-step2"].metadata
    assert last["image_target"] is None and last["location"] == [1, 2] and last["history"] == ["Up", "Left"]


def test_loader_errors_are_one_line_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="data root not found"):
        MMEUnifyLoader(root=str(tmp_path / "none"), family="unify")()
    with pytest.raises(ConfigError, match="annotations not found"):
        MMEUnifyLoader(root=str(tmp_path), family="generation")()
    with pytest.raises(ConfigError, match="unknown MME-Unify"):
        MMEUnifyLoader(root=str(tmp_path), family="unify", subtasks=["FIR"])


def test_official_prompt_file_parser(tmp_path):
    text = ('Understanding:\n"""You must output one letter."""\n\n\nImage_Editing_and_Explaining:\nEdit it.\n\n'
            "Common_Sense_Question:\nPick.\nAuxiliary Lines:\nDraw.\nSpotDiff:\nCount.\nVisual CoT:\n\n"
            "First Step:\nMove first.\nAfter First Step:\nMove next.\n")
    (tmp_path / "Prompt.txt").write_text(text)
    prompts = read_official_prompts(tmp_path / "Prompt.txt")
    assert prompts["understanding"] == "You must output one letter." and prompts["VCoT_next"] == "Move next."
    with pytest.raises(ConfigError):
        read_official_prompts(tmp_path / "missing.txt")


# --- end to end ----------------------------------------------------------------------------------


class OracleAdapter:
    """Answers from a JSON answer key (sample id -> text and/or a media file to copy): the model
    that is always right. Extra keys of the dummy model config are accepted and ignored."""

    def __init__(self, *, answers: str, name: str = "oracle", **_ignored) -> None:
        self.name = name
        self.answers = json.loads(Path(answers).read_text())
        self.inputs = frozenset(Modality)
        self.outputs = frozenset(Modality)

    def load(self) -> None:
        pass

    def generate(self, requests, *, media_dir):
        from mio_eval.media import output_path

        outs = []
        for request in requests:
            answer = self.answers[request.sample_id]
            media = ()
            if answer.get("file"):
                src = Path(answer["file"])
                dst = output_path(media_dir, request.sample_id, src.suffix)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                media = (Video(str(dst)) if src.suffix == ".mp4" else Image(str(dst)),)
            outs.append(Output(text=answer.get("text"), media=media))
        return outs

    def provenance(self):
        return {"model": "oracle"}


def _answers(tmp_path, family, mme_root, subtasks=None):
    key = {}
    for s in MMEUnifyLoader(root=str(mme_root), family=family, subtasks=subtasks)():
        meta = s.metadata
        code = meta["subtask"]
        if family == "understanding":
            key[s.id] = {"text": f"Answer: {s.targets[0]}"}
        elif family == "generation":  # the reference itself; TVG without one: any video
            key[s.id] = {"file": s.targets[0] if s.targets else str(mme_root / TVG_FALLBACK)}
        elif code == "VCoT":
            loc = meta["location"]
            step_img = meta["candidates"][meta["image_target"]] if meta["image_target"] is not None else None
            key[s.id] = {"text": f"Action: {s.targets[0]}\nLocation: [{loc[0]}, {loc[1]}]", "file": step_img}
        elif code == "IEE":
            key[s.id] = {"text": "Explanation: " + meta["options"][meta["gold_index"]],
                         "file": meta["candidates"][0]}
        else:
            key[s.id] = {"text": f"Answer: {s.targets[0]}", "file": meta["candidates"][0]}
    path = tmp_path / f"answers_{family}.json"
    path.write_text(json.dumps(key))
    return path


def _run(task, tmp_path, answers, *extra):
    return run(task, "dummy", [f"paths.results_dir={tmp_path / 'results'}", f"paths.data_dir={tmp_path.parent}",
                               "runner.progress=false", "model._target_=test_mme_unify.OracleAdapter",
                               f"+model.answers={answers}", "model.name=oracle", *extra])


def _submission(data_dir, metrics) -> Path:
    """The submission file the run recorded (an artifact written by the store beside metrics.json)."""
    assert metrics["scoring"]["submission"] in metrics["artifacts"]
    return data_dir / "results" / metrics["model"] / metrics["task"] / metrics["scoring"]["submission"]


@pytest.fixture
def data_dir(mme_root, tmp_path):
    # paths.data_dir must hold MME-Unify/: link the module's fixture into this test's folder
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "MME-Unify").symlink_to(mme_root, target_is_directory=True)
    return tmp_path / "data" / "work"


def test_understanding_end_to_end_oracle_and_dummy(mme_root, data_dir):
    data_dir.mkdir()
    metrics = _run("mme_unify_understanding", data_dir, _answers(data_dir, "understanding", mme_root))
    m = metrics["metrics"]
    assert m["accuracy"]["value"] == 1.0 and m["US"]["value"] == pytest.approx(100.0)
    assert m["score/SIPU"]["value"] == 100.0 and m["accuracy_strict"]["value"] == 0.0  # "Answer: C" != "C"
    export = json.loads(_submission(data_dir, metrics).read_text())
    assert export[0]["output"] == "C" and export[0]["question_id"] == 1521
    # the dummy echoes the prompt: no single letter -> invalid, counted wrong, not an error
    dummy = run("mme_unify_understanding", "dummy", [f"paths.results_dir={data_dir / 'r2'}",
                                                      f"paths.data_dir={data_dir.parent}", "runner.progress=false"])
    assert dummy["n_errors"] == 0 and dummy["metrics"]["accuracy"]["value"] < 1.0


def test_image_generation_oracle_scores_perfectly(mme_root, data_dir, tiny_hf_clip, weights):  # noqa: F811
    data_dir.mkdir()
    metrics = _run("mme_unify_generation_image", data_dir, _answers(data_dir, "generation", mme_root, ["FIR", "TIE", "TIG"]),
                   f"task.clip.path={tiny_hf_clip}", f"task.lpips.backbone_path={weights['alexnet']}")
    m = metrics["metrics"]
    assert m["psnr/FIR"]["value"] == math.inf and m["lpips/FIR"]["value"] == 0.0
    assert m["clip_i/TIE"]["value"] == pytest.approx(100.0, abs=1e-3)
    assert m["clip_i/TIG"]["value"] == pytest.approx(100.0, abs=1e-3) and m["lpips/TIG"]["value"] == 0.0
    assert m["score/FIR"]["value"] == 100.0 and m["score/FIR"]["variant"] == "mio_eval_v1"
    assert m["lpips/FIR"]["variant"] == "alex-v0.1/mme_unify_0_1/min_size"
    assert metrics["judges"] and metrics["n_errors"] == 0
    export = json.loads(_submission(data_dir, metrics).read_text())
    assert {e["category"] for e in export} == {"Fine-Grained_Image_Reconstruction", "Text-Image_Editing",
                                              "Text-Image_Generation"}
    assert all(Path(e["output"]).is_file() for e in export)


def test_video_generation_oracle_and_quirk(mme_root, data_dir, tiny_hf_clip, weights):  # noqa: F811
    data_dir.mkdir()
    metrics = _run("mme_unify_generation_video", data_dir, _answers(data_dir, "generation", mme_root, ["CIVG", "TVG", "VP"]),
                   f"task.clip.path={tiny_hf_clip}", f"task.video_features.weights_path={weights['resnet50']}")
    m = metrics["metrics"]
    assert m["fvd/VP"]["value"] == 0.0 and m["score/VP"]["value"] == 100.0
    assert m["score/VP"]["extra"]["all_equal_quirk_applied"]  # one sample: the quirk returns 100
    assert m["fvd/TVG"]["n"] == 1  # the item without a reference video has no distance
    assert "clip_t/CIVG" in m and metrics["n_errors"] == 0


def test_generation_needs_an_image_output_and_refuses_mixed_modalities(mme_root, data_dir):
    data_dir.mkdir()
    with pytest.raises(ConfigError, match="cannot run"):  # the dummy writes text and audio only
        run("mme_unify_generation_image", "dummy", [f"paths.results_dir={data_dir / 'r'}",
                                                     f"paths.data_dir={data_dir.parent}", "runner.progress=false"])
    with pytest.raises(ConfigError, match="not both"):
        run("mme_unify_generation_image", "dummy", [f"paths.data_dir={data_dir.parent}",
                                                     "task.loader.subtasks=[FIR,VP]"])


def test_unify_oracle_end_to_end(mme_root, data_dir, tiny_hf_clip):  # noqa: F811
    data_dir.mkdir()
    answers = _answers(data_dir, "unify", mme_root)
    metrics = _run("mme_unify_unify", data_dir, answers, f"task.clip.path={tiny_hf_clip}")
    m = metrics["metrics"]
    for code in ("IEE", "CSQ", "AL", "SD"):
        assert m[f"text_accuracy/{code}"]["value"] == 1.0, code
        assert m[f"image_accuracy/{code}"]["value"] == 1.0, code
        assert m[f"score/{code}"]["value"] == 100.0
    assert m["action_accuracy/VCoT"]["value"] == 1.0 and m["location_accuracy/VCoT"]["value"] == 1.0
    assert m["image_accuracy/VCoT"]["n"] == 2 and m["image_accuracy/VCoT"]["value"] == 1.0
    assert m["Unify_partial"]["value"] == 100.0 and m["Unify_partial"]["extra"]["complete"]
    export = json.loads(_submission(data_dir, metrics).read_text())
    vcot = next(e for e in export if e.get("category") == "Visual CoT")
    assert set(vcot["outputs"]) == {"output_step_0", "output_step_1", "output_step_2"}
    sd = next(e for e in export if e.get("subcategory") == "SpotDiff")
    assert sd["output"]["selected_answer"] == "A"
    # the reference's VCoT denominator (N items x longest walk) and its IEE position bug, labelled
    official = _run("mme_unify_unify", data_dir, answers, f"task.clip.path={tiny_hf_clip}",
                    "task.vcot_denominator._target_=mio_eval.metrics.mme_unify.OfficialDenominator",
                    "task.iee_text_label._target_=mio_eval.tasks.mme_unify.unify.ListPosition", "runner.stage=score")
    om = official["metrics"]
    assert om["image_accuracy/VCoT"]["value"] == pytest.approx(2 / 3)  # the Finish step can never score
    assert om["text_accuracy/IEE"]["value"] == 0.0  # nearest option is list position 1 -> "B", gold is "C"
