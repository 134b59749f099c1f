"""Captioning side by side with pycocoevalcap's own ``COCOEvalCap`` (issue #14), on a run's own files.

A ``caption_coco_karpathy`` run (``task.full_scores=true``, answers from an answer key) writes the COCO
results file; ``COCOEvalCap`` then scores exactly that file against the COCO-format annotations of the
same Karpathy split (pycocotools ``COCO`` + ``loadRes``, as the COCO caption evaluation does): BLEU-1..4,
METEOR, ROUGE-L and CIDEr must equal the run's ``metrics.json`` and CIDEr its ``scores.jsonl``.
SPICE is replaced by a no-op scorer (it downloads Stanford CoreNLP at first use; we do not report it).
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pycocoevalcap")
pytest.importorskip("pycocotools")

from mio_eval import run  # noqa: E402

REFS = {
    391895: ["A man with a red helmet on a small moped on a dirt road.", "Man riding a motor bike on a dirt road on the countryside.",
             "A man riding on the back of a motorcycle.", "A dirt path with a young person on a motor bike rests to the foreground.",
             "A man in a red shirt and a red hat is on a motorcycle on a hill side."],
    522418: ["A woman wearing a net on her head cutting a cake.", "A woman cutting a large white sheet cake.",
             "A woman wearing a hair net cutting a large sheet cake.", "there is a woman that is cutting a white cake",
             "A woman marking a cake with the back of a chef's knife."],
    184613: ["A child holding a flowered umbrella and petting a yak.", "A young man holding an umbrella next to a herd of cattle.",
             "a young boy barefoot holding an umbrella touching the horn of a cow",
             "A young boy with an umbrella who is touching the horn of a cow.", "A boy holding an umbrella while standing next to livestock."],
    318219: ["A young boy standing in front of a computer keyboard.", "a little boy wearing headphones and looking at a computer monitor",
             "He is listening intently to the computer at school.", "A young boy stares up at the computer monitor.",
             "a young kid with head phones on using a computer"],
}
PREDICTIONS = {391895: "A man riding a motorcycle on a dirt road.", 522418: "a woman cuts a big white cake, with a knife",
               184613: "A boy with an umbrella next to a cow!", 318219: "A child at a computer."}


@pytest.fixture()
def caption_run(tmp_path):
    from PIL import Image

    data = tmp_path / "data"
    (data / "coco" / "val2014").mkdir(parents=True)
    images = []
    for n, (cid, refs) in enumerate(REFS.items()):
        images.append({"filepath": "val2014", "filename": f"COCO_val2014_{cid:012d}.jpg", "imgid": n, "split": "test",
                       "cocoid": cid, "sentids": list(range(5 * n, 5 * n + 5)),
                       "sentences": [{"tokens": s.lower().split(), "raw": s, "imgid": n, "sentid": 5 * n + k}
                                     for k, s in enumerate(refs)]})
        Image.new("RGB", (8, 8), (40 * n, 0, 0)).save(data / "coco" / "val2014" / f"COCO_val2014_{cid:012d}.jpg")
    (data / "coco" / "dataset_coco.json").write_text(json.dumps({"images": images, "dataset": "coco"}))
    key = tmp_path / "key.json"
    key.write_text(json.dumps({str(cid): {"text": text} for cid, text in PREDICTIONS.items()}))
    metrics = run("caption_coco_karpathy", "oracle", [
        f"paths.results_dir={tmp_path / 'results'}", "runner.progress=false", f"paths.data_dir={data}",
        f"model.answers_path={key}", "task.full_scores=true"])
    # The COCO-format annotation file of the same split (captions_val2014.json layout).
    annotations = {"info": {}, "licenses": [], "type": "captions",
                   "images": [{"id": im["cocoid"], "file_name": im["filename"]} for im in images],
                   "annotations": [{"image_id": im["cocoid"], "id": s["sentid"], "caption": s["raw"]}
                                   for im in images for s in im["sentences"]]}
    (tmp_path / "captions.json").write_text(json.dumps(annotations))
    return metrics, tmp_path / "results" / "oracle" / "caption_coco_karpathy", tmp_path / "captions.json"


def test_full_cocoevalcap_on_the_runs_results_file(caption_run, monkeypatch):
    import pycocoevalcap.eval as coco_eval
    from pycocoevalcap.eval import COCOEvalCap
    from pycocotools.coco import COCO

    class NoSpice:
        def method(self):
            return "SPICE (skipped)"

        def compute_score(self, gts, res):
            return 0.0, [0.0] * len(res)

    monkeypatch.setattr(coco_eval, "Spice", NoSpice)
    metrics, run_dir, annotations = caption_run
    results_file = run_dir / "captions_karpathy_test_results.json"
    coco = COCO(str(annotations))
    evaluator = COCOEvalCap(coco, coco.loadRes(str(results_file)))
    evaluator.params["image_id"] = evaluator.cocoRes.getImgIds()
    evaluator.evaluate()
    ours = metrics["metrics"]
    assert metrics["n"] == len(REFS) and metrics["n_errors"] == 0
    for theirs_key, our_key in (("Bleu_1", "bleu_1"), ("Bleu_2", "bleu_2"), ("Bleu_3", "bleu_3"), ("Bleu_4", "bleu_4"),
                                ("METEOR", "meteor"), ("ROUGE_L", "rouge_l"), ("CIDEr", "cider")):
        assert ours[our_key]["value"] == pytest.approx(evaluator.eval[theirs_key], abs=1e-9), theirs_key
    assert evaluator.eval["CIDEr"] > 0.3 and evaluator.eval["Bleu_4"] > 0  # not a degenerate fixture
    per_image = {int(r["id"]): r["cider"] for r in map(json.loads, (run_dir / "scores.jsonl").read_text().splitlines())}
    assert per_image == pytest.approx({i: e["CIDEr"] for i, e in evaluator.imgToEval.items()}, abs=1e-9)
