"""One-way data flow (issue #17): tasks see declared capabilities, never the adapter; tasks return
artifacts and the store writes them inside the run directory; model provenance travels in Output."""

from __future__ import annotations

from pathlib import Path

import pytest

from mio_eval.api import build, compose
from mio_eval.capabilities import Capabilities, SpeechToText
from mio_eval.adapter import CapabilityError
from mio_eval.errors import ConfigError
from mio_eval.tasks.mmlu import MMLUTask
from mio_eval.types import Audio, Modality, Request, Text


def _reaches(obj, target, seen=None, depth=0) -> list[str]:
    """Attribute paths from ``obj`` to ``target``, not entering Capabilities/SpeechToText."""
    seen = set() if seen is None else seen
    if obj is target:
        return [""]
    if id(obj) in seen or depth > 6 or isinstance(obj, (Capabilities, SpeechToText, str, bytes, int, float, type)):
        return []
    seen.add(id(obj))
    children = []
    if isinstance(obj, dict):
        children = [(f"[{k!r}]", v) for k, v in obj.items()]
    elif isinstance(obj, (list, tuple, set, frozenset)):
        children = [(f"[{i}]", v) for i, v in enumerate(obj)]
    elif hasattr(obj, "__dict__"):
        children = [(f".{k}", v) for k, v in vars(obj).items()]
    return [p + rest for p, v in children for rest in _reaches(v, target, seen, depth + 1)]


@pytest.mark.parametrize("task,overrides", [("tts_demo", ["task.round_trip=true"]),
                                            ("mmlu", ["task.context_length=auto", "task.scoring=generate"])])
def test_a_task_has_no_access_to_the_adapter(task, overrides, tmp_path):
    cfg = compose(overrides=[f"task={task}", "model=dummy", f"paths.results_dir={tmp_path}", *overrides])
    built, adapter = build(cfg)
    assert getattr(built, "_capabilities", None) is not None or getattr(built, "_round_trip", None) is not None
    assert _reaches(built, adapter) == []


def test_capabilities_expose_only_what_is_declared():
    class Tokenizer:
        def encode(self, text):
            return text.split()

    class Adapter:
        name = "m"
        inputs = frozenset({Modality.TEXT, Modality.AUDIO})
        outputs = frozenset({Modality.TEXT})
        supports_loglikelihood = True
        max_length = 7
        tokenizer = None

        def generate(self, requests, *, media_dir):
            return []

    adapter = Adapter()
    caps = Capabilities(adapter)
    assert (caps.name, caps.supports_loglikelihood, caps.max_length, caps.has_tokenizer) == ("m", True, 7, True)
    assert caps.tokenizer is None  # not loaded yet: read when asked
    adapter.tokenizer = Tokenizer()
    assert caps.tokenizer.encode("a b") == ["a", "b"]
    assert not hasattr(caps, "generate") and not hasattr(caps, "model")
    reader = caps.speech_to_text()
    assert reader.inputs == {Modality.AUDIO} and reader.outputs == {Modality.TEXT}
    assert reader.generate([Request("a", (Audio("x.wav"),))], media_dir=Path(".")) == []
    with pytest.raises(ValueError, match="only transcribes"):
        reader.generate([Request("a", (Text("say hi"),), output_modality=Modality.AUDIO)], media_dir=Path("."))
    adapter.inputs = frozenset({Modality.TEXT})
    with pytest.raises(CapabilityError, match="cannot run this task"):
        caps.speech_to_text()


def test_mmlu_counts_tokens_through_capabilities_only():
    task = MMLUTask(name="m", loader=list, context_length=512)
    with pytest.raises(ConfigError, match="tokenizer"):
        task.bind(Capabilities(object()))
    assert not hasattr(task, "attach_model")
