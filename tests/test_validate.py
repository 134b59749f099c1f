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
        f"mio-eval validate: data: LibriSpeech split 'test-clean' not found: {tmp_path}/LibriSpeech/test-clean; "
        "data is looked up under paths.data_dir (or $MIO_EVAL_DATA): set paths.data_dir=DIR or task.loader.root=PATH"]
    assert not (tmp_path / "results").exists()


def test_reference_files_named_in_metadata_are_checked():
    from mio_eval.types import Sample, Text
    from mio_eval.validate import _media_paths

    sample = Sample(id="1", parts=(Text("a red bus"),), targets=("/gt/1.jpg",),
                    metadata={"image": "/gt/1.jpg", "caption": "a red bus", "speaker": "p225"})
    assert _media_paths(sample) == ["/gt/1.jpg"]


def _image(path, seed=0):
    from PIL import Image as PILImage

    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(np.random.default_rng(seed).integers(0, 255, (12, 16, 3), dtype=np.uint8)).save(path)
    return path


def _vizwiz(root, names):
    import json

    (root / "vizwiz" / "Annotations").mkdir(parents=True)
    (root / "vizwiz" / "Annotations" / "val.json").write_text(json.dumps(
        [{"image": name, "question": "what is this?", "answers": [{"answer": "soda", "answer_confidence": "yes"}] * 10,
          "answer_type": "other", "answerable": 1} for name in names]))
    return root


def test_vizwiz_release_layout_validates(tmp_path):
    # vizwiz/val/VizWiz_val_*.jpg, as the run reads them: the file name kept for the submission
    # is not a media path to check.
    names = ["VizWiz_val_00000000.jpg", "VizWiz_val_00000001.jpg"]
    data = _vizwiz(tmp_path / "data", names)
    for n, name in enumerate(names):
        _image(data / "vizwiz" / "val" / name, n)
    problems, summary = validate(["task=vizwiz_val", "model=dummy", f"paths.data_dir={data}",
                                  "+task.loader.max_samples=2"])
    assert problems == [] and summary["samples"] == 2 and summary["media"] == 2


def test_duplicate_ids_and_corrupt_media_are_reported(tmp_path):
    names = ["VizWiz_val_00000000.jpg", "VizWiz_val_00000001.jpg", "VizWiz_val_00000000.jpg", "VizWiz_val_00000002.jpg"]
    data = _vizwiz(tmp_path / "data", names)
    _image(data / "vizwiz" / "val" / names[0])
    (data / "vizwiz" / "val" / names[1]).write_bytes(b"\xff\xd8\xff\xe0 not a jpeg at all")
    (data / "vizwiz" / "val" / names[3]).write_bytes(b"")
    problems, _ = validate(["task=vizwiz_val", "model=dummy", f"paths.data_dir={data}", "+task.loader.max_samples=4"])
    assert problems[0] == ("data: 1 duplicate sample id(s) (e.g. VizWiz_val_00000000); "
                           "the run would keep one prediction for each")
    bad = f"{data}/vizwiz/val/"
    assert problems[1].startswith(f"data: 2 media file(s) unreadable (e.g. {bad}{names[1]} (Truncated File Read), ")
    assert f"{bad}{names[3]} (empty file)" in problems[1] and len(problems) == 2


def test_media_header_checks_per_kind(tmp_path):
    from mio_eval.validate import media_problem
    from tests.helpers import grey_frames, write_video

    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(800, dtype=np.float32), 16000)
    video = write_video(tmp_path / "v.mp4", grey_frames([0, 80, 160]), container_format="mp4")
    assert media_problem(str(wav), "audio") is None
    assert media_problem(str(video), "video") is None
    assert media_problem(str(_image(tmp_path / "i.png")), "image") is None
    assert media_problem(str(wav), "video") == "no video stream"
    garbage = tmp_path / "g.flac"
    garbage.write_bytes(b"fLaC" + bytes(range(256)) * 4)
    assert media_problem(str(garbage), "audio") is not None
    truncated = tmp_path / "t.png"
    truncated.write_bytes((tmp_path / "i.png").read_bytes()[:40])
    assert media_problem(str(truncated), "image") is not None


def test_media_outside_the_data_root_are_reported(tmp_path):
    # An annotation whose image path climbs out of the data root ("../../") is what the run refuses.
    names = ["VizWiz_val_00000000.jpg", "../../../outside/VizWiz_val_00000001.jpg"]
    data = _vizwiz(tmp_path / "data", names)
    _image(data / "vizwiz" / "val" / names[0])
    escaped = (data / "vizwiz" / "val" / names[1]).resolve()
    escaped.parent.mkdir(parents=True, exist_ok=True)
    _image(escaped, 1)
    problems, _ = validate(["task=vizwiz_val", "model=dummy", f"paths.data_dir={data}", "+task.loader.max_samples=2"])
    assert len(problems) == 1 and problems[0].startswith("data: 1 media path(s) outside the data root (e.g. ")
    assert "paths.allow_outside_data=true" in problems[0]
    problems, _ = validate(["task=vizwiz_val", "model=dummy", f"paths.data_dir={data}", "+task.loader.max_samples=2",
                            "paths.allow_outside_data=true"])
    assert problems == []
