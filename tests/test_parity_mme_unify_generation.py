"""MME-Unify generation and unify scoring against the official scripts (issue #14).

``tests/reference/mme_unify_generation/reference.json`` (``scripts/reference/mme_unify_generation_fixture.py``)
holds what aba122/MME-Unify @0956091's ``Evaluate_Generation.py``, ``Evaluate_Generation_Video.py``,
``Evaluate_IEE.py``, ``Evaluate_CS.py``, ``Evaluate_Math_Geo.py``, ``Evaluate_SpotDiff.py`` and
``Evaluate_VSP.py`` computed on the fixture of ``tests/reference/mme_unify_generation_cases.py``,
with tiny seeded CLIP / AlexNet / ResNet-50 weights in place of the hub checkpoints. The test
rebuilds the same fixture and weights (their digests must match the fixture's), runs ours through the
real loading code and compares:

* FIR / TIE / TIG: a real ``mme_unify_generation_image`` run (oracle model returning the fixture's
  generated images): per item PSNR, LPIPS, CLIP-I (ours x100), CLIP-T, within 1e-6 (relative for
  CLIP-T, which is ``logit_scale.exp() * cos`` there); per-subtask means; the skipped items.
* CIVG / TVG / VP: key frame indices (ours from the video, theirs from ``extract_keyframes``), exact;
  our ``frame_codec=jpeg_q95`` frames equal, pixel for pixel, the JPEG files its ``extract_keyframes``
  wrote (committed); a real ``mme_unify_generation_video`` run with that variant: per item the
  FVD-style distance and the mean per-frame CLIP-T (70 words; none without a reference video),
  1e-6; means, mapped score and the all-equal quirk.
* IEE / CSQ / AL / SD / VCoT: a real ``mme_unify_unify`` run on raw replies (official variants
  ``iee_text_label=position``, ``vcot_denominator=official``); its submission scored by each
  official script: per item text / image / combined (VCoT: per step action / location / image)
  correctness and the accuracies, exact.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from mio_eval import run

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "reference"))
import mme_unify_generation_cases as cases  # noqa: E402

REF_DIR = HERE / "reference" / "mme_unify_generation"
FIXTURE = json.loads((REF_DIR / "reference.json").read_text(encoding="utf-8"))
REL = 1e-6


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("mmeu_gen")
    data = cases.build(root / "data")
    models = {"clip": cases.tiny_clip(root / "models" / "tiny-clip"),
              "alexnet": cases.alexnet_state(root / "models" / "alexnet.pth"),
              "resnet50": cases.resnet50_state(root / "models" / "resnet50.pth")}
    inputs = FIXTURE["inputs"]
    assert cases.weights_digest([models["clip"] / "model.safetensors", models["alexnet"],
                                 models["resnet50"]]) == inputs["weights_digest"], "tiny weights changed: regenerate"
    assert cases.media_digest(data["data_root"]) == inputs["data_digest"], "fixture media changed: regenerate"
    assert cases.media_digest(data["answers_dir"]) == inputs["answers_digest"], "fixture answers changed: regenerate"
    return {**data, "models": models, "root": root}


def _run(task, built, *extra):
    results = built["root"] / "results" / task
    metrics = run(task, "oracle", [
        f"paths.results_dir={results}", "runner.progress=false", "runner.max_error_rate=1.0",
        f"paths.data_dir={built['data_root'].parent}",
        f"model.answers_path={built['answers_dir'] / 'key.json'}", f"task.clip.path={built['models']['clip']}", *extra])
    run_dir = results / metrics["model"] / metrics["task"]
    rows = [json.loads(line) for line in (run_dir / "scores.jsonl").read_text().splitlines()]
    metrics["run_dir"] = str(run_dir)
    return metrics, {r["id"]: r for r in rows}


# --- FIR / TIE / TIG --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image_run(built):
    return _run("mme_unify_generation_image", built, f"task.lpips.backbone_path={built['models']['alexnet']}")


def test_image_generation_per_item(image_run):
    _, rows = image_run
    official = FIXTURE["generation_image"]["per_item"]
    assert {k for k, r in rows.items() if not r["error"]} == set(official)
    for sid, ref in official.items():
        ours = rows[sid]
        if "psnr" in ref:
            if math.isfinite(ref["psnr"]):
                assert ours["psnr"] == pytest.approx(ref["psnr"], abs=1e-6), sid
            else:
                assert ours["psnr"] == ref["psnr"], sid
            assert ours["lpips"] == pytest.approx(ref["lpips"], abs=1e-6), sid
        if "clip_i" in ref:  # official: cosine; ours x100
            assert ours["clip_i"] / 100 == pytest.approx(ref["clip_i"], abs=1e-6), sid
            assert ours["clip_t"] == pytest.approx(ref["clip_t"], rel=REL, abs=1e-5), sid
        if "lpips_d" in ref:
            assert ours["lpips"] == pytest.approx(ref["lpips_d"], abs=1e-6), sid


def test_image_generation_means_and_skips(image_run):
    metrics, rows = image_run
    m = metrics["metrics"]
    printed = FIXTURE["generation_image"]["printed_means"]
    official = FIXTURE["generation_image"]["per_item"]
    names = {"psnr": "psnr", "lpips": "lpips", "clip_i": "clip_i", "clip_t": "clip_t", "lpips_d": "lpips"}
    for code, means in printed.items():
        assert m[f"score/{code}"]["n"] == means["n"]  # the error and the empty output are skipped by both
        for key, value in means.items():
            if key == "n":
                continue
            ours = m[f"{names[key]}/{code}"]["value"] / (100 if key == "clip_i" else 1)
            exact = float(np.mean([r[key] for sid, r in official.items() if sid.startswith(code)]))
            assert ours == exact if math.isinf(exact) else ours == pytest.approx(exact, rel=REL, abs=1e-6), (code, key)
            assert math.isinf(value) or round(exact, 4) == value
    assert rows["TIG-309"]["error"] and rows["FIR-109"]["error"]


# --- CIVG / TVG / VP --------------------------------------------------------------------------------


def test_keyframe_indices_equal_extract_keyframes(built):
    from mio_eval.metrics.image_quality import keyframe_indices, read_video_frames

    video = FIXTURE["generation_video"]
    for sid, indices in video["keyframes"].items():
        assert keyframe_indices(read_video_frames(built["key"][sid]["video"])) == indices, sid
    for name, indices in video["keyframe_videos"].items():
        frames = read_video_frames(built["answers_dir"] / "keyframes" / f"{name}.mp4")
        assert keyframe_indices(frames) == indices, name


@pytest.fixture(scope="module")
def video_run(built):
    return _run("mme_unify_generation_video", built, f"task.video_features.weights_path={built['models']['resnet50']}",
                "task.frame_codec=jpeg_q95")


def test_jpeg_key_frames_are_the_official_files(built):
    from mio_eval.metrics.image_quality import frame_codec, load_rgb, read_video_frames

    for sid, indices in FIXTURE["generation_video"]["keyframes"].items():
        frames = read_video_frames(built["key"][sid]["video"])
        files = sorted((REF_DIR / "keyframes" / sid).glob("keyframe_*.jpg"))
        assert [int(f.stem.split("_")[1]) for f in files] == indices
        for i, f in zip(indices, files):
            ours = np.asarray(frame_codec(frames[i], "jpeg_q95"))
            assert np.array_equal(ours, np.asarray(load_rgb(f))), (sid, i)


def test_video_generation_per_item(video_run):
    from mio_eval.metrics.image_quality import fvd_to_score

    _, rows = video_run
    official = FIXTURE["generation_video"]["per_item"]
    for sid, row in rows.items():
        ref = official.get(sid, {})
        assert row["error"] is None, sid
        if "fvd" in ref:
            # the reference sums float32 squares of float32 frame means, ours float64: relative 1e-6 (and
            # 1e-5 absolute for the near-zero distance of a video with itself)
            assert row["fvd"] == pytest.approx(ref["fvd"], rel=REL, abs=1e-5), sid
            assert fvd_to_score(row["fvd"]) == pytest.approx(fvd_to_score(ref["fvd"]), rel=REL), sid
        else:  # no reference video: neither side computes anything
            assert row["fvd"] is None and "clip_t" not in row, sid
        if "clip_frame_scores" in ref:  # official: per-frame cosine, mean per item; ours x100
            assert row["clip_t"] / 100 == pytest.approx(float(np.mean(ref["clip_frame_scores"])), abs=1e-6), sid
        else:
            assert "clip_t" not in row, sid


def test_video_generation_means(video_run):
    metrics, _ = video_run
    m = metrics["metrics"]
    summary = FIXTURE["generation_video"]["summary"]
    for code, name in (("CIVG", "image_to_video"), ("TVG", "text_to_video"), ("VP", "video_prediction")):
        part = summary[name]
        assert m[f"fvd/{code}"]["n"] == part["processed_samples"]
        assert m[f"fvd/{code}"]["value"] == pytest.approx(part["fvd_score"], rel=REL)
        assert m[f"score/{code}"]["value"] == pytest.approx(part["fvd_normalized"], rel=REL)
        if part["n_clip"]:
            assert m[f"clip_t/{code}"]["n"] == part["n_clip"]
            assert m[f"clip_t/{code}"]["value"] / 100 == pytest.approx(part["clip_mean"], abs=1e-6)
        else:
            assert f"clip_t/{code}" not in m
    assert summary["text_to_video"]["fvd_normalized"] == 100.0 and m["score/TVG"]["extra"]["all_equal_quirk_applied"]


def test_video_score_mapping_and_quirk():
    from mio_eval.metrics.image_quality import normalize_video_scores

    per_item = FIXTURE["generation_video"]["per_item"]
    summary = FIXTURE["generation_video"]["summary"]
    for code, name in (("CIVG", "image_to_video"), ("TVG", "text_to_video"), ("VP", "video_prediction")):
        raw = [r["fvd"] for sid, r in per_item.items() if sid.startswith(code + "-") and "fvd" in r]
        assert summary[name]["processed_samples"] == len(raw)
        assert float(np.mean(raw)) == pytest.approx(summary[name]["fvd_score"], rel=1e-12)
        assert float(np.mean(normalize_video_scores(raw))) == pytest.approx(summary[name]["fvd_normalized"], rel=1e-12)
    assert summary["text_to_video"]["fvd_normalized"] == 100.0  # one distance: the all-equal quirk


# --- IEE / CSQ / AL / SD / VCoT ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def unify_run(built):
    return _run("mme_unify_unify", built, *cases.official_unify_variants(HERE.parent / "configs"))


ASPECTS = {"IEE": "text_metrics", "CSQ": "text_metrics", "AL": "choice_metrics", "SD": "text_metrics"}


def test_unify_per_item_equals_the_official_scripts(unify_run):
    _, rows = unify_run
    families = FIXTURE["unify"]["families"]
    for code, text_key in ASPECTS.items():
        for sid, ref in families[code]["per_item"].items():
            assert "crash" not in ref, (sid, ref)
            ours = rows[sid]
            assert ours["text"] == bool(ref[text_key]["correct"]), (sid, "text")
            assert ours["image"] == bool(ref["image_metrics"]["correct"]), (sid, "image")
            assert ours["combined"] == bool(ref["combined_metrics"]["correct"]), (sid, "combined")
    for sid, ref in families["VCoT"]["per_item"].items():
        for step, aspects in ref["overall"]["step_accuracies"].items():
            ours = rows[f"{sid}-step{step.split('_')[1]}"]
            for aspect, counts in aspects.items():
                assert bool(ours[aspect]) == bool(counts["correct"]), (sid, step, aspect)


def test_unify_accuracies_equal_the_official_scripts(unify_run):
    metrics, _ = unify_run
    m = metrics["metrics"]
    families = FIXTURE["unify"]["families"]
    for code, text_key in ASPECTS.items():
        ref = families[code]["all"]
        assert "crash" not in ref, (code, ref)
        assert ref["total_samples"] == m[f"text_accuracy/{code}"]["n"]
        for aspect, key in (("text", text_key), ("image", "image_metrics"), ("combined", "combined_metrics")):
            ours = 100 * m[f"{aspect}_accuracy/{code}"]["value"]
            assert ours == pytest.approx(ref[key]["accuracy"], abs=1e-12), (code, aspect)
    averages = families["VCoT"]["all"]["overall"]["average_accuracies"]
    for aspect in ("action", "location", "image"):
        assert 100 * m[f"{aspect}_accuracy/VCoT"]["value"] == pytest.approx(averages[aspect]["avg_accuracy"], abs=1e-12)
        assert m[f"{aspect}_accuracy/VCoT"]["n"] == averages[aspect]["total_steps"]
    assert m["score/VCoT"]["value"] == pytest.approx(averages["overall"]["avg_accuracy"], abs=1e-12)


def test_unify_submission_is_the_one_scored(unify_run):
    metrics, _ = unify_run
    export = json.loads((Path(metrics["run_dir"]) / metrics["scoring"]["submission"]).read_text())

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return Path(value).name if isinstance(value, str) and "/" in value and Path(value).is_absolute() else value

    assert strip(export) == FIXTURE["unify"]["submission"]
