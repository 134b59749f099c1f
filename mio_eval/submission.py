"""Submission formats of the evaluation servers, one class per kind of file, chosen by ``_target_``.

A format is a :class:`SubmissionFormat`: ``validate(rows)`` lists what a server would reject
(empty = valid) and ``missing_row(score_row)`` is the empty-answer row ``--force`` submits for a
failed sample (None when the format cannot name the sample). The command line's ``--format NAME``
maps a name to a ``_target_`` spec in :data:`FORMATS`, the one table of names; a caller may also
pass a spec of its own (``{"_target_": "mio_eval.submission.IdAnswerFormat", "name": ..., ...}``)
or a format object. A ``_target_`` must name an already imported :class:`SubmissionFormat`
subclass: resolving a spec never imports a module (a spec is data, not code).

Formats:

* :class:`IdAnswerFormat` — a JSON list of ``{id_field: id, answer_field: text}``: the VQA
  Challenge results file (``question_id`` / ``answer``, https://visualqa.org/evaluation.html),
  VizWiz-VQA's (``image`` / ``answer``, https://vizwiz.org/tasks-and-datasets/vqa/) and the COCO
  caption results file (``image_id`` / ``caption``, https://cocodataset.org/#format-results).
* :class:`MMEUnifyFormat` — MME-Unify's output template: each benchmark item plus its ``output``
  (github.com/MME-Benchmarks/MME-Unify, ``evaluate/``).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Mapping

from mio_eval.errors import ConfigError

__all__ = ["SubmissionFormat", "IdAnswerFormat", "MMEUnifyFormat", "FORMATS", "submission_format"]

# The one table of --format names: name -> the format's ``_target_`` spec.
FORMATS: dict[str, dict[str, Any]] = {
    "vqav2": {"_target_": "mio_eval.submission.IdAnswerFormat", "name": "vqav2",
              "id_field": "question_id", "id_type": "int", "answer_field": "answer"},
    "vizwiz": {"_target_": "mio_eval.submission.IdAnswerFormat", "name": "vizwiz",
               "id_field": "image", "id_type": "str", "answer_field": "answer"},
    "coco_captions": {"_target_": "mio_eval.submission.IdAnswerFormat", "name": "coco_captions",
                      "id_field": "image_id", "id_type": "int", "answer_field": "caption"},
    "mme_unify": {"_target_": "mio_eval.submission.MMEUnifyFormat", "name": "mme_unify"},
}


class SubmissionFormat(ABC):
    """A server's submission file: what it accepts, and how a failed sample is submitted."""

    name: str

    @abstractmethod
    def validate(self, rows: Any) -> list[str]:
        """Problems with ``rows`` as a submission (empty list = valid)."""

    def missing_row(self, score_row: Mapping[str, Any]) -> dict[str, Any] | None:
        """The empty-answer row for a failed sample, or None when it cannot be built."""
        return None

    def _not_a_list(self, rows: Any) -> list[str]:
        return [] if isinstance(rows, list) else [f"a {self.name} submission is a JSON list, got {type(rows).__name__}"]


_ID_TYPES: dict[str, type] = {"int": int, "str": str}


@dataclass(frozen=True)
class IdAnswerFormat(SubmissionFormat):
    """Rows of exactly ``{id_field, answer_field}``: ids of type ``id_type`` (``int`` | ``str``),
    unique; answers strings."""

    name: str
    id_field: str
    id_type: str
    answer_field: str

    def __post_init__(self) -> None:
        if self.id_type not in _ID_TYPES:
            raise ConfigError(f"format {self.name}: id_type must be one of {', '.join(_ID_TYPES)}, got {self.id_type!r}")

    def validate(self, rows: Any) -> list[str]:
        problems = self._not_a_list(rows)
        if problems:
            return problems
        id_type, ids = _ID_TYPES[self.id_type], set()
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or set(row) != {self.id_field, self.answer_field}:
                problems.append(f"row {i}: expected exactly {{{self.id_field!r}, {self.answer_field!r}}}, got {row!r:.80}")
                continue
            value = row[self.id_field]
            if not isinstance(value, id_type) or isinstance(value, bool):
                problems.append(f"row {i}: {self.id_field} must be {id_type.__name__}, got {value!r}")
            if not isinstance(row[self.answer_field], str):
                problems.append(f"row {i}: {self.answer_field} must be a string")
            if value in ids:
                problems.append(f"row {i}: duplicate {self.id_field} {value!r}")
            ids.add(value)
        return problems

    def missing_row(self, score_row: Mapping[str, Any]) -> dict[str, Any] | None:
        value = score_row.get(self.id_field)
        if value is None and self.id_field == "question_id":  # VQA samples are keyed by question id
            value = score_row.get("id")
        try:
            value = _ID_TYPES[self.id_type](value)
        except (TypeError, ValueError):
            return None
        return {self.id_field: value, self.answer_field: ""}


@dataclass(frozen=True)
class MMEUnifyFormat(SubmissionFormat):
    """Each row is a benchmark item plus its ``output``; items unique. A failed item cannot be
    filled (its item fields are the benchmark's, not the score row's)."""

    name: str = "mme_unify"

    def validate(self, rows: Any) -> list[str]:
        problems = self._not_a_list(rows)
        if problems:
            return problems
        seen: set[str] = set()
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or "output" not in row:
                problems.append(f"row {i}: an MME-Unify row is the benchmark item plus its 'output'")
                continue
            key = json.dumps({k: v for k, v in row.items() if k != "output"}, sort_keys=True)
            if key in seen:
                problems.append(f"row {i}: duplicate item")
            seen.add(key)
        return problems


def _classes(base: type = SubmissionFormat) -> dict[str, type]:
    """Every imported subclass of ``base`` by its dotted path (what a ``_target_`` may name)."""
    found: dict[str, type] = {}
    for cls in base.__subclasses__():
        found[f"{cls.__module__}.{cls.__qualname__}"] = cls
        found.update(_classes(cls))
    return found


def submission_format(spec: str | Mapping[str, Any] | SubmissionFormat) -> SubmissionFormat:
    """The format a ``--format`` name, a ``_target_`` spec or a format object names; an unknown
    name or target is a one-line ConfigError listing the valid ones."""
    if isinstance(spec, SubmissionFormat):
        return spec
    if isinstance(spec, str):
        if spec not in FORMATS:
            raise ConfigError(f"unknown submission format {spec!r}; choose from {', '.join(FORMATS)}")
        spec = FORMATS[spec]
    if not isinstance(spec, Mapping) or "_target_" not in spec:
        raise ConfigError(f"a submission format is a name ({', '.join(FORMATS)}) or a mapping with a _target_")
    classes = _classes()
    target = str(spec["_target_"])
    if target not in classes:
        raise ConfigError(f"_target_ {target!r} is not a submission format class; known: {', '.join(sorted(classes))}")
    kwargs = {k: v for k, v in spec.items() if k != "_target_"}
    try:
        return classes[target](**kwargs)
    except TypeError as exc:
        raise ConfigError(f"cannot build {target}: {exc}") from None
