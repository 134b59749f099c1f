"""The long table, per-sample DataFrames, exports, the paper layout and the plots, from hand-made
run directories shaped as the runner writes them (metrics.json, scores.jsonl, predictions.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import mio_eval
from mio_eval.paper import load_published, paper_rows, render_paper
from mio_eval.plots import write_plots
from mio_eval.report import main as report_main
from mio_eval.report import render_long
from mio_eval.results import LONG_COLUMNS, RunResult, bootstrap_ci95, find_runs, read_jsonl, sample_value


def _metric(value, hib, variant, scale=100.0, n=4, **extra):
    return {"value": value, "higher_is_better": hib, "variant": variant, "provenance": "p", "scale": scale, "n": n,
            "extra": extra}


def _write_run(root: Path, model: str, task: str, metrics: dict, *, scores=(), preds=(), judges=(), config=None,
               **fields) -> Path:
    run_dir = root / model / task
    run_dir.mkdir(parents=True)
    data = {"task": task, "model": model, "n": fields.pop("n", 4), "n_errors": fields.pop("n_errors", 0),
            "metrics": metrics, "judges": list(judges), "runner": {"limit": fields.pop("runner_limit", None)},
            "config": {"task": config or {}}, **fields}
    (run_dir / "metrics.json").write_text(json.dumps(data), encoding="utf-8")
    with (run_dir / "scores.jsonl").open("w", encoding="utf-8") as fh:
        for row in scores:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (run_dir / "predictions.jsonl").open("w", encoding="utf-8") as fh:
        for row in preds:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return run_dir


WER_ROWS = [  # edits / ref_words per utterance: corpus WER = 6 / 20 = 0.3
    {"id": "u1", "error": None, "reference": "a b c d e", "transcript": "a b c d e", "wer": 0.0, "edits": 0,
     "ref_words": 5, "reference_normalized": "a b c d e", "transcript_normalized": "a b c d e"},
    {"id": "u2", "error": None, "reference": "a b c d e", "transcript": "a x c e", "wer": 0.4, "edits": 2,
     "ref_words": 5, "reference_normalized": "a b c d e", "transcript_normalized": "a x c e"},
    {"id": "u3", "error": None, "reference": "line\u2028separator inside", "transcript": "", "wer": 1.0, "edits": 4,
     "ref_words": 4, "reference_normalized": "line separator inside x", "transcript_normalized": ""},
    {"id": "u4", "error": None, "reference": "p q r s t u", "transcript": "p q r s t u", "wer": 0.0, "edits": 0,
     "ref_words": 6, "reference_normalized": "p q r s t u", "transcript_normalized": "p q r s t u"},
    {"id": "u5", "error": "judge failed: unreadable wav"},
]


@pytest.fixture()
def root(tmp_path):
    root = tmp_path / "results"
    wer = {"wer_corpus": _metric(0.3, False, "corpus+whisper_en", per_sample={"ratio": ["edits", "ref_words"]}),
           "wer_utt_mean": _metric(0.35, False, "utterance_mean+whisper_en", per_sample={"mean": "wer"})}
    _write_run(root, "espeak", "tts_vctk", wer, scores=WER_ROWS, n=5, n_errors=1, runner_limit=5,
               judges=[{"model": "pocketsphinx", "package": "pocketsphinx 5.1.1"}],
               preds=[{"id": "u1", "prompt": [{"type": "text", "text": "a b c d e"}],
                       "output": {"media": [{"type": "audio", "path": "media/u1.wav"}]}, "prediction": "media/u1.wav",
                       "error": None, "time_s": 0.5}])
    _write_run(root, "mio_instruct", "tts_vctk",
               {"wer_corpus": _metric(0.042, False, "corpus+whisper_en")}, complete=True, n=5,
               judges=[{"model": "openai-whisper", "path": "/ckpt/whisper/medium.pt", "sha256": "ab" * 32}])
    _write_run(root, "mio_instruct", "vqav2_val",
               {"vqa_accuracy": _metric(0.655, True, "lmms", n=10),
                "vqa_accuracy/yes/no": _metric(0.8, True, "lmms", group="answer_type", key="yes/no"),
                "vqa_accuracy/number": _metric(0.5, True, "lmms", group="answer_type", key="number")},
               complete=True, n=10)
    _write_run(root, "mio_instruct", "mmlu",
               {"accuracy": _metric(0.4567, True, "likelihood/lm_eval", extra_key=1)}, complete=True,
               config={"num_fewshot": 5})
    seeds = {"repeats": 3, "ci95": [0.6, 0.7], "ci95_half_width": 0.05, "ci_method": "Student t over per-seed values"}
    _write_run(root, "mio_instruct", "t2i_coco_karpathy",
               {"clip_i": _metric(0.6512, True, "cosine_unclamped", **seeds), "ssim": _metric(0.25, True, "skimage", 1.0)},
               complete=True)
    _write_run(root, "mio_instruct", "mme_unify_understanding",
               {"score/SIPU": _metric(40.0, True, "accuracy_x100", 1.0), "score/MITIU": _metric(44.0, True, "accuracy_x100", 1.0),
                "score/VPU": _metric(36.0, True, "accuracy_x100", 1.0), "US": _metric(40.0, True, "mean_of_subtasks", 1.0)},
               complete=True)
    (root / "_multirun" / "x").mkdir(parents=True)
    (root / "_multirun" / "x" / "metrics.json").write_text("{}")
    return root


def test_find_runs_and_run_fields(root):
    runs = find_runs(root)
    assert [(r.model, r.task) for r in runs] == [
        ("espeak", "tts_vctk"), ("mio_instruct", "mme_unify_understanding"), ("mio_instruct", "mmlu"),
        ("mio_instruct", "t2i_coco_karpathy"), ("mio_instruct", "tts_vctk"), ("mio_instruct", "vqav2_val")]
    espeak = runs[0]
    # Older runs lack `complete`: the runner's limit says the run is limited.
    assert espeak.complete is None and espeak.limit == 5 and espeak.limited and espeak.status == "limited"
    assert runs[-1].complete is True and not runs[-1].limited and runs[-1].status == "complete"
    assert RunResult(run_dir=root, data={"model": "m", "task": "t", "complete": False}).limited
    assert RunResult(run_dir=root, data={"model": "m", "task": "t", "limit": 7}).limit == 7
    assert runs[4].judge == "openai-whisper medium.pt (abababab)"
    # JSONL is read line by line: a U+2028 inside a string stays inside its row.
    assert [r["id"] for r in espeak.scores()] == ["u1", "u2", "u3", "u4", "u5"]
    assert espeak.score_rows["u3"]["reference"] == "line\u2028separator inside"


def test_read_jsonl_drops_only_a_torn_last_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"id": 1}\n\n{"id": 2}\n{"id": 3, "te', encoding="utf-8")
    assert [r["id"] for r in read_jsonl(path)] == [1, 2]
    path.write_text('{"id": 1}\n{"id": 2, "te\n{"id": 3}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="x.jsonl:2"):
        list(read_jsonl(path))


def test_sample_value_follows_the_metric_recipe():
    row = {"edits": 2, "ref_words": 5, "wer": 0.4, "accuracy": 1.0}
    assert sample_value(row, "wer_corpus", {"extra": {"per_sample": {"ratio": ["edits", "ref_words"]}}}) == 0.4
    assert sample_value(row, "wer_utt_mean", {"extra": {"per_sample": {"mean": "wer"}}}) == 0.4
    assert sample_value(row, "vqa_accuracy", {}) == 1.0  # the task's own field
    assert sample_value({**row, "error": "x"}, "wer_corpus", {}) is None
    assert sample_value({"correct": True}, "accuracy", {}) == 1.0


def test_long_table_values_intervals_and_status(root):
    frame = mio_eval.results(root)
    assert list(frame.columns) == list(LONG_COLUMNS)
    assert len(frame) == 2 + 1 + 3 + 1 + 2 + 4
    wer = frame[(frame.model == "espeak") & (frame.metric == "wer_corpus")].iloc[0]
    assert wer.reported == pytest.approx(30.0) and wer.n == 4 and wer.n_errors == 1 and bool(wer.limited)
    # Bootstrap over the 4 scored rows (the error row is left out): the interval holds the value.
    assert wer.ci95_low <= 0.3 <= wer.ci95_high and wer.ci_method.startswith("bootstrap")
    low, high, used = bootstrap_ci95(WER_ROWS, {"ratio": ["edits", "ref_words"]}, n_resamples=1000, seed=0)
    assert (low, high, used) == (wer.ci95_low, wer.ci95_high, 4)
    clip = frame[frame.metric == "clip_i"].iloc[0]  # repeats: their Student-t interval is kept
    assert (clip.ci95_low, clip.ci95_high) == (0.6, 0.7) and clip.ci_method == "Student t over per-seed values"
    mmlu = frame[frame.metric == "accuracy"].iloc[0]
    assert pd.isna(mmlu.ci95_low) and not mmlu.limited and mmlu.complete
    assert mio_eval.results(root, bootstrap=0).ci95_low.notna().sum() == 1  # repeats only
    markdown = render_long(frame)
    assert "| espeak | tts_vctk | wer_corpus ↓ | 30.00 | [" in markdown and "| limited |" in markdown
    assert "| mio_instruct | t2i_coco_karpathy | clip_i ↑ | 65.12 | [60.00, 70.00] | 4 | 0 | complete |" in markdown


def test_samples_joins_scores_and_predictions(root):
    frame = mio_eval.sample_scores(root / "espeak" / "tts_vctk")
    assert list(frame["id"]) == ["u1", "u2", "u3", "u4", "u5"]
    first = frame.iloc[0]
    assert mio_eval.results.samples is mio_eval.sample_scores
    assert first.prediction == "media/u1.wav" and first.time_s == 0.5 and first.media == ["media/u1.wav"]
    assert frame.iloc[4].error == "judge failed: unreadable wav" and pd.isna(frame.iloc[4].prediction)


def test_report_exports_csv_and_parquet(root, tmp_path, capsys):
    assert report_main([str(root), "--format", "csv", "--bootstrap", "0"]) == 0
    from io import StringIO

    printed = pd.read_csv(StringIO(capsys.readouterr().out))
    assert len(printed) == 13 and printed.loc[0, "reported"] == pytest.approx(30.0)
    out = tmp_path / "long.parquet"
    assert report_main([str(root), "--format", "parquet", "--out", str(out)]) == 0
    back = pd.read_parquet(out)
    assert list(back.columns) == list(LONG_COLUMNS) and len(back) == 13
    assert report_main([str(root), "--format", "parquet"]) == 2  # parquet needs a file
    capsys.readouterr()
    # The default markdown keeps today's wide table and adds the long one.
    assert report_main([str(root), "--stdout"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("| model | mme_unify_understanding·score/SIPU ↑") and "### Long format" in text


def test_published_file_has_a_citation_per_row_and_consistent_widths():
    published = load_published()
    ids = [t["id"] for t in published["tables"]]
    assert ids == ["table2", "table3", "table4", "table5", "table6", "table7", "table8", "table13"]
    for table in published["tables"]:
        for row in table["rows"]:
            assert len(row["values"]) == len(table["columns"]), (table["id"], row["model"])
            assert row["cite"].startswith("MIO paper")
    # Spot checks against the paper: MIO-Instruct's COCO CIDEr, TTS WER, MMLU and OmniBench.
    by_id = {t["id"]: t for t in published["tables"]}
    row = lambda t, m: next(r for r in by_id[t]["rows"] if r["model"] == m)["values"]  # noqa: E731
    assert row("table3", "MIO-Instruct (7B)")[0] == 120.4 and row("table5", "MIO-Instruct") == [10.3, 4.2]
    assert row("table7", "MIO-Instruct") == [45.7] and row("table8", "MIO-Instruct (7B)") == [36.96]


def test_paper_layout_marks_our_rows(root, capsys):
    assert report_main([str(root), "--layout", "paper", "--stdout"]) == 0
    text = capsys.readouterr().out
    # Table 5: espeak is limited (*) and judged by pocketsphinx, not Whisper medium (†);
    # mio_instruct is complete, judged by Whisper medium: unmarked.
    assert "| **ours: espeak** |  | 30.0*† | this run |" in text
    assert "| **ours: mio_instruct** |  | 4.2 | this run |" in text
    assert "- † espeak · TTS WER (VCTK): tts_vctk·wer_corpus: judge pocketsphinx 5.1.1, paper medium" in text
    # Table 3: VQAv2 val stands in for test-dev (‡).
    assert "| **ours: mio_instruct** |  | 65.5‡ |  |  |  | this run |" in text
    # Table 7: 5-shot where the paper is zero-shot (†). Table 4: CLIP-I at the paper's scale.
    assert "| **ours: mio_instruct** | 45.7† | this run |" in text
    assert "num_fewshot=5, paper 0" in text
    assert "| **ours: mio_instruct** | 65.12 |  | this run |" in text
    # Table 2: US from the understanding run; the other families are missing, so no Overall.
    assert "| **ours: mio_instruct** |  | 40.0 |  |  | this run |" in text
    assert "Overall: variant" not in text  # no notes on cells we have no value for
    # Published rows carry their source.
    assert "| Gemini-1.5-Pro | 42.67 | MIO paper, Table 8 |" in text
    # Written beside the usual report, not over it.
    assert report_main([str(root), "--layout", "paper"]) == 0
    assert (root / "PAPER.md").read_text(encoding="utf-8").endswith(text) and not (root / "README.md").exists()


def test_paper_rows_skip_models_without_a_value(root):
    table = next(t for t in load_published()["tables"] if t["id"] == "table6")
    assert paper_rows(table, find_runs(root)) == []
    assert "Table 6: Video understanding" in render_paper(find_runs(root))


def test_plots_are_written_from_the_runs(root, tmp_path):
    from PIL import Image

    written = write_plots(find_runs(root), tmp_path / "plots")
    names = sorted(p.name for p in written)
    assert names == ["by_type_vqav2_val.png", "dist_tts_vctk.png", "heatmap.png", "wer_by_length_tts_vctk.png"]
    from mio_eval.plots import _groups

    vqa = next(r for r in find_runs(root) if r.task == "vqav2_val")
    assert _groups(vqa) == {"vqa_accuracy by answer_type": {"yes/no": pytest.approx(80.0), "number": 50.0}}
    mcq = RunResult(run_dir=root, data={"model": "m", "task": "seedbench_img", "metrics": {
        "accuracy": _metric(0.5, True, "x"), "accuracy/Scene Understanding": _metric(
            0.25, True, "x", grouping="dimension", group="Scene Understanding"),
        "accuracy/what": _metric(1.0, True, "x", question_type="what")}})
    assert _groups(mcq) == {"accuracy by dimension": {"Scene Understanding": 25.0},
                            "accuracy by question_type": {"what": 100.0}}
    for path in written:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 100
    out = tmp_path / "report" / "README.md"
    assert report_main([str(root), "--plots", "--out", str(out), "--bootstrap", "0"]) == 0
    assert "![heatmap](plots/heatmap.png)" in out.read_text(encoding="utf-8")
    assert (out.parent / "plots" / "heatmap.png").is_file()
