"""The lmms-eval bridge (``--model mio_eval``) on ``mio_tiny``: two lmms-eval tasks on local data
(one ``generate_until``, one ``multiple_choice`` scored by log-likelihood) run through lmms-eval's
own ``simple_evaluate``; the prompt MIO receives is identical to the one mio-eval's own
``vqav2_val`` task sends, and the log-likelihoods equal the adapter's own.

Runs in the environment ``scripts/setup_lmms.sh`` builds (lmms-eval's antlr4 pin conflicts with
Hydra's); skipped where lmms-eval is not installed. CI runs it in its own step (``.ci/run``).
"""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from PIL import Image as PILImage

lmms_eval = pytest.importorskip("lmms_eval")

from mio_eval.api import build, compose  # noqa: E402
from mio_eval.models.mio import MIOAdapter  # noqa: E402
from mio_eval.models.mio_tiny import build_tiny_mio  # noqa: E402
from mio_eval.types import Request, Text  # noqa: E402

POST = "\nAnswer the question using a single word or phrase."
QUESTION = "What color is the square?"

UTILS = '''
from PIL import Image

POST = "\\nAnswer the question using a single word or phrase."


def doc_to_visual(doc):
    return [Image.open(doc["image"]).convert("RGB")]


def doc_to_text(doc):
    return doc["question"] + POST


def doc_to_choice(doc):
    return doc["choices"]   # lmms-eval joins with target_delimiter " "


def process_results(doc, results):
    return {"exact_match": float(results[0].strip().lower() == doc["answer"])}
'''


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("lmms")
    ckpt = build_tiny_mio(root / "mio_tiny")
    rng = np.random.default_rng(0)
    image = root / "data" / "coco" / "val2014" / "COCO_val2014_000000000042.jpg"
    image.parent.mkdir(parents=True)
    PILImage.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(image, format="PNG")  # lossless bytes
    docs = [{"question_id": 42000, "image": str(image), "question": QUESTION, "answer": "red",
             "choices": ["red", "blue"], "label": 0}]
    (root / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    tasks = root / "tasks"
    tasks.mkdir()
    (tasks / "utils.py").write_text(UTILS)
    common = f"""
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: {root / 'docs.jsonl'}
        test_split: test
        doc_to_visual: !function utils.doc_to_visual
        doc_to_text: !function utils.doc_to_text
        """
    (tasks / "mio_local_vqa.yaml").write_text(textwrap.dedent(f"""
        task: mio_local_vqa
        {textwrap.dedent(common).strip().replace(chr(10), chr(10) + '        ')}
        output_type: generate_until
        doc_to_target: answer
        generation_kwargs:
          max_new_tokens: 8
          num_beams: 1
          until: ["ASSISTANT:"]
        process_results: !function utils.process_results
        metric_list:
          - metric: exact_match
            aggregation: mean
            higher_is_better: true
        """))
    (tasks / "mio_local_mc.yaml").write_text(textwrap.dedent(f"""
        task: mio_local_mc
        {textwrap.dedent(common).strip().replace(chr(10), chr(10) + '        ')}
        output_type: multiple_choice
        doc_to_choice: !function utils.doc_to_choice
        doc_to_target: label
        metric_list:
          - metric: acc
        """))
    # The same question in VQAv2's release format, for mio-eval's own vqav2_val task.
    vqa = root / "data" / "vqav2"
    vqa.mkdir(parents=True)
    (vqa / "v2_OpenEnded_mscoco_val2014_questions.json").write_text(json.dumps(
        {"data_subtype": "val2014", "questions": [{"image_id": 42, "question": QUESTION, "question_id": 42000}]}))
    (vqa / "v2_mscoco_val2014_annotations.json").write_text(json.dumps({"annotations": [
        {"question_id": 42000, "image_id": 42, "answer_type": "other", "question_type": "what color",
         "multiple_choice_answer": "red", "answers": [{"answer": "red", "answer_id": k + 1} for k in range(10)]}]}))
    return {"root": root, "ckpt": ckpt, "tasks": tasks}


def test_bridge_runs_lmms_eval_tasks_with_mio_prompts(setup, monkeypatch):
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    rendered = []
    original = MIOAdapter.render

    def spy(self, request):
        prompt, text = original(self, request)
        rendered.append((request, text))
        return prompt, text

    monkeypatch.setattr(MIOAdapter, "render", spy)
    results = simple_evaluate(model="mio_eval", model_args=f"adapter=mio_tiny,path={setup['ckpt']},kind=vqa",
                              tasks=["mio_local_vqa", "mio_local_mc"], batch_size=1, device="cpu",
                              task_manager=TaskManager(include_path=str(setup["tasks"])), log_samples=True)
    assert set(results["results"]) == {"mio_local_vqa", "mio_local_mc"}
    generated = results["samples"]["mio_local_vqa"][0]
    assert isinstance(generated["filtered_resps"][0], str)

    # What the bridge sent MIO equals what mio-eval's own vqav2_val task sends for the same question.
    gen_request, gen_text = next((r, t) for r, t in rendered if not r.continuations)
    task, _ = build(compose(["task=vqav2_val", "model=mio_tiny", f"model.path={setup['ckpt']}",
                             f"paths.data_dir={setup['root'] / 'data'}"]))
    own_request = task.request(task.samples()[0])
    assert [type(p) for p in own_request.parts] == [type(p) for p in gen_request.parts]
    assert own_request.parts[1] == gen_request.parts[1] == Text(QUESTION + POST)
    assert gen_request.kind == own_request.kind == "vqa"
    adapter = MIOAdapter(str(setup["ckpt"]), variant="instruct")
    adapter.load()
    own_prompt = original(adapter, own_request)[1]
    assert gen_text == own_prompt   # same template, same pixels -> same image codes -> same string
    assert "<image>" in own_prompt and QUESTION in own_prompt

    # Log-likelihoods: lmms-eval's logged pairs equal the adapter's own scores of the same request.
    mc = results["samples"]["mio_local_mc"][0]
    logged = [float(pair[0]) for pair in mc["filtered_resps"]]
    scored = [r for r, _ in rendered if r.continuations]
    assert [r.continuations for r in scored] == [(" red",), (" blue",)]
    direct = adapter.generate([Request(sample_id="d", parts=scored[0].parts, kind=scored[0].kind,
                                       continuations=(" red", " blue"))], media_dir=setup["root"] / "m")[0]
    assert logged == pytest.approx(list(direct.logprobs), abs=1e-4)


def test_bridge_batches_through_the_shared_call_so_one_failure_costs_one_request(tmp_path):
    """A batch whose adapter answers the wrong count, or raises, is retried request by request
    (``mio_eval.batching``): the culprit becomes an error, its batch-mates keep their answers."""
    from mio_eval.lmms_model import MioEvalLMM
    from mio_eval.types import Output

    class Flaky:
        def generate(self, requests, *, media_dir):
            if any(r.sample_id == "t/bad" for r in requests):
                if len(requests) > 1:
                    return [Output(text="misaligned")]  # one answer for a batch of two
                raise RuntimeError("boom")
            return [Output(text=f"{r.sample_id} ok") for r in requests]

    lmm = object.__new__(MioEvalLMM)
    lmm.adapter, lmm.batch_size_per_gpu, lmm.media_dir, lmm.errors = Flaky(), 2, tmp_path, []
    lmm.to_request = lambda request, loglikelihood: request
    requests = [Request(sample_id=f"t/{n}", parts=(Text("q"),)) for n in ("a", "bad", "c")]
    assert lmm.generate_until(requests) == ["t/a ok", "", "t/c ok"]
    assert lmm.errors == [("t/bad", "RuntimeError: boom")]
