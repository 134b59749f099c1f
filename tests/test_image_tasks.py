"""Image understanding suite: each loader on its dataset's exact layout (written here, images made
with PIL, videos with PyAV), prompt snapshots of every task config, and end-to-end runs through
``mio_eval.run``: captioning (CIDEr checked against pycocoevalcap itself), VQA (accuracy by hand,
EvalAI submission files), SEED-Bench by generation (dummy) and by likelihood (a tiny random LLaVA
through the real ``hf_vlm`` loading code)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image as PILImage

from mio_eval import run
from mio_eval.api import build, compose
from mio_eval.errors import ConfigError, MediaError
from mio_eval.models.dummy import DummyAdapter
from mio_eval.models.hf_vlm import load_image
from mio_eval.tasks.image_prompts import render, stop_at
from mio_eval.tasks.loaders.coco_captions import COCOCaptionsLoader
from mio_eval.tasks.loaders.karpathy import KarpathyLoader
from mio_eval.tasks.loaders.seed_bench import HFSEEDBenchLoader, SEEDBenchLoader
from mio_eval.tasks.loaders.vqa import HFVQALoader, VizWizLoader, VQALoader
from mio_eval.types import Image, Output, Text, Video
from helpers import grey_frames, write_video

# --- fixture data in each dataset's exact format ------------------------------------------------

COCO_TEST = {  # cocoid -> raw references (Karpathy test split)
    391895: ["A man with a red helmet on a small moped on a dirt road. ", "Man riding a motor bike on a dirt road.",
             "A man in a red shirt and a red hat is on a motorcycle.", "A man on a moped on a dirt road.",
             "A man riding on the back of a motorcycle."],
    522418: ["A woman wearing a net on her head cutting a cake. ", "A woman cutting a large white sheet cake.",
             "A woman wearing a hair net cutting a large sheet cake.", "there is a woman that is cutting a white cake",
             "A woman marking a cake with the back of a chef's knife. "],
    184613: ["A child holding a flowered umbrella and petting a yak.", "A young man holding an umbrella next to a herd of cattle.",
             "a young boy barefoot holding an umbrella touching the horn of a cow", "A young boy with an umbrella who is touching the horn of a cow.",
             "A boy holding an umbrella while standing next to livestock."],
}
HELD_OUT = {391895: "A man rides a red motorcycle along a dirt road.",
            522418: "A woman in a hair net cuts a big white cake.",
            184613: "A boy with an umbrella touches a cow's horn."}
FLICKR_TEST = {"1000092795": ["Two young guys with shaggy hair look at their hands while hanging out in the yard.",
                              "Two young men outside."],
               "10002456": ["Several men in hard hats are operating a giant pulley system.", "Workers look down."]}
VQA_QUESTIONS = [  # question_id, image_id, question, 10 answers, answer_type, question_type
    (262148000, 262148, "Where is he looking?", ["down"] * 4 + ["at table"] * 3 + ["skateboard"] * 2 + ["table"],
     "other", "none of the above"),
    (262148001, 262148, "What are the people in the background doing?", ["spectating"] * 2 + ["watching"] * 8,
     "other", "what are the"),
    (393225000, 393225, "Is the bowl full?", ["yes"] * 9 + ["no"], "yes/no", "is the"),
    (393225001, 393225, "How many spoons are there?", ["2"] * 3 + ["3"] * 7, "number", "how many"),
]
VIZWIZ_VAL = [("VizWiz_val_00000000.jpg", "what is this?", ["unanswerable"] * 6 + ["soda"] * 4, "unanswerable"),
              ("VizWiz_val_00000001.jpg", "what color is this shirt", ["blue"] * 8 + ["navy blue"] * 2, "other")]


def _image(path: Path, seed: int = 0, size=(24, 20)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    PILImage.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _video(path: Path, n_frames=30, fps=15):
    """An mp4 whose frame i is grey level 8*i (so a sampled frame tells its index)."""
    return write_video(path, grey_frames([8 * i for i in range(n_frames)]), fps=fps, container_format="mp4")


def _parquet(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _cell(path: Path) -> dict:
    return {"bytes": path.read_bytes(), "path": None}


SEED_QUESTIONS = [
    {"answer": "B", "choice_a": "One", "choice_b": "Two", "choice_c": "Three", "choice_d": "Four",
     "data_id": "1454426_2591111986.jpg", "data_type": "image", "question": "How many towels are in the image?",
     "question_id": "101669", "question_type_id": 5},
    {"answer": "A", "choice_a": "A kitchen", "choice_b": "A beach", "choice_c": "A forest", "choice_d": "A street",
     "data_id": "2001_7", "data_type": "image", "question": "Where is this scene?",
     "question_id": "17", "question_type_id": 1},
    {"answer": "D", "choice_a": "red", "choice_b": "green", "choice_c": "blue", "choice_d": "grey",
     "data_id": "3003_1.jpg", "data_type": "image", "question": "What colour is the car?",
     "question_id": "205", "question_type_id": 3},
    {"answer": "B", "choice_a": "throwing something in the air and letting it fall",
     "choice_b": "throwing something in the air and catching it", "choice_c": "lifting up one end of something",
     "choice_d": "poking something so that it falls over", "data_id": "94328.webm", "data_type": "video",
     "question": "What is the action being carried out in the video?", "question_id": "v1738", "question_type_id": 10},
    {"answer": "B", "choice_a": "fill saucepan", "choice_b": "move saucepan", "choice_c": "lift saucepan",
     "choice_d": "pour saucepan", "data_id": "P03/P03_24.MP4", "data_type": "video",
     "question": "Please anticipate what action will occur following the end of this video.",
     "question_id": "v1962", "question_type_id": 11, "segment": [1.0, 2.0]},
    {"answer": "C", "choice_a": "fetch bowl", "choice_b": "hold bowl", "choice_c": "carry bowl", "choice_d": "grasp bowl",
     "data_id": "P06/cam01/P06_cereals.avi", "data_type": "video",
     "question": "Can you identify the sequence of actions in this video and list them in order?",
     "question_id": "v4397", "question_type_id": 12, "segment": [0, 14]},
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """``${paths.data_dir}`` laid out as the task configs expect, every file in its release format."""
    root = tmp_path_factory.mktemp("data")
    # COCO Karpathy split + val2014 images (one train image that must not be loaded).
    images = [{"filepath": "val2014", "filename": f"COCO_val2014_{cid:012d}.jpg", "imgid": n, "split": "test",
               "cocoid": cid, "sentids": list(range(5 * n, 5 * n + 5)),
               "sentences": [{"tokens": s.lower().split(), "raw": s, "imgid": n, "sentid": 5 * n + k}
                             for k, s in enumerate(refs)]}
              for n, (cid, refs) in enumerate(COCO_TEST.items())]
    images.append({"filepath": "train2014", "filename": "COCO_train2014_000000057870.jpg", "imgid": 9, "split": "train",
                   "cocoid": 57870, "sentids": [99], "sentences": [{"tokens": ["a"], "raw": "A train image.",
                                                                    "imgid": 9, "sentid": 99}]})
    _json(root / "coco" / "dataset_coco.json", {"images": images, "dataset": "coco"})
    for n, cid in enumerate(COCO_TEST):
        _image(root / "coco" / "val2014" / f"COCO_val2014_{cid:012d}.jpg", n)
    # Flickr30K Karpathy split.
    _json(root / "flickr30k" / "dataset_flickr30k.json", {"dataset": "flickr30k", "images": [
        {"filename": f"{k}.jpg", "imgid": n, "split": "test", "sentids": [n],
         "sentences": [{"raw": s, "tokens": s.lower().split()} for s in refs]}
        for n, (k, refs) in enumerate(FLICKR_TEST.items())]})
    for n, k in enumerate(FLICKR_TEST):
        _image(root / "flickr30k" / "flickr30k-images" / f"{k}.jpg", 10 + n)
    # VQAv2 val + test-dev, OK-VQA (same API format), images under coco/val2014 and coco/test2015.
    questions = {"info": {}, "task_type": "Open-Ended", "data_type": "mscoco", "license": {}, "data_subtype": "val2014",
                 "questions": [{"image_id": i, "question": q, "question_id": qid} for qid, i, q, *_ in VQA_QUESTIONS]}
    annotations = {"annotations": [
        {"question_type": qt, "multiple_choice_answer": answers[0], "image_id": i, "answer_type": at,
         "question_id": qid, "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1}
                                         for k, a in enumerate(answers)]}
        for qid, i, _, answers, at, qt in VQA_QUESTIONS]}
    _json(root / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json", questions)
    _json(root / "vqav2" / "v2_mscoco_val2014_annotations.json", annotations)
    _json(root / "okvqa" / "OpenEnded_mscoco_val2014_questions.json", questions)
    _json(root / "okvqa" / "mscoco_val2014_annotations.json", annotations)
    for n, image_id in enumerate(sorted({q[1] for q in VQA_QUESTIONS})):
        _image(root / "coco" / "val2014" / f"COCO_val2014_{image_id:012d}.jpg", 20 + n)
    _json(root / "vqav2" / "v2_OpenEnded_mscoco_test-dev2015_questions.json",
          {"data_subtype": "test-dev2015", "questions": [
              {"image_id": 1, "question": "Is it raining?", "question_id": 1000},
              {"image_id": 2, "question": "What animal is this?", "question_id": 2000}]})
    for n in (1, 2):
        _image(root / "coco" / "test2015" / f"COCO_test2015_{n:012d}.jpg", 30 + n)
    # VizWiz release: Annotations/{val,test}.json + val/ test/ image folders.
    _json(root / "vizwiz" / "Annotations" / "val.json", [
        {"image": img, "question": q, "answers": [{"answer": a, "answer_confidence": "yes"} for a in answers],
         "answer_type": at, "answerable": int(at != "unanswerable")} for img, q, answers, at in VIZWIZ_VAL])
    _json(root / "vizwiz" / "Annotations" / "test.json", [
        {"image": "VizWiz_test_00000000.jpg", "question": "what is in this can?"},
        {"image": "VizWiz_test_00000001.jpg", "question": "Which one is the remote?"}])
    for n, (img, *_) in enumerate(VIZWIZ_VAL):
        _image(root / "vizwiz" / "val" / img, 40 + n)
    for n in range(2):
        _image(root / "vizwiz" / "test" / f"VizWiz_test_{n:08d}.jpg", 50 + n)
    # SEED-Bench.json + CC3M images (one data_id without extension) + the three video sources.
    _json(root / "seed_bench" / "SEED-Bench.json", {"questions": SEED_QUESTIONS, "question_type": {
        "Scene Understanding": 1, "Instance Identity": 2, "Instance Attributes": 3, "Instance Location": 4,
        "Instances Counting": 5, "Spatial Relation": 6, "Instance Interaction": 7, "Visual Reasoning": 8,
        "Text Understanding": 9, "Action Recognition": 10, "Action Prediction": 11, "Procedure Understanding": 12}})
    _image(root / "seed_bench" / "SEED-Bench-image" / "1454426_2591111986.jpg", 60)
    _image(root / "seed_bench" / "SEED-Bench-image" / "2001_7.png", 61)
    _image(root / "seed_bench" / "SEED-Bench-image" / "3003_1.jpg", 62)
    _video(root / "seed_bench" / "SSV2" / "videos" / "94328.webm")
    _video(root / "seed_bench" / "EPIC-KITCHENS" / "videos" / "P03" / "P03_24.MP4")
    _video(root / "seed_bench" / "Breakfast" / "P06" / "cam01" / "P06_cereals.avi")
    return root


def _ids(samples):
    return [s.id for s in samples]


# --- loaders ---------------------------------------------------------------------------------------


def test_karpathy_coco_and_flickr(data):
    samples = KarpathyLoader(annotations=str(data / "coco" / "dataset_coco.json"), image_root=str(data / "coco"))()
    assert _ids(samples) == [str(c) for c in COCO_TEST]  # the train image is not in the test split
    first = samples[0]
    assert first.targets == tuple(COCO_TEST[391895])  # raw sentences, untouched (trailing space kept)
    assert first.parts == (Image(str(data / "coco" / "val2014" / "COCO_val2014_000000391895.jpg")),)
    assert first.metadata["image_id"] == 391895
    loader = KarpathyLoader(annotations=str(data / "coco" / "dataset_coco.json"), image_root=str(data / "coco"))
    assert loader.expected_size == 5000
    train = KarpathyLoader(annotations=str(data / "coco" / "dataset_coco.json"), image_root=str(data / "coco"),
                           split="train")()
    assert _ids(train) == ["57870"] and train[0].targets == ("A train image.",)
    flickr = KarpathyLoader(annotations=str(data / "flickr30k" / "dataset_flickr30k.json"),
                            image_root=str(data / "flickr30k"))()
    assert _ids(flickr) == list(FLICKR_TEST) and flickr[0].metadata["image_id"] == 1000092795
    assert flickr[0].parts[0].path == str(data / "flickr30k" / "flickr30k-images" / "1000092795.jpg")
    assert KarpathyLoader(annotations=str(data / "flickr30k" / "dataset_flickr30k.json")).expected_size == 1000


def test_karpathy_hf_parquet(data, tmp_path):
    # yerevann/coco-karpathy: no image column; images come from the COCO folder.
    rows = [{"filepath": "val2014", "sentids": [0], "filename": f"COCO_val2014_{cid:012d}.jpg", "imgid": n,
             "split": "test", "sentences": refs, "cocoid": cid, "url": "http://images.cocodataset.org/x.jpg"}
            for n, (cid, refs) in enumerate(COCO_TEST.items())]
    _parquet(tmp_path / "coco-karpathy" / "data" / "test-00000-of-00001.parquet", rows)
    samples = KarpathyLoader(annotations=str(tmp_path / "coco-karpathy"), image_root=str(data / "coco"))()
    json_samples = KarpathyLoader(annotations=str(data / "coco" / "dataset_coco.json"), image_root=str(data / "coco"))()
    assert samples == json_samples


def test_coco_captions_json_test_info_and_hf(data, tmp_path):
    anns = [{"image_id": cid, "id": 100 * n + k, "caption": c}
            for n, (cid, refs) in enumerate(COCO_TEST.items()) for k, c in enumerate(refs)]
    imgs = [{"id": cid, "file_name": f"COCO_val2014_{cid:012d}.jpg", "height": 20, "width": 24} for cid in COCO_TEST]
    _json(tmp_path / "annotations" / "captions_val2014.json", {"images": imgs, "annotations": anns})
    loader = COCOCaptionsLoader(annotations=str(tmp_path / "annotations" / "captions_val2014.json"),
                                image_dir=str(data / "coco" / "val2014"))
    samples = loader()
    assert loader.expected_size == 40504
    assert _ids(samples) == [str(c) for c in COCO_TEST] and samples[1].targets == tuple(COCO_TEST[522418])
    _json(tmp_path / "annotations" / "image_info_test2014.json", {"images": imgs[:1]})
    test = COCOCaptionsLoader(annotations=str(tmp_path / "annotations" / "image_info_test2014.json"),
                              image_dir=str(data / "coco" / "val2014"))()
    assert _ids(test) == ["391895"] and test[0].targets == ()
    # lmms-lab/COCO-Caption2017: embedded image bytes, captions in "answer".
    source = data / "coco" / "val2014" / "COCO_val2014_000000391895.jpg"
    _parquet(tmp_path / "COCO-Caption2017" / "data" / "val-00000-of-00001.parquet", [
        {"question_id": "000000391895.jpg", "image": _cell(source), "question": "Provide a caption.",
         "answer": COCO_TEST[391895], "id": 7, "file_name": "000000391895.jpg"}])
    hf = COCOCaptionsLoader(annotations=str(tmp_path / "COCO-Caption2017"), split="val", cache_dir=str(tmp_path / "cache"))()
    assert _ids(hf) == ["391895"] and hf[0].targets == tuple(COCO_TEST[391895])
    cached = Path(hf[0].parts[0].path)
    assert cached.suffix == ".jpg" and cached.read_bytes() == source.read_bytes()
    assert cached.is_relative_to(tmp_path / "cache")


def test_vqa_loaders_vqav2_testdev_okvqa(data):
    val = VQALoader(questions=str(data / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json"),
                    annotations=str(data / "vqav2" / "v2_mscoco_val2014_annotations.json"),
                    image_dir=str(data / "coco" / "val2014"))
    samples = val()
    assert val.expected_size == 214354
    assert _ids(samples) == [str(q[0]) for q in VQA_QUESTIONS]
    s = samples[3]
    assert s.targets == tuple(["2"] * 3 + ["3"] * 7) and len(s.targets) == 10
    assert s.parts == (Image(str(data / "coco" / "val2014" / "COCO_val2014_000000393225.jpg")),
                       Text("How many spoons are there?"))
    assert s.metadata["answer_type"] == "number" and s.metadata["question_type"] == "how many"
    assert s.metadata["question_id"] == 393225001
    testdev = VQALoader(questions=str(data / "vqav2" / "v2_OpenEnded_mscoco_test-dev2015_questions.json"),
                        image_dir=str(data / "coco" / "test2015"))
    t = testdev()
    assert testdev.expected_size == 107394 and all(x.targets == () for x in t)
    assert t[0].parts[0].path.endswith("test2015/COCO_test2015_000000000001.jpg")  # test-dev images are test2015
    ok = VQALoader(questions=str(data / "okvqa" / "OpenEnded_mscoco_val2014_questions.json"),
                   annotations=str(data / "okvqa" / "mscoco_val2014_annotations.json"),
                   image_dir=str(data / "coco" / "val2014"))
    assert len(ok()) == 4 and ok.expected_size == 5046


def test_vizwiz_and_hf_vqa_loaders(data, tmp_path):
    val = VizWizLoader(annotations=str(data / "vizwiz" / "Annotations" / "val.json"), image_dir=str(data / "vizwiz" / "val"))
    samples = val()
    assert val.expected_size == 4319 and _ids(samples) == ["VizWiz_val_00000000", "VizWiz_val_00000001"]
    assert samples[0].targets[0] == "unanswerable" and samples[0].metadata["answer_type"] == "unanswerable"
    assert samples[0].metadata["image_file"] == "VizWiz_val_00000000.jpg"
    test = VizWizLoader(annotations=str(data / "vizwiz" / "Annotations" / "test.json"), image_dir=str(data / "vizwiz" / "test"))
    assert test.expected_size == 8000 and all(s.targets == () for s in test())
    # lmms-lab/VQAv2 (answers as dicts) and lmms-lab/VizWiz-VQA (answers as strings, "category").
    img = data / "coco" / "val2014" / "COCO_val2014_000000393225.jpg"
    qid, image_id, question, answers, at, qt = VQA_QUESTIONS[3]
    _parquet(tmp_path / "VQAv2" / "data" / "validation-00000-of-00001.parquet", [
        {"question_type": qt, "multiple_choice_answer": "3", "image_id": image_id, "answer_type": at,
         "question_id": qid, "question": question, "image": _cell(img),
         "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1} for k, a in enumerate(answers)]}])
    hf = HFVQALoader(path=str(tmp_path / "VQAv2"), split="validation", cache_dir=str(tmp_path / "cache"))
    row = hf()[0]
    assert hf.expected_size == 214354 and row.id == str(qid) and row.targets == tuple(answers)
    assert row.metadata["answer_type"] == "number" and Path(row.parts[0].path).read_bytes() == img.read_bytes()
    _parquet(tmp_path / "VizWiz-VQA" / "data" / "val-00000-of-00001.parquet", [
        {"question_id": "VizWiz_val_00000001", "image": _cell(data / "vizwiz" / "val" / "VizWiz_val_00000001.jpg"),
         "question": "what color is this shirt", "answers": VIZWIZ_VAL[1][2], "category": "other"}])
    viz = HFVQALoader(path=str(tmp_path / "VizWiz-VQA"), split="val", dataset="vizwiz", cache_dir=str(tmp_path / "cache"))()
    assert viz[0].metadata["image_file"] == "VizWiz_val_00000001.jpg" and viz[0].metadata["answer_type"] == "other"


def _grey(path) -> float:
    return float(np.asarray(PILImage.open(path).convert("L")).mean())


def test_seed_bench_images_and_videos_as_frames(data, tmp_path):
    root = data / "seed_bench"
    img = SEEDBenchLoader(annotations=str(root / "SEED-Bench.json"), image_dir=str(root / "SEED-Bench-image"))
    samples = img()
    assert img.expected_size == 14233 and _ids(samples) == ["101669", "17", "205"]
    assert samples[0].choices == ("One", "Two", "Three", "Four") and samples[0].targets == ("B",)
    assert samples[0].metadata["dimension"] == "Instances Counting" and samples[0].metadata["question_type_id"] == 5
    assert samples[1].parts == (Image(str(root / "SEED-Bench-image" / "2001_7.png")),)  # data_id without extension
    video = SEEDBenchLoader(annotations=str(root / "SEED-Bench.json"), dimensions="video", num_frames=4,
                            video_dirs={"10": str(root / "SSV2" / "videos"), 11: str(root / "EPIC-KITCHENS" / "videos"),
                                        "12": str(root / "Breakfast")}, cache_dir=str(tmp_path / "cache"))
    vs = video()
    assert video.expected_size == 3757 and _ids(vs) == ["v1738", "v1962", "v4397"]
    assert all(len(s.parts) == 4 and all(isinstance(p, Image) for p in s.parts) for s in vs)
    # Frame i has grey level 8*i: whole clip (30 frames) -> 0, 10, 19, 29; dimension 11 seconds
    # [1, 2] at 15 fps -> frames 15..29; dimension 12 frames [0, 14] (15 fps) -> frames 0..14.
    expected = {"v1738": [0, 10, 19, 29], "v1962": [15, 20, 24, 29], "v4397": [0, 5, 9, 14]}
    for s in vs:
        assert [_grey(p.path) for p in s.parts] == pytest.approx([8 * i for i in expected[s.id]], abs=4), s.id
    assert vs[1].metadata["segment_s"] == [1.0, 2.0] and vs[2].metadata["segment_s"] == [0.0, 14 / 15]
    # Pre-extracted frames: a folder per question (sorted numerically) or <question_id>_<k> files.
    frames = tmp_path / "frames"
    for k in (10, 2, 1):
        _image(frames / "v1738" / f"{k}.png", k)
    for k in range(3):
        _image(frames / f"v1962_{k}.jpg", k)
    pre = SEEDBenchLoader(annotations=str(root / "SEED-Bench.json"), dimensions=[10, 11, 12], frames_dir=str(frames))()
    assert [Path(p.path).name for p in pre[0].parts] == ["1.png", "2.png", "10.png"]
    assert [Path(p.path).name for p in pre[1].parts] == ["v1962_0.jpg", "v1962_1.jpg", "v1962_2.jpg"]
    assert pre[2].parts == (Image(str(frames / "v4397")),)  # no frames: the model's reader reports it


def test_seed_bench_undecodable_video_stays_a_video_part(data, tmp_path):
    root = tmp_path / "videos"
    (root / "94328.webm").parent.mkdir(parents=True)
    (root / "94328.webm").write_bytes(b"not a video")
    samples = SEEDBenchLoader(annotations=str(data / "seed_bench" / "SEED-Bench.json"), dimensions=[10],
                              video_dirs={10: str(root)}, cache_dir=str(tmp_path / "cache"))()
    assert samples[0].parts == (Video(str(root / "94328.webm")),)
    assert samples[0].metadata["frame_error"].startswith("cannot decode video 94328.webm")


def test_seed_bench_hf_parquet(data, tmp_path):
    rows = []
    for q in SEED_QUESTIONS[:1] + SEED_QUESTIONS[3:4]:
        n = 1 if q["data_type"] == "image" else 3
        cells = [_cell(_image(tmp_path / "src" / f"{q['question_id']}_{k}.png", k)) for k in range(n)]
        rows.append({**{k: v for k, v in q.items() if k != "segment"}, "image": cells})
    _parquet(tmp_path / "SEED-Bench" / "data" / "test-00000-of-00001.parquet", rows)
    image = HFSEEDBenchLoader(path=str(tmp_path / "SEED-Bench"), cache_dir=str(tmp_path / "cache"))()
    assert _ids(image) == ["101669"] and len(image[0].parts) == 1 and image[0].targets == ("B",)
    video = HFSEEDBenchLoader(path=str(tmp_path / "SEED-Bench"), cache_dir=str(tmp_path / "cache"), dimensions="video")()
    assert _ids(video) == ["v1738"] and len(video[0].parts) == 3
    assert [_grey(p.path) for p in video[0].parts] == [_grey(tmp_path / "src" / f"v1738_{k}.png") for k in range(3)]


@pytest.mark.parametrize("make,needle", [
    (lambda d, t: KarpathyLoader(annotations=str(t / "nope.json"), image_root=str(t)),
     "Karpathy split file not found: .*nope.json; .* set paths.data_dir=DIR or task.loader.annotations=PATH"),
    (lambda d, t: VQALoader(questions=str(_write(t / "q.json", "{not json")), image_dir=str(t)), "cannot read VQA questions file"),
    (lambda d, t: VQALoader(questions=str(d / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json"),
                            annotations=str(_json(t / "a.json", {"annotations": []})), image_dir=str(t)),
     "4 questions of .* have no annotation .* \\(e.g. 262148000, 262148001, 393225000\\)"),
    (lambda d, t: VizWizLoader(annotations=str(d / "vizwiz" / "Annotations" / "val.json"), image_dir=str(t),
                               require_images=True), "2 of 2 VizWiz images missing \\(e.g. .*VizWiz_val_00000000.jpg"),
    (lambda d, t: SEEDBenchLoader(annotations=str(d / "seed_bench" / "SEED-Bench.json"), dimensions="video"),
     "dimension 10 is video: set the loader's frames_dir or video_dirs.10"),
    (lambda d, t: HFVQALoader(path=str(t / "absent"), split="val", cache_dir=str(t)),
     "vqav2 HF copy not found: .*absent; data is looked up under paths.data_dir .*: set paths.data_dir=DIR or task.loader.path=PATH"),
])
def test_unreadable_data_is_one_config_error_line(data, tmp_path, make, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        make(data, tmp_path)()
    assert "\n" not in str(info.value)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- prompts ---------------------------------------------------------------------------------------


def test_render_and_stop_at():
    assert render("{image}{question}\nA?", [Image("a"), Image("b")], question="Q {x}") == (
        Image("a"), Image("b"), Text("Q {x}\nA?"))
    assert render("Caption: {image}", [Image("a")]) == (Text("Caption: "), Image("a"))
    assert render("{question}", [Image("a")], question="Q") == (Image("a"), Text("Q"))  # no marker: media first
    assert stop_at("yes ASSISTANT: more", ["ASSISTANT:"]) == "yes " and stop_at("yes", []) == "yes"


VQA_POST = "\nAnswer the question using a single word or phrase."
UNANSWERABLE = "\nWhen the provided information is insufficient, respond with 'Unanswerable'." + VQA_POST
PROMPTS = {
    "caption_coco_karpathy": ("391895", [Text("Provide a one-sentence caption for the provided image. "), "IMG"]),
    "caption_flickr30k": ("1000092795", [Text("Provide a one-sentence caption for the provided image. "), "IMG"]),
    "vqav2_val": ("262148000", ["IMG", Text("Where is he looking?" + VQA_POST)]),
    "vqav2_testdev": ("1000", ["IMG", Text("Is it raining?" + VQA_POST)]),
    "okvqa_val": ("262148000", ["IMG", Text("Where is he looking?" + UNANSWERABLE)]),
    "vizwiz_val": ("VizWiz_val_00000001", ["IMG", Text("What color is this shirt" + UNANSWERABLE)]),
    "vizwiz_test": ("VizWiz_test_00000001", ["IMG", Text("Which one is the remote?" + UNANSWERABLE)]),
    "seedbench_img": ("101669", ["IMG", Text("How many towels are in the image? Answer :")]),
    "seedbench_video": ("v1962", ["IMG"] * 8 + [Text("Please anticipate what action will occur following the end "
                                                     "of this video. Answer :")]),
}


@pytest.mark.parametrize("task", sorted(PROMPTS))
def test_prompt_snapshot(task, data, tmp_path):
    task_obj, _ = build(compose([f"task={task}", "model=dummy", f"paths.data_dir={data}",
                                 f"paths.cache_dir={tmp_path / 'cache'}"]))
    sample_id, expected = PROMPTS[task]
    sample = next(s for s in task_obj.samples() if s.id == sample_id)
    request = task_obj.request(sample)
    images = iter(p for p in sample.parts if isinstance(p, Image))
    assert request.parts == tuple(next(images) if e == "IMG" else e for e in expected)
    assert dict(request.generation)["num_beams"] == 5
    if task.startswith("seedbench"):
        assert request.continuations == tuple(" " + c for c in sample.choices)


def test_seed_generate_prompt_snapshot(data, tmp_path):
    task, _ = build(compose(["task=seedbench_img", "model=dummy", f"paths.data_dir={data}", "task.scoring._target_=mio_eval.tasks.multiple_choice.Generate"]))
    request = task.request(task.samples()[0])
    assert not task.needs_loglikelihood and request.continuations == ()
    assert request.parts[1] == Text("How many towels are in the image?\nA. One\nB. Two\nC. Three\nD. Four\n"
                                    "Answer with the option's letter from the given choices directly.")


# --- end to end -------------------------------------------------------------------------------------

ORACLE: dict[str, str] = {}


class OracleAdapter(DummyAdapter):
    """Answers each sample with ``ORACLE[sample_id]`` after reading its images (a bad image is
    that sample's error, as a real vision model reports it)."""

    def generate(self, requests, *, media_dir):
        outputs = []
        for request in requests:
            try:
                for part in request.parts:
                    if isinstance(part, Image):
                        load_image(part.path)
            except MediaError as exc:
                outputs.append(Output.failure(str(exc)))
                continue
            outputs.append(Output(text=ORACLE[request.sample_id]))
        return outputs


def _oracle(results, data, *extra):
    return [f"paths.results_dir={results}", "runner.progress=false", f"paths.data_dir={data}",
            "model._target_=test_image_tasks.OracleAdapter", "model.name=oracle", *extra]


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_captioning_end_to_end_cider_equals_pycocoevalcap(data, tmp_path):
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    ORACLE.clear()
    ORACLE.update({str(k): v + "\n" for k, v in HELD_OUT.items()})  # the prediction is stripped
    metrics = run("caption_coco_karpathy", "dummy", _oracle(tmp_path, data, "runner.batch_size=2"))
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({k: [{"caption": c} for c in refs] for k, refs in COCO_TEST.items()})
    res = tokenizer.tokenize({k: [{"caption": HELD_OUT[k]}] for k in COCO_TEST})
    expected, per_image = Cider().compute_score(gts, res)
    assert metrics["n"] == 3 and metrics["n_errors"] == 0
    assert metrics["metrics"]["cider"]["value"] == pytest.approx(expected, abs=1e-9)
    assert metrics["metrics"]["cider"]["scale"] == 100.0 and expected > 0.5
    run_dir = tmp_path / "oracle" / "caption_coco_karpathy"
    rows = _lines(run_dir / "scores.jsonl")
    assert [r["cider"] for r in rows] == pytest.approx(list(per_image), abs=1e-9)
    assert json.loads((run_dir / "captions_karpathy_test_results.json").read_text()) == [
        {"image_id": k, "caption": v} for k, v in HELD_OUT.items()]


def test_captioning_corrupt_image_is_a_per_sample_error(data, tmp_path):
    from mio_eval.metrics.caption import cider

    bad = tmp_path / "data"
    (bad / "flickr30k" / "flickr30k-images").mkdir(parents=True)
    (bad / "flickr30k" / "dataset_flickr30k.json").write_bytes((data / "flickr30k" / "dataset_flickr30k.json").read_bytes())
    (bad / "flickr30k" / "flickr30k-images" / "1000092795.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    _image(bad / "flickr30k" / "flickr30k-images" / "10002456.jpg")
    ORACLE.clear()
    ORACLE.update({"1000092795": "x", "10002456": "Men in hard hats work a pulley."})
    metrics = run("caption_flickr30k", "dummy", _oracle(tmp_path / "r", bad, "runner.max_error_rate=0.5"))
    rows = _lines(tmp_path / "r" / "oracle" / "caption_flickr30k" / "scores.jsonl")
    assert rows[0]["error"].startswith("cannot decode image 1000092795.jpg") and rows[1]["error"] is None
    assert metrics["n_errors"] == 1 and metrics["metrics"]["cider"]["n"] == 1
    assert metrics["metrics"]["cider"]["value"] == 0.0 == cider({"a": FLICKR_TEST["10002456"]}, {"a": ORACLE["10002456"]})


def test_vqa_end_to_end_accuracy_by_hand(data, tmp_path):
    # After normalisation the predictions match 4, 2, 9 and 3 of the 10 annotators. Leave-one-out
    # by hand: 4 -> 1.0; 2 -> (2 * 1/3 + 8 * 2/3) / 10 = 0.6; 9 -> 1.0; 3 -> (3 * 2/3 + 7 * 1) / 10 = 0.9.
    ORACLE.clear()
    ORACLE.update({"262148000": "Down.", "262148001": "spectating", "393225000": "Yes", "393225001": "two"})
    metrics = run("vqav2_val", "dummy", _oracle(tmp_path, data))
    m = metrics["metrics"]
    assert m["vqa_accuracy"]["value"] == pytest.approx((1 + 0.6 + 1 + 0.9) / 4)
    assert m["vqa_accuracy"]["variant"] == "lmms" and m["vqa_accuracy"]["n"] == 4
    assert m["vqa_accuracy/other"]["value"] == pytest.approx(0.8)
    assert m["vqa_accuracy/yes/no"]["value"] == 1.0 and m["vqa_accuracy/number"]["value"] == pytest.approx(0.9)
    rows = {r["id"]: r for r in _lines(tmp_path / "oracle" / "vqav2_val" / "scores.jsonl")}
    assert rows["393225001"]["normalized"] == "2" and rows["262148000"]["normalized"] == "down"
    assert [rows[str(q[0])]["accuracy"] for q in VQA_QUESTIONS] == pytest.approx([1, 0.6, 1, 0.9])
    assert not (tmp_path / "oracle" / "vqav2_val" / "vqav2_val_submission.json").exists()


def test_vqa_test_splits_write_evalai_submissions(data, tmp_path):
    metrics = run("vqav2_testdev", "dummy", [f"paths.results_dir={tmp_path}", "runner.progress=false",
                                              f"paths.data_dir={data}", "model.response=' Two dogs. '"])
    assert metrics["metrics"] == {} and metrics["n_errors"] == 0
    sub = json.loads((tmp_path / "dummy" / "vqav2_testdev" / "vqav2_testdev_submission.json").read_text())
    assert sub == [{"question_id": 1000, "answer": "2 dogs"}, {"question_id": 2000, "answer": "2 dogs"}]
    metrics = run("vizwiz_test", "dummy", [f"paths.results_dir={tmp_path}", "runner.progress=false",
                                            f"paths.data_dir={data}", "model.response=\"The cat's toy ASSISTANT: x\""])
    sub = json.loads((tmp_path / "dummy" / "vizwiz_test" / "vizwiz_test_submission.json").read_text())
    assert sub == [{"image": "VizWiz_test_00000000.jpg", "answer": "cat 's toy"},
                   {"image": "VizWiz_test_00000001.jpg", "answer": "cat 's toy"}]
    assert metrics["scoring"]["missing_from_submission"] == []


def test_vizwiz_and_okvqa_use_the_tokenized_variant(data, tmp_path):
    ORACLE.clear()
    ORACLE.update({"VizWiz_val_00000000": "Unanswerable.", "VizWiz_val_00000001": "Navy blue, I think"})
    m = run("vizwiz_val", "dummy", _oracle(tmp_path, data))["metrics"]
    # "unanswerable" 6 of 10 -> 1.0; "navy blue i think" matches nothing -> 0.0.
    assert m["vqa_accuracy"]["value"] == 0.5 and m["vqa_accuracy"]["variant"] == "lmms_tokenized"
    assert m["vqa_accuracy/unanswerable"]["value"] == 1.0 and m["vqa_accuracy/other"]["value"] == 0.0


def test_seedbench_generate_end_to_end_with_invalid_answers(data, tmp_path):
    ORACLE.clear()
    ORACLE.update({"101669": "The answer is (B).", "17": "I am not sure.", "205": "C. blue"})
    metrics = run("seedbench_img", "dummy", _oracle(tmp_path, data, "task.scoring._target_=mio_eval.tasks.multiple_choice.Generate"))
    m = metrics["metrics"]
    assert metrics["n_errors"] == 0 and m["accuracy"]["value"] == pytest.approx(1 / 3)
    assert m["invalid_rate"]["value"] == pytest.approx(1 / 3) and m["accuracy"]["variant"] == "generate/extract"
    assert m["accuracy/Instances Counting"]["value"] == 1.0 and m["accuracy/Scene Understanding"]["value"] == 0.0
    rows = _lines(tmp_path / "oracle" / "seedbench_img" / "scores.jsonl")
    assert [(r["prediction"], r["correct"], r["invalid"]) for r in rows] == [
        ("B", True, False), (None, False, True), ("C", False, False)]
    # lmms-eval's rule: the first character ("T", "I", "C") -> invalid, invalid, C.
    metrics = run("seedbench_img", "dummy", _oracle(tmp_path / "fc", data, "task.scoring._target_=mio_eval.tasks.multiple_choice.Generate",
                                                    "task.letter_rule._target_=mio_eval.tasks.multiple_choice.FirstChar"))
    assert metrics["metrics"]["accuracy"]["value"] == 0.0
    assert metrics["metrics"]["invalid_rate"]["value"] == pytest.approx(2 / 3)


def test_seedbench_video_frames_end_to_end(data, tmp_path):
    metrics = run("seedbench_video", "dummy", [f"paths.results_dir={tmp_path}", "runner.progress=false",
                                                f"paths.data_dir={data}", f"paths.cache_dir={tmp_path / 'cache'}",
                                                "task.scoring._target_=mio_eval.tasks.multiple_choice.Generate", "model.response=B"])
    assert metrics["n"] == 3 and metrics["metrics"]["accuracy"]["value"] == pytest.approx(2 / 3)
    rows = _lines(tmp_path / "dummy" / "seedbench_video" / "predictions.jsonl")
    assert all(sum(p["type"] == "image" for p in r["prompt"]) == 8 for r in rows)


def test_seedbench_likelihood_needs_a_scoring_model(data, tmp_path):
    with pytest.raises(ConfigError, match="cannot score continuations"):
        run("seedbench_img", "dummy", [f"paths.results_dir={tmp_path}", f"paths.data_dir={data}"])


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory):
    """The adapter tests' tiny random LLaVA (CLIP tower + 1-layer Llama, character tokenizer),
    built with their helpers and saved for ``hf_vlm``'s real loading code."""
    torch = pytest.importorskip("torch")
    from test_hf_models import IMAGE, VLM_CHAT, _llama_config, _tokenizer
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration,
                              LlavaProcessor)

    torch.manual_seed(3)
    tok = _tokenizer(None)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=32)
    config = LlavaConfig(vision_config=vision, text_config=_llama_config(len(tok), layers=1, context=512),
                         image_token_index=IMAGE, vision_feature_layer=-1,
                         vision_feature_select_strategy="default", projector_hidden_act="gelu")
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tok, patch_size=8, vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=VLM_CHAT)
    path = tmp_path_factory.mktemp("tiny-llava")
    LlavaForConditionalGeneration(config).save_pretrained(path)
    processor.save_pretrained(path)
    return path


