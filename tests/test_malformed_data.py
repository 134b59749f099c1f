"""Malformed annotations and missing data sets: one ConfigError line naming the file, the entry
(index and id) and the problem; through the CLI, exit 2 with one stderr line and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mio_eval.errors import ConfigError
from mio_eval.tasks.loaders.coco_captions import COCOCaptionsLoader
from mio_eval.tasks.loaders.karpathy import KarpathyLoader
from mio_eval.tasks.loaders.mme_unify import MMEUnifyLoader
from mio_eval.tasks.loaders.mmlu import MMLULoader
from mio_eval.tasks.loaders.omnibench import OmniBenchLoader
from mio_eval.tasks.loaders.seed_bench import SEEDBenchLoader
from mio_eval.tasks.loaders.vqa import VizWizLoader, VQALoader

KARPATHY_OK = {"filepath": "val2014", "filename": "COCO_val2014_000000391895.jpg", "split": "test",
               "cocoid": 391895, "sentences": [{"raw": "A man on a moped."}]}
VQA_Q = {"image_id": 262148, "question": "Where is he looking?", "question_id": 262148000}
VQA_A = {"question_id": 262148000, "image_id": 262148, "answers": [{"answer": "down", "answer_id": 1}],
         "answer_type": "other", "question_type": "none of the above", "multiple_choice_answer": "down"}
SEED_OK = {"answer": "A", "choice_a": "1", "choice_b": "2", "choice_c": "3", "choice_d": "4",
           "data_id": "1454426_2591111986.jpg", "data_type": "image", "question": "How many?",
           "question_id": "101669", "question_type_id": 5}
OMNI_OK = {"index": 0, "task type": "Count", "audio type": "speech", "question": "How many?",
           "options": ["One", "Two", "Three", "Four"], "answer": "Two", "audio_path": "a.mp3", "image_path": "i.png"}


def _json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _karpathy(t, entry):
    return KarpathyLoader(annotations=str(_json(t / "dataset_coco.json", {"images": [KARPATHY_OK, entry]})),
                          image_root=str(t))


def _vqa(t, question, annotation=VQA_A):
    return VQALoader(questions=str(_json(t / "q.json", {"data_subtype": "val2014", "questions": [VQA_Q, question]})),
                     annotations=str(_json(t / "a.json", {"annotations": [VQA_A, annotation]})), image_dir=str(t))


def _seed(t, question):
    return SEEDBenchLoader(annotations=str(_json(t / "SEED-Bench.json", {"questions": [SEED_OK, question]})),
                           image_dir=str(t))


CASES = [
    (lambda t: _karpathy(t, {**KARPATHY_OK, "filename": 12}),
     r"dataset_coco.json image #1: 'filename' must be str, got int 12$"),
    (lambda t: _karpathy(t, {k: v for k, v in KARPATHY_OK.items() if k != "filename"}),
     r"dataset_coco.json image #1: 'filename' is missing$"),
    (lambda t: _karpathy(t, {**KARPATHY_OK, "cocoid": "abc"}),
     r"image #1 \(COCO_val2014_000000391895.jpg\): 'cocoid' must be an integer id, got 'abc'$"),
    (lambda t: _karpathy(t, {**KARPATHY_OK, "sentences": [{"tokens": ["a"]}]}),
     r"image #1 \(COCO_val2014_000000391895.jpg\): a sentence has no raw text"),
    (lambda t: _karpathy(t, ["not", "an", "entry"]), r"dataset_coco.json image #1: expected a JSON object, got list$"),
    (lambda t: _vqa(t, {**VQA_Q, "question_id": None}), r"q.json question #1: 'question_id' is missing$"),
    (lambda t: _vqa(t, {**VQA_Q, "question_id": 7, "image_id": [1]}),
     r"q.json question #1 \(question_id 7\): 'image_id' must be int or str, got list"),
    (lambda t: _vqa(t, {**VQA_Q, "question_id": 7, "question": 3}),
     r"question #1 \(question_id 7\): 'question' must be str, got int 3$"),
    (lambda t: _vqa(t, {**VQA_Q, "question_id": 7}, {**VQA_A, "question_id": 7, "answers": "down"}),
     r"a.json question_id 7: 'answers' must be a list$"),
    (lambda t: _vqa(t, VQA_Q, {"answers": []}), r"a.json annotation #1: 'question_id' is missing$"),
    (lambda t: VizWizLoader(annotations=str(_json(t / "val.json", [{"image": "x.jpg", "question": None}])),
                            image_dir=str(t)), r"val.json entry #0 \(x.jpg\): 'question' is missing$"),
    (lambda t: COCOCaptionsLoader(annotations=str(_json(t / "captions_val2014.json", {
        "images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1, "id": 5}]})), image_dir=str(t)),
     r"captions_val2014.json annotation #0 \(image_id 1\): 'caption' is missing$"),
    (lambda t: COCOCaptionsLoader(annotations=str(_json(t / "captions_val2014.json", {
        "images": [{"id": "x1", "file_name": "a.jpg"}]})), image_dir=str(t)),
     r"captions_val2014.json image #0: 'id' must be an integer id, got 'x1'$"),
    (lambda t: _seed(t, {**SEED_OK, "question_id": "9", "choice_c": None}),
     r"SEED-Bench.json question #1 \(question_id 9\): 'choice_c' is missing$"),
    (lambda t: _seed(t, {**SEED_OK, "question_type_id": "five"}),
     r"SEED-Bench.json question #1: 'question_type_id' must be an integer id, got 'five'$"),
    (lambda t: OmniBenchLoader(root=str(_json(t / "dataset" / "items.json", [OMNI_OK, {**OMNI_OK, "index": 1,
                                                                                      "question": ["x"]}]))),
     r"items.json item #1 \(index 1\): 'question' must be str, got list"),
    (lambda t: OmniBenchLoader(root=str(_json(t / "dataset" / "items.json", [OMNI_OK, {**OMNI_OK, "answer": 2}]))),
     r"items.json item #1 \(index 0\): 'answer' must be str, got int 2$"),
]


@pytest.mark.parametrize("make,pattern", CASES)
def test_malformed_entries_are_one_line(tmp_path, make, pattern):
    with pytest.raises(ConfigError, match=pattern) as info:
        make(tmp_path)()
    assert "\n" not in str(info.value) and str(tmp_path) in str(info.value)


def test_mme_unify_malformed_item_names_file_item_and_id(tmp_path):
    item = {"question_id": 1521, "category": "Single_Image_Perception_and_Understanding", "question": "Where?",
            "image": ["a.png"], "choice": ["A: left", "B: right"], "answer": "A"}
    bad = {**item, "question_id": 1522, "choice": None}
    _json(tmp_path / "Unify_Dataset" / "Understanding" / "Understanding_Unified.json", [item, bad])
    with pytest.raises(ConfigError, match=r"Understanding_Unified.json item #1 \(SIPU id 1522\): malformed entry "
                                          r"\(TypeError: "):
        MMEUnifyLoader(root=str(tmp_path), family="understanding", subtasks=["SIPU"])()


def test_mmlu_hf_answer_of_wrong_type(tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "all").mkdir()
    table = pa.table({"question": ["q"], "subject": ["anatomy"], "choices": [["a", "b", "c", "d"]], "answer": [True]})
    pq.write_table(table, tmp_path / "all" / "test-00000-of-00001.parquet")
    with pytest.raises(ConfigError, match=r"'answer' must be an int 0-3, got True"):
        MMLULoader(root=str(tmp_path), format="hf", subjects=["anatomy"], fewshot_split=None)()


def test_missing_data_names_the_data_dir_and_the_override(tmp_path, monkeypatch):
    monkeypatch.setenv("MIO_EVAL_DATA", str(tmp_path))
    with pytest.raises(ConfigError) as info:
        KarpathyLoader(annotations=str(tmp_path / "coco" / "dataset_coco.json"), image_root=str(tmp_path))()
    assert str(info.value) == (f"Karpathy split file not found: coco/dataset_coco.json under data dir {tmp_path} "
                               "(paths.data_dir, or $MIO_EVAL_DATA); set paths.data_dir=DIR or "
                               "task.loader.annotations=PATH")
    with pytest.raises(ConfigError, match=r"^OmniBench data not found: OmniBench under data dir .* "
                                          r"set paths.data_dir=DIR or task.loader.root=PATH$"):
        OmniBenchLoader(root=str(tmp_path / "OmniBench"))()
    with pytest.raises(ConfigError, match=r"^MME-Unify data root not found: .*task.loader.root=PATH$"):
        MMEUnifyLoader(root=str(tmp_path / "MME-Unify"), family="unify")()


def _cli(cwd, *args):
    return subprocess.run([sys.executable, "-m", "mio_eval.cli", *args, f"paths.results_dir={cwd / 'results'}"],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("task,files,needle", [
    ("caption_coco_karpathy", {"annotations": {"images": [{**KARPATHY_OK, "cocoid": [1]}]}},
     "annotations.json image #0 (COCO_val2014_000000391895.jpg): 'cocoid' must be int or str, got list [1]"),
    ("vqav2_val", {"questions": {"data_subtype": "val2014", "questions": [{"question": "Why?"}]},
                   "annotations": {"annotations": [VQA_A]}},
     "questions.json question #0: 'question_id' is missing"),
])
def test_cli_exits_2_with_one_line(tmp_path, task, files, needle):
    overrides = [f"task.loader.{key}={_json(tmp_path / f'{key}.json', data)}" for key, data in files.items()]
    proc = _cli(tmp_path, f"task={task}", "model=dummy", *overrides)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert needle in proc.stderr
