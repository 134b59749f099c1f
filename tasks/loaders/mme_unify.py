"""MME-Unify (aba122/MME-Unify @ 0956091; media from the HF dataset ``wulin222/MME-Unify``).

Local layout (the repo README's): one root holding the media folders of the HF dataset
(``Single_Image_Perception_and_Understanding/``, ``Text-Image_Editing/``, ``Spot_Diff/``...) and
the repo's annotation files under ``Unify_Dataset/``::

    MME-Unify/
      Unify_Dataset/Understanding/Understanding_Unified.json
      Unify_Dataset/Generation/Generation_Unified.json
      Unify_Dataset/Uinfy_capability/{Image_Editing_and_Explaning/Unified_Explanation.json,
          Common_Sense_Question/Common_Sense_Question.json, Auxiliary_Lines/Auxiliary_Lines..json,
          SpotDiff/Spot_Diff.json, Visual_CoT/Visual_CoT.json}
      <media folders named by the JSON paths>

(``Uinfy_capability`` and ``Auxiliary_Lines..json`` are the repo's spellings; the README's
``Unify_Capability`` and ``Auxiliary_Lines.json`` are accepted too.) Media paths in the JSON are
relative to the root. When a file is missing but exactly one file with the same stem and another
image extension exists (the HF upload has e.g. ``.jfif`` files), that one is used and the
substitution recorded in the sample's metadata (``media_substitutions``).

Sample ids: ``<subtask>-<id>`` (``question_id`` for understanding and IEE); the JSON ids repeat
(Generation: 1009 distinct ids for 1594 items; Auxiliary Lines: 31 for 52), so the k-th repeat of
an id gets ``-<k>``. Every sample keeps its original JSON item in ``metadata["item"]`` for the
submission export.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from mio_eval.errors import ConfigError
from mio_eval.tasks.loaders._data import data_not_found, malformed_entry
from mio_eval.tasks.loaders._images import read_json
from mio_eval.types import Image, Sample, Text, Video

__all__ = [
    "UNDERSTANDING_SUBTASKS",
    "GENERATION_SUBTASKS",
    "UNIFY_SUBTASKS",
    "MMEUnifyLoader",
    "annotation_path",
    "split_choice",
]

UNDERSTANDING_SUBTASKS = {
    "SIPU": "Single_Image_Perception_and_Understanding",
    "MITIU": "Multiple_Images_and_Text_Interlaced",
    "VPU": "Video_Perception_and_Understanding",
}
GENERATION_SUBTASKS = {
    "FIR": "Fine-Grained_Image_Reconstruction",
    "TIE": "Text-Image_Editing",
    "TIG": "Text-Image_Generation",
    "CIVG": "Conditional_Image_to_Video_Generation",
    "TVG": "Text-to-Video_Generation",
    "VP": "Video prediction",
}
UNIFY_SUBTASKS = {
    "IEE": ("Image_Editing_and_Explaning", ("Unified_Explanation.json",)),
    "CSQ": ("Common_Sense_Question", ("Common_Sense_Question.json",)),
    "AL": ("Auxiliary_Lines", ("Auxiliary_Lines..json", "Auxiliary_Lines.json")),
    "SD": ("SpotDiff", ("Spot_Diff.json",)),
    "VCoT": ("Visual_CoT", ("Visual_CoT.json",)),
}
# Candidate images for the unify tasks' nearest-image choice: the correct one first.
UNIFY_CANDIDATES = {
    "IEE": ("edited_image", "fake_image1", "fake_image2", "fake_image3"),
    "CSQ": ("image", "fake_image1", "fake_image2", "fake_image3"),
    "AL": ("image_Auxiliary_lines", "image_Auxiliary_lines_negative1", "image_Auxiliary_lines_negative2",
           "image_Auxiliary_lines_negative3"),
    "SD": ("img_diff_a", "img_diff_a_negative1", "img_diff_a_negative2", "img_diff_a_negative3"),
}
UNIFY_INPUTS = {"IEE": ("image",), "CSQ": (), "AL": ("image",), "SD": ("img_a", "img_b")}
_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".jfif", ".webp", ".bmp", ".gif")
_UNIFY_DIRS = ("Uinfy_capability", "Unify_Capability", "Unify_capability")
# Option labels as the JSON writes them: "A. x", "A: x", "(A) x", full-width "（A） x".
_LABEL = re.compile(r"^\s*(?:\(\s*([A-Z])\s*\)|（\s*([A-Z])\s*）|([A-Z])\s*[.:：])\s*")


def split_choice(text: str) -> tuple[str | None, str]:
    """``"(B) two"`` -> ``("B", "two")``; an unlabelled option gives ``(None, text)``."""
    match = _LABEL.match(text)
    if not match:
        return None, text.strip()
    return next(g for g in match.groups() if g), text[match.end():].strip()


def annotation_path(annotations_dir: Path, family: str, subtask: str | None = None) -> Path:
    """Where a family's (or a unify subtask's) JSON lives; ConfigError naming the tried paths."""
    if family == "understanding":
        tried = [annotations_dir / "Understanding" / "Understanding_Unified.json"]
    elif family == "generation":
        tried = [annotations_dir / "Generation" / "Generation_Unified.json"]
    else:
        folder, names = UNIFY_SUBTASKS[subtask]
        tried = [annotations_dir / d / folder / n for d in _UNIFY_DIRS for n in names]
    for path in tried:
        if path.is_file():
            return path
    raise data_not_found("MME-Unify annotations", tried[0], key="annotations_dir",
                         expected="the repository's Unify_Dataset/ under the MME-Unify root")


def _read_json(path: Path) -> list[dict[str, Any]]:
    data = read_json(path, "MME-Unify annotations", key="annotations_dir")
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a JSON list of objects")
    for n, item in enumerate(data):
        if not isinstance(item, dict):
            raise ConfigError(f"{path} item #{n}: expected a JSON object, got {type(item).__name__}")
    return data


def _where(path: Path, n: int, item: dict, code: str) -> str:
    """``<file> item #<n> (<code> id <id>)``: names a malformed entry."""
    ident = item.get("question_id", item.get("id"))
    return f"{path} item #{n} ({code}" + (f" id {ident})" if ident is not None else ")")