def test_seedbench_likelihood_with_tiny_llava(data, tiny_llava, tmp_path):
    from mio_eval.metrics.choice import rank_choices
    from mio_eval.models.hf_vlm import HFVisionLM

    bad = tmp_path / "data"
    seed = bad / "seed_bench"
    seed.mkdir(parents=True)
    (seed / "SEED-Bench.json").write_bytes((data / "seed_bench" / "SEED-Bench.json").read_bytes())
    (seed / "SEED-Bench-image").symlink_to(data / "seed_bench" / "SEED-Bench-image")
    overrides = [f"paths.results_dir={tmp_path / 'r'}", "runner.progress=false", f"paths.data_dir={bad}",
                 f"model.path={tiny_llava}", "model.dtype=float32", "runner.batch_size=3"]
    metrics = run("seedbench_img", "hf_vlm", overrides)
    rows = _lines(tmp_path / "r" / metrics["model"] / "seedbench_img" / "scores.jsonl")
    assert metrics["n_errors"] == 0 and all(len(r["logprobs"]) == 4 for r in rows)
    assert [r["prediction"] for r in rows] == ["ABCD"[rank_choices(r["logprobs"])] for r in rows]
    assert metrics["metrics"]["accuracy"]["value"] == pytest.approx(sum(r["correct"] for r in rows) / 3)
    assert metrics["metrics"]["accuracy"]["variant"] == "likelihood" and metrics["metrics"]["invalid_rate"]["value"] == 0
    # The stored scores are the adapter's own for the same request, one at a time.
    task, _ = build(compose(["task=seedbench_img", "model=dummy", f"paths.data_dir={bad}"]))
    adapter = HFVisionLM(str(tiny_llava), dtype="float32")
    single = adapter.generate([task.request(task.samples()[2])], media_dir=tmp_path)[0]
    assert list(single.logprobs) == pytest.approx(rows[2]["logprobs"], abs=1e-4)
    # A corrupt image costs that sample only.
    (seed / "SEED-Bench-image").unlink()
    (seed / "SEED-Bench-image").mkdir()
    for name in ("1454426_2591111986.jpg", "2001_7.png"):
        (seed / "SEED-Bench-image" / name).write_bytes((data / "seed_bench" / "SEED-Bench-image" / name).read_bytes())
    (seed / "SEED-Bench-image" / "3003_1.jpg").write_bytes(b"\xff\xd8\xff broken")
    metrics = run("seedbench_img", "hf_vlm", [f"paths.results_dir={tmp_path / 'r2'}", *overrides[1:],
                                              "runner.max_error_rate=0.5"])
    rows = _lines(tmp_path / "r2" / metrics["model"] / "seedbench_img" / "scores.jsonl")
    assert rows[2]["error"].startswith("cannot decode image 3003_1.jpg") and metrics["n_errors"] == 1
    assert metrics["metrics"]["accuracy"]["n"] == 2


