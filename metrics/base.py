"""Typed metric results and the stateful-metric protocol.

Metadata lives on the metric (``higher_is_better``, ``variant``, ``provenance``), never in a
key string to be parsed back (the torchmetrics way; lm-eval's ``metric,filter`` keys are the
counter-example).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Protocol

__all__ = ["MetricResult", "Metric", "Stateless"]


@dataclass(frozen=True)
class MetricResult:
    """One number of a run, with what it means.

    Attributes:
        name: metric key in ``metrics.json`` (``wer_corpus``).
        value: the raw value (a fraction for WER and accuracy; ``None`` when nothing was scored).
        higher_is_better: direction, for tables and regression gates.
        variant: which of the competing definitions ran (``corpus``, ``vqa2021``...).
        provenance: the reference implementation and settings it reproduces.
        scale: the factor the literature reports it with (100 for WER in %).
        n: how many samples entered the value.
    """

    name: str
    value: float | None
    higher_is_better: bool
    variant: str
    provenance: str
    scale: float = 1.0
    n: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["extra"] = dict(self.extra)
        data.pop("name")
        return data

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> "MetricResult":
        return cls(name=name, **{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class Metric(Protocol):
    """A stateful metric: ``update`` with a batch, ``compute`` once over everything seen."""

    name: str
    higher_is_better: bool
    variant: str
    provenance: str

    def update(self, *args: Any, **kwargs: Any) -> None: ...

    def compute(self) -> MetricResult: ...

    def reset(self) -> None: ...


class Stateless:
    """Base of a behaviour a task YAML selects by ``_target_`` that holds no state (a normaliser):
    every instance of a class is equal to every other, and shows as ``ClassName()``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))