class _Ids:
    """``<prefix>-<id>``, with ``-<k>`` for the k-th repeat of an id (the JSON ids are not unique)."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, base: str) -> str:
        k = self.seen.get(base, 0)
        self.seen[base] = k + 1
        return base if k == 0 else f"{base}-{k}"


class MMEUnifyLoader:
    """Samples of one MME-Unify family: ``understanding``, ``generation`` or ``unify``.

    ``subtasks`` selects codes of the family (SIPU/MITIU/VPU; FIR/TIE/TIG/CIVG/TVG/VP;
    IEE/CSQ/AL/SD/VCoT); ``max_per_subtask`` keeps the first N of each (smoke runs).
    """

    FAMILIES = {"understanding": UNDERSTANDING_SUBTASKS, "generation": GENERATION_SUBTASKS, "unify": UNIFY_SUBTASKS}

    def __init__(self, *, root: str, family: str, subtasks: Sequence[str] | None = None,
                 annotations_dir: str | None = None, max_per_subtask: int | None = None) -> None:
        if family not in self.FAMILIES:
            raise ConfigError(f"MME-Unify family must be one of {', '.join(self.FAMILIES)}, got {family!r}")
        known = self.FAMILIES[family]
        self.subtasks = tuple(subtasks or known)
        unknown = [s for s in self.subtasks if s not in known]
        if unknown:
            raise ConfigError(f"unknown MME-Unify {family} subtask(s) {', '.join(unknown)}; valid: {', '.join(known)}")
        self.root = Path(root)
        self.family = family
        self.annotations_dir = Path(annotations_dir) if annotations_dir else self.root / "Unify_Dataset"
        self.max_per_subtask = max_per_subtask

    # -- media ---------------------------------------------------------------------------------

    def _media(self, rel: str, subs: dict[str, str]) -> str:
        path = self.root / rel.lstrip("/")
        if path.exists() or path.suffix.lower() not in _IMAGE_EXTS:
            return str(path)
        others = [p for p in path.parent.glob(path.stem + ".*") if p.suffix.lower() in _IMAGE_EXTS] \
            if path.parent.is_dir() else []
        if len(others) == 1:
            subs[rel] = str(others[0].relative_to(self.root))
            return str(others[0])
        return str(path)  # missing: the adapter or the scorer reports it per sample

    # -- families ------------------------------------------------------------------------------

    def __call__(self) -> list[Sample]:
        if not self.root.is_dir():
            raise data_not_found("MME-Unify data root", self.root, key="root")
        make = {"understanding": self._understanding, "generation": self._generation, "unify": self._unify}[self.family]
        samples = make()
        if not samples:
            raise ConfigError(f"MME-Unify {self.family}: no items for subtasks {', '.join(self.subtasks)}")
        return samples

    def _limit(self, items: list) -> list:
        return items if self.max_per_subtask is None else items[: self.max_per_subtask]

    def _understanding(self) -> list[Sample]:
        path = annotation_path(self.annotations_dir, "understanding")
        items = _read_json(path)
        by_code = {UNDERSTANDING_SUBTASKS[c]: c for c in self.subtasks}
        ids, samples = _Ids(), []
        for code in self.subtasks:
            for n, item in self._limit([(n, x) for n, x in enumerate(items) if by_code.get(x.get("category")) == code]):
                with malformed_entry(_where(path, n, item, code)):
                    samples.append(self._understanding_sample(item, code, ids))
        return samples

    def _understanding_sample(self, item: dict[str, Any], code: str, ids: _Ids) -> Sample:
        subs: dict[str, str] = {}
        media = [self._media(p, subs) for p in item.get("image") or []]
        kind = Video if code == "VPU" else Image
        question = str(item["question"])
        pieces = question.split("<img>")
        if len(pieces) == len(media) + 1 and media:  # interleaved: <img> marks each image
            parts: list = []
            for text, path in zip(pieces, media + [None]):
                if text.strip():
                    parts.append(Text(text))
                if path is not None:
                    parts.append(kind(path))
        else:
            parts = [kind(p) for p in media] + [Text(question)]
        labels, texts = zip(*(split_choice(str(c)) for c in item["choice"]))
        if any(lbl is None for lbl in labels):
            labels = tuple("ABCDEFGH"[i] for i in range(len(texts)))
        answer = str(item["answer"]).strip()
        if answer not in labels:
            raise ValueError(f"answer {answer!r} is not one of the option labels {labels}")
        return Sample(
            id=ids(f"{code}-{item.get('question_id', item.get('id'))}"), parts=tuple(parts), targets=(answer,),
            choices=tuple(texts),
            metadata={"subtask": code, "category": item.get("category"), "subcategory": item.get("subcategory"),
                      "source": item.get("source"), "labels": list(labels), "options": list(item["choice"]),
                      "gold_index": labels.index(answer), "media_substitutions": subs, "item": item})

    def _generation(self) -> list[Sample]:
        path = annotation_path(self.annotations_dir, "generation")
        items = _read_json(path)
        by_code = {GENERATION_SUBTASKS[c]: c for c in self.subtasks}
        ids, samples = _Ids(), []
        for code in self.subtasks:
            for n, item in self._limit([(n, x) for n, x in enumerate(items) if by_code.get(x.get("category")) == code]):
                with malformed_entry(_where(path, n, item, code)):
                    samples.append(self._generation_sample(item, code, ids))
        return samples

    def _generation_sample(self, item: dict[str, Any], code: str, ids: _Ids) -> Sample:
        subs: dict[str, str] = {}
        data = item.get("data") or {}
        source = self._media(data["image"], subs) if code in ("FIR", "TIE", "CIVG", "VP") else None
        reference = {"FIR": data.get("image"), "TIE": data.get("edited_image"), "TIG": data.get("image"),
                     "CIVG": data.get("video"), "VP": data.get("video"),
                     # T2V keeps its reference video under "image" (69 of 200 items have none)
                     "TVG": data.get("image")}[code]
        return Sample(
            id=ids(f"{code}-{item.get('id')}"),
            parts=((Image(source),) if source else ()) + (Text(str(item.get("Text_Prompt") or "").strip()),),
            targets=(self._media(reference, subs),) if reference else (),
            metadata={"subtask": code, "category": item.get("category"), "source": item.get("source"),
                      "subcategory": item.get("subcategory"), "prompt": str(item.get("Text_Prompt") or "").strip(),
                      "source_image": source, "media_substitutions": subs, "item": item})

    def _unify(self) -> list[Sample]:
        ids, samples = _Ids(), []
        for code in self.subtasks:
            path = annotation_path(self.annotations_dir, "unify", code)
            items = self._limit(_read_json(path))
            for n, item in enumerate(items):
                with malformed_entry(_where(path, n, item, code)):
                    if code == "VCoT":
                        samples.extend(self._vcot(item, ids))
                    else:
                        samples.append(self._unify_sample(item, code, ids))
        return samples

    def _unify_sample(self, item: dict[str, Any], code: str, ids: _Ids) -> Sample:
        subs: dict[str, str] = {}
        data = item.get("data") or {}
        labels, texts = zip(*(split_choice(str(c)) for c in item["choice"]))
        answer = str(item["answer"]).strip()
        if answer not in labels:
            raise ValueError(f"answer {answer!r} is not one of the option labels {labels}")
        inputs = tuple(Image(self._media(data[k], subs)) for k in UNIFY_INPUTS[code])
        question = str(item.get("question") or "").strip()
        return Sample(
            id=ids(f"{code}-{item.get('id', item.get('question_id'))}"),
            parts=inputs + ((Text(question),) if question else ()), targets=(answer,), choices=tuple(texts),
            metadata={"subtask": code, "subcategory": item.get("subcategory"), "labels": list(labels),
                      "options": list(item["choice"]), "gold_index": labels.index(answer),
                      "candidates": [self._media(data[k], subs) for k in UNIFY_CANDIDATES[code]],
                      "media_substitutions": subs, "item": item})

    def _vcot(self, item: dict[str, Any], ids: _Ids) -> list[Sample]:
        """One sample per step of a maze walk (teacher-forced history, see the task's docs)."""
        data = item["data"]
        subs: dict[str, str] = {}
        steps = [self._media(data[f"Step_{i}"], subs) for i in range(len(data)) if f"Step_{i}" in data]
        actions, coords = list(data["Action"]), [list(c) for c in data["Coordinate"]]
        base = ids(f"VCoT-{item.get('id')}")
        out = []
        for k, action in enumerate(actions):
            current = steps[min(k, len(steps) - 1)]
            parts = (Image(steps[0]),) if k == 0 else (Image(steps[0]), Image(current))
            out.append(Sample(
                id=f"{base}-step{k}", parts=parts, targets=(str(action),),
                metadata={"subtask": "VCoT", "subcategory": item.get("subcategory"), "step": k, "n_steps": len(actions),
                          "history": actions[:k], "location": coords[k] if k < len(coords) else None, "candidates": steps,
                          "image_target": k if k < len(steps) else None, "item_id": base,
                          "media_substitutions": subs, "item": item}))
        return out
