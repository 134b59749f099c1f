"""VIST (Huang et al. 2016) visual storytelling, story-in-sequence annotations with their images.

``sis/<split>.story-in-sequence.json``: ``{"images": [...], "albums": [...], "annotations": [[{
"story_id", "photo_flickr_id", "worker_arranged_photo_order", "text", "original_text", "album_id",
"storylet_id", ...}], ...]}`` (each annotation a one-element list, one per story step). Images:
``<image_dir>/<photo_flickr_id>.<ext>`` or ``<image_dir>/<split>/<photo_flickr_id>.<ext>`` (``.jpg``,
``.png``, ``.jpeg``, ``.gif`` tried in that order).

One sample per story (stories in order of first appearance, steps sorted by
``worker_arranged_photo_order``): ``metadata["steps"]`` = ``[{"text", "image", "photo_id"}, ...]``,
``targets`` = the step images. ``text_field`` picks ``original_text`` (default, cased) or ``text``
(VIST's lower-cased, anonymised ``[male]`` form); which GILL used is UNVERIFIED.
``require_complete=True`` (default) drops stories with a missing image file, as GILL's evaluation
keeps only stories whose images all downloaded (the number dropped is logged and recorded).
"""

from __future__ import annotations

import logging
from pathlib import Path

from mio_eval.errors import ConfigError
from mio_eval.tasks.loaders._images import read_json
from mio_eval.types import Sample

__all__ = ["VISTLoader"]

logger = logging.getLogger(__name__)
_SUFFIXES = (".jpg", ".png", ".jpeg", ".gif")


class VISTLoader:
    def __init__(self, *, annotations: str, image_dir: str, split: str = "test", text_field: str = "original_text",
                 require_complete: bool = True, max_samples: int | None = None) -> None:
        if text_field not in ("original_text", "text"):
            raise ConfigError(f"text_field must be original_text or text, got {text_field!r}")
        self.annotations = Path(annotations)
        self.image_dir = Path(image_dir)
        self.split = split
        self.text_field = text_field
        self.require_complete = bool(require_complete)
        self.max_samples = max_samples
        self.dropped = 0

    def _image(self, photo_id: str) -> Path:
        for folder in (self.image_dir, self.image_dir / self.split):
            for suffix in _SUFFIXES:
                candidate = folder / f"{photo_id}{suffix}"
                if candidate.is_file():
                    return candidate
        return self.image_dir / f"{photo_id}.jpg"

    def __call__(self) -> list[Sample]:
        data = read_json(self.annotations, "VIST story-in-sequence file")
        if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
            raise ConfigError(f"{self.annotations} is not a VIST SIS file (no 'annotations' list)")
        stories: dict[str, list[dict]] = {}
        for n, entry in enumerate(data["annotations"]):
            item = entry[0] if isinstance(entry, list) and entry else entry
            if not isinstance(item, dict) or "story_id" not in item:
                raise ConfigError(f"{self.annotations} annotation #{n}: no story_id")
            stories.setdefault(str(item["story_id"]), []).append(item)
        samples = []
        self.dropped = 0
        for story_id, items in stories.items():
            items = sorted(items, key=lambda x: int(x.get("worker_arranged_photo_order", 0)))
            steps = [{"text": " ".join(str(x.get(self.text_field) or x.get("text") or "").split()),
                      "image": str(self._image(str(x["photo_flickr_id"]))), "photo_id": str(x["photo_flickr_id"])}
                     for x in items]
            if self.require_complete and not all(Path(s["image"]).is_file() for s in steps):
                self.dropped += 1
                continue
            samples.append(Sample(id=story_id, parts=(), targets=tuple(s["image"] for s in steps),
                                  metadata={"steps": steps, "album_id": items[0].get("album_id")}))
            if self.max_samples is not None and len(samples) >= self.max_samples:
                break
        if self.dropped:
            logger.warning("VIST: %d stories dropped for missing images", self.dropped)
        if not samples:
            raise ConfigError(f"no complete story in {self.annotations} with images under {self.image_dir}")
        return samples
