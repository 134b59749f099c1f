"""Typed records that flow through the harness: samples in, requests to a model, outputs back.

All records are frozen dataclasses. Media travel as file paths, never tensors, so every record
serialises to one JSON line (``to_json`` / ``from_json``) and a run can be resumed or re-scored
from disk alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Union

__all__ = [
    "Modality",
    "RequestKind",
    "Text",
    "Image",
    "Audio",
    "Video",
    "Part",
    "Sample",
    "Request",
    "Output",
    "part_from_json",
    "part_to_json",
]


class Modality(str, enum.Enum):
    """A kind of content a model reads or writes."""

    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"

    def __str__(self) -> str:  # "audio", not "Modality.AUDIO", in messages
        return self.value


class RequestKind(str, enum.Enum):
    """The task family a request comes from, for adapters with native per-family prompt
    templates (MIO's template table, ``mio_eval.models.mio.prompts``). A ``str`` enum: members
    compare equal to and serialise as their value (``"tts"``), so records and configs keep the
    plain strings; an unknown string is a ValueError naming the known kinds."""

    ASR = "asr"
    TTS = "tts"
    S2S = "s2s"
    CAPTION = "caption"
    VQA = "vqa"
    MCQ = "mcq"
    TEXT = "text"
    T2I = "t2i"
    VIDEO_QA = "video_qa"
    VIDEO_GEN = "video_gen"
    INTERLEAVED = "interleaved"

    def __str__(self) -> str:  # "tts", not "RequestKind.TTS", in messages and f-strings
        return self.value

    @classmethod
    def _missing_(cls, value: object) -> "RequestKind":
        raise ValueError(f"unknown request kind {value!r}; one of: {', '.join(k.value for k in cls)}")


@dataclass(frozen=True)
class Text:
    text: str
    modality = Modality.TEXT


@dataclass(frozen=True)
class Image:
    path: str
    modality = Modality.IMAGE


@dataclass(frozen=True)
class Audio:
    """An audio file; ``sample_rate`` is informative (readers resample to what they need)."""

    path: str
    sample_rate: int | None = None
    modality = Modality.AUDIO


@dataclass(frozen=True)
class Video:
    path: str
    modality = Modality.VIDEO


Part = Union[Text, Image, Audio, Video]
_PART_TYPES: dict[str, type] = {"text": Text, "image": Image, "audio": Audio, "video": Video}


def part_to_json(part: Part) -> dict[str, Any]:
    data = {"type": part.modality.value}
    data.update({k: v for k, v in part.__dict__.items() if v is not None})
    return data


def part_from_json(data: Mapping[str, Any]) -> Part:
    fields = dict(data)
    kind = fields.pop("type")
    try:
        cls = _PART_TYPES[kind]
    except KeyError:
        raise ValueError(f"unknown part type {kind!r}") from None
    return cls(**fields)


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Sample:
    """One item of a dataset: ordered content parts (interleaving preserved) and references.

    ``targets`` holds every reference (several captions, ten VQA answers, one transcript).
    ``choices`` is set for multiple-choice items. ``metadata`` carries dataset fields a task
    needs for scoring or breakdowns (speaker, question type, ...).
    """

    id: str
    parts: tuple[Part, ...]
    targets: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"sample id must be a non-empty string, got {self.id!r}")
        object.__setattr__(self, "parts", tuple(self.parts))
        object.__setattr__(self, "targets", tuple(self.targets))
        object.__setattr__(self, "choices", tuple(self.choices))
        object.__setattr__(self, "metadata", _frozen(self.metadata))

    def modalities(self) -> frozenset[Modality]:
        return frozenset(p.modality for p in self.parts)


@dataclass(frozen=True)
class Request:
    """What a model is asked: the rendered prompt, the wanted output and generation settings.

    ``generation`` holds the task's decoding settings (``max_new_tokens``, ``num_beams``,
    ``do_sample``, ``top_p``, ``temperature``, ``seed``...); adapters map them to their backend
    and ignore keys that do not apply to it.

    ``continuations`` turns the request into a log-likelihood request (lm-eval's
    ``loglikelihood``): instead of generating, the adapter scores each continuation string given
    the prompt and answers with ``Output.logprobs`` / ``Output.greedy``, one per continuation.
    Only adapters with ``supports_loglikelihood = True`` accept such requests.

    ``kind`` names the task family (a ``RequestKind``: ``asr``, ``tts``, ``s2s``, ``caption``,
    ``vqa``, ``mcq``, ``text``, ``t2i``, ``video_qa``, ``video_gen``, ``interleaved``; a plain
    string is converted, an unknown one is a ValueError) for adapters that have native per-task
    prompt templates (MIO); other adapters ignore it.
    """

    sample_id: str
    parts: tuple[Part, ...]
    output_modality: Modality = Modality.TEXT
    generation: Mapping[str, Any] = field(default_factory=dict)
    continuations: tuple[str, ...] = ()
    kind: RequestKind | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", tuple(self.parts))
        if self.kind is not None:
            object.__setattr__(self, "kind", RequestKind(self.kind))
        object.__setattr__(self, "continuations", tuple(self.continuations))
        object.__setattr__(self, "output_modality", Modality(self.output_modality))
        object.__setattr__(self, "generation", _frozen(self.generation))

    @property
    def text(self) -> str:
        """All text parts joined, for text-only backends and length sorting."""
        return "".join(p.text for p in self.parts if isinstance(p, Text))

    def modalities(self) -> frozenset[Modality]:
        return frozenset(p.modality for p in self.parts)

    def size(self) -> int:
        """A cheap length proxy used to sort batches (characters + a weight per media part)."""
        return len(self.text) + 1000 * sum(not isinstance(p, Text) for p in self.parts)


@dataclass(frozen=True)
class Output:
    """A model's answer to one request. Exactly one of (content, ``error``) is meaningful.

    ``media`` holds generated files as typed parts (paths under the run directory).
    ``error`` is the reason a sample failed; it is data, counted and reported, never replaced
    by a silent default. For a log-likelihood request, ``logprobs[i]`` is the summed natural-log
    probability of continuation ``i`` given the prompt and ``greedy[i]`` whether greedy decoding
    would have produced exactly it.

    ``provenance`` holds per-sample facts about how the model produced this output (a failed one
    too), JSON-able, so they are stored with it and survive a resume: ``counts`` (name -> number,
    e.g. MIO's ``repair_unterminated``, ``stray_modality_tokens``) and ``repairs`` (names of the
    repairs applied to the output, in order). ``mio_eval.adapter.output_summary`` sums them over a
    run for ``metrics.json``. Serialised only when non-empty (older files read as empty).
    """

    text: str | None = None
    media: tuple[Part, ...] = ()
    error: str | None = None
    n_input_tokens: int | None = None
    n_output_tokens: int | None = None
    logprobs: tuple[float, ...] = ()
    greedy: tuple[bool, ...] = ()
    provenance: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "media", tuple(self.media))
        object.__setattr__(self, "provenance", _frozen(self.provenance))
        object.__setattr__(self, "logprobs", tuple(float(x) for x in self.logprobs))
        object.__setattr__(self, "greedy", tuple(bool(x) for x in self.greedy))

    @classmethod
    def failure(cls, reason: str) -> "Output":
        return cls(error=reason)

    @property
    def ok(self) -> bool:
        return self.error is None

    def modalities(self) -> frozenset[Modality]:
        found = {p.modality for p in self.media}
        if self.text:
            found.add(Modality.TEXT)
        return frozenset(found)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "media": [part_to_json(p) for p in self.media],
            "error": self.error,
            "n_input_tokens": self.n_input_tokens,
            "n_output_tokens": self.n_output_tokens,
            **({"logprobs": list(self.logprobs), "greedy": list(self.greedy)} if self.logprobs else {}),
            **({"provenance": dict(self.provenance)} if self.provenance else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Output":
        return cls(
            text=data.get("text"),
            media=tuple(part_from_json(p) for p in data.get("media", ())),
            error=data.get("error"),
            n_input_tokens=data.get("n_input_tokens"),
            n_output_tokens=data.get("n_output_tokens"),
            logprobs=tuple(data.get("logprobs", ())),
            greedy=tuple(data.get("greedy", ())),
            provenance=data.get("provenance") or {},
        )
