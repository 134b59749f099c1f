"""``mio-eval validate``: config, data, sample count, media and checkpoints, one line per problem."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import soundfile as sf

from mio_eval.validate import main, validate


def _librispeech(root, n=3, missing=()):
    folder = root / "LibriSpeech" / "test-clean" / "61" / "70968"
    folder.mkdir(parents=True)
    lines = []
    for i in range(n):
        utt = f"61-70968-{i:04d}"
        lines.append(f"{utt} HELLO WORLD {i}")
        if i not in missing:
            sf.write(folder / f"{utt}.flac", np.zeros(1600, dtype=np.float32), 16000)
    (folder / "61-70968.trans.txt").write_text("\n".join(lines) + "\n")
    return root


def test_embedded_demo_validates(capsys):
    assert main(["task=tts_demo", "model=espeak"]) == 0
    assert "ok: task tts_demo (50 samples, media present), model espeak" in capsys.readouterr().out


def test_every_problem_is_one_line(tmp_path, tiny_whisper):
    data = _librispeech(tmp_path / "data", missing=(1,))
    problems, summary = validate(["task=asr_librispeech_test_clean", "model=whisper", f"model.path={tmp_path / 'no.pt'}",
                                  f"paths.data_dir={data}"])
    assert summary["samples"] == 3
    assert problems == [
        "data: 3 samples found, the official split has 2620",
        f"data: 1 media file(s) missing (e.g. {data}/LibriSpeech/test-clean/61/70968/61-70968-0001.flac)",
        f"checkpoint: model not found: {tmp_path / 'no.pt'}",
    ]
    # A deliberately trimmed split is not a count problem; present files and checkpoint pass.
    (data / "LibriSpeech/test-clean/61/70968/61-70968-0001.flac").write_bytes(
        (data / "LibriSpeech/test-clean/61/70968/61-70968-0000.flac").read_bytes())
    problems, _ = validate(["task=asr_librispeech_test_clean", "model=whisper", f"model.path={tiny_whisper}",
                            f"paths.data_dir={data}", "+task.loader.max_samples=3"])
    assert problems == []


def test_judge_checkpoint_and_config_errors(tmp_path):
    problems, _ = validate(["task=tts_demo", "model=espeak", f"task.judge.whisper_path={tmp_path / 'medium.pt'}"])
    assert problems == [f"checkpoint: task.judge not found: {tmp_path / 'medium.pt'}"]
    problems, _ = validate(["task=no_such_task", "model=espeak"])
    assert len(problems) == 1 and "no_such_task" in problems[0]


def test_cli_exit_codes_and_nothing_written(tmp_path):
    cmd = [sys.executable, "-m", "mio_eval.cli", "validate", "task=asr_librispeech_test_clean", "model=dummy",
           f"paths.data_dir={tmp_path}", f"paths.results_dir={tmp_path / 'results'}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"mio-eval validate: data: LibriSpeech split 'test-clean' not found: no {tmp_path}/LibriSpeech/test-clean directory"]
    assert not (tmp_path / "results").exists()


def test_reference_files_named_in_metadata_are_checked():
    from mio_eval.types import Sample, Text
    from mio_eval.validate import _media_paths

    sample = Sample(id="1", parts=(Text("a red bus"),), targets=("/gt/1.jpg",),
                    metadata={"image": "/gt/1.jpg", "caption": "a red bus", "speaker": "p225"})
    assert _media_paths(sample) == ["/gt/1.jpg"]
