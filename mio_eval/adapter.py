"""The model adapter protocol: what every backend (MIO, HF models, Whisper, espeak...) implements.

Batched, list in, list out, in the spirit of lm-eval's ``generate_until(requests)``. An adapter
declares which modalities it reads and writes so the runner can refuse an impossible pairing
before any weight is loaded. Construction must be cheap: heavy imports and weights load in
``load()``.
"""

from __future__ import annotations

import weakref

from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence, runtime_checkable

from mio_eval.errors import ConfigError
from mio_eval.types import Modality, Output, Request

__all__ = ["ModelAdapter", "check_capabilities", "CapabilityError", "ensure_loaded", "output_summary"]

_REPAIRED_SHOWN = 1000  # samples listed by name in ``repaired_samples`` (the counts cover all)


@runtime_checkable
class ModelAdapter(Protocol):
    """A model under test (or a judge model used by a metric).

    Attributes:
        name: a short identifier used in result paths and tables.
        inputs: modalities the model can read.
        outputs: modalities the model can write.
        supports_loglikelihood: (optional, default False) whether ``generate`` answers requests
            with ``continuations`` by scoring them (``Output.logprobs``), as lm-eval's
            ``loglikelihood``; multiple-choice tasks scored by likelihood need it.

    Optional: ``prepare(requests) -> list`` (the CPU-side part of a call, one item per request)
    with ``generate(requests, media_dir=..., prepared=items)``: the runner then prepares the next
    batch in a background thread while the current one generates (``mio_eval.prefetch``).
    """

    name: str
    inputs: frozenset[Modality]
    outputs: frozenset[Modality]

    def load(self) -> None:
        """Import heavy libraries and load weights. Called once, before the first batch."""

    def generate(self, requests: Sequence[Request], *, media_dir: Path) -> list[Output]:
        """Answer a batch of requests, one Output per request, in the same order.

        Generated media are written under ``media_dir`` (see ``mio_eval.media.output_path``).
        A sample that fails returns ``Output(error=reason)``; raising aborts only the batch,
        which the runner then retries one request at a time.
        """

    def provenance(self) -> Mapping[str, Any]:
        """What identifies the loaded model (paths, checkpoint hashes, versions). Per-sample facts
        (repairs of an output) go in ``Output.provenance``, never in adapter state: an adapter
        that sets ``reports_output_provenance = True`` gets their sum over the run's stored outputs
        (``output_summary``) as ``model_provenance.outputs`` in ``metrics.json``."""


class CapabilityError(ConfigError):
    """The task needs something the model cannot read or write."""


def check_capabilities(
    adapter: ModelAdapter, *, needs_inputs: frozenset[Modality], produces: Modality,
    needs_loglikelihood: bool = False,
) -> None:
    """Raise CapabilityError unless ``adapter`` reads ``needs_inputs`` and writes ``produces``
    (and scores continuations when ``needs_loglikelihood``)."""
    missing = sorted(m.value for m in needs_inputs - adapter.inputs)
    problems = []
    if missing:
        problems.append(f"reads {', '.join(missing)} but the model reads only "
                        f"{', '.join(sorted(m.value for m in adapter.inputs))}")
    if produces not in adapter.outputs:
        problems.append(f"wants {produces.value} output but the model writes only "
                        f"{', '.join(sorted(m.value for m in adapter.outputs))}")
    if needs_loglikelihood and not getattr(adapter, "supports_loglikelihood", False):
        problems.append("scores answers by log-likelihood but the model cannot score continuations "
                        "(choose the task's generation scoring, e.g. "
                        "task.scoring._target_=mio_eval.tasks.multiple_choice.Generate)")
    if problems:
        raise CapabilityError(f"model {adapter.name!r} cannot run this task: the task "
                              + "; ".join(problems))


_LOADED: "weakref.WeakSet[Any]" = weakref.WeakSet()


def ensure_loaded(adapter: Any) -> None:
    """``adapter.load()`` once per adapter object: a suite runs several tasks on one model and
    loads its weights once."""
    try:
        if adapter in _LOADED:
            return
    except TypeError:  # not weak-referenceable: load every time (adapters make load idempotent)
        adapter.load()
        return
    adapter.load()
    _LOADED.add(adapter)


def output_summary(outputs: Iterable[tuple[str, Output]]) -> dict[str, Any]:
    """The run's model-output tallies from the stored outputs (``(sample id, Output)`` in dataset
    order): ``counts`` = every ``Output.provenance["counts"]`` summed (sorted by name) and
    ``repaired_samples`` = sample id -> its ``provenance["repairs"]`` (the first 1000 repaired
    samples; the ``repair_*`` counts cover all). Computed from what is stored, so a resumed run
    reports every sample, not only the ones its last process generated."""
    counts: dict[str, Any] = {}
    repaired: dict[str, list[str]] = {}
    for sample_id, output in outputs:
        for name, value in (output.provenance.get("counts") or {}).items():
            counts[name] = counts.get(name, 0) + value
        repairs = output.provenance.get("repairs")
        if repairs and len(repaired) < _REPAIRED_SHOWN:
            repaired[sample_id] = list(repairs)
    return {"counts": dict(sorted(counts.items())), "repaired_samples": repaired}
