"""MMLU side by side with lm-evaluation-harness itself (issue #14).

The same tiny random causal LM and the same local MMLU files (the ``cais/mmlu`` parquet layout) go
through our ``mmlu`` task (``hf_lm``, likelihood scoring, lm_eval header) and through lm-eval's own
``mmlu_<subject>`` task configs (``lm_eval/tasks/mmlu/default``, only the dataset path pointed at the
local parquet files) run by ``lm_eval.evaluator.evaluate`` with its ``HFLM``: per item the four
log-likelihoods agree to 1e-5, the chosen letter is the same, and the accuracy is identical.
Nothing is downloaded (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
lm_eval = pytest.importorskip("lm_eval")

from mio_eval import run  # noqa: E402
from helpers import char_tokenizer  # noqa: E402

# Three subjects, five dev shots each, a few test items; answers spread over A-D.
SUBJECTS = {
    "high_school_biology": [("Which organelle makes ATP?", ["Nucleus", "Mitochondrion", "Ribosome", "Golgi"], 1),
                            ("  DNA is made of?  ", ["Lipids", "Sugars only", "Nucleotides", "Amino acids"], 2),
                            ("Photosynthesis happens in the?", ["Chloroplast", "Nucleus", "Vacuole", "Wall"], 0)],
    "philosophy": [("Who wrote the Republic?", ["Plato", "Kant", "Hume", "Locke"], 0),
                   ("Ethics of duty?", ["Utilitarianism", "Egoism", "Deontology", "Nihilism"], 2),
                   ("The Ethics author?", ["Kant", "Hegel", "Marx", "Spinoza"], 3)],
    "marketing": [('Say "hi", then\nleave?', ["0.50", "None", "a, b", "NA"], 0),
                  ("What is a brand?", ["A name", "A price", "A cost", "A tax"], 1)],
}
MAX_LENGTH = 2048


def _dev(subject):
    return [{"question": f"{subject.split('_')[0]} dev {i}?", "subject": subject,
             "choices": [f"a{i}", f"b{i}", f"c{i}", f"d{i}"], "answer": i % 4} for i in range(5)]


def _write(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("parity_mmlu")
    files = {}
    for subject, items in SUBJECTS.items():
        test = [{"question": q, "subject": subject, "choices": c, "answer": a} for q, c, a in items]
        files[subject] = {"test": str(_write(root / "mmlu" / subject / "test-00000-of-00001.parquet", test)),
                          "dev": str(_write(root / "mmlu" / subject / "dev-00000-of-00001.parquet", _dev(subject)))}
    torch.manual_seed(0)
    tok = char_tokenizer(["<pad>", "<s>", "</s>", "<unk>"], model_input_names=["input_ids", "attention_mask"])
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=MAX_LENGTH,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0, initializer_range=0.3, tie_word_embeddings=False)
    model_dir = root / "tiny-llama"
    LlamaForCausalLM(config).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    return root, files, model_dir


def _ours(root, model_dir, results):
    metrics = run("mmlu", "hf_lm", [
        f"paths.results_dir={results}", "runner.progress=false", f"task.loader.root={root / 'mmlu'}",
        "task.loader.expected_size=null", f"model.path={model_dir}", "model.dtype=float32",
        f"model.max_length={MAX_LENGTH}", "model.add_bos=true", "runner.batch_size=4"])
    lines = (results / metrics["model"] / "mmlu" / "predictions.jsonl").read_text().splitlines()
    return metrics, {r["id"]: r for r in map(json.loads, lines)}


def _lm_eval(files, model_dir, cache_dir):
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.evaluator import evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks._yaml_loader import load_yaml

    default = Path(lm_eval.__file__).parent / "tasks" / "mmlu" / "default"
    tasks = {}
    for subject, data_files in files.items():
        config = load_yaml(default / f"mmlu_{subject}.yaml")
        config.update(dataset_path="parquet", dataset_name=None, dataset_kwargs={"data_files": data_files, "cache_dir": str(cache_dir)},
                      num_fewshot=5)
        tasks[config["task"]] = ConfigurableTask(config=config)
    lm = HFLM(pretrained=str(model_dir), dtype="float32", max_length=MAX_LENGTH, batch_size=4, add_bos_token=True,
              device="cpu")
    # lm_eval.evaluate (what simple_evaluate calls) on the task objects: simple_evaluate would first
    # index every task YAML lm-eval ships (slow), for nothing here.
    return evaluate(lm=lm, task_dict={"tasks": tasks, "groups": {}}, log_samples=True, bootstrap_iters=0)


def test_mmlu_loglikelihoods_equal_lm_eval(setup, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    root, files, model_dir = setup
    metrics, ours = _ours(root, model_dir, tmp_path)
    theirs = _lm_eval(files, model_dir, tmp_path / "hf_datasets")  # no writes to ~/.cache
    n = correct = 0
    for subject, items in SUBJECTS.items():
        samples = sorted(theirs["samples"][f"mmlu_{subject}"], key=lambda s: s["doc_id"])
        assert len(samples) == len(items)
        for sample in samples:
            record = ours[f"{subject}/{sample['doc_id']:04d}"]
            lls = [resp[0][0] for resp in sample["resps"]]
            assert record["output"]["logprobs"] == pytest.approx(lls, abs=1e-5), f"{subject} {sample['doc_id']}"
            best = max(range(4), key=lambda j: (lls[j], -j))
            assert record["prediction"]["letter"] == "ABCD"[best]
            assert sample["acc"] == float(best == sample["target"])
            n += 1
            correct += sample["acc"]
    assert metrics["n"] == n == sum(map(len, SUBJECTS.values()))
    assert metrics["metrics"]["accuracy"]["value"] == correct / n
    # lm-eval's own per-subject accuracies, pooled, are ours.
    pooled = sum(theirs["results"][f"mmlu_{s}"]["acc,none"] * len(items) for s, items in SUBJECTS.items()) / n
    assert metrics["metrics"]["accuracy"]["value"] == pytest.approx(pooled, abs=1e-12)
