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
from mio_eval.tasks.multiple_choice import Generate
from mio_eval.types import Audio, Modality, Request, Sample, Text


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
                                            ("mmlu", ["task.context_length=auto", "task.scoring._target_=mio_eval.tasks.multiple_choice.Generate"])])
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


# --- artifacts: tasks return files, the store writes them -----------------------------------

from mio_eval.errors import StoreError  # noqa: E402
from mio_eval.models.dummy import DummyAdapter  # noqa: E402
from mio_eval.runner import RunnerSettings, evaluate  # noqa: E402
from mio_eval.store import PredictionStore, artifact_name  # noqa: E402
from mio_eval.tasks.base import ScoreReport  # noqa: E402
from test_runner import EchoTask  # noqa: E402


class ArtifactTask(EchoTask):
    def __init__(self, artifacts):
        super().__init__(["a", "bb"])
        self.artifacts = artifacts

    def score(self, generated, *, work_dir):
        report = super().score(generated, work_dir=work_dir)
        return ScoreReport(metrics=report.metrics, per_sample=report.per_sample, settings=report.settings,
                           artifacts=self.artifacts)


def _evaluate(run_dir, task):
    return evaluate(task, DummyAdapter(), run_dir=run_dir, fingerprint="fp",
                    settings=RunnerSettings(progress=False), run_info={"config": {}})


def test_artifacts_are_written_by_the_store_and_recorded(tmp_path):
    rows = [{"question_id": 1, "answer": "é"}]
    metrics = _evaluate(tmp_path / "run", ArtifactTask({"submission.json": rows, "sub/notes.txt": "hi\n",
                                                        "raw.bin": b"\x00\x01"}))
    assert metrics["artifacts"] == ["submission.json", "sub/notes.txt", "raw.bin"]
    run = tmp_path / "run"
    # JSON exactly as atomic_write_json always wrote the submission files (indent 2, UTF-8, newline)
    assert (run / "submission.json").read_bytes() == b'[\n  {\n    "question_id": 1,\n    "answer": "\xc3\xa9"\n  }\n]\n'
    assert (run / "sub" / "notes.txt").read_text() == "hi\n" and (run / "raw.bin").read_bytes() == b"\x00\x01"
    assert not [p for p in run.rglob("*.tmp*")]
    # a task without artifacts leaves metrics.json as before (no key)
    assert "artifacts" not in _evaluate(tmp_path / "plain", EchoTask(["a"]))


@pytest.mark.parametrize("name", ["../x", "/tmp/x", "a/../../x", "a//b", "./x", "", "metrics.json",
                                  "predictions.jsonl", "media/x.png", "a\\..\\x", 3])
def test_an_artifact_outside_the_run_or_over_a_store_file_is_refused(tmp_path, name):
    with pytest.raises(StoreError):
        artifact_name(name)
    run = tmp_path / "run"
    with pytest.raises(StoreError, match="artifact"):
        _evaluate(run, ArtifactTask({"ok.json": [], name: {"evil": True}}))
    assert not (run / "ok.json").exists() and not (tmp_path / "x").exists()  # nothing is written
    assert not (run / "metrics.json").exists()


def test_an_artifact_through_a_symbolic_link_out_of_the_run_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "out").symlink_to(outside, target_is_directory=True)
    store = PredictionStore(run)
    with pytest.raises(StoreError, match="outside the run directory"):
        store.write_artifacts({"out/x.json": []})
    (run / "link.json").symlink_to(outside / "y.json")
    with pytest.raises(StoreError, match="outside the run directory"):
        store.write_artifacts({"link.json": []})
    assert list(outside.iterdir()) == []


def test_no_task_writes_beside_its_work_dir():
    """Tasks return artifacts; none reaches into the run directory (``work_dir``'s parent)."""
    import mio_eval.tasks as tasks_pkg

    root = Path(tasks_pkg.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py") if "work_dir).parent" in p.read_text()
                 or "work_dir.parent" in p.read_text()]
    assert offenders == []


# --- per-sample model provenance travels in Output ----------------------------------------

from mio_eval.adapter import output_summary  # noqa: E402
from mio_eval.types import Output  # noqa: E402


class RepairingAdapter(DummyAdapter):
    """Reports a repair on every output, in Output.provenance, as MIO does; fails ``fail_ids``."""

    reports_output_provenance = True

    def generate(self, requests, *, media_dir):
        return [Output(error=o.error, text=o.text, provenance={"counts": {"repair_x": 1}, "repairs": ["x"]})
                for o in super().generate(requests, media_dir=media_dir)]


def test_output_provenance_round_trips_and_old_files_read_as_empty():
    out = Output(text="a", provenance={"counts": {"repair_x": 2}, "repairs": ["x", "x"]})
    data = out.to_json()
    assert data["provenance"] == {"counts": {"repair_x": 2}, "repairs": ["x", "x"]}
    assert Output.from_json(data) == out
    old = {"text": "a", "media": [], "error": None, "n_input_tokens": None, "n_output_tokens": None}
    assert Output.from_json(old).provenance == {} and "provenance" not in Output(text="a").to_json()
    assert Output.from_json(old).to_json() == old  # files without provenance stay byte-identical


