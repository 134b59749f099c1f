"""COCO captions as released (``annotations/captions_val2014.json``, ``captions_val2017.json``,
and the reference-less ``image_info_test2014.json``) with an image folder, or lmms-eval's HF copies
(``lmms-lab/COCO-Caption`` for 2014 val/test, ``lmms-lab/COCO-Caption2017``) saved locally.

Released file: ``{"images": [{"id", "file_name", ...}], "annotations": [{"image_id", "id",
"caption"}]}``; images at ``<image_dir>/<file_name>``. One sample per entry of ``images`` (file
order), targets = its captions in annotation order (raw strings). A file without
``annotations`` (the test2014 image info) gives samples without references: the captioning task
then writes the COCO server's results JSON instead of scoring.

HF form: columns ``question_id`` (the image file name; lmms-eval takes the image id from its last
``_`` field), ``image``, ``answer`` (the captions), ``file_name``; splits ``val`` / ``test``.
"""

from __future__ import annotations

from pathlib import Path

from mio_eval.errors import ConfigError
from mio_eval.tasks.loaders._data import data_not_found, entry_field, entry_id, malformed_entry
from mio_eval.tasks.loaders._images import (check_files, check_size, hf_cache_dir, materialize_image,
                                            read_json)
from mio_eval.tasks.loaders.hf import read_hf_table
from mio_eval.types import Image, Sample

__all__ = ["COCOCaptionsLoader", "COCO_CAPTION_SIZES"]

# Images per released file / HF split (data, kept beside its loader as every format's size table is).
COCO_CAPTION_SIZES = {
    "captions_val2014.json": 40504,
    "captions_train2014.json": 82783,
    "image_info_test2014.json": 40775,
    "captions_val2017.json": 5000,
    "captions_train2017.json": 118287,
}


def _image_id_from_name(name: str) -> int:
    # lmms-eval coco_cap/utils.py: int(question_id.split("_")[-1].split(".")[0])
    try:
        return int(str(name).split("_")[-1].split(".")[0])
    except ValueError:
        raise ConfigError(f"cannot read a COCO image id from {name!r}") from None


class COCOCaptionsLoader:
    def __init__(self, *, annotations: str, image_dir: str | None = None, split: str = "val",
                 cache_dir: str | None = None, require_images: bool = False, max_samples: int | None = None,
                 expected_size: int | None = None) -> None:
        self.annotations = Path(annotations)
        self.image_dir = Path(image_dir) if image_dir else None
        self.split = split
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.require_images = require_images
        self.max_samples = max_samples
        self.expected_size = expected_size or COCO_CAPTION_SIZES.get(self.annotations.name)

    def _from_json(self) -> list[Sample]:
        data = read_json(self.annotations, "COCO captions file")
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise ConfigError(f"{self.annotations} is not a COCO captions file (no 'images' list)")
        if self.image_dir is None:
            raise ConfigError("COCOCaptionsLoader needs image_dir for a released captions file")
        captions: dict[int, list[str]] = {}
        annotations = data.get("annotations") or []
        if not isinstance(annotations, list):
            raise ConfigError(f"{self.annotations}: 'annotations' must be a list")
        for n, ann in enumerate(annotations):
            where = f"{self.annotations} annotation #{n}"
            image_id = entry_id(ann, "image_id", where)
            captions.setdefault(image_id, []).append(entry_field(ann, "caption", str, f"{where} (image_id {image_id})"))
        images = data["images"][: self.max_samples] if self.max_samples is not None else data["images"]
        samples = []
        for n, img in enumerate(images):
            where = f"{self.annotations} image #{n}"
            image_id = entry_id(img, "id", where)
            file_name = entry_field(img, "file_name", str, f"{where} (id {image_id})")
            samples.append(Sample(id=str(image_id), parts=(Image(str(self.image_dir / file_name)),),
                                  targets=captions.get(image_id, ()),
                                  metadata={"image_id": image_id, "file_name": file_name}))
        return samples

    def _from_hf(self) -> list[Sample]:
        if not self.annotations.exists():
            raise data_not_found("COCO captions (HF copy)", self.annotations, key="annotations")
        rows = read_hf_table(self.annotations, self.split, undecoded=["image"])
        if self.max_samples is not None:
            rows = rows[: self.max_samples]
        if self.cache_dir is None:
            raise ConfigError(f"{self.annotations} embeds images: set the loader's cache_dir")
        cache = hf_cache_dir(self.cache_dir, self.annotations, self.split)
        base = self.annotations if self.annotations.is_dir() else self.annotations.parent
        samples = []
        for n, row in enumerate(rows):
            name = row.get("question_id") or row.get("file_name")
            with malformed_entry(f"{self.annotations} row #{n} ({name})"):
                image_id = _image_id_from_name(name)
                path = materialize_image(row["image"], base=base, cache_dir=cache)
                samples.append(Sample(id=str(image_id), parts=(Image(str(path)),),
                                      targets=[str(c) for c in row.get("answer") or ()],
                                      metadata={"image_id": image_id, "file_name": row.get("file_name") or name}))
        return samples

    def __call__(self) -> list[Sample]:
        samples = self._from_json() if self.annotations.suffix == ".json" else self._from_hf()
        if not samples:
            raise ConfigError(f"no images in {self.annotations}")
        if self.require_images:
            check_files((s.parts[0].path for s in samples), "COCO images")
        check_size(len(samples), self.expected_size, f"COCO captions {self.annotations.name}",
                   limited=self.max_samples is not None)
        return samples