def test_caption_full_scores_are_passed_through(data, tmp_path, monkeypatch):
    """``full_scores`` hands the scored split to ``coco_caption_scores`` (tested against
    pycocoevalcap with the metrics; METEOR's JVM is too slow to start here) and keeps the one CIDEr."""
    import mio_eval.tasks.captioning as captioning
    from mio_eval.tasks.base import Generated

    calls = []

    def fake(references, predictions):
        calls.append((references, predictions))
        return {"Bleu_1": 0.7, "Bleu_2": 0.5, "Bleu_3": 0.3, "Bleu_4": 0.2, "METEOR": 0.25, "ROUGE_L": 0.5, "CIDEr": -1}

    monkeypatch.setattr(captioning, "coco_caption_scores", fake)
    task, _ = build(compose(["task=caption_coco_karpathy", "model=dummy", f"paths.data_dir={data}",
                             "task.full_scores=true"]))
    generated = [Generated(sample=s, output=Output(text=HELD_OUT[int(s.id)]), prediction=HELD_OUT[int(s.id)], error=None)
                 for s in task.samples()]
    report = task.score(generated, work_dir=tmp_path / "run" / "scoring")
    values = {m.name: m.value for m in report.metrics}
    assert calls == [({str(k): v for k, v in COCO_TEST.items()}, {str(k): v for k, v in HELD_OUT.items()})]
    assert values.keys() == {"cider", "bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l"}
    assert values["meteor"] == 0.25 and values["cider"] > 0  # CIDEr from CiderD, not the duplicate
    assert all(m.scale == 100.0 and m.n == 3 for m in report.metrics)
    assert list(report.artifacts) == ["captions_karpathy_test_results.json"]  # written by the store, not the task
    assert not (tmp_path / "run").exists()


