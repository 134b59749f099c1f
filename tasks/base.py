"""What every task family implements, and the records scoring produces.

A task is one class per family (captioning, vqa, tts...), never one per dataset: datasets
differ only in their loader and YAML. Generation settings belong to the task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Protocol, Sequence

from mio_eval.errors import ConfigError
from mio_eval.generation import generation_settings
from mio_eval.metrics.base import MetricResult
from mio_eval.types import Modality, Output, Request, Sample

__all__ = ["Task", "TaskBase", "InvalidOutput", "Generated", "ScoreReport"]


class InvalidOutput(ValueError):
    """The model answered, but not with something the task can score (wrong modality, empty,
    unparsable). Recorded as the sample's error: ``invalid output: <reason>``."""


@dataclass(frozen=True)
class Generated:
    """A finished sample handed to scoring: the sample, the model's output, the extracted
    prediction (``None`` when the output failed) and the error if any."""

    sample: Sample
    output: Output
    prediction: Any
    error: str | None


@dataclass(frozen=True)
class ScoreReport:
    """What a scoring pass returns.

    ``per_sample`` has one JSON-able dict per scored sample, in dataset order, each with ``id``
    and ``error`` (``None`` when scored). ``judges`` lists the provenance of every model used
    to score (ASR judge, CLIP...).

    ``artifacts`` maps a file name, relative to the run directory (``"submission.json"``), to
    what the task wants written there: ``bytes`` as is, ``str`` as UTF-8 text, anything else as
    JSON. The runner has the store write them (atomic, confined to the run directory: no ``..``,
    no absolute name) and lists their names under ``artifacts`` in ``metrics.json``. A task
    never writes into the run directory itself.
    """

    metrics: tuple[MetricResult, ...]
    per_sample: tuple[Mapping[str, Any], ...]
    judges: tuple[Mapping[str, Any], ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    artifacts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_errors(self) -> int:
        return sum(1 for row in self.per_sample if row.get("error"))


class Task(Protocol):
    """A task family.

    ``scoring_keys`` names the constructor options that only affect scoring (judge, normaliser):
    they are left out of the run fingerprint, so a finished generation can be re-scored with
    another judge (``runner.stage=score``).

    Optional hook: ``preflight()``, called before generation when the run will score, raises
    ConfigError for a missing scoring resource (a judge checkpoint) so no generation is wasted.
    Optional attribute: ``needs_loglikelihood = True`` when requests carry ``continuations``
    (multiple choice scored by likelihood); the runner then refuses an adapter that cannot score.
    Optional hook: ``bind(capabilities)`` (``mio_eval.capabilities.Capabilities``), called once at
    build time by ``mio_eval.api``: the only view a task gets of the model under test (its
    tokenizer and context length, log-likelihood support, an audio -> text reader). A task never
    receives the adapter.
    """

    name: str
    input_modalities: frozenset[Modality]
    output_modality: Modality
    scoring_keys: ClassVar[tuple[str, ...]]

    def samples(self) -> list[Sample]:
        """The evaluation split, in dataset order."""

    def request(self, sample: Sample) -> Request:
        """Render the prompt with the task's generation settings."""

    def prediction(self, sample: Sample, output: Output) -> Any:
        """Extract the JSON-able answer from a successful output; raise InvalidOutput if none."""

    def score(self, generated: Sequence[Generated], *, work_dir: Path) -> ScoreReport:
        """Score every finished sample (corpus metrics see the whole split at once).

        ``work_dir`` is where a scorer may write scratch files (a judge's own outputs); files
        meant for the user (submissions) are returned in ``ScoreReport.artifacts``."""


def describe_output(output: Output) -> str:
    """What an output holds, for invalid-output reasons: ``"audio, text"`` or ``"nothing"``."""
    return ", ".join(sorted(m.value for m in output.modalities())) or "nothing"


def media_path(output: Output, kind: type, what: str) -> str:
    """The path of the output's first ``kind`` part; InvalidOutput naming ``what`` was expected."""
    found = [p for p in output.media if isinstance(p, kind)]
    if not found:
        raise InvalidOutput(f"expected {what}, got {describe_output(output)}")
    return found[0].path


class TaskBase:
    """What a task family's constructor shares, written once: ``name``, the injected ``loader``
    (``samples()`` calls it), the ``prompt`` template checked for its required placeholders, and
    the generation settings (validated by ``generation_settings``). A family keeps its own
    keyword signature (the YAML's contract) and calls ``_task`` from it."""

    def _task(self, *, name: str, loader: Callable[[], list[Sample]], prompt: Any,
              generation: Mapping[str, Any] | None, placeholders: Sequence[str] = ()) -> None:
        missing = [p for p in placeholders if "{" + p + "}" not in (prompt or "")]
        if missing:
            wanted = " and ".join("{" + p + "}" for p in placeholders)
            raise ConfigError(f"task {name}: prompt must contain {wanted}, got {prompt!r}")
        self.name = name
        self.loader = loader
        self.prompt = prompt
        self.generation = generation_settings(generation)

    def samples(self) -> list[Sample]:
        return self.loader()
