"""MMLU and OmniBench: vectors from hendrycks/test ``evaluate.py`` and
multimodal-art-projection/OmniBench, each loader on fixtures written
in its exact on-disk format, MMLU end to end on a tiny random causal LM (log-likelihood checked
against a direct forward pass) and with the dummy adapter (generation scoring), OmniBench end to
end with the dummy adapter in its four settings."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from mio_eval import run
from mio_eval.api import build_task, compose
from mio_eval.capabilities import Capabilities
from mio_eval.errors import ConfigError
from mio_eval.metrics.choice import extract_choice
from mio_eval.tasks.base import Generated
from mio_eval.tasks.loaders.mmlu import (CATEGORIES, SUBCATEGORIES, SUBJECTS, TEST_SIZE, TEST_SIZES, MMLULoader,
                                         category_of)
from mio_eval.tasks.loaders.omnibench import OmniBenchLoader, gold_index, slug
from mio_eval.tasks.mmlu import MMLUTask, format_block, header_line, render_prompt
from mio_eval.tasks.multiple_choice import Generate
from mio_eval.tasks.omnibench import CountWrong, ExcludeFailed, OmniBenchTask, omnibench_prompt
from mio_eval.types import Audio, Image, Modality, Output, Text
from helpers import char_tokenizer

VECTOR_ROW = ("What is 2+2?", "3", "4", "5", "6", "B")


def _overrides(results, *extra):
    return [f"paths.results_dir={results}", "runner.progress=false", *extra]


def _lines(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


# --- MMLU fixtures: the original CSV release --------------------------------------------------

def _dev(subject):
    rows = [VECTOR_ROW] if subject == "high_school_biology" else []
    while len(rows) < 5:
        i = len(rows)
        rows.append((f"{subject.split('_')[0]} dev {i}?", f"a{i}", f"b{i}", f"c{i}", f"d{i}", "ABCD"[i % 4]))
    return rows


# Test rows: gold letters chosen so that a constant "(B)" answer scores 3 of 8.
TEST_ROWS = {
    "high_school_biology": [("Which organelle makes ATP?", "Nucleus", "Mitochondrion", "Ribosome", "Golgi", "B"),
                            ("  DNA is made of?  ", "Lipids", "Sugars only", "Nucleotides", "Amino acids", "C")],
    "philosophy": [("Who wrote the Republic?", "Plato", "Kant", "Hume", "Locke", "A"),
                   ("Cogito ergo sum is from?", "Hume", "Descartes", "Mill", "Rawls", "B"),
                   ("Ethics of duty?", "Utilitarianism", "Egoism", "Deontology", "Nihilism", "C"),
                   ("The Ethics author?", "Kant", "Hegel", "Marx", "Spinoza", "D")],
    # Cells the CSV module must keep exact: comma, quotes, a newline, "0.50", "None".
    "marketing": [('Say "hi", then\nleave?', "0.50", "None", "a, b", "NA", "A"),
                  ("What is a brand?", "A name", "A price", "A cost", "A tax", "B")],
}


def _write_csv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)


@pytest.fixture(scope="module")
def mmlu_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mmlu")
    for subject, rows in TEST_ROWS.items():
        _write_csv(root / "data" / "test" / f"{subject}_test.csv", rows)
        _write_csv(root / "data" / "dev" / f"{subject}_dev.csv", _dev(subject))
    return root


def _hf_rows(subject, rows):
    return [{"question": r[0], "subject": subject, "choices": list(r[1:5]), "answer": "ABCD".index(r[5])}
            for r in rows]


def _write_parquet(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


# --- MMLU vectors (hendrycks/test, lm-eval mmlu) -----------------------------------------------------------

def test_prompt_block_vector():
    q, *choices, answer = VECTOR_ROW
    assert format_block(q, choices, "ABCD".index(answer)) == "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer: B\n\n"
    assert format_block(q, choices) == "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:"


def test_header_variants():
    assert header_line("high_school_biology", "lm_eval") == \
        "The following are multiple choice questions (with answers) about high school biology.\n\n"
    assert header_line("high_school_biology", "hendrycks") == \
        "The following are multiple choice questions (with answers) about  high school biology.\n\n"
    # lm-eval strips the question; the original uses it as stored.
    assert format_block("  Q?  ", "abcd", header="lm_eval").startswith("Q?\nA. a")
    assert format_block("  Q?  ", "abcd", header="hendrycks").startswith("  Q?  \nA. a")


def test_subject_and_category_maps():
    assert len(SUBJECTS) == 57 and sum(TEST_SIZES.values()) == TEST_SIZE == 14042
    assert {category_of(s) for s in SUBJECTS} == set(CATEGORIES)
    assert sorted(sub for subs in CATEGORIES.values() for sub in subs) == sorted(set(SUBCATEGORIES.values()))
    assert category_of("high_school_biology") == "stem" and category_of("philosophy") == "humanities"
    assert category_of("high_school_psychology") == "social_sciences" and category_of("marketing") == "other"
    assert category_of("global_facts") == "other" and category_of("professional_law") == "humanities"
    with pytest.raises(ConfigError, match="unknown MMLU subject"):
        category_of("astrology")


def _generated(task, sample, choice, error=None):
    output = Output(error=error) if error else Output(text="x")
    prediction = None if error else {"choice": choice, "letter": None, "shots": 5}
    return Generated(sample=sample, output=output, prediction=prediction, error=error)


def test_micro_vs_macro_vector(mmlu_root):
    """Subject X 2/2 correct, subject Y 1/4 -> micro 3/6 = 0.5, macro (1.0 + 0.25) / 2 = 0.625."""
    task = MMLUTask(name="mmlu", loader=MMLULoader(root=str(mmlu_root), subjects=["high_school_biology", "philosophy"]),
                    scoring=Generate())
    samples = task.samples()
    gold = {s.id: s.metadata["answer"] for s in samples}
    wrong = {"philosophy/0001", "philosophy/0002"}
    generated = [_generated(task, s, None if s.id == "philosophy/0003" else
                            (gold[s.id] + 1) % 4 if s.id in wrong else gold[s.id]) for s in samples]
    report = task.score(generated, work_dir=mmlu_root)
    metrics = {m.name: m for m in report.metrics}
    assert metrics["accuracy"].value == 0.5 and metrics["accuracy"].n == 6
    assert metrics["accuracy_macro"].value == 0.625
    assert metrics["accuracy_macro"].extra["per_subject"] == {
        "high_school_biology": {"accuracy": 1.0, "n": 2, "invalid": 0},
        "philosophy": {"accuracy": 0.25, "n": 4, "invalid": 1}}
    assert metrics["accuracy/stem"].value == 1.0 and metrics["accuracy/humanities"].value == 0.25
    assert metrics["accuracy/stem"].extra["category"] == "STEM"
    assert metrics["invalid_rate"].value == pytest.approx(1 / 6)
    assert set(metrics) == {"accuracy", "invalid_rate", "accuracy/stem", "accuracy/humanities", "accuracy_macro"}
    assert {m.variant for m in report.metrics} == {"generate/lm_eval"}
    assert report.settings["header"] == "lm_eval" and report.settings["scoring"] == "generate"
    # A failed generation is left out of every metric, and listed with its error.
    generated[0] = _generated(task, samples[0], None, error="boom")
    report = task.score(generated, work_dir=mmlu_root)
    assert {m.name: m.value for m in report.metrics}["accuracy"] == pytest.approx(2 / 5)
    assert report.per_sample[0]["error"] == "boom" and report.n_errors == 1


# --- MMLU loaders -----------------------------------------------------------------------------

def test_mmlu_csv_loader(mmlu_root):
    samples = MMLULoader(root=str(mmlu_root))()
    assert [s.id for s in samples] == (["high_school_biology/0000", "high_school_biology/0001"]
                                       + ["marketing/0000", "marketing/0001"]
                                       + [f"philosophy/{i:04d}" for i in range(4)])
    tricky = samples[2]
    assert tricky.parts == (Text('Say "hi", then\nleave?'),)
    assert tricky.choices == ("0.50", "None", "a, b", "NA") and tricky.targets == ("A",)
    assert tricky.metadata["category"] == "other" and tricky.metadata["subcategory"] == "business"
    bio = samples[0]
    assert bio.metadata["answer"] == 1 and bio.metadata["fewshot"][0] == {
        "question": "What is 2+2?", "choices": ("3", "4", "5", "6"), "answer": 1}
    assert len(bio.metadata["fewshot"]) == 5
    # The data folder itself is accepted as root; a subject filter; sizes checked on the full set.
    assert len(MMLULoader(root=str(mmlu_root / "data"), subjects=["philosophy"])()) == 4
    assert len(MMLULoader(root=str(mmlu_root), expected_size=TEST_SIZE)()) == 8  # 3 of 57 subjects: no check


def test_mmlu_prompt_rendering(mmlu_root):
    sample = MMLULoader(root=str(mmlu_root))()[1]  # high_school_biology/0001, question "  DNA is made of?  "
    prompt = render_prompt(sample, 5)
    assert prompt.startswith(header_line("high_school_biology") + "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer: B\n\n")
    assert prompt.endswith("\n\nDNA is made of?\nA. Lipids\nB. Sugars only\nC. Nucleotides\nD. Amino acids\nAnswer:")
    assert prompt.count("Answer:") == 6
    assert render_prompt(sample, 0) == header_line("high_school_biology") + format_block(
        "DNA is made of?", sample.choices)
    assert render_prompt(sample, 2, "hendrycks").endswith("\n\n  DNA is made of?  \nA. Lipids\nB. Sugars only"
                                                          "\nC. Nucleotides\nD. Amino acids\nAnswer:")
    task = MMLUTask(name="mmlu", loader=lambda: [sample], num_fewshot=3)
    request = task.request(sample)
    assert request.continuations == (" A", " B", " C", " D") and task.needs_loglikelihood
    assert request.text == render_prompt(sample, 3) and request.modalities() == {Modality.TEXT}
    assert request.kind == "text"


def test_mmlu_loader_errors(mmlu_root, tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        MMLULoader(root=str(tmp_path / "missing"))()
    _write_csv(tmp_path / "bad" / "data" / "test" / "anatomy_test.csv", [("q", "a", "b", "c", "d")])
    with pytest.raises(ConfigError, match="expected 6 columns"):
        MMLULoader(root=str(tmp_path / "bad"))()
    _write_csv(tmp_path / "bad2" / "data" / "test" / "anatomy_test.csv", [("q", "a", "b", "c", "d", "E")])
    with pytest.raises(ConfigError, match="answer must be one of A-D"):
        MMLULoader(root=str(tmp_path / "bad2"))()
    _write_csv(tmp_path / "odd" / "data" / "test" / "astrology_test.csv", [("q", "a", "b", "c", "d", "A")])
    with pytest.raises(ConfigError, match="unknown MMLU subject 'astrology'"):
        MMLULoader(root=str(tmp_path / "odd"))()
    with pytest.raises(ConfigError, match="not found in"):
        MMLULoader(root=str(mmlu_root), subjects=["anatomy"])()
    # All 57 subjects present but truncated: the expected size fails loudly, naming subjects.
    for subject in SUBJECTS:
        _write_csv(tmp_path / "small" / "data" / "test" / f"{subject}_test.csv", [("q", "a", "b", "c", "d", "A")])
    with pytest.raises(ConfigError, match=r"has 57 items, expected 14042 \(subjects off: abstract_algebra 1/100"):
        MMLULoader(root=str(tmp_path / "small"), expected_size=TEST_SIZE)()
    assert len(MMLULoader(root=str(tmp_path / "small"), fewshot_split=None)()) == 57


def _same_items(a, b):
    return [(s.id, s.parts, s.choices, s.targets, s.metadata["fewshot"]) for s in a] == \
        [(s.id, s.parts, s.choices, s.targets, s.metadata["fewshot"]) for s in b]


def test_mmlu_hf_layouts_match_csv(mmlu_root, tmp_path):
    import datasets

    expected = MMLULoader(root=str(mmlu_root))()
    # Hub snapshot, one config per subject: <subject>/{test,dev}-00000-of-00001.parquet
    for subject, rows in TEST_ROWS.items():
        _write_parquet(tmp_path / "per" / subject / "test-00000-of-00001.parquet", _hf_rows(subject, rows))
        _write_parquet(tmp_path / "per" / subject / "dev-00000-of-00001.parquet", _hf_rows(subject, _dev(subject)))
    assert _same_items(MMLULoader(root=str(tmp_path / "per"))(), expected)
    assert _same_items(MMLULoader(root=str(tmp_path / "per"), format="hf")(), expected)
    # The "all" config (rows of every subject in one table, subject column).
    all_test = [r for s, rows in TEST_ROWS.items() for r in _hf_rows(s, rows)]
    all_dev = [r for s in TEST_ROWS for r in _hf_rows(s, _dev(s))]
    _write_parquet(tmp_path / "all_cfg" / "all" / "test-00000-of-00001.parquet", all_test)
    _write_parquet(tmp_path / "all_cfg" / "all" / "dev-00000-of-00001.parquet", all_dev)
    assert _same_items(MMLULoader(root=str(tmp_path / "all_cfg"))(), expected)
    # load_dataset("cais/mmlu", "all").save_to_disk(...)
    datasets.DatasetDict({"test": datasets.Dataset.from_list(all_test),
                          "dev": datasets.Dataset.from_list(all_dev)}).save_to_disk(str(tmp_path / "saved"))
    assert _same_items(MMLULoader(root=str(tmp_path / "saved"))(), expected)
    with pytest.raises(ConfigError, match="no parquet shards"):
        MMLULoader(root=str(tmp_path / "per"), split="validation")()


# --- MMLU end to end: tiny random Llama through hf_lm ---------------------------------------

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
BOS = 1


def _char_tokenizer():
    """One token per character (printable ASCII, space, newline), BOS first: token counts are
    character counts + 1, so shot dropping is predictable by hand."""
    return char_tokenizer(SPECIALS, model_input_names=["input_ids", "attention_mask"])


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = _char_tokenizer()
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=BOS, eos_token_id=2, pad_token_id=0, initializer_range=0.3,
                         tie_word_embeddings=False)
    path = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _by_hand(subject, question, choices, shots):
    """The lm_eval-variant prompt written out independently of the task code."""
    text = f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
    for q, *opts, answer in shots:
        text += f"{q.strip()}\nA. {opts[0]}\nB. {opts[1]}\nC. {opts[2]}\nD. {opts[3]}\nAnswer: {answer}\n\n"
    return text + f"{question.strip()}\nA. {choices[0]}\nB. {choices[1]}\nC. {choices[2]}\nD. {choices[3]}\nAnswer:"


def test_mmlu_loglikelihood_end_to_end_matches_direct_computation(mmlu_root, tiny_lm, tmp_path):
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    max_length = 400
    metrics = run("mmlu", "hf_lm", _overrides(
        tmp_path, f"task.loader.root={mmlu_root}", "task.loader.expected_size=null", f"model.path={tiny_lm}",
        "model.dtype=float32", f"model.max_length={max_length}", "runner.batch_size=3"))
    assert metrics["n"] == 8 and metrics["n_errors"] == 0
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    model = LlamaForCausalLM.from_pretrained(tiny_lm, dtype=torch.float32).eval()
    records = {r["id"]: r for r in _lines(tmp_path / metrics["model"] / "mmlu" / "predictions.jsonl")}
    correct, shots_used = [], []
    for subject, rows in sorted(TEST_ROWS.items()):
        for i, (question, *choices, answer) in enumerate(rows):
            record = records[f"{subject}/{i:04d}"]
            # Shots dropped (last first) until prompt + " X" - 1 fits max_length.
            for k in range(5, -1, -1):
                prompt = _by_hand(subject, question, choices, _dev(subject)[:k])
                if len(tok(prompt + " D").input_ids) - 1 <= max_length:
                    break
            assert record["prompt"] == [{"type": "text", "text": prompt}]
            assert record["prediction"]["shots"] == k
            shots_used.append(k)
            direct = []
            for letter in "ABCD":
                ids = tok(prompt + " " + letter).input_ids
                n_ctx = len(tok(prompt).input_ids)
                with torch.no_grad():
                    logprobs = torch.log_softmax(model(torch.tensor([ids[:-1]])).logits[0], dim=-1)
                direct.append(sum(logprobs[p - 1, ids[p]].item() for p in range(n_ctx, len(ids))))
            assert record["output"]["logprobs"] == pytest.approx(direct, abs=1e-4)
            best = max(range(4), key=lambda j: (direct[j], -j))
            assert record["prediction"]["letter"] == "ABCD"[best]
            correct.append(best == "ABCD".index(answer))
    assert 0 < min(shots_used) < 5 and len(set(shots_used)) > 1, shots_used  # the fixture exercises dropping
    m = metrics["metrics"]
    assert m["accuracy"]["value"] == pytest.approx(sum(correct) / len(correct))
    assert {v["variant"] for v in m.values()} == {"likelihood/lm_eval"}
    assert m["invalid_rate"]["value"] == 0.0
    assert set(m) == {"accuracy", "invalid_rate", "accuracy_macro", "accuracy/stem", "accuracy/humanities",
                      "accuracy/other"}
    assert metrics["scoring"]["fewshot"]["mean_used"] == pytest.approx(sum(shots_used) / len(shots_used))
    scores = _lines(tmp_path / metrics["model"] / "mmlu" / "scores.jsonl")
    assert [r["correct"] for r in scores] == correct and scores[0]["subject"] == "high_school_biology"


def test_mmlu_generate_mode_with_dummy(mmlu_root, tmp_path):
    common = [f"task.loader.root={mmlu_root}", "task.loader.expected_size=null", "task.scoring._target_=mio_eval.tasks.multiple_choice.Generate",
              "task.header=hendrycks"]
    # Every answer "(B)": gold B for 3 of 8 items (biology 1/2, philosophy 1/4, marketing 1/2).
    metrics = run("mmlu", "dummy", _overrides(tmp_path / "b", *common, "model.response='(B)'"))
    m = metrics["metrics"]
    assert m["accuracy"]["value"] == 3 / 8 and m["invalid_rate"]["value"] == 0.0
    assert m["accuracy_macro"]["value"] == pytest.approx((1 / 2 + 1 / 4 + 1 / 2) / 3)
    assert m["accuracy/humanities"]["value"] == 0.25 and m["accuracy/stem"]["value"] == 0.5
    assert {v["variant"] for v in m.values()} == {"generate/hendrycks"}
    records = {r["id"]: r for r in _lines(tmp_path / "b" / "dummy" / "mmlu" / "predictions.jsonl")}
    record = records["high_school_biology/0001"]
    assert record["prompt"][0]["text"].startswith(
        "The following are multiple choice questions (with answers) about  high school biology.\n\nWhat is 2+2?")
    assert record["prompt"][0]["text"].endswith("\n\n  DNA is made of?  \nA. Lipids\nB. Sugars only\nC. Nucleotides"
                                                "\nD. Amino acids\nAnswer:")
    assert record["prediction"] == {"choice": 1, "letter": "B", "shots": 5}  # dummy has no tokenizer: all shots
    # "A or B" names two letters: invalid for every item, counted wrong, never guessed. A failed
    # generation is an error, left out of the metrics.
    metrics = run("mmlu", "dummy", _overrides(tmp_path / "ab", *common, "model.response='A or B'",
                                              "model.fail_ids=[philosophy/0000]",
                                              "runner.max_error_rate=0.2"))
    m = metrics["metrics"]
    assert m["accuracy"]["value"] == 0.0 and m["invalid_rate"]["value"] == 1.0 and m["accuracy"]["n"] == 7
    assert metrics["n_errors"] == 1
    scores = _lines(tmp_path / "ab" / "dummy" / "mmlu" / "scores.jsonl")
    assert scores[0]["pred"] is None and scores[0]["correct"] is False


def test_mmlu_likelihood_needs_a_scoring_adapter(mmlu_root, tmp_path):
    with pytest.raises(ConfigError, match="log-likelihood"):
        run("mmlu", "dummy", _overrides(tmp_path, f"task.loader.root={mmlu_root}"))


def test_mmlu_options_are_validated():
    with pytest.raises(ConfigError, match="header"):
        MMLUTask(name="m", loader=list, header="helm")
    with pytest.raises(ConfigError, match="scoring"):
        MMLUTask(name="m", loader=list, scoring="ppl")
    with pytest.raises(ConfigError, match="context_length"):
        MMLUTask(name="m", loader=list, context_length="big")
    task = MMLUTask(name="m", loader=list, context_length=512)
    with pytest.raises(ConfigError, match="tokenizer"):
        task.bind(Capabilities(object()))


# --- OmniBench ------------------------------------------------------------------------------

OMNI_ITEMS = [
    # The reference scorer parses this gold text ("A man ...") as letter A; options.index says C.
    {"task type": "Action and Activity", "audio type": "speech", "question": "Who is speaking",
     "audio content": "A: You and I have the same employer.", "image content": "A man in tactical gear.",
     "audio_path": "1_26.mp3", "image_path": "1_026.png", "index": 6,
     "answer": "A man is answering some questions",
     "options": ["A woman is explaining to a man", "A redhead lady is asking question",
                 "A man is answering some questions", "A man in blue shirt explaining current situation to woman"]},
    {"task type": "Count and Quantity", "audio type": "sound event", "question": "How many dogs bark?",
     "audio content": "Barking.", "image content": "Two dogs.", "audio_path": "2_1.mp3", "image_path": "2_1.jpg",
     "index": 7, "answer": "Two", "options": ["Two", "Three", "Four", "Five"]},
    {"task type": "Plot Inference", "audio type": "music", "question": "What happens next?",
     "audio content": "Tense strings.", "image content": "A dark hall.", "audio_path": "3_1.mp3",
     "image_path": "3_1.png", "index": 8, "answer": "A fight", "options": ["A party", "A nap", "A fight", "A meal"]},
    {"task type": "Story Description", "audio type": "speech", "question": "What is the story?",
     "audio content": "B: Once upon a time.", "image content": "A book.", "audio_path": "4_1.mp3",
     "image_path": "4_1.png", "index": 9, "answer": "A fairy tale",
     "options": ["A news report", "A fairy tale", "A recipe", "A lecture"]},
    {"task type": "Count and Quantity", "audio type": "Sound Event", "question": "How many knocks?",
     "audio content": "Knocking.", "image content": "A door.", "audio_path": "5_1.mp3", "image_path": "5_1.png",
     "index": 10, "answer": "Three", "options": ["One", "Two", "Three", "Four"]},
    {"task type": "Text and Symbols", "audio type": "music", "question": "What does the sign say?",
     "audio content": "A jingle.", "image content": "A sign reading OPEN.", "audio_path": "6_1.mp3",
     "image_path": "6_1.png", "index": 11, "answer": "Open", "options": ["Closed", "Exit", "Sale", "Open"]},
]


def _omni_media(root):
    for item in OMNI_ITEMS:
        for kind in ("audio", "image"):
            path = root / "mm_data" / kind / item[f"{kind}_path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"{kind}:{item['index']}".encode())


@pytest.fixture(scope="module")
def omni_root(tmp_path_factory):
    """The GitHub layout: dataset/batch-5_1142_20240817.jsonl + mm_data/{audio,image}/."""
    root = tmp_path_factory.mktemp("OmniBench")
    (root / "dataset").mkdir()
    (root / "dataset" / "batch-5_1142_20240817.jsonl").write_text(
        "".join(json.dumps(item) + "\n" for item in OMNI_ITEMS))
    _omni_media(root)
    return root


def test_omnibench_prompt_vectors():
    options = ["a dog", "a cat"]
    assert omnibench_prompt("What barks?", options) == (
        "Please answer the following question based on the given image and audio:\nWhat barks?.\n"
        "Please choose only one answer from the following options:\nA. a dog\nB. a cat.")
    kw = {"audio_content": "Woof.", "image_content": "A dog."}
    assert omnibench_prompt("What barks?", options, "textual_image", **kw) == (
        "Please answer the following question based on the given caption of an image and an audio:\n"
        "Image Content: A dog. What barks?.\nPlease choose only one answer from the following options:\n"
        "A. a dog\nB. a cat.")
    assert omnibench_prompt("What barks?", options, "textual_audio", **kw) == (
        "Please answer the following question based on the given an image and transcript of an audio:\n"
        "Audio Content: Woof. What barks?.\nPlease choose only one answer from the following options:\n"
        "A. a dog\nB. a cat.")
    assert omnibench_prompt("What barks?", options, "textual_image_audio", **kw) == (
        "Please answer the following question based on the given caption of an image and transcript of an "
        "audio:Audio Content: Woof. \nImage Content: A dog. What barks?.\n"
        "Please choose only one answer from the following options:\nA. a dog\nB. a cat.")
    with pytest.raises(ConfigError, match="setting"):
        omnibench_prompt("q", options, "video")


def _reference_letter(response, options):
    """OmniBench's ``parse_multi_choice_response`` cascade, re-typed for the pitfall vectors (with
    ``default_answer=None`` instead of a random letter): "(X)", then "X ", then "X.", then option
    texts for replies over 5 words; several candidates -> the last occurrence."""
    text, letters = f" {response} ", "ABCD"[:len(options)]
    for pattern, find in (("({})", "({})"), ("{} ", " {} "), ("{}.", " {} ")):
        found = [x for x in letters if pattern.format(x) in text]
        if found:
            return max(found, key=lambda x: text.rfind(find.format(x)))
    if len(text.split()) > 5:
        found = [x for x, o in zip(letters, options) if o.lower() in text.lower()]
        if found:
            return max(found, key=lambda x: text.lower().rfind(options[letters.index(x)].lower()))
    return None


def test_omnibench_parser_vectors():
    options = OMNI_ITEMS[0]["options"]
    cases = {"The answer is (C).": "C", "B": "B", "I think A or B, final: B": "B"}
    for response, letter in cases.items():
        assert _reference_letter(response, options) == letter
        assert "ABCD"[extract_choice(response, 4, choices=options)] == letter
    # The reference quirks, not replicated: the gold text and "C. A man ..." parse as A.
    assert _reference_letter(OMNI_ITEMS[0]["answer"], options) == "A"
    assert _reference_letter("C. A man is answering", options) == "A"
    assert gold_index(options, OMNI_ITEMS[0]["answer"]) == 2
    assert extract_choice("C. A man is answering", 4, choices=options) == 2
    # Nothing or several -> invalid (None), never a random letter.
    assert extract_choice("I cannot tell.", 4, choices=options) is None
    assert extract_choice("A or B", 4, choices=options) is None


def test_omnibench_jsonl_loader(omni_root, tmp_path):
    samples = OmniBenchLoader(root=str(omni_root), expected_size=6)()
    assert [s.id for s in samples] == ["6", "7", "8", "9", "10", "11"]
    first = samples[0]
    assert first.parts == (Image(str(omni_root / "mm_data" / "image" / "1_026.png")),
                           Audio(str(omni_root / "mm_data" / "audio" / "1_26.mp3")))
    assert first.targets == ("C",) and first.metadata["answer"] == 2 and first.choices == tuple(OMNI_ITEMS[0]["options"])
    assert first.metadata["audio_content"] == "A: You and I have the same employer."
    assert samples[4].metadata["audio_type"] == "sound event" and slug("Sound Event") == "sound_event"
    # The annotation file given directly; a .json list; options as one "A. .. B. .." string.
    direct = OmniBenchLoader(root=str(omni_root / "dataset" / "batch-5_1142_20240817.jsonl"))()
    assert [s.parts for s in direct] == [s.parts for s in samples]
    items = [dict(OMNI_ITEMS[1], options="A. Two\nB. Three\nC. Four\nD. Five", image_path="mm_data/image/2_1.jpg")]
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "items.json").write_text(json.dumps(items))
    one = OmniBenchLoader(root=str(tmp_path), annotations="dataset/items.json")()[0]
    assert one.choices == ("Two", "Three", "Four", "Five") and one.targets == ("A",)
    assert one.parts[0] == Image(str(tmp_path / "mm_data" / "image" / "2_1.jpg"))
    with pytest.raises(ConfigError, match="expected 1142"):
        OmniBenchLoader(root=str(omni_root), expected_size=1142)()
    with pytest.raises(ConfigError, match="not found"):
        OmniBenchLoader(root=str(tmp_path / "missing"))()
    (tmp_path / "dataset" / "bad.jsonl").write_text(json.dumps(dict(OMNI_ITEMS[1], answer="Six")) + "\n")
    with pytest.raises(ConfigError, match="not one of its options"):
        OmniBenchLoader(root=str(tmp_path), annotations="dataset/bad.jsonl")()


def test_omnibench_hf_parquet_loader(tmp_path):
    rows = [dict(item, audio={"bytes": f"audio-{item['index']}".encode(), "path": item["audio_path"]},
                 image={"bytes": f"image-{item['index']}".encode(), "path": item["image_path"]})
            for item in OMNI_ITEMS]
    _write_parquet(tmp_path / "OmniBench" / "data" / "train-00000-of-00001.parquet", rows)
    loader = OmniBenchLoader(root=str(tmp_path / "OmniBench"), cache_dir=str(tmp_path / "cache"))
    samples = loader()
    assert len(samples) == 6 and samples[0].targets == ("C",)
    image, audio = samples[2].parts
    assert Path(image.path).read_bytes() == b"image-8" and image.path.endswith(".png")
    assert Path(audio.path).read_bytes() == b"audio-8" and audio.path.endswith(".mp3")
    assert image.path.startswith(str(tmp_path / "cache"))
    assert loader()[2].parts == samples[2].parts  # content-addressed: unpacked once


def test_omnibench_settings_choose_the_parts(omni_root):
    sample = OmniBenchLoader(root=str(omni_root))()[0]
    kinds = {}
    for setting in ("image_audio", "textual_image", "textual_audio", "textual_image_audio"):
        task = OmniBenchTask(name="o", loader=list, setting=setting)
        request = task.request(sample)
        kinds[setting] = [type(p).__name__ for p in request.parts]
        assert request.modalities() == task.input_modalities and request.kind == "mcq"
        assert request.parts[-1].text.endswith("D. A man in blue shirt explaining current situation to woman.")
    assert kinds == {"image_audio": ["Image", "Audio", "Text"], "textual_image": ["Audio", "Text"],
                     "textual_audio": ["Image", "Text"], "textual_image_audio": ["Text"]}
    with pytest.raises(ConfigError, match="setting"):
        OmniBenchTask(name="o", loader=list, setting="audio_only")


def test_omnibench_failed_generations_count_wrong_unless_excluded(omni_root, tmp_path):
    samples = OmniBenchLoader(root=str(omni_root))()
    def generated(task):
        out = [Generated(sample=s, output=Output(text=s.targets[0]), prediction=task.prediction(s, Output(text=s.targets[0])),
                         error=None) for s in samples]
        out[0] = Generated(sample=samples[0], output=Output(error="CUDA OOM"), prediction=None, error="CUDA OOM")
        return out
    # Official scorer: no answer = invalid = wrong -> 5/6, invalid 1/6; the failure is still listed.
    task = OmniBenchTask(name="o", loader=list)
    report = task.score(generated(task), work_dir=tmp_path)
    m = {r.name: r for r in report.metrics}
    assert m["accuracy"].value == pytest.approx(5 / 6) and m["accuracy"].n == 6
    assert m["invalid_rate"].value == pytest.approx(1 / 6) and m["accuracy"].variant == "image_audio"
    assert report.n_errors == 1 and report.per_sample[0]["correct"] is False
    # The variant that leaves failures out says so in every metric.
    task = OmniBenchTask(name="o", loader=list, failed=ExcludeFailed())
    report = task.score(generated(task), work_dir=tmp_path)
    m = {r.name: r for r in report.metrics}
    assert m["accuracy"].value == 1.0 and m["accuracy"].n == 5 and report.n_errors == 1
    assert {r.variant for r in report.metrics} == {"image_audio+exclude_failed"}
    assert report.settings["failed"] == "exclude"
    # The YAML selects the policy by _target_ (the default is CountWrong).
    common = ["task=omnibench", "model=dummy", f"task.loader.root={omni_root}", "task.loader.expected_size=null"]
    assert isinstance(build_task(compose(common)).failure_policy, CountWrong)
    chosen = build_task(compose([*common, "task.failed._target_=mio_eval.tasks.omnibench.ExcludeFailed"]))
    assert isinstance(chosen.failure_policy, ExcludeFailed) and chosen.failed == "exclude"
    for old in ("exclude", "wrong"):  # the string knob of earlier versions: one line naming the _target_ form
        with pytest.raises(ConfigError, match=r"^task.failed must be a failure policy given by _target_ .*"
                           r"task.failed._target_=mio_eval.tasks.omnibench.ExcludeFailed\), got '" + old + "'$"):
            OmniBenchTask(name="o", loader=list, failed=old)


def test_omnibench_end_to_end_with_dummy(omni_root, tmp_path):
    common = [f"task.loader.root={omni_root}", "task.loader.expected_size=null"]
    # Every reply "The answer is (C).": gold C for items 6, 8, 10 -> 3/6, one per audio type.
    metrics = run("omnibench", "dummy", _overrides(tmp_path / "c", *common, "model.response='The answer is (C).'"))
    m = {k: v["value"] for k, v in metrics["metrics"].items()}
    assert m["accuracy"] == 0.5 and m["invalid_rate"] == 0.0
    assert m["accuracy/speech"] == m["accuracy/sound_event"] == m["accuracy/music"] == 0.5
    assert m["accuracy/action_and_activity"] == 1.0 and m["accuracy/count_and_quantity"] == 0.5
    assert m["accuracy/story_description"] == 0.0 and m["accuracy/plot_inference"] == 1.0
    assert m["accuracy_macro/task_type"] == pytest.approx((1 + 0.5 + 1 + 0 + 0) / 5)
    assert {v["variant"] for v in metrics["metrics"].values()} == {"image_audio"}
    for record in _lines(tmp_path / "c" / "dummy" / "omnibench" / "predictions.jsonl"):
        assert [p["type"] for p in record["prompt"]] == ["image", "audio", "text"]
    # A reply naming no option: invalid for all, counted wrong.
    metrics = run("omnibench", "dummy", _overrides(tmp_path / "n", *common, "model.response='I am not sure.'"))
    assert metrics["metrics"]["accuracy"]["value"] == 0.0 and metrics["metrics"]["invalid_rate"]["value"] == 1.0
    # Both textual: a text-only model runs it; the image+audio setting refuses that model.
    metrics = run("omnibench_text_both", "dummy", _overrides(
        tmp_path / "t", *common, "model.inputs=[text]", "model.response=D"))
    assert metrics["metrics"]["accuracy"]["value"] == pytest.approx(1 / 6)
    assert metrics["metrics"]["accuracy"]["variant"] == "textual_image_audio"
    prompt = _lines(tmp_path / "t" / "dummy" / "omnibench_text_both" / "predictions.jsonl")[0]["prompt"]
    assert len(prompt) == 1 and re.search(r"audio:Audio Content: .* \nImage Content: ", prompt[0]["text"])
    with pytest.raises(ConfigError, match="reads audio, image"):
        run("omnibench", "dummy", _overrides(tmp_path / "r", *common, "model.inputs=[text]"))
