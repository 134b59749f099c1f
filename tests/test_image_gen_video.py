"""Image generation and video suite (issue #5): SSIM (scikit-image), CLIP (GILL
``evals/compute_clip_similarity_vist.py``, kohjingyu/gill @ 4600b71) and exact-match vectors, loaders on fixtures
written in each dataset's exact format, a tiny random Stable Diffusion pipeline and a tiny random
SigLIP built offline and loaded through the real code, and end-to-end runs through ``mio_eval.run``
for text-to-image, video QA, video generation and visual storytelling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from mio_eval import run
from mio_eval.api import build_task, compose
from mio_eval.errors import ConfigError
from mio_eval.metrics.clip_score import cosine_rows
from mio_eval.metrics.ssim import SSIM, ssim, ssim_settings
from mio_eval.metrics.ssim_windows import GaussianWindow, SkimageWindow
from mio_eval.models.oracle import OracleAdapter, answer_key
from mio_eval.tasks.loaders.karpathy import KarpathyLoader
from mio_eval.tasks.loaders.vist import VISTLoader
from mio_eval.tasks.loaders.video_captions import VideoCaptionLoader
from mio_eval.tasks.loaders.video_qa import VideoQALoader, question_type, read_youtube_mapping, scene_keyframes
from mio_eval.tasks.t2i import CaptionToImageSamples, image_clip_scores, png_copy
from mio_eval.tasks.video_gen import write_mp4
from mio_eval.tasks.video_qa import exact_match, judge_prompt, parse_judge_reply
from mio_eval.types import Image, Modality, Request, Text, Video
from helpers import write_video
from test_clip_metrics import tiny_hf_clip, tiny_open_clip  # noqa: F401 - shared fixtures

COLORS = [(230, 30, 30), (30, 200, 40), (40, 60, 220), (240, 220, 30), (200, 40, 200), (20, 210, 210)]


# --- vectors: SSIM (scikit-image 0.26) ------------------------------------------------------------------

def _ab():
    a = (np.arange(64 * 64).reshape(64, 64) % 256).astype(np.uint8)
    b = a.copy()
    b[::2, ::2] = 255 - b[::2, ::2]
    return a, b


def test_ssim_vectors():
    a, b = _ab()
    assert ssim(a, a) == 1.0
    assert ssim(a, b) == pytest.approx(0.49903814119919254, abs=1e-12)
    assert ssim(a, b, variant="wang2004") == pytest.approx(0.5029686154965677, abs=1e-12)
    rgb_a, rgb_b = np.stack([a, a.T, 255 - a], -1), np.stack([b, b.T, 255 - b], -1)
    assert ssim(rgb_a, rgb_b) == pytest.approx(0.49905395429543137, abs=1e-12)
    assert ssim(a.astype(np.float64), b.astype(np.float64)) == pytest.approx(0.49903814119919254, abs=1e-12)
    # PIL images go through the same path as arrays
    assert ssim(PILImage.fromarray(rgb_a), PILImage.fromarray(rgb_b)) == pytest.approx(0.49905395429543137, abs=1e-12)


def test_ssim_resize_color_settings_and_shell():
    rng = np.random.default_rng(0)
    ref = PILImage.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    small = ref.resize((24, 20), PILImage.BILINEAR)
    expected = ssim(np.asarray(small.resize((48, 40), PILImage.BILINEAR)), np.asarray(ref))
    assert ssim(small, ref) == pytest.approx(expected)  # generated -> reference size, bilinear
    with pytest.raises(ValueError, match="differ in shape"):
        ssim(small, ref, resize="none")
    grey = ssim(small, ref, color="gray")
    assert grey != pytest.approx(expected) and -1 <= grey <= 1
    with pytest.raises(ValueError):
        ssim(ref, ref, variant="gauss")
    metric = SSIM(variant="wang2004")
    metric.update([ref], [ref])
    metric.update([small], [ref])  # batch-split inputs accumulate
    result = metric.compute()
    assert result.n == 2 and result.value == pytest.approx((1.0 + ssim(small, ref, variant="wang2004")) / 2)
    settings = ssim_settings(variant="wang2004")
    assert settings["data_range"] == 255 and settings["skimage_kwargs"]["sigma"] == 1.5
    assert result.extra["settings"]["variant"] == "wang2004" and SSIM().compute().value is None



def test_ssim_window_is_chosen_by_target():
    # The module's vectors: one pair, two windows, two known values; the recorded names are unchanged.
    a = (np.arange(64 * 64).reshape(64, 64) % 256).astype(np.uint8)
    b = a.copy()
    b[::2, ::2] = 255 - b[::2, ::2]
    values = {}
    for window in (SkimageWindow(), GaussianWindow()):
        metric = SSIM(variant=window)
        metric.update([b], [a])
        result = metric.compute()
        values[result.variant.split("/")[0]] = round(result.value, 12)
    assert values == {"skimage": 0.499038141199, "wang2004": 0.502968615497}
    here = ["task=t2i_coco_karpathy", "model=dummy"]
    target = "task.ssim_variant._target_=mio_eval.metrics.ssim_windows.GaussianWindow"
    chosen = build_task(compose([*here, target]))
    assert chosen.ssim_variant == "wang2004" and build_task(compose(here)).ssim_variant == "skimage"
    with pytest.raises(ConfigError, match=r"^task.ssim_variant must be an? SSIM window given by _target_ .*"
                                          r"task.ssim_variant._target_=mio_eval.metrics.ssim_windows.GaussianWindow\), "
                                          r"got 'wang2004'$"):
        build_task(compose([*here, "task.ssim_variant=wang2004"]))


# --- vectors: CLIP (GILL) and exact match (VQA rules) ---------------------------------------------

class FixedEncoder:
    model_id = "fixed"

    def __init__(self, images, texts):
        self.images, self.texts = images, texts

    def encode_images(self, images):
        return np.array([self.images[im.size] for im in images], dtype=np.float64)

    def encode_texts(self, texts):
        return np.array([self.texts[t] for t in texts], dtype=np.float64)

    def provenance(self):
        return {"backend": "fixed"}


def test_clip_cosine_vectors_on_fixed_embeddings():
    a, b = PILImage.new("RGB", (8, 8)), PILImage.new("RGB", (9, 9))
    enc = FixedEncoder({(8, 8): [1.0, 0.0], (9, 9): [0.6, 0.8]}, {"t": [0.31, (1 - 0.31**2) ** 0.5],
                                                                  "neg": [-0.05, (1 - 0.05**2) ** 0.5]})
    cos = image_clip_scores(enc, [a, a], [b, a], ["t", "neg"])
    assert 100 * cos["clip_i"] == pytest.approx([60.0, 100.0])  # e1.e2 = 0.6 -> 60; identical -> 100
    assert 100 * cos["clip_t"] == pytest.approx([31.0, -5.0])  # GILL / MME-Unify style, unclamped
    assert max(100 * cos["clip_t"][1], 0.0) == 0.0  # torchmetrics style clamps
    assert cosine_rows(np.array([[1.0, 0.0]]), np.array([[0.6, 0.8]]))[0] == pytest.approx(0.6)


def test_exact_match_vectors_and_judge_parsing():
    assert exact_match("A dog.", "dog")
    assert exact_match("two", "two") and not exact_match("two", "two", variant="lavis_pred_only")
    assert not exact_match("the man is cooking", "cooking")
    assert question_type("What is the man doing?") == "what" and question_type("is it raining") == "other"
    assert parse_judge_reply("{'pred': 'yes', 'score': 4}") == {"pred": "yes", "score": 4}
    assert parse_judge_reply("Sure! {'pred': 'no', 'score': 4.8} done") == {"pred": "no", "score": 4}
    assert parse_judge_reply("yes") is None and parse_judge_reply("{'pred': 'yes'}") is None
    prompt = judge_prompt("what is it?", "dog", "a cat")
    assert "Correct Answer: dog\nPredicted Answer: a cat" in prompt and "{'pred': 'yes', 'score': 4.8}" in prompt


# --- aesthetic predictor with a tiny random SigLIP -----------------------------------------------

@pytest.fixture(scope="module")
def tiny_siglip(tmp_path_factory):
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    from mio_eval.metrics.aesthetic import build_head

    root = tmp_path_factory.mktemp("siglip")
    config = SiglipConfig(
        text_config=dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8))
    torch.manual_seed(0)
    SiglipModel(config).save_pretrained(root / "siglip")  # a full SiglipModel folder, as google/siglip-*
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(root / "siglip")
    head = build_head(16)
    torch.save(head.state_dict(), root / "aesthetic_predictor_v2_5.pth")
    return {"encoder_path": str(root / "siglip"), "head_path": str(root / "aesthetic_predictor_v2_5.pth")}


def test_aesthetic_predictor_matches_direct_computation(tiny_siglip):
    import torch
    from transformers import SiglipImageProcessor, SiglipVisionModel

    from mio_eval.metrics.aesthetic import AestheticPredictor, build_head

    predictor = AestheticPredictor(**tiny_siglip)
    assert predictor._model is None  # construction is cheap
    images = [_pattern(50, 40, 0), _pattern(33, 61, 1)]
    scores = predictor(images)
    model = SiglipVisionModel.from_pretrained(tiny_siglip["encoder_path"]).eval()
    head = build_head(16)
    head.load_state_dict(torch.load(tiny_siglip["head_path"], weights_only=True))
    head.eval()
    pixels = SiglipImageProcessor.from_pretrained(tiny_siglip["encoder_path"])(images=images, return_tensors="pt")
    with torch.no_grad():
        pooled = model(pixel_values=pixels["pixel_values"]).pooler_output
        direct = head(pooled / pooled.norm(dim=-1, keepdim=True)).reshape(-1).tolist()
    assert scores == pytest.approx(direct, rel=1e-5, abs=1e-6)
    assert predictor.provenance()["hidden_size"] == 16
    with pytest.raises(ConfigError, match="not found"):
        AestheticPredictor(encoder_path=tiny_siglip["encoder_path"], head_path="/nonexistent.pth").load()


# --- fixture data in each dataset's exact format -------------------------------------------------

def _pattern(w, h, seed):
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:] = COLORS[seed % len(COLORS)]
    arr[:: 3 + seed % 3, :, :] = 255 - np.array(COLORS[seed % len(COLORS)], np.uint8)
    return PILImage.fromarray(arr)


def _write_avi(path, arrays, fps=8):
    write_video(path, arrays, fps=fps)


def _scenes(n_scenes=3, per=6, size=32):
    """Frames in ``n_scenes`` flat scenes (black, white, grey...): scene cuts every ``per`` frames."""
    levels = [0, 255, 128, 60, 200][:n_scenes]
    return [np.full((size, size, 3), levels[i // per], np.uint8) for i in range(n_scenes * per)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    # Karpathy dataset_coco.json with val2014 images, and dataset_flickr30k.json with flickr30k-images
    (root / "coco" / "val2014").mkdir(parents=True)
    images = []
    for i in range(3):
        name = f"COCO_val2014_{i + 1:012d}.jpg"
        _pattern(48 + 8 * i, 40, i).save(root / "coco" / "val2014" / name, quality=95)
        images.append({"filepath": "val2014", "filename": name, "imgid": i, "split": "test", "cocoid": i + 1,
                       "sentrids": [], "sentences": [{"raw": f"A picture number {i} caption {k}.", "tokens": [],
                                                      "imgid": i, "sentid": 5 * i + k} for k in range(5)]})
    images.append({"filepath": "val2014", "filename": "COCO_val2014_000000000099.jpg", "imgid": 9, "split": "train",
                   "cocoid": 99, "sentences": [{"raw": "not in the test split"}]})
    (root / "coco" / "dataset_coco.json").write_text(json.dumps({"dataset": "coco", "images": images}))
    (root / "flickr30k" / "flickr30k-images").mkdir(parents=True)
    fl = []
    for i in range(2):
        _pattern(40, 56, i + 3).save(root / "flickr30k" / "flickr30k-images" / f"{1000 + i}.jpg", quality=95)
        fl.append({"filename": f"{1000 + i}.jpg", "imgid": i, "split": "test",
                   "sentences": [{"raw": f"Flickr photo {i} sentence {k}."} for k in range(5)]})
    (root / "flickr30k" / "dataset_flickr30k.json").write_text(json.dumps({"dataset": "flickr30k", "images": fl}))

    # MSVD-QA original release: test_qa.json + youtube_mapping.txt + YouTubeClips/<clip>.avi
    msvd = root / "msvd"
    (msvd / "YouTubeClips").mkdir(parents=True)
    _write_avi(msvd / "YouTubeClips" / "-4wsuPCjDBc_5_15.avi", _scenes(3))
    _write_avi(msvd / "YouTubeClips" / "zv2RIbUsnSw_159_170.avi", _scenes(1, per=12))
    (msvd / "YouTubeClips" / "broken_1_2.avi").write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage, not a video")
    (msvd / "youtube_mapping.txt").write_text("-4wsuPCjDBc_5_15 vid1\nzv2RIbUsnSw_159_170 vid2\nbroken_1_2 vid3\n")
    (msvd / "test_qa.json").write_text(json.dumps([
        {"answer": "dog", "id": 30933, "question": "what is playing?", "video_id": 1},
        {"answer": "two", "id": 30934, "question": "how many dogs are there?", "video_id": 1},
        {"answer": "man", "id": 30935, "question": "who is cooking?", "video_id": 2},
        {"answer": "cat", "id": 30936, "question": "what is sleeping?", "video_id": 3},
    ]))
    # MSRVTT-QA original release: test_qa.json (with category_id) + videos/video<N>.mp4
    msrvtt = root / "msrvtt"
    (msrvtt / "videos").mkdir(parents=True)
    write_mp4([PILImage.fromarray(a) for a in _scenes(2, per=5)], msrvtt / "videos" / "video7010.mp4")
    (msrvtt / "test_qa.json").write_text(json.dumps([
        {"answer": "cooking", "category_id": 3, "id": 158581, "question": "what is the man doing?", "video_id": 7010},
        {"answer": "kitchen", "category_id": 3, "id": 158582, "question": "where is the man?", "video_id": 7010},
    ]))
    # MSR-VTT test_videodatainfo.json for video generation
    (msrvtt / "test_videodatainfo.json").write_text(json.dumps({
        "info": {}, "videos": [{"video_id": "video7010", "split": "test", "category": 3},
                               {"video_id": "video7011", "split": "test", "category": 9},
                               {"video_id": "video1", "split": "train", "category": 1}],
        "sentences": [{"caption": "a man is cooking in a kitchen", "video_id": "video7010", "sen_id": 0},
                      {"caption": "someone cooks", "video_id": "video7010", "sen_id": 1},
                      {"caption": "a red car drives", "video_id": "video7011", "sen_id": 2}]}))
    # VIST story-in-sequence file with images
    vist = root / "vist"
    (vist / "images" / "test").mkdir(parents=True)
    (vist / "sis").mkdir()
    annotations = []
    for story, album in ((0, "a1"), (1, "a2")):
        for step in range(5):
            photo = str(100 * (story + 1) + step)
            _pattern(40, 32, story * 5 + step).save(vist / "images" / "test" / f"{photo}.jpg", quality=95)
            annotations.append([{"original_text": f"Story {story} step {step} with Bob.", "album_id": album,
                                 "photo_flickr_id": photo, "setting": "last-story-in-album", "worker_id": "W",
                                 "story_id": str(4000 + story), "tier": "story-in-sequence",
                                 "worker_arranged_photo_order": 4 - step if story == 1 else step,
                                 "text": f"story {story} step {step} with [male] .", "storylet_id": str(step)}])
    annotations.append([{"original_text": "x", "album_id": "a3", "photo_flickr_id": "999", "story_id": "4002",
                         "worker_arranged_photo_order": 0, "text": "x"}])  # image missing: dropped
    (vist / "sis" / "test.story-in-sequence.json").write_text(json.dumps(
        {"images": [], "albums": [], "type": "story_in_sequence", "annotations": annotations}))
    return root


def test_t2i_samples_caption_policy_and_split(data):
    source = KarpathyLoader(annotations=str(data / "coco" / "dataset_coco.json"), image_root=str(data / "coco"),
                            split="test", dataset="coco")
    first = CaptionToImageSamples(source=source)()
    assert [s.id for s in first] == ["1", "2", "3"]
    assert first[0].parts == (Text("A picture number 0 caption 0."),)
    assert first[0].targets[0].endswith("val2014/COCO_val2014_000000000001.jpg")
    assert first[0].metadata["caption_index"] == 0 and first[0].metadata["n_captions"] == 5
    third = CaptionToImageSamples(source=source, caption="index", caption_index=2)()
    assert third[1].metadata["caption"] == "A picture number 1 caption 2."
    rand = CaptionToImageSamples(source=source, caption="random", seed=3)()
    again = CaptionToImageSamples(source=source, caption="random", seed=3)()
    assert [s.metadata["caption_index"] for s in rand] == [s.metadata["caption_index"] for s in again]
    with pytest.raises(ConfigError):
        CaptionToImageSamples(source=source, caption="index", caption_index=7)()


def test_video_qa_loaders_each_format(data, tmp_path):
    assert read_youtube_mapping(data / "msvd" / "youtube_mapping.txt")[2] == "zv2RIbUsnSw_159_170"
    msvd = VideoQALoader(annotations=str(data / "msvd" / "test_qa.json"), video_dir=str(data / "msvd" / "YouTubeClips"),
                         dataset="msvd", frames="keyframes_approx", num_frames=10, cache_dir=str(tmp_path))()
    by_id = {s.id: s for s in msvd}
    assert list(by_id) == ["30933", "30934", "30935", "30936"]
    first = by_id["30933"]
    assert first.metadata["frame_indices"] == [0, 6, 12]  # one frame per scene
    assert all(isinstance(p, Image) for p in first.parts) and first.targets == ("dog",)
    assert first.metadata["video_name"] == "-4wsuPCjDBc_5_15" and first.metadata["question_type"] == "what"
    assert by_id["30934"].parts == first.parts  # frames cached per video, shared by its questions
    assert by_id["30935"].metadata["frame_indices"] == list(range(0, 12, 1))  # one scene: MIO's n//10 stride
    broken = by_id["30936"]
    assert isinstance(broken.parts[0], Video) and "cannot decode" in broken.metadata["frames_error"]
    # uniform frames and the per-video cache (second load reads the cached files)
    uni = VideoQALoader(annotations=str(data / "msvd" / "test_qa.json"), video_dir=str(data / "msvd" / "YouTubeClips"),
                        dataset="msvd", frames="uniform", num_frames=4, cache_dir=str(tmp_path), max_samples=1)()
    assert uni[0].metadata["frame_indices"] == [0, 6, 11, 17]
    again = VideoQALoader(annotations=str(data / "msvd" / "test_qa.json"),
                          video_dir=str(data / "msvd" / "YouTubeClips"), dataset="msvd", frames="uniform",
                          num_frames=4, cache_dir=str(tmp_path), max_samples=1)()
    assert again[0].parts == uni[0].parts
    frame = np.asarray(PILImage.open(uni[0].parts[2].path))
    assert abs(int(frame.mean()) - 255) <= 3  # frame 11 is in the white scene
    # MSRVTT original release
    msrvtt = VideoQALoader(annotations=str(data / "msrvtt" / "test_qa.json"), video_dir=str(data / "msrvtt" / "videos"),
                           dataset="msrvtt", frames="video")()
    assert msrvtt[0].parts == (Video(str(data / "msrvtt" / "videos" / "video7010.mp4")),)
    assert msrvtt[0].metadata["category_id"] == 3 and msrvtt[1].metadata["question_type"] == "where"
    # LAVIS annotation layout
    lavis = tmp_path / "lavis_test.json"
    lavis.write_text(json.dumps([{"question": "what is the man doing?", "answer": "cooking",
                                  "video": "video7010.mp4", "question_id": 5}]))
    lv = VideoQALoader(annotations=str(lavis), video_dir=str(data / "msrvtt" / "videos"), dataset="msrvtt",
                       frames="video")()
    assert lv[0].id == "5" and lv[0].parts[0].path.endswith("video7010.mp4")
    # a local HF copy (parquet shard) with the video bytes embedded
    import pyarrow as pa
    import pyarrow.parquet as pq

    hf = tmp_path / "hf_msrvtt_qa"
    (hf / "data").mkdir(parents=True)
    video_bytes = (data / "msrvtt" / "videos" / "video7010.mp4").read_bytes()
    pq.write_table(pa.table({"question": ["what is the man doing?"], "answer": ["cooking"],
                             "video": [{"bytes": video_bytes, "path": "video7010.mp4"}], "question_id": [11]}),
                   hf / "data" / "test-00000-of-00001.parquet")
    hq = VideoQALoader(annotations=str(hf), video_dir=str(tmp_path), dataset="msrvtt", frames="mio_stride",
                       cache_dir=str(tmp_path / "c"), id_column="question_id")()
    assert hq[0].id == "11" and hq[0].metadata["frame_indices"] == list(range(10))  # 10 frames: every 1st
    with pytest.raises(ConfigError, match="frames must be"):
        VideoQALoader(annotations="x.json", video_dir=".", dataset="msvd", frames="all", cache_dir=".")


def test_scene_keyframes_rules():
    assert scene_keyframes([np.zeros((4, 4, 3), np.uint8)] * 25) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]
    many = [np.full((4, 4, 3), 255 * (i % 2), np.uint8) for i in range(30)]  # a cut at every frame
    keys = scene_keyframes(many, max_frames=5)
    assert len(keys) == 5 and keys[0] == 0 and keys[-1] == 29


def test_vist_and_video_caption_loaders(data):
    stories = VISTLoader(annotations=str(data / "vist" / "sis" / "test.story-in-sequence.json"),
                         image_dir=str(data / "vist" / "images"))
    samples = stories()
    assert [s.id for s in samples] == ["4000", "4001"] and stories.dropped == 1
    steps = samples[1].metadata["steps"]  # sorted by worker_arranged_photo_order
    assert [s["photo_id"] for s in steps] == ["204", "203", "202", "201", "200"]
    assert steps[0]["text"] == "Story 1 step 4 with Bob." and samples[1].targets[0].endswith("204.jpg")
    anon = VISTLoader(annotations=str(data / "vist" / "sis" / "test.story-in-sequence.json"),
                      image_dir=str(data / "vist" / "images"), text_field="text")()
    assert anon[0].metadata["steps"][0]["text"] == "story 0 step 0 with [male] ."
    videos = VideoCaptionLoader(annotations=str(data / "msrvtt" / "test_videodatainfo.json"))()
    assert [s.id for s in videos] == ["video7010", "video7011"]
    assert videos[0].metadata["caption"] == "a man is cooking in a kitchen" and videos[0].metadata["n_captions"] == 2


# --- oracle adapter and content-addressed PNGs -----------------------------------------------------

def test_png_copy_is_content_addressed(tmp_path):
    _pattern(20, 10, 1).save(tmp_path / "a.jpg")
    first = png_copy(tmp_path / "a.jpg")
    assert Path(first).parent.name == "t2i" and Path(first).suffix == ".png"
    assert png_copy(first) == first  # already <digest>.png: kept
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    from mio_eval.errors import MediaError

    with pytest.raises(MediaError):
        png_copy(tmp_path / "bad.png")


def test_oracle_adapter_answers_from_key_and_reads_inputs(tmp_path):
    _pattern(8, 8, 0).save(tmp_path / "gt.png")
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"a": {"image": str(tmp_path / "gt.png")}, "b": {"text": "dog"}}))
    oracle = OracleAdapter(answers_path=str(key), read_inputs=True)
    (tmp_path / "bad.mp4").write_bytes(b"garbage")
    outs = oracle.generate([Request(sample_id="a", parts=(Text("x"),)),
                            Request(sample_id="b", parts=(Video(str(tmp_path / "bad.mp4")),)),
                            Request(sample_id="c", parts=(Text("x"),))], media_dir=tmp_path / "media")
    assert outs[0].media[0].path.startswith(str(tmp_path / "media"))
    assert "cannot decode video" in outs[1].error and "no answer" in outs[2].error


# --- tiny Stable Diffusion pipeline ----------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    root = tmp_path_factory.mktemp("sd")
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = {t: i for i, t in enumerate(["<|startoftext|>", "<|endoftext|>", *letters, *(x + "</w>" for x in letters)])}
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"), model_max_length=77)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=37,
                                                num_hidden_layers=1, num_attention_heads=4, max_position_embeddings=77,
                                                bos_token_id=0, eos_token_id=1, pad_token_id=1))
    unet = UNet2DConditionModel(block_out_channels=(32, 32), layers_per_block=1, sample_size=16, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=32, attention_head_dim=8)
    vae = AutoencoderKL(block_out_channels=[32], in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"],
                        up_block_types=["UpDecoderBlock2D"], latent_channels=4, norm_num_groups=32, sample_size=16)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(root / "tiny-sd")
    return str(root / "tiny-sd")


def test_diffusers_adapter_batched_and_seeded_per_request(tiny_sd, tmp_path):
    from mio_eval.models.diffusers_t2i import DiffusersT2I, request_seed

    adapter = DiffusersT2I(path=tiny_sd, num_inference_steps=2)
    assert adapter.pipe is None  # construction is cheap
    reqs = [Request(sample_id=s, parts=(Text(t),), output_modality=Modality.IMAGE, generation={"seed": 0})
            for s, t in (("1", "a red square"), ("2", "a blue dog"), ("3", "a red square"))]
    batch = adapter.generate(reqs, media_dir=tmp_path)
    alone = adapter.generate(reqs[1:2], media_dir=tmp_path)
    assert alone[0].media[0].path == batch[1].media[0].path  # same bytes whatever the batch
    assert batch[0].media[0].path != batch[2].media[0].path  # same prompt, other sample id: other noise
    assert PILImage.open(batch[0].media[0].path).size == (16, 16)
    reseeded = adapter.generate([Request(sample_id="2", parts=(Text("a blue dog"),), generation={"seed": 1})],
                                media_dir=tmp_path)
    assert reseeded[0].media[0].path != batch[1].media[0].path
    assert request_seed(reqs[0], "fixed") == 0 and adapter.provenance()["scheduler"] == "DDIMScheduler"
    with pytest.raises(ConfigError, match="model_index.json"):
        DiffusersT2I(path=str(tmp_path)).load()


# --- end to end through mio_eval.run -----------------------------------------------------------------

def _run(task, model, tmp_path, data, *extra):
    return run(task, model, [f"paths.results_dir={tmp_path / 'results'}", f"paths.data_dir={data}",
                             f"paths.cache_dir={tmp_path / 'cache'}", "runner.progress=false",
                             "runner.max_error_rate=1.0", *extra])


def _t2i_samples(data, name="coco"):
    if name == "coco":
        source = KarpathyLoader(annotations=str(data / "coco" / "dataset_coco.json"), image_root=str(data / "coco"),
                                split="test", dataset="coco")
    else:
        source = KarpathyLoader(annotations=str(data / "flickr30k" / "dataset_flickr30k.json"),
                                image_root=str(data / "flickr30k"), split="test", dataset="flickr30k")
    return CaptionToImageSamples(source=source)()


def test_t2i_oracle_scores_clip_i_100_and_ssim_1(data, tmp_path, tiny_hf_clip, tiny_siglip):  # noqa: F811
    key = answer_key(_t2i_samples(data), tmp_path / "key.json")
    metrics = _run("t2i_coco_karpathy", "oracle", tmp_path, data, f"model.answers_path={key}",
                   f"task.clip.path={tiny_hf_clip}", "task.score_aesthetic=true",
                   f"task.aesthetic.encoder_path={tiny_siglip['encoder_path']}",
                   f"task.aesthetic.head_path={tiny_siglip['head_path']}")
    m = metrics["metrics"]
    assert metrics["n_errors"] == 0 and m["clip_i"]["n"] == 3
    assert m["clip_i"]["value"] * m["clip_i"]["scale"] == pytest.approx(100.0, abs=1e-3)
    assert m["ssim"]["value"] == pytest.approx(1.0)
    assert m["clip_t"]["variant"] == "mme_unify" and m["clip_t_clamped"]["variant"] == "torchmetrics"
    assert m["clip_t_clamped"]["value"] >= m["clip_t"]["value"]
    assert m["aesthetic"]["n"] == 3 and metrics["scoring"]["ssim"]["data_range"] == 255
    run_dir = tmp_path / "results" / "oracle" / "t2i_coco_karpathy"
    split = json.loads((run_dir / "t2i_split.json").read_text())
    assert [x["caption_index"] for x in split["images"]] == [0, 0, 0]
    assert split["sha256"] == metrics["scoring"]["split_sha256"]
    rows = [json.loads(line) for line in (run_dir / "scores.jsonl").read_text().splitlines()]
    assert rows[0]["caption"] == "A picture number 0 caption 0." and rows[0]["clip_i"] == pytest.approx(100, abs=1e-3)
    pngs = sorted((run_dir / "media" / "t2i").glob("*.png"))
    assert len(pngs) == 3 and all(PILImage.open(p).format == "PNG" for p in pngs)
    assert {Path(r["generated"]).name for r in rows} == {p.name for p in pngs}


def test_t2i_with_the_open_clip_backend(data, tmp_path, tiny_open_clip):  # noqa: F811
    key = answer_key(_t2i_samples(data, "flickr30k"), tmp_path / "key.json")
    metrics = _run("t2i_flickr30k", "oracle", tmp_path, data, f"model.answers_path={key}",
                   "task.clip._target_=mio_eval.metrics.clip_score.OpenClipEncoder", "~task.clip.path",
                   f"+task.clip.arch={tiny_open_clip['arch']}", f"+task.clip.pretrained={tiny_open_clip['pretrained']}",
                   f"+task.clip.model_config={tiny_open_clip['model_config']}")
    m = metrics["metrics"]
    assert m["clip_i"]["value"] == pytest.approx(1.0, abs=1e-5) and m["ssim"]["value"] == pytest.approx(1.0)
    assert metrics["judges"][0]["backend"] == "open_clip" and m["clip_i"]["extra"]["model"] == "open_clip:mio-tiny-clip"


def test_t2i_corrupt_images_are_per_sample_errors(data, tmp_path, tiny_hf_clip):  # noqa: F811
    import shutil

    local = tmp_path / "data"
    shutil.copytree(data / "flickr30k", local / "flickr30k")
    samples = _t2i_samples(local, "flickr30k")
    bad_gt = Path(samples[1].targets[0])
    bad_gt.write_bytes(bad_gt.read_bytes()[:100])  # a truncated JPEG ground truth
    (tmp_path / "garbage.png").write_bytes(b"not an image")
    key = {samples[0].id: {"image": str(tmp_path / "garbage.png")},  # the model wrote garbage
           samples[1].id: {"image": str(data / "flickr30k" / "flickr30k-images" / "1001.jpg")}}
    (tmp_path / "key.json").write_text(json.dumps(key))
    from mio_eval.errors import RunFailed

    with pytest.raises(RunFailed, match="all 2 samples failed"):  # nothing scored: the run is not a success
        _run("t2i_flickr30k", "oracle", tmp_path, local, f"model.answers_path={tmp_path / 'key.json'}",
             f"task.clip.path={tiny_hf_clip}", f"model.media_roots=[{data}]")
    metrics = json.loads((tmp_path / "results" / "oracle" / "t2i_flickr30k" / "metrics.json").read_text())
    assert metrics["errors"] == {"generate": 1, "score": 1} and metrics["metrics"]["ssim"]["n"] == 0
    rows = [json.loads(line) for line in
            (tmp_path / "results" / "oracle" / "t2i_flickr30k" / "scores.jsonl").read_text().splitlines()]
    assert rows[0]["error"].startswith("invalid output: generated image unreadable")
    assert rows[1]["stage"] == "score" and "cannot decode image" in rows[1]["error"]


def test_t2i_with_the_tiny_diffusers_pipeline(data, tmp_path, tiny_sd, tiny_hf_clip):  # noqa: F811
    metrics = _run("t2i_coco_karpathy", "diffusers_t2i", tmp_path, data, f"model.path={tiny_sd}",
                   "model.num_inference_steps=2", f"task.clip.path={tiny_hf_clip}", "runner.batch_size=2",
                   "task.ssim_variant._target_=mio_eval.metrics.ssim_windows.GaussianWindow")
    m = metrics["metrics"]
    assert metrics["n_errors"] == 0 and m["clip_i"]["n"] == 3 and m["ssim"]["variant"].startswith("wang2004")
    assert -1 <= m["ssim"]["value"] < 1 and metrics["model_provenance"]["seed_policy"] == "per_sample"
    media = tmp_path / "results" / metrics["model"] / "t2i_coco_karpathy" / "media"
    assert len(list(media.glob("*.png"))) == 3  # already content-addressed: no second copy


def test_video_qa_end_to_end_oracle_dummy_and_judge(data, tmp_path):
    loader = VideoQALoader(annotations=str(data / "msvd" / "test_qa.json"),
                           video_dir=str(data / "msvd" / "YouTubeClips"), dataset="msvd", frames="keyframes",
                           num_frames=10, cache_dir=str(tmp_path / "cache"))
    key = answer_key(loader(), tmp_path / "key.json")
    common = [f"task.loader.video_dir={data / 'msvd' / 'YouTubeClips'}"]
    metrics = _run("msvd_qa", "oracle", tmp_path, data, f"model.answers_path={key}", "model.read_inputs=true", *common)
    m = metrics["metrics"]
    assert metrics["errors"]["generate"] == 1  # the undecodable clip fails in the model's reader
    assert m["accuracy"]["value"] == 1.0 and m["accuracy"]["n"] == 3
    assert m["accuracy_lavis"]["value"] == pytest.approx(2 / 3)  # "two" -> "2" vs the raw "two"
    assert m["accuracy/what"]["n"] == 1 and m["accuracy/how"]["value"] == 1.0 and m["accuracy_lavis/how"]["value"] == 0
    assert metrics["scoring"]["n_frames_errors"] == 1
    run_dir = tmp_path / "results" / "oracle" / "msvd_qa"
    record = json.loads((run_dir / "predictions.jsonl").read_text().splitlines()[0])
    assert record["prompt"][0]["text"].startswith("The goal is to use the visual information")
    assert [p["type"] for p in record["prompt"]].count("image") >= 1 and record["prompt"][-1]["text"].startswith(
        " Question: ")
    # MSRVTT with the echoing dummy (the answer is the prompt: exact match 0) and the judge metric
    dummy = _run("msrvtt_qa", "dummy", tmp_path, data, "task.loader.frames=uniform", "task.loader.num_frames=4",
                 "+task.judge._target_=mio_eval.models.dummy.DummyAdapter", "+task.judge.name=judge",
                 "+task.judge.response=\"{'pred': 'yes', 'score': 4}\"")
    dm = dummy["metrics"]
    assert dm["accuracy"]["value"] == 0.0 and dm["accuracy/category_3"]["n"] == 2
    assert dm["judge_accuracy"]["value"] == 1.0 and dm["judge_score"]["value"] == 4.0
    assert dummy["judges"][0]["name"] == "judge" and dummy["scoring"]["judge_model"] == "judge"
    judged = (tmp_path / "results" / "dummy" / "msrvtt_qa" / "scoring" / "judge.jsonl").read_text().splitlines()
    assert json.loads(judged[0])["parsed"] == {"pred": "yes", "score": 4}


def test_video_generation_end_to_end_writes_viewable_mp4(data, tmp_path, tiny_hf_clip):  # noqa: F811
    frames = []
    for i in range(4):
        path = tmp_path / f"f{i}.png"
        _pattern(33, 25, i % 2).save(path)  # odd size: padded to even for yuv420p
        frames.append(str(path))
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"video7010": {"image": frames}, "video7011": {"text": "no video here"}}))
    metrics = _run("video_gen_msrvtt", "oracle", tmp_path, data, f"model.answers_path={key}",
                   f"task.clip.path={tiny_hf_clip}")
    m = metrics["metrics"]
    assert metrics["errors"]["generate"] == 1 and m["clip_t"]["n"] == 1 and m["frame_consistency"]["n"] == 1
    run_dir = tmp_path / "results" / "oracle" / "video_gen_msrvtt"
    rows = [json.loads(line) for line in (run_dir / "scores.jsonl").read_text().splitlines()]
    assert rows[0]["n_frames"] == 4 and len(rows[0]["clip_t_frames"]) == 4
    assert "expected generated frames" in rows[1]["error"]
    videos = list((run_dir / "media" / "videos").glob("*.mp4"))
    assert len(videos) == 1
    import av

    with av.open(str(videos[0])) as container:
        decoded = [f.to_image() for f in container.decode(video=0)]
    assert len(decoded) == 4 and decoded[0].size == (34, 26)


def test_visual_story_end_to_end_oracle(data, tmp_path, tiny_hf_clip):  # noqa: F811
    samples = VISTLoader(annotations=str(data / "vist" / "sis" / "test.story-in-sequence.json"),
                         image_dir=str(data / "vist" / "images"))()
    key = tmp_path / "key.json"
    key.write_text(json.dumps({s.id: {"image": [s.metadata["steps"][-1]["image"]], "text": "The end."}
                               for s in samples}))
    metrics = _run("vist_story", "oracle", tmp_path, data, f"model.answers_path={key}",
                   f"task.clip.path={tiny_hf_clip}")
    m = metrics["metrics"]
    assert metrics["n_errors"] == 0 and m["clip_i"]["value"] * 100 == pytest.approx(100.0, abs=1e-3)
    assert m["steps_complete"]["value"] == 1.0 and m["image_consistency"]["n"] == 2
    record = json.loads((tmp_path / "results" / "oracle" / "vist_story" / "predictions.jsonl")
                        .read_text().splitlines()[0])
    kinds = [p["type"] for p in record["prompt"]]
    assert kinds.count("image") == 4 and record["prompt"][-1]["text"].startswith("Step 5:")


@pytest.mark.parametrize("task,output", [("t2i_coco_karpathy", "image"), ("msvd_qa", "text"),
                                         ("video_gen_msrvtt", "video"), ("vist_story", "interleaved")])
def test_families_run_on_tiny_mio(task, output, data, tmp_path, tiny_hf_clip):  # noqa: F811
    """Image generation, video QA, video generation and interleaved output through the MIO adapter
    on the tiny checkpoint (scripted: "MIO says hi" + one image block + one speech block)."""
    from mio_eval.models.mio_tiny import build_tiny_mio

    ckpt = build_tiny_mio(tmp_path / "mio")
    extra = [f"task.clip.path={tiny_hf_clip}"] if task != "msvd_qa" else []
    metrics = _run(task, "mio_tiny", tmp_path, data, f"model.path={ckpt}", "runner.limit=2", *extra)
    assert metrics["errors"]["generate"] == 0, metrics
    records = [json.loads(line) for line in
               (tmp_path / "results" / "mio_tiny" / task / "predictions.jsonl").read_text().splitlines()]
    for record in records:
        media = [p["type"] for p in record["output"]["media"]]
        if output == "text":
            assert record["prediction"] == "MIO says hi" and not media
        else:
            assert "image" in media  # a decoded SEED block written as a PNG
            for part in record["output"]["media"]:
                assert (tmp_path / "results" / "mio_tiny" / task / part["path"]).is_file()
