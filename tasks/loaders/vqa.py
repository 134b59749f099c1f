"""Open-ended VQA datasets in their released formats, and lmms-eval's HF copies of them.

* ``VQALoader``: the VQA API format shared by VQAv2 (``v2_OpenEnded_mscoco_<split>_questions.json``
  + ``v2_mscoco_<split>_annotations.json``) and OK-VQA (``OpenEnded_mscoco_val2014_questions.json``
  + ``mscoco_val2014_annotations.json``). Questions ``{"data_subtype": "val2014", "questions":
  [{"image_id", "question", "question_id"}]}``; annotations ``{"annotations": [{"question_id",
  "answers": [{"answer", "answer_confidence", "answer_id"}] x 10, "answer_type", "question_type",
  "multiple_choice_answer", "image_id"}]}``. Images ``<image_dir>/COCO_<image_split>_<12-digit id>.jpg``
  (``image_split`` defaults to the questions' ``data_subtype``; test-dev questions use the
  ``test2015`` images). Without ``annotations`` (test-dev / test) the samples have no answers.
* ``VizWizLoader``: VizWiz-VQA ``val.json`` / ``test.json``: a list of ``{"image":
  "VizWiz_val_00000000.jpg", "question", "answers": [{"answer", "answer_confidence"}] x 10,
  "answer_type", "answerable"}`` (test entries have only ``image`` and ``question``); images at
  ``<image_dir>/<image>``. The sample id is the image stem, as lmms-eval's ``question_id``.
* ``HFVQALoader``: lmms-eval's parquet copies (``lmms-lab/VQAv2`` splits validation / testdev /
  test, ``lmms-lab/OK-VQA`` split val2014, ``lmms-lab/VizWiz-VQA`` splits val / test): columns
  ``question_id``, ``question``, ``image``, ``answers`` (VQAv2: ``[{"answer", ...}]``; OK-VQA /
  VizWiz: plain strings), ``answer_type`` (VizWiz: ``category``), ``question_type``.

Targets are the annotators' answers exactly as stored (the metric normalises them);
``metadata`` carries ``question``, ``answer_type``, ``question_type`` and the ids a submission
file needs. A missing image is that sample's error at generation time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mio_eval.errors import ConfigError
from mio_eval.tasks.loaders._data import data_not_found, entry_field, entry_id, malformed_entry, text_list
from mio_eval.tasks.loaders._images import (check_files, check_size, hf_cache_dir, materialize_image,
                                            read_json)
from mio_eval.tasks.loaders.hf import read_hf_table
from mio_eval.types import Image, Sample, Text

__all__ = ["VQALoader", "VizWizLoader", "HFVQALoader", "VQA_SPLIT_SIZES"]

# Questions per split (VQAv2 / OK-VQA / VizWiz release notes; lmms-lab dataset cards).
VQA_SPLIT_SIZES = {
    "v2_OpenEnded_mscoco_val2014_questions.json": 214354,
    "v2_OpenEnded_mscoco_test-dev2015_questions.json": 107394,
    "v2_OpenEnded_mscoco_test2015_questions.json": 447793,
    "OpenEnded_mscoco_val2014_questions.json": 5046,
    "vizwiz:val": 4319,
    "vizwiz:test": 8000,
    "vqav2:validation": 214354,
    "vqav2:testdev": 107394,
    "vqav2:test": 447793,
    "okvqa:val2014": 5046,
}
_IMAGE_SPLIT = {"test-dev2015": "test2015", "test2015": "test2015"}


def _answer_strings(value: Any, where: str) -> list[str]:
    return text_list(value, where, field="answers", key="answer", bad_item="an answer is not a string", nonempty=False)


def _sample(qid: Any, image_path: Path, question: str, answers: list[str], **metadata: Any) -> Sample:
    return Sample(id=str(qid), parts=(Image(str(image_path)), Text(question)), targets=answers,
                  metadata={"question": question, "question_id": qid, **metadata})


class VQALoader:
    """VQAv2 / OK-VQA questions (+ annotations) in the VQA API JSON format."""

    def __init__(self, *, questions: str, image_dir: str, annotations: str | None = None,
                 image_split: str | None = None, image_template: str = "COCO_{image_split}_{image_id:012d}.jpg",
                 require_images: bool = False, max_samples: int | None = None,
                 expected_size: int | None = None) -> None:
        self.questions = Path(questions)
        self.annotations = Path(annotations) if annotations else None
        self.image_dir = Path(image_dir)
        self.image_split = image_split
        self.image_template = image_template
        self.require_images = require_images
        self.max_samples = max_samples
        self.expected_size = expected_size or VQA_SPLIT_SIZES.get(self.questions.name)

    def __call__(self) -> list[Sample]:
        qdata = read_json(self.questions, "VQA questions file", key="questions")
        if not isinstance(qdata, dict) or not isinstance(qdata.get("questions"), list):
            raise ConfigError(f"{self.questions} is not a VQA questions file (no 'questions' list)")
        questions = qdata["questions"]
        if self.max_samples is not None:
            questions = questions[: self.max_samples]
        if not questions:
            raise ConfigError(f"{self.questions} holds no questions")
        image_split = self.image_split or _IMAGE_SPLIT.get(qdata.get("data_subtype"), qdata.get("data_subtype"))
        if not image_split and "{image_split}" in self.image_template:
            raise ConfigError(f"{self.questions} has no data_subtype: set the loader's image_split")
        by_qid: dict[int, dict] = {}
        if self.annotations is not None:
            adata = read_json(self.annotations, "VQA annotations file")
            if not isinstance(adata, dict) or not isinstance(adata.get("annotations"), list):
                raise ConfigError(f"{self.annotations} is not a VQA annotations file (no 'annotations' list)")
            for n, a in enumerate(adata["annotations"]):
                by_qid[entry_id(a, "question_id", f"{self.annotations} annotation #{n}")] = a
        parsed = []
        for n, q in enumerate(questions):
            where = f"{self.questions} question #{n}"
            qid = entry_id(q, "question_id", where)
            where = f"{where} (question_id {qid})"
            parsed.append((qid, entry_id(q, "image_id", where), entry_field(q, "question", str, where), where))
        if self.annotations is not None:
            absent = [qid for qid, *_ in parsed if qid not in by_qid]
            if absent:
                raise ConfigError(f"{len(absent)} questions of {self.questions} have no annotation in "
                                  f"{self.annotations} (e.g. {', '.join(map(str, absent[:3]))})")
        samples = []
        for qid, image_id, question, where in parsed:
            ann = by_qid.get(qid, {})
            image = self.image_dir / self.image_template.format(image_split=image_split, image_id=image_id)
            with malformed_entry(where):
                samples.append(_sample(
                    qid, image, question, _answer_strings(ann.get("answers"), f"{self.annotations} question_id {qid}"),
                    image_id=image_id, answer_type=ann.get("answer_type"), question_type=ann.get("question_type"),
                    multiple_choice_answer=ann.get("multiple_choice_answer")))
        if self.require_images:
            check_files((s.parts[0].path for s in samples), "VQA images")
        check_size(len(samples), self.expected_size, f"VQA {self.questions.name}", limited=self.max_samples is not None)
        return samples


class VizWizLoader:
    """VizWiz-VQA ``val.json`` / ``test.json`` + image folder."""

    def __init__(self, *, annotations: str, image_dir: str, require_images: bool = False,
                 max_samples: int | None = None, expected_size: int | None = None) -> None:
        self.annotations = Path(annotations)
        self.image_dir = Path(image_dir)
        self.require_images = require_images
        self.max_samples = max_samples
        self.expected_size = expected_size or VQA_SPLIT_SIZES.get(f"vizwiz:{self.annotations.stem}")

    def __call__(self) -> list[Sample]:
        data = read_json(self.annotations, "VizWiz annotations file")
        if not isinstance(data, list):
            raise ConfigError(f"{self.annotations} is not a VizWiz file (expected a list of questions)")
        if self.max_samples is not None:
            data = data[: self.max_samples]
        if not data:
            raise ConfigError(f"{self.annotations} holds no questions")
        samples = []
        for n, entry in enumerate(data):
            where = f"{self.annotations} entry #{n}"
            name = entry_field(entry, "image", str, where)
            where = f"{where} ({name})"
            question = entry_field(entry, "question", str, where)
            with malformed_entry(where):
                samples.append(_sample(
                    Path(name).stem, self.image_dir / name, question, _answer_strings(entry.get("answers"), where),
                    image_file=name, answer_type=entry.get("answer_type"), question_type=None,
                    answerable=entry.get("answerable")))
        if self.require_images:
            check_files((s.parts[0].path for s in samples), "VizWiz images")
        check_size(len(samples), self.expected_size, f"VizWiz {self.annotations.name}",
                   limited=self.max_samples is not None)
        return samples


class HFVQALoader:
    """A local copy of lmms-eval's VQAv2 / OK-VQA / VizWiz-VQA parquet datasets."""

    def __init__(self, *, path: str, split: str, cache_dir: str, dataset: str = "vqav2",
                 max_samples: int | None = None, expected_size: int | None = None) -> None:
        self.path = Path(path)
        self.split = split
        self.cache_dir = Path(cache_dir)
        self.dataset = dataset
        self.max_samples = max_samples
        self.expected_size = expected_size or VQA_SPLIT_SIZES.get(f"{dataset}:{split}")

    def __call__(self) -> list[Sample]:
        if not self.path.exists():
            raise data_not_found(f"{self.dataset} HF copy", self.path, key="path")
        rows = read_hf_table(self.path, self.split, undecoded=["image"])
        if self.max_samples is not None:
            rows = rows[: self.max_samples]
        if not rows:
            raise ConfigError(f"split {self.split!r} of {self.path} is empty")
        cache = hf_cache_dir(self.cache_dir, self.path, self.split)
        base = self.path if self.path.is_dir() else self.path.parent
        samples = []
        for n, row in enumerate(rows):
            for key in ("question_id", "question", "image"):
                if key not in row:
                    raise ConfigError(f"{self.path}: no column {key!r} (has {', '.join(row)})")
            qid = row["question_id"]
            extra = {"image_file": f"{qid}.jpg"} if self.dataset == "vizwiz" else {"image_id": row.get("image_id")}
            samples.append(_sample(
                qid, materialize_image(row["image"], base=base, cache_dir=cache), str(row["question"]),
                _answer_strings(row.get("answers"), f"{self.path} row {n}"),
                answer_type=row.get("answer_type", row.get("category")), question_type=row.get("question_type"),
                **extra))
        check_size(len(samples), self.expected_size, f"{self.dataset} {self.split}", limited=self.max_samples is not None)
        return samples
