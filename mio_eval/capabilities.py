"""What a task may use of the model under test: a small, explicit view, never the adapter itself.

Tasks do not receive the model (issue #17, "one-way data flow"). The few that need something
from it declare so with an optional ``bind(capabilities)`` hook; ``mio_eval.api`` calls it with
the ``Capabilities`` of the adapter it built. What a task can ask for is exactly what is below:

* ``name`` and ``supports_loglikelihood`` (the adapter's declared attributes);
* ``tokenizer`` / ``max_length``: the loaded tokenizer and context length, to count prompt tokens
  (MMLU drops few-shot examples that do not fit, as lm-evaluation-harness truncates its context;
  EleutherAI/lm-evaluation-harness, ``lm_eval/api/model.py``);
* ``speech_to_text()``: the model under test as an audio -> text reader, for the TTS round trip
  (the model transcribes its own speech). It is a view that declares only audio in, text out, so
  a task holding it cannot ask the model for anything else.

Values are read when asked (a tokenizer exists only after ``load()``), so a task may keep its
``Capabilities`` from build time to request time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from mio_eval.adapter import check_capabilities, ensure_loaded
from mio_eval.types import Modality, Output, Request

__all__ = ["Capabilities", "SpeechToText"]


class SpeechToText:
    """The model under test restricted to reading audio and writing text (a ``ModelAdapter``
    with ``inputs={audio}``, ``outputs={text}``): what a judge wrapper (``Transcriber``) needs."""

    __slots__ = ("_adapter", "name")
    inputs = frozenset({Modality.AUDIO})
    outputs = frozenset({Modality.TEXT})

    def __init__(self, adapter: Any) -> None:
        self._adapter = adapter
        self.name = str(getattr(adapter, "name", type(adapter).__name__))

    def load(self) -> None:
        ensure_loaded(self._adapter)

    def generate(self, requests: Sequence[Request], *, media_dir: Path) -> list[Output]:
        bad = [r.sample_id for r in requests if r.output_modality != Modality.TEXT
               or r.continuations or r.modalities() - self.inputs]
        if bad:
            raise ValueError(f"speech_to_text only transcribes audio to text (request {bad[0]!r} asks for more)")
        return self._adapter.generate(requests, media_dir=media_dir)

    def provenance(self) -> Mapping[str, Any]:
        return self._adapter.provenance()


class Capabilities:
    """A read-only view of the model under test for tasks (see the module docstring)."""

    __slots__ = ("_adapter",)

    def __init__(self, adapter: Any) -> None:
        self._adapter = adapter

    @property
    def name(self) -> str:
        return str(getattr(self._adapter, "name", type(self._adapter).__name__))

    @property
    def supports_loglikelihood(self) -> bool:
        return bool(getattr(self._adapter, "supports_loglikelihood", False))

    @property
    def has_tokenizer(self) -> bool:
        """Whether the model exposes a tokenizer at all (loaded or not yet)."""
        return hasattr(self._adapter, "tokenizer")

    @property
    def tokenizer(self) -> Any:
        """The model's loaded tokenizer (``encode(text) -> ids``), or None (none, or not loaded)."""
        tokenizer = getattr(self._adapter, "tokenizer", None)
        return tokenizer if callable(getattr(tokenizer, "encode", None)) else None

    @property
    def max_length(self) -> int | None:
        """The model's context length in tokens, when it declares one."""
        limit = getattr(self._adapter, "max_length", None)
        return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None

    def speech_to_text(self) -> SpeechToText:
        """The model as an audio -> text reader; CapabilityError when it cannot read audio or write text."""
        check_capabilities(self._adapter, needs_inputs=SpeechToText.inputs, produces=Modality.TEXT)
        return SpeechToText(self._adapter)

    def __repr__(self) -> str:
        return f"Capabilities(model={self.name!r})"