def test_image_tasks_run_on_tiny_mio(data, tmp_path):
    """Captioning and VQA through the MIO adapter on the tiny checkpoint: the scripted model
    answers "MIO says hi" plus image and speech blocks, which are stripped from the text answer."""
    from mio_eval.models.mio_tiny import build_tiny_mio

    ckpt = build_tiny_mio(tmp_path / "mio")
    for task in ("caption_coco_karpathy", "vqav2_val"):
        metrics = run(task, "mio_tiny", [f"paths.results_dir={tmp_path / 'r'}", "runner.progress=false",
                                         f"paths.data_dir={data}", f"model.path={ckpt}", "runner.batch_size=2"])
        assert metrics["n_errors"] == 0, task
        records = _lines(tmp_path / "r" / "mio_tiny" / task / "predictions.jsonl")
        assert {r["prediction"] for r in records} == {"MIO says hi"}, task
        assert metrics["model_provenance"]["outputs"], task  # stripped stray tokens are counted
    # Multiple choice by log-likelihood: MIO scores every option.
    metrics = run("seedbench_img", "mio_tiny", [f"paths.results_dir={tmp_path / 'r'}", "runner.progress=false",
                                                f"paths.data_dir={data}", f"model.path={ckpt}"])
    assert metrics["n_errors"] == 0 and metrics["metrics"]["accuracy"]["variant"].startswith("likelihood")
    for record in _lines(tmp_path / "r" / "mio_tiny" / "seedbench_img" / "predictions.jsonl"):
        logprobs = record["output"]["logprobs"]
        assert len(logprobs) == 4 and record["prediction"] == "ABCD"[max(range(4), key=lambda i: (logprobs[i], -i))]


