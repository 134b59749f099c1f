"""The replay adapter: a prediction file in each supported format, written the way its tool writes
it, re-scored end to end through ``mio_eval.run`` with answers checked by hand.

How each fixture is written (so a change of format upstream shows here):
* lmms-eval: ``evaluator.py`` builds ``example`` (doc_id, doc, target, arguments, resps,
  filtered_resps, token_counts, doc_hash, input_media?, metrics) and
  ``loggers/evaluation_tracker.py::save_results_samples`` adds ``input``, stringifies resps with
  ``sanitize_list``, flattens single-request wrappers, drops ``resps`` when equal, pops
  ``arguments`` and ``doc`` (EvolvingLMMs-Lab/lmms-eval @75571cf): :func:`_lmms_eval_line`.
* lm-eval: the same two functions at EleutherAI/lm-evaluation-harness @4e7e0d4 (``arguments``
  become ``{"gen_args_i": {"arg_j": ...}}``, doc kept, ``filter`` field): :func:`_lm_eval_line`.
* VLMEvalKit: ``smp/file.py::dump`` (open-compass/VLMEvalKit @e8e78f0): xlsx through pandas'
  ``ExcelWriter(engine="xlsxwriter", engine_kwargs={"options": {"strings_to_formulas": False}})``,
  tsv through ``to_csv(sep="\\t", index=False, quoting=csv.QUOTE_ALL)``; the dataset's columns
  minus ``image`` plus ``prediction``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import pytest

from mio_eval import run
from mio_eval.api import build, compose
from mio_eval.errors import ConfigError
from mio_eval.models.replay import ReplayAdapter, write_id_map
from mio_eval.types import Request, Text
from test_image_tasks import COCO_TEST, HELD_OUT, SEED_QUESTIONS, VQA_QUESTIONS, data  # noqa: F401 - fixture
from test_mmlu_omnibench import TEST_ROWS, mmlu_root  # noqa: F401 - fixture
from test_clip_metrics import tiny_hf_clip  # noqa: F401 - fixture

# The VQA answers of test_image_tasks' hand computation: leave-one-out accuracies 1, 0.6, 1, 0.9.
VQA_ANSWERS = {262148000: "Down.", 262148001: "spectating", 393225000: "Yes", 393225001: "two"}
VQA_EXPECTED = (1 + 0.6 + 1 + 0.9) / 4


def _sanitize_list(sub):
    """lm-eval / lmms-eval ``utils.sanitize_list``: every leaf becomes ``str``."""
    if isinstance(sub, list):
        return [_sanitize_list(x) for x in sub]
    if isinstance(sub, tuple):
        return tuple(_sanitize_list(x) for x in sub)
    return str(sub)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _lmms_eval_line(*, doc_id, doc, target, arguments, resps, filtered_resps, metrics) -> str:
    sample = {"doc_id": doc_id, "doc": doc, "target": target, "arguments": arguments, "resps": resps,
              "filtered_resps": filtered_resps, "token_counts": [None] * len(resps),
              "doc_hash": _hash(json.dumps(doc, indent=2, ensure_ascii=False)), **metrics}
    sample["input"] = sample["arguments"][0]
    sample["resps"] = _sanitize_list(sample["resps"])
    sample["filtered_resps"] = _sanitize_list(sample["filtered_resps"])
    if isinstance(sample["resps"], list) and len(sample["resps"]) == 1:
        sample["resps"] = sample["resps"][0]
    if isinstance(sample["filtered_resps"], list) and len(sample["filtered_resps"]) == 1:
        sample["filtered_resps"] = sample["filtered_resps"][0]
    if sample["resps"] == sample["filtered_resps"]:
        sample.pop("resps")
    elif isinstance(sample["resps"], list) and len(sample["resps"]) == 1 and sample["resps"][0] == sample["filtered_resps"]:
        sample.pop("resps")
    sample["target"] = str(sample["target"])
    sample.pop("arguments")
    sample.pop("doc")
    return json.dumps(sample, ensure_ascii=False) + "\n"


def _lm_eval_line(*, doc_id, doc, target, arguments, resps, filtered_resps, filter_key, metrics) -> str:
    sample = {"doc_id": doc_id, "doc": doc, "target": target, "arguments": arguments, "resps": resps,
              "filtered_resps": filtered_resps, "filter": filter_key, "metrics": list(metrics),
              "doc_hash": _hash(json.dumps(doc, indent=2, ensure_ascii=False)),
              "prompt_hash": _hash(arguments[0][0]), "target_hash": _hash(str(target)), **metrics}
    sample["arguments"] = {f"gen_args_{i}": {f"arg_{j}": a for j, a in enumerate(arg)}
                           for i, arg in enumerate(sample["arguments"])}
    sample["resps"] = _sanitize_list(sample["resps"])
    sample["filtered_resps"] = _sanitize_list(sample["filtered_resps"])
    sample["target"] = str(sample["target"])
    return json.dumps(sample, ensure_ascii=False) + "\n"


def _common(tmp_path, data_dir, *extra):
    return [f"paths.results_dir={tmp_path / 'results'}", f"paths.data_dir={data_dir}",
            f"paths.cache_dir={tmp_path / 'cache'}", "runner.progress=false", *extra]


def _scores(tmp_path, task):
    return [json.loads(line) for line in (tmp_path / "results" / "replay" / task / "scores.jsonl").read_text().splitlines()]


# --- lmms-eval --------------------------------------------------------------------------------------

def test_lmms_eval_vqav2_by_position_with_an_id_map(data, tmp_path):  # noqa: F811
    task, _ = build(compose(["task=vqav2_val", "model=dummy", f"paths.data_dir={data}"]))
    samples = task.samples()
    id_map = write_id_map(samples, tmp_path / "order.json")
    out = tmp_path / "lmms_out" / "llava"
    out.mkdir(parents=True)
    with open(out / "20260101_120000_samples_vqav2_val.jsonl", "w", encoding="utf-8") as fh:
        for doc_id, s in enumerate(samples[:3]):   # the fourth question is missing from the run
            answer = VQA_ANSWERS[int(s.id)]
            prompt = s.parts[1].text
            fh.write(_lmms_eval_line(doc_id=doc_id, doc={"question_id": int(s.id), "question": prompt, "image": "<PIL>"},
                                     target=list(s.targets), arguments=[(prompt, {"max_new_tokens": 16}, 0, "vqav2_val")],
                                     resps=[[answer]], filtered_resps=[answer], metrics={"exact_match": 1.0}))
    line = json.loads((out / "20260101_120000_samples_vqav2_val.jsonl").read_text().splitlines()[0])
    assert "doc" not in line and "resps" not in line and line["filtered_resps"] == "Down."   # as v0.7 writes it
    metrics = run("vqav2_val", "replay", _common(tmp_path, data, f"model.path={tmp_path / 'lmms_out'}",
                                                 "model.format=lmms_eval", f"model.id_map={id_map}",
                                                 "runner.max_error_rate=0.5"))
    assert metrics["n"] == 4 and metrics["n_errors"] == 1
    assert metrics["metrics"]["vqa_accuracy"]["value"] == pytest.approx((1 + 0.6 + 1) / 3)
    rows = {r["id"]: r for r in _scores(tmp_path, "vqav2_val")}
    assert rows["393225001"]["error"].startswith("replay: no prediction for '393225001'")


def test_lmms_eval_captions_by_metric_payload_and_submission(data, tmp_path):  # noqa: F811
    from mio_eval.metrics.caption import cider

    path = tmp_path / "20260101_samples_coco_karpathy_test.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for doc_id, (cid, refs) in enumerate(COCO_TEST.items()):
            payload = {"answer": refs, "pred": HELD_OUT[cid], "image_id": cid, "id": doc_id}
            fh.write(_lmms_eval_line(doc_id=doc_id, doc={"filename": f"COCO_val2014_{cid:012d}.jpg"}, target=refs,
                                     arguments=[("Provide a one-sentence caption for the provided image.", {}, 0, "t")],
                                     resps=[[HELD_OUT[cid]]], filtered_resps=[HELD_OUT[cid]],
                                     metrics={f"coco_{m}": payload for m in ("Bleu_4", "CIDEr")}))
    metrics = run("caption_coco_karpathy", "replay", _common(tmp_path, data, f"model.path={path}", "model.format=lmms_eval",
                                                             "model.id_template='{coco_CIDEr[image_id]}'"))
    assert metrics["n"] == 3 and metrics["n_errors"] == 0
    expected = cider({k: v for k, v in COCO_TEST.items()}, HELD_OUT)
    assert metrics["metrics"]["cider"]["value"] == pytest.approx(expected, abs=1e-9) and expected > 0.5


def test_lmms_eval_loglikelihood_by_position(data, tmp_path):  # noqa: F811
    # seedbench_ppl-style lines: one [loglikelihood, is_greedy] pair per option, as strings.
    task, _ = build(compose(["task=seedbench_img", "model=dummy", f"paths.data_dir={data}"]))
    samples = task.samples()
    id_map = write_id_map(samples, tmp_path / "order.json")
    best = {"101669": 1, "17": 2, "205": 3}   # gold: B, A, D -> right, wrong, right
    path = tmp_path / "20260101_samples_seedbench_ppl.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for doc_id, s in enumerate(samples):
            pairs = [(-1.0 if k == best[s.id] else -5.0 - k, k == best[s.id]) for k in range(4)]
            fh.write(_lmms_eval_line(doc_id=doc_id, doc={}, target=s.targets[0],
                                     arguments=[("Q Answer :", " " + c) for c in s.choices],
                                     resps=[[p] for p in pairs], filtered_resps=pairs, metrics={"seed_all": {}}))
    assert json.loads(path.read_text().splitlines()[0])["filtered_resps"][0] == ["-5.0", "False"]
    metrics = run("seedbench_img", "replay", _common(tmp_path, data, f"model.path={path}", "model.format=lmms_eval",
                                                     f"model.id_map={id_map}"))
    assert metrics["n_errors"] == 0 and metrics["metrics"]["accuracy"]["value"] == pytest.approx(2 / 3)


# --- lm-eval ----------------------------------------------------------------------------------------

def test_lm_eval_mmlu_loglikelihood_matched_by_continuation(mmlu_root, tmp_path):  # noqa: F811
    out = tmp_path / "lm_eval_out" / "my-model"
    out.mkdir(parents=True)
    picks, correct = {}, []
    for subject, rows in TEST_ROWS.items():
        with open(out / f"samples_mmlu_{subject}_2026-01-01T12-00-00.jsonl", "w", encoding="utf-8") as fh:
            for doc_id, (question, *choices, answer) in enumerate(rows):
                pick = doc_id % 4   # biology wrong twice, the six others right
                picks[f"{subject}/{doc_id:04d}"] = pick
                correct.append(pick == "ABCD".index(answer))
                lls = [(-0.5 if k == pick else -3.0 - k, k == pick) for k in range(4)]
                ctx = f"{question}\nA. ...\nAnswer:"
                order = [3, 2, 1, 0] if subject == "marketing" else [0, 1, 2, 3]   # matched by string, not position
                fh.write(_lm_eval_line(doc_id=doc_id, doc={"question": question, "subject": subject, "choices": choices,
                                                           "answer": "ABCD".index(answer)},
                                       target="ABCD".index(answer), arguments=[(ctx, f" {'ABCD'[k]}") for k in order],
                                       resps=[[lls[k]] for k in order], filtered_resps=[lls[k] for k in order],
                                       filter_key="none",
                                       metrics={"acc": float(pick == "ABCD".index(answer))}))
    metrics = run("mmlu", "replay", _common(tmp_path, mmlu_root, f"task.loader.root={mmlu_root}",
                                            "task.loader.expected_size=null", f"model.path={tmp_path / 'lm_eval_out'}",
                                            "model.format=lm_eval", "model.id_template='{doc[subject]}/{doc_id:04d}'"))
    assert metrics["n"] == 8 and metrics["n_errors"] == 0 and sum(correct) == 6
    assert metrics["metrics"]["accuracy"]["value"] == pytest.approx(sum(correct) / len(correct))
    preds = {json.loads(x)["id"]: json.loads(x) for x in
             (tmp_path / "results" / "replay" / "mmlu" / "predictions.jsonl").read_text().splitlines()}
    assert all(preds[k]["prediction"]["letter"] == "ABCD"[v] for k, v in picks.items())


def test_lm_eval_generation_needs_a_filter_choice_and_reads_it(tmp_path):
    path = tmp_path / "samples_gsm8k_2026.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for filter_key, text in (("strict-match", "[invalid]"), ("flexible-extract", "42")):
            fh.write(_lm_eval_line(doc_id=0, doc={"question": "q"}, target="42", arguments=[("Q: q\nA:", {"until": []})],
                                   resps=[["The answer is 42."]], filtered_resps=[text], filter_key=filter_key,
                                   metrics={"exact_match": 1.0}))
    with pytest.raises(ConfigError, match="several filters .*flexible-extract, strict-match.*model.filter"):
        ReplayAdapter(path=str(path), format="lm_eval").load()
    adapter = ReplayAdapter(path=str(path), format="lm_eval", filter="flexible-extract")
    raw = ReplayAdapter(path=str(path), format="lm_eval", filter="strict-match", field="resps")
    request = Request(sample_id="0", parts=(Text("q"),))
    assert adapter.generate([request], media_dir=tmp_path)[0].text == "42"
    assert raw.generate([request], media_dir=tmp_path)[0].text == "The answer is 42."
    # A generation line cannot answer a log-likelihood request (and the reverse).
    out = adapter.generate([Request(sample_id="0", parts=(Text("q"),), continuations=(" A",))], media_dir=tmp_path)[0]
    assert out.error.startswith("replay: samples_gsm8k_2026.jsonl:2 holds a generation")


# --- VLMEvalKit -------------------------------------------------------------------------------------

def _vlmevalkit_frame(predictions):
    import pandas as pd

    rows = [{"index": int(q["question_id"]), "question": q["question"], "A": q["choice_a"], "B": q["choice_b"],
             "C": q["choice_c"], "D": q["choice_d"], "answer": q["answer"], "category": "x",
             "prediction": predictions[q["question_id"]]} for q in SEED_QUESTIONS if q["data_type"] == "image"]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("suffix", ["xlsx", "tsv"])
def test_vlmevalkit_predictions_rescored(data, tmp_path, suffix):  # noqa: F811
    import pandas as pd

    frame = _vlmevalkit_frame({"101669": "B", "17": "A", "205": "=C"})   # "=C": a formula-looking string stays text
    path = tmp_path / f"LLaVA_SEEDBench_IMG.{suffix}"
    if suffix == "xlsx":
        with pd.ExcelWriter(path, engine="xlsxwriter", engine_kwargs={"options": {"strings_to_formulas": False}}) as writer:
            frame.to_excel(writer, index=False)
    else:
        frame.to_csv(path, sep="\t", index=False, encoding="utf-8", quoting=csv.QUOTE_ALL)
    metrics = run("seedbench_img", "replay", _common(tmp_path, data, f"model.path={path}", "model.format=vlmevalkit",
                                                     "task.scoring._target_=mio_eval.tasks.multiple_choice.Generate", "task.letter_rule._target_=mio_eval.tasks.multiple_choice.FirstChar"))
    assert metrics["n_errors"] == 0
    # first_char: B (gold B) right, A (gold A) right, "=" invalid (gold D).
    assert metrics["metrics"]["accuracy"]["value"] == pytest.approx(2 / 3)
    assert metrics["metrics"]["invalid_rate"]["value"] == pytest.approx(1 / 3)


# --- COCO results, EvalAI submissions, plain answers -----------------------------------------------

def test_coco_results_file_rescored_with_cider(data, tmp_path):  # noqa: F811
    from mio_eval.metrics.caption import cider

    path = tmp_path / "captions_val2014_fakecap_results.json"
    path.write_text(json.dumps([{"image_id": k, "caption": v} for k, v in list(HELD_OUT.items())[:2]]))
    metrics = run("caption_coco_karpathy", "replay", _common(tmp_path, data, f"model.path={path}",
                                                             "model.format=coco_captions", "runner.max_error_rate=0.5"))
    assert metrics["n_errors"] == 1
    kept = dict(list(HELD_OUT.items())[:2])
    assert metrics["metrics"]["cider"]["value"] == pytest.approx(cider({k: COCO_TEST[k] for k in kept}, kept), abs=1e-9)


def test_evalai_vqa_and_vizwiz_submissions(data, tmp_path):  # noqa: F811
    path = tmp_path / "vqav2_submission.json"
    path.write_text(json.dumps([{"question_id": k, "answer": v} for k, v in VQA_ANSWERS.items()]))
    metrics = run("vqav2_val", "replay", _common(tmp_path, data, f"model.path={path}", "model.format=evalai_vqa"))
    assert metrics["n_errors"] == 0 and metrics["metrics"]["vqa_accuracy"]["value"] == pytest.approx(VQA_EXPECTED)
    viz = tmp_path / "vizwiz_submission.json"
    viz.write_text(json.dumps([{"image": "VizWiz_val_00000000.jpg", "answer": "unanswerable"},
                               {"image": "VizWiz_val_00000001.jpg", "answer": "blue"}]))
    metrics = run("vizwiz_val", "replay", _common(tmp_path / "v", data, f"model.path={viz}", "model.format=evalai_vqa",
                                                  "model.id_template='{image:stem}'"))
    assert metrics["n_errors"] == 0 and metrics["metrics"]["vqa_accuracy"]["value"] == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["json", "csv"])
def test_plain_answers_json_and_csv(data, tmp_path, kind):  # noqa: F811
    path = tmp_path / f"answers.{kind}"
    if kind == "json":
        path.write_text(json.dumps({str(k): v for k, v in VQA_ANSWERS.items()}))
    else:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerows([("id", "answer"), *[(k, v) for k, v in VQA_ANSWERS.items()]])
    metrics = run("vqav2_val", "replay", _common(tmp_path, data, f"model.path={path}", "model.format=answers"))
    assert metrics["n_errors"] == 0 and metrics["metrics"]["vqa_accuracy"]["value"] == pytest.approx(VQA_EXPECTED)


def test_duplicates_bad_templates_and_missing_files(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text(json.dumps([{"question_id": 1, "answer": "a"}, {"question_id": 1, "answer": "b"}]))
    adapter = ReplayAdapter(path=str(path), format="evalai_vqa")
    out = adapter.generate([Request(sample_id="1", parts=())], media_dir=tmp_path)[0]
    assert out.error.startswith("replay: 2 predictions for '1'")
    with pytest.raises(ConfigError, match="does not fit the record"):
        ReplayAdapter(path=str(path), format="evalai_vqa", id_template="{doc[question_id]}").load()
    with pytest.raises(ConfigError, match="attribute access"):
        ReplayAdapter(path=str(path), format="evalai_vqa", id_template="{question_id.__class__}")
    with pytest.raises(ConfigError, match="prediction file not found"):
        ReplayAdapter(path=str(tmp_path / "nope.json"), format="answers").load()
    with pytest.raises(ConfigError, match="unknown format 'csvx'"):
        ReplayAdapter(path=str(path), format="csvx")
    assert ReplayAdapter(path=str(path), format="evalai_vqa").provenance()["sha256"] == hashlib.sha256(
        b"dup.json" + path.read_bytes()).hexdigest()


def test_text_formats_cannot_run_generation_tasks(data, tmp_path):  # noqa: F811
    path = tmp_path / "a.json"
    path.write_text("{}")
    with pytest.raises(ConfigError, match="wants image output but the model writes only text"):
        run("t2i_coco_karpathy", "replay", _common(tmp_path, data, f"model.path={path}", "model.format=coco_captions"))


# --- a directory of generated media -----------------------------------------------------------------

def test_media_dir_rescored_and_escapes_refused(data, tmp_path, tiny_hf_clip):  # noqa: F811
    media = tmp_path / "generated"
    media.mkdir()
    ids = list(COCO_TEST)
    images = data / "coco" / "val2014"
    # Sample 1: the ground-truth image (CLIP-I 100, SSIM 1). Sample 2: a symlink leaving the folder.
    (media / f"{ids[0]}.jpg").write_bytes((images / f"COCO_val2014_{ids[0]:012d}.jpg").read_bytes())
    os.symlink(images / f"COCO_val2014_{ids[1]:012d}.jpg", media / f"{ids[1]}.jpg")
    metrics = run("t2i_coco_karpathy", "replay", _common(tmp_path, data, f"model.path={media}", "model.format=media_dir",
                                                         f"task.clip.path={tiny_hf_clip}", "runner.max_error_rate=1.0"))
    assert metrics["n"] == 3 and metrics["n_errors"] == 2
    assert metrics["metrics"]["ssim"]["value"] == pytest.approx(1.0) and metrics["metrics"]["ssim"]["n"] == 1
    assert metrics["metrics"]["clip_i"]["value"] * metrics["metrics"]["clip_i"]["scale"] == pytest.approx(100, abs=1e-3)
    rows = {r["id"]: r for r in _scores(tmp_path, "t2i_coco_karpathy")}
    assert "resolves outside the media root" in rows[str(ids[1])]["error"]
    assert rows[str(ids[2])]["error"].startswith(f"replay: no prediction for '{ids[2]}'")


def test_answers_media_paths_stay_inside_the_root(tmp_path):
    root = tmp_path / "run"
    (root / "img").mkdir(parents=True)
    (root / "img" / "a.png").write_bytes(b"\x89PNG")
    (tmp_path / "secret.png").write_bytes(b"\x89PNG")
    key = root / "answers.json"
    key.write_text(json.dumps({"a": {"image": "img/a.png"}, "b": {"image": "../secret.png"},
                               "c": {"image": str(tmp_path / "secret.png")}, "d": {"audio": "img/none.wav"}}))
    adapter = ReplayAdapter(path=str(key), format="answers")
    outs = adapter.generate([Request(sample_id=i, parts=()) for i in "abcd"], media_dir=tmp_path / "media")
    assert outs[0].ok and Path(outs[0].media[0].path).read_bytes() == b"\x89PNG"
    assert Path(outs[0].media[0].path).parent == tmp_path / "media"
    assert "outside the media root" in outs[1].error and "outside the media root" in outs[2].error
    assert outs[3].error.startswith("replay: media file missing")


# --- the README's worked example runs as written -----------------------------------------------------

def test_readme_worked_example(data, tmp_path):  # noqa: F811
    import re
    import subprocess
    import sys

    from mio_eval.metrics.caption import cider

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Worked example: rescore an lmms-eval run with fixed scorers", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    (tmp_path / "data").symlink_to(data)
    out = tmp_path / "lmms_out" / "llava-hf__llava-1.5-7b-hf"
    out.mkdir(parents=True)
    with open(out / "20260101_120000_samples_coco_karpathy_test.jsonl", "w", encoding="utf-8") as fh:
        for doc_id, (cid, refs) in enumerate(COCO_TEST.items()):
            payload = {"answer": refs, "pred": HELD_OUT[cid], "image_id": cid, "id": doc_id}
            fh.write(_lmms_eval_line(doc_id=doc_id, doc={}, target=refs, arguments=[("Provide a caption.", {}, 0, "t")],
                                     resps=[[HELD_OUT[cid]]], filtered_resps=[HELD_OUT[cid]],
                                     metrics={f"coco_{m}": payload for m in ("Bleu_4", "CIDEr")}))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((tmp_path / "rescored" / "replay" / "caption_coco_karpathy" / "metrics.json").read_text())
    assert metrics["n"] == 3 and metrics["n_errors"] == 0
    assert metrics["metrics"]["cider"]["value"] == pytest.approx(cider(COCO_TEST, HELD_OUT), abs=1e-9)