def test_a_resumed_run_keeps_every_samples_repair_counts(tmp_path):
    texts = ["a", "bb", "ccc", "dddd"]
    first = evaluate(EchoTask(texts), RepairingAdapter(), run_dir=tmp_path, fingerprint="fp",
                     settings=RunnerSettings(progress=False, limit=2), run_info={"config": {}})
    assert first["model_provenance"]["outputs"] == {"counts": {"repair_x": 2},
                                                    "repaired_samples": {"s000": ["x"], "s001": ["x"]}}
    adapter = RepairingAdapter()  # a new process: nothing of the first one's state
    second = evaluate(EchoTask(texts), adapter, run_dir=tmp_path, fingerprint="fp",
                      settings=RunnerSettings(progress=False), run_info={"config": {}})
    assert second["model_provenance"]["outputs"]["counts"] == {"repair_x": 4}
    assert list(second["model_provenance"]["outputs"]["repaired_samples"]) == ["s000", "s001", "s002", "s003"]
    # re-scoring alone (no generation) gives the same tallies, from predictions.jsonl
    third = evaluate(EchoTask(texts), RepairingAdapter(), run_dir=tmp_path, fingerprint="fp",
                     settings=RunnerSettings(progress=False, stage="score"), run_info={"config": {}})
    assert third["model_provenance"]["outputs"] == second["model_provenance"]["outputs"]


def test_adapters_without_output_provenance_keep_their_provenance(tmp_path):
    metrics = evaluate(EchoTask(["a"]), DummyAdapter(), run_dir=tmp_path, fingerprint="fp",
                       settings=RunnerSettings(progress=False), run_info={"config": {}})
    assert "outputs" not in metrics["model_provenance"]


def test_output_summary_counts_failed_outputs_and_lists_repaired_samples_in_order():
    outs = [("b", Output(error="invalid output: x", provenance={"counts": {"invalid_outputs": 1}})),
            ("a", Output(text="t", provenance={"counts": {"repair_y": 1, "stray": 3}, "repairs": ["y"]})),
            ("c", Output(text="t"))]
    assert output_summary(outs) == {"counts": {"invalid_outputs": 1, "repair_y": 1, "stray": 3},
                                    "repaired_samples": {"a": ["y"]}}


# --- no hidden state between request() and prediction() --------------------------------------


def test_no_task_keeps_state_between_request_and_prediction():
    """No task method ``request``/``prediction`` assigns or mutates an attribute of ``self``."""
    import ast

    import mio_eval.tasks as tasks_pkg

    found = []
    for path in Path(tasks_pkg.__file__).parent.rglob("*.py"):
        for cls in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)):
            for fn in (f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name in ("request", "prediction")):
                for node in ast.walk(fn):
                    targets = (node.targets if isinstance(node, ast.Assign) else
                               [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
                    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                            and node.func.attr in ("append", "add", "update", "setdefault", "extend", "pop"):
                        targets = [node.func.value]
                    found += [f"{path.name}:{node.lineno}" for t in targets if ast.unparse(t).startswith("self.")]
    assert found == []


def test_mmlu_prediction_needs_no_earlier_request():
    shots = [{"question": f"q{i} " + "word " * 30, "choices": ["a", "b", "c", "d"], "answer": 0} for i in range(5)]
    sample = Sample(id="x", parts=(Text("q"),), targets=("A",), choices=("a", "b", "c", "d"),
                    metadata={"subject": "anatomy", "question": "q?", "fewshot": shots})

    class Tokenizer:
        def encode(self, text):
            return text.split()

    class Model:
        name, tokenizer, max_length = "m", Tokenizer(), 120

    task = MMLUTask(name="m", loader=list, scoring=Generate(), generation={"max_new_tokens": 1})
    task.bind(Capabilities(Model()))
    fresh = MMLUTask(name="m", loader=list, scoring=Generate(), generation={"max_new_tokens": 1})
    fresh.bind(Capabilities(Model()))
    task.request(sample)
    kept = task.prediction(sample, Output(text="A"))["shots"]
    assert 0 < kept < 5  # some shots were dropped to fit 120 tokens
    assert fresh.prediction(sample, Output(text="A"))["shots"] == kept  # no request() needed


# --- Request.kind is an enum ---------------------------------------------------------------

import json  # noqa: E402

from mio_eval.models.mio.prompts import TEMPLATES, mio_prompt  # noqa: E402
from mio_eval.types import RequestKind  # noqa: E402

KIND_VALUES = ["asr", "tts", "s2s", "caption", "vqa", "mcq", "text", "t2i", "video_qa", "video_gen", "interleaved"]


def test_request_kind_is_an_enum_with_the_same_strings():
    assert [k.value for k in RequestKind] == KIND_VALUES
    request = Request("a", (Text("hi"),), kind="tts")
    assert request.kind is RequestKind.TTS and request.kind == "tts" and str(request.kind) == "tts"
    assert json.dumps({"kind": request.kind}) == '{"kind": "tts"}'  # serialised as before
    assert Request("a", (Text("hi"),)).kind is None
    with pytest.raises(ValueError, match=r"unknown request kind 'speech'; one of: asr, tts, .*interleaved"):
        Request("a", (Text("hi"),), kind="speech")


def test_mio_template_table_is_keyed_by_kind_and_strings_render_the_same():
    assert all(isinstance(kind, RequestKind) for _, kind in TEMPLATES)
    for variant, kind in TEMPLATES:
        parts = (Text("hello"),)
        by_string = mio_prompt(Request("a", parts, kind=kind.value), variant=variant)
        by_enum = mio_prompt(Request("a", parts, kind=kind), variant=variant)
        assert by_string == by_enum
    assert mio_prompt(Request("a", (Text("hello"),), kind="tts"), variant="base").text.endswith("<spch>")
