"""Karpathy's caption splits (``dataset_coco.json``, ``dataset_flickr30k.json``, ``dataset_flickr8k.json``
from cs.stanford.edu/people/karpathy/deepimagesent) with their image folders, or the same split saved
locally as a Hugging Face dataset (``yerevann/coco-karpathy``, which lmms-eval's
``coco_karpathy_test`` reads).

Split file: ``{"dataset": "coco", "images": [{"filepath": "val2014", "filename":
"COCO_val2014_000000391895.jpg", "split": "test", "cocoid": 391895, "imgid": 0,
"sentences": [{"raw": "A man ...", "tokens": [...], ...}, ...]}, ...]}``. Flickr entries have no
``filepath``/``cocoid``. Images are looked up as COCO ``<image_root>/<filepath>/<filename>`` and
Flickr ``<image_root>/flickr30k-images/<filename>`` (or ``<image_root>/<filename>`` when the root
is the image folder itself).

References are the *raw* sentences (``sentences[*].raw``), never Karpathy's lower-cased
``tokens``: the caption metrics PTB-tokenise them as pycocoevalcap does. One sample per image, id
= the COCO image id (``cocoid``) or the Flickr file stem; ``metadata["image_id"]`` is what the
COCO results JSON needs. A missing image is that sample's error at generation time
(``require_images=True`` refuses the split up front instead).

HF form (parquet shards ``data/<split>-*.parquet`` or a ``save_to_disk`` folder): columns
``filename``, ``filepath``, ``sentences`` (a list of raw strings, or of ``{"raw": ...}``),
``cocoid``; an ``image`` column is used when present, otherwise ``image_root`` as above. The HF
copy names the splits ``train`` / ``validation`` / ``test``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mio_eval.errors import ConfigError
from mio_eval.tasks.loaders._data import data_not_found, entry_field, entry_id, text_list
from mio_eval.tasks.loaders._images import (check_files, check_size, hf_cache_dir, materialize_image,
                                            read_json)
from mio_eval.tasks.loaders.hf import read_hf_table
from mio_eval.types import Image, Sample

__all__ = ["KarpathyLoader", "KARPATHY_SPLIT_SIZES"]

# Images per split of Karpathy's files (the test splits are the published captioning protocol).
KARPATHY_SPLIT_SIZES = {
    "coco": {"test": 5000, "val": 5000, "validation": 5000, "train": 82783, "restval": 30504},
    "flickr30k": {"test": 1000, "val": 1014, "validation": 1014, "train": 29000},
    "flickr8k": {"test": 1000, "val": 1000, "validation": 1000, "train": 6000},
}


def _raw_sentences(value: Any, where: str) -> list[str]:
    return text_list(value, where, field="sentences", key="raw", bad_item="a sentence has no raw text", nonempty=True)


class KarpathyLoader:
    """Samples of one Karpathy split: image -> its raw reference captions."""

    def __init__(self, *, annotations: str, image_root: str | None = None, split: str = "test",
                 dataset: str | None = None, cache_dir: str | None = None, require_images: bool = False,
                 max_samples: int | None = None) -> None:
        self.annotations = Path(annotations)
        self.image_root = Path(image_root) if image_root else None
        self.split = split
        self.dataset = dataset
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.require_images = require_images
        self.max_samples = max_samples

    @property
    def expected_size(self) -> int | None:
        name = self.dataset or ("coco" if "coco" in self.annotations.name else
                                "flickr8k" if "flickr8k" in self.annotations.name else "flickr30k")
        return KARPATHY_SPLIT_SIZES.get(name, {}).get(self.split)

    def _image_path(self, entry: dict, dataset: str) -> Path:
        if self.image_root is None:
            raise ConfigError(f"{self.annotations} has no images: set the loader's image_root")
        filename = entry["filename"]
        if dataset == "coco":  # "filepath" checked to be a string by the caller
            folder = self.image_root / entry.get("filepath", "")
        else:
            folder = self.image_root / f"{dataset}-images"
        return (folder if folder.is_dir() else self.image_root) / filename

    def _entries(self) -> tuple[list[tuple[int, dict]], str]:
        """``(index in the file, entry)`` of the split's images, and the dataset name."""
        if self.annotations.suffix == ".json":
            data = read_json(self.annotations, "Karpathy split file")
            if not isinstance(data, dict) or not isinstance(data.get("images"), list):
                raise ConfigError(f"{self.annotations} is not a Karpathy split file (no 'images' list)")
            dataset = self.dataset or str(data.get("dataset", "coco"))
            for n, e in enumerate(data["images"]):
                entry_field(e, "split", str, f"{self.annotations} image #{n}")
            return [(n, e) for n, e in enumerate(data["images"]) if e["split"] == self.split], dataset
        if not self.annotations.exists():
            raise data_not_found("Karpathy split (HF copy)", self.annotations, key="annotations")
        rows = read_hf_table(self.annotations, self.split, undecoded=["image"])
        dataset = self.dataset or ("coco" if rows and "cocoid" in rows[0] else "flickr30k")
        return list(enumerate(rows)), dataset

    def __call__(self) -> list[Sample]:
        entries, dataset = self._entries()
        if not entries:
            raise ConfigError(f"no images of split {self.split!r} in {self.annotations}")
        if self.max_samples is not None:
            entries = entries[: self.max_samples]
        cache = hf_cache_dir(self.cache_dir, self.annotations, self.split) if self.cache_dir else None
        samples = []
        for n, entry in entries:
            where = f"{self.annotations} image #{n}"
            filename = entry_field(entry, "filename", str, where)
            where = f"{where} ({filename})"
            stem = Path(filename).stem
            image_id: int | str
            if dataset == "coco":
                if entry.get("cocoid") is not None:
                    image_id = entry_id(entry, "cocoid", where)
                elif stem.rsplit("_", 1)[-1].isdigit():
                    image_id = int(stem.rsplit("_", 1)[-1])
                else:
                    raise ConfigError(f"{where}: no 'cocoid' and no image id at the end of the file name")
            else:
                image_id = int(stem) if stem.isdigit() else stem
            if dataset == "coco" and entry.get("filepath") is not None:
                entry_field(entry, "filepath", str, where)
            if entry.get("image") is not None:
                if cache is None:
                    raise ConfigError(f"{self.annotations} embeds images: set the loader's cache_dir")
                base = self.annotations if self.annotations.is_dir() else self.annotations.parent
                path = materialize_image(entry["image"], base=base, cache_dir=cache)
            else:
                path = self._image_path(entry, dataset)
            samples.append(Sample(
                id=str(image_id), parts=(Image(str(path)),),
                targets=_raw_sentences(entry.get("sentences"), where),
                metadata={"image_id": image_id, "file_name": entry["filename"], "dataset": dataset},
            ))
        if self.require_images:
            check_files((s.parts[0].path for s in samples), f"{dataset} images")
        check_size(len(samples), self.expected_size, f"Karpathy {dataset} {self.split}",
                   limited=self.max_samples is not None)
        return samples
