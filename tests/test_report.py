import json

from mio_eval.report import load_runs, main, render_runs


def _metric(value, hib, variant, scale=100.0):
    return {"value": value, "higher_is_better": hib, "variant": variant, "provenance": "p", "scale": scale,
            "n": 3, "extra": {}}


RUNS = [
    {"task": "tts_demo", "model": "espeak", "n": 50, "n_errors": 0, "wall_time_s": 39.21,
     "metrics": {"wer_corpus": _metric(0.7954, False, "corpus+whisper_en"),
                 "wer_utt_mean": _metric(0.80021, False, "utterance_mean+whisper_en")},
     "judges": [{"model": "pocketsphinx", "package": "pocketsphinx 5.1.1"}]},
    {"task": "tts_demo", "model": "mio_instruct", "n": 50, "n_errors": 2, "wall_time_s": 120.0,
     "metrics": {"wer_corpus": _metric(0.042, False, "corpus+whisper_en"),
                 "wer_utt_mean": _metric(None, False, "utterance_mean+whisper_en")},
     "judges": [{"model": "openai-whisper", "path": "/ckpt/medium.pt", "sha256": "0123456789abcdef"}]},
    {"task": "vqav2", "model": "mio_instruct", "n": 10, "n_errors": 0, "wall_time_s": 5.0,
     "metrics": {"vqa_acc": _metric(0.655, True, "vqa2021")}, "judges": []},
]

GOLDEN = """\
| model | tts_demo·wer_corpus ↓ | tts_demo·wer_utt_mean ↓ | vqav2·vqa_acc ↑ |
|---|---|---|---|
| espeak | 79.54 | 80.02 |  |
| mio_instruct | 4.20 | – | 65.50 |

| model | task | n | errors | judge | variants | wall s |
|---|---|---|---|---|---|---|
| espeak | tts_demo | 50 | 0 | pocketsphinx 5.1.1 | wer_corpus: corpus+whisper_en, wer_utt_mean: utterance_mean+whisper_en | 39.2 |
| mio_instruct | tts_demo | 50 | 2 | openai-whisper medium.pt (01234567) | wer_corpus: corpus+whisper_en, wer_utt_mean: utterance_mean+whisper_en | 120.0 |
| mio_instruct | vqav2 | 10 | 0 | – | vqa_acc: vqa2021 | 5.0 |
"""


def _write(root):
    for run in RUNS:
        path = root / run["model"] / run["task"] / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(run))
    (root / "_multirun" / "x").mkdir(parents=True)
    (root / "_multirun" / "x" / "metrics.json").write_text("{}")


def test_golden_markdown_table(tmp_path):
    _write(tmp_path)
    assert render_runs(load_runs(tmp_path)) == GOLDEN


def test_report_command_writes_readme(tmp_path, capsys):
    _write(tmp_path)
    assert main([str(tmp_path)]) == 0
    assert GOLDEN in (tmp_path / "README.md").read_text()
    assert main([str(tmp_path / "missing")]) == 2
    assert render_runs([]) == "_No results yet._\n"