def test_vqav2_testdev_submission_exports_and_validates(data, tmp_path):
    from mio_eval.export import export_submission, validate_submission

    run("vqav2_testdev", "dummy", [f"paths.results_dir={tmp_path}", "runner.progress=false",
                                   f"paths.data_dir={data}", "model.response='Two'"])
    from mio_eval.errors import ConfigError

    # The fixture is a few questions of test-dev's 107,394: a server would score the rest as wrong.
    with pytest.raises(ConfigError, match="not a whole split"):
        export_submission(tmp_path / "dummy" / "vqav2_testdev", "vqav2")
    target = export_submission(tmp_path / "dummy" / "vqav2_testdev", "vqav2", force=True)
    rows = json.loads(target.read_text())
    assert rows and validate_submission(rows, "vqav2") == [] and {r["answer"] for r in rows} == {"2"}


def test_vqa_normalizer_is_chosen_by_target(data, tmp_path):
    # One reply, two normalisers: lmms-eval vqav2 keeps "cat's", its ok_vqa/vizwiz processor splits it.
    base = [f"paths.data_dir={data}", "runner.progress=false", "model.response=\"The cat's toy\""]
    answers = {}
    for target in ("Lmms", "LmmsTokenized"):
        out = tmp_path / target
        metrics = run("vqav2_testdev", "dummy", [*base, f"paths.results_dir={out}",
                                                 f"task.normalizer._target_=mio_eval.metrics.vqa.{target}"])
        assert metrics["scoring"]["variant"] == {"Lmms": "lmms", "LmmsTokenized": "lmms_tokenized"}[target]
        sub = json.loads((out / "dummy" / "vqav2_testdev" / "vqav2_testdev_submission.json").read_text())
        answers[target] = {row["answer"] for row in sub}
    assert answers == {"Lmms": {"cat's toy"}, "LmmsTokenized": {"cat 's toy"}}


@pytest.mark.parametrize("override", ["task.normalizer=lmms_tokenized", "+task.variant=lmms_tokenized"])
def test_vqa_string_normalizer_is_refused(data, tmp_path, override):
    with pytest.raises(ConfigError) as err:
        build(compose(["task=vizwiz_val", "model=dummy", f"paths.data_dir={data}", override]))
    message = str(err.value)
    assert "\n" not in message and "task.normalizer._target_=mio_eval.metrics.vqa.LmmsTokenized" in message
    assert "lmms_tokenized" in message
