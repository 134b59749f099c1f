"""The fault matrix: corrupt and unusual inputs, malformed outputs, write failures, concurrent
runs, and the security rules (safe checkpoint loading, no code from data, media paths confined)."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from helpers import grey_frames, write_video
from mio_eval import run
from mio_eval.errors import ConfigError, MediaError, RunFailed, StoreWriteError
from mio_eval.media import load_image, video_frames
from mio_eval.runner import RunnerSettings, evaluate
from mio_eval.models.dummy import DummyAdapter
from mio_eval.tasks.asr import ASRTask
from mio_eval.types import Audio, Sample

ROOT = Path(__file__).resolve().parents[1]


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- corrupt and unusual images and video --------------------------------------------------


def test_truncated_jpeg_is_an_error(tmp_path):
    Image.new("RGB", (64, 64), (200, 10, 10)).save(tmp_path / "a.jpg", quality=95)
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="cannot decode image t.jpg"):
        load_image(tmp_path / "t.jpg")


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 256), (4, 1)).round().astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    rgb = np.asarray(load_image(tmp_path / "g16.png"))
    assert rgb.shape == (4, 256, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255
    assert abs(int(rgb[0, 128, 0]) - 128) <= 1  # mid-grey stays mid-grey (a clip would give 255)


def test_cmyk_and_palette_and_alpha_convert(tmp_path):
    # PNG has no CMYK mode; CMYK arrives as JPEG (or TIFF).
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    red = np.asarray(load_image(tmp_path / "c.jpg"))[4, 4]
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    Image.new("RGBA", (8, 8), (0, 0, 255, 10)).save(tmp_path / "a.png")
    Image.new("P", (8, 8)).save(tmp_path / "p.png")
    assert load_image(tmp_path / "a.png").mode == "RGB" and load_image(tmp_path / "p.png").mode == "RGB"


@pytest.mark.parametrize("content,needle", [(None, "not found"), (b"", "empty"), (b"GIF89a garbage", "cannot decode")])
def test_missing_empty_and_garbage_images(tmp_path, content, needle):
    path = tmp_path / "x.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(MediaError, match=needle):
        load_image(path)


def test_garbage_mp4_is_an_error_and_a_real_one_decodes(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    with pytest.raises(MediaError, match="cannot decode video bad.mp4"):
        video_frames(tmp_path / "bad.mp4", 4)
    write_video(tmp_path / "ok.mp4", grey_frames([20 * i for i in range(10)]), fps=10)
    frames = video_frames(tmp_path / "ok.mp4", 4)
    assert len(frames) == 4 and frames[0].size == (32, 32)


# --- corrupt and unusual audio through a whole ASR run --------------------------------------


def test_asr_run_completes_over_bad_and_unusual_audio(tmp_path, tiny_whisper):
    """Zero-length and non-audio files fail their samples with reasons; 8 kHz and stereo 44.1 kHz
    audio are converted (16 kHz mono) and transcribed; the run completes and counts the errors."""
    folder = tmp_path / "LibriSpeech" / "test-clean" / "1" / "2"
    folder.mkdir(parents=True)
    t8, t44 = np.arange(8000) / 8000, np.arange(44100) / 44100
    sf.write(folder / "1-2-0000.flac", 0.3 * np.sin(2 * np.pi * 300 * t8), 8000)
    sf.write(folder / "1-2-0001.flac", np.stack([np.sin(2 * np.pi * 300 * t44)] * 2, axis=1) * 0.3, 44100)
    (folder / "1-2-0002.flac").write_bytes(b"")
    (folder / "1-2-0003.flac").write_text("RIFF but not really audio\n" * 10)
    (folder / "1-2.trans.txt").write_text("".join(f"1-2-{i:04d} WORD {i}\n" for i in range(4)))
    metrics = run("asr_librispeech_test_clean", "whisper", [
        f"paths.results_dir={tmp_path / 'results'}", f"paths.data_dir={tmp_path}", f"model.path={tiny_whisper}",
        "model.max_new_tokens=4", "runner.progress=false", "runner.max_error_rate=0.5"])
    rows = _lines(tmp_path / "results" / metrics["model"] / "asr_librispeech_test_clean" / "scores.jsonl")
    assert [r["error"] is None for r in rows] == [True, True, False, False]
    assert "empty (0 bytes)" in rows[2]["error"] and "cannot decode audio 1-2-0003.flac" in rows[3]["error"]
    assert "Format not recognised" in rows[3]["error"]  # soundfile's reason is kept
    assert metrics["n_errors"] == 2 and metrics["errors"]["generate"] == 2
    assert metrics["metrics"]["wer_corpus"]["n"] == 2


# --- malformed model outputs ----------------------------------------------------------------


class _Task(ASRTask):
    def __init__(self, samples):
        super().__init__(name="faults", loader=lambda: samples)


def test_wrong_modality_and_empty_output_are_invalid_and_counted(tmp_path):
    samples = [Sample(id=f"s{i}", parts=(Audio("x.wav"),), targets=("hello",)) for i in range(3)]
    adapter = DummyAdapter(outputs=("text", "audio"), fail_ids=["s2"])

    class Mixed(DummyAdapter):
        def generate(self, requests, *, media_dir):
            from mio_eval.types import Output

            out = []
            for r in requests:
                if r.sample_id == "s0":
                    out.append(Output(media=(Audio(str(media_dir / "a.wav")),)))  # audio where text was asked
                elif r.sample_id == "s1":
                    out.append(Output())  # nothing at all
                else:
                    out.append(Output.failure("backend: malformed"))
            return out

    with pytest.raises(RunFailed, match="all 3 samples failed"):  # nothing scored: the run failed
        evaluate(_Task(samples), Mixed(), run_dir=tmp_path, fingerprint="f", run_info={},
                 settings=RunnerSettings(progress=False, max_error_rate=1.0))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    rows = _lines(tmp_path / "scores.jsonl")
    assert [r["error"] for r in rows] == ["invalid output: expected a transcript, got audio",
                                          "invalid output: expected a transcript, got nothing", "backend: malformed"]
    assert metrics["n_errors"] == 3 and metrics["metrics"]["wer_corpus"]["value"] is None
    assert adapter.name == "dummy"


# --- write failures and concurrent runs -----------------------------------------------------


def test_disk_full_stops_the_run_and_keeps_the_store_whole(tmp_path, monkeypatch):
    import mio_eval.store as store_module

    samples = [Sample(id=f"s{i}", parts=(Audio("x.wav"),), targets=("hi",)) for i in range(6)]
    real_write, calls = os.write, {"n": 0}

    def flaky_write(fd, data):
        calls["n"] += 1
        if calls["n"] == 2:  # the second batch: half written, then the disk is full
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(store_module.os, "write", flaky_write)
    settings = RunnerSettings(progress=False, batch_size=2)
    with pytest.raises(StoreWriteError, match="No space left on device; the 2 samples saved before are intact"):
        evaluate(_Task(samples), DummyAdapter(response="hi"), run_dir=tmp_path, fingerprint="f", run_info={},
                 settings=settings)
    preds = tmp_path / "predictions.jsonl"
    assert preds.read_bytes().endswith(b"\n") and len(_lines(preds)) == 2  # the half batch was cut away
    monkeypatch.setattr(store_module.os, "write", real_write)
    metrics = evaluate(_Task(samples), DummyAdapter(response="hi"), run_dir=tmp_path, fingerprint="f", run_info={},
                       settings=settings)
    ids = [r["id"] for r in _lines(preds)]
    assert sorted(ids) == [f"s{i}" for i in range(6)] and len(ids) == 6
    assert metrics["n_errors"] == 0 and metrics["metrics"]["wer_corpus"]["value"] == 0.0


def test_second_concurrent_run_is_refused_and_the_first_unharmed(tmp_path):
    base = [sys.executable, "-m", "mio_eval.cli", "task=tts_demo", "model=dummy", "runner.limit=4",
            "runner.batch_size=1", "model.seconds_per_word=0.05", "runner.progress=false",
            f"paths.results_dir={tmp_path}"]
    first = subprocess.Popen(base + ["model.delay_s=0.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    preds = tmp_path / "dummy" / "tts_demo" / "predictions.jsonl"
    deadline = time.monotonic() + 60
    while not preds.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run(base + ["model.delay_s=0.5"], capture_output=True, text=True)
    out, err = first.communicate(timeout=120)
    assert second.returncode == 2 and "in use by another mio-eval process" in second.stderr
    assert first.returncode == 0, err
    ids = [r["id"] for r in _lines(preds)]
    assert len(ids) == len(set(ids)) == 4


# --- security -------------------------------------------------------------------------------


class _Boom:
    def __reduce__(self):
        return (os.system, (f"touch {_Boom.marker}",))


def test_checkpoints_are_not_unpickled_as_code(tmp_path):
    """A pickle that would run a command on load is refused (torch.load(weights_only=True))."""
    import torch

    from mio_eval.models.whisper_asr import WhisperASR

    _Boom.marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"dims": {}, "model_state_dict": _Boom()}, path)
    with pytest.raises(ConfigError, match="cannot load Whisper checkpoint"):
        WhisperASR(path=str(path)).load()
    assert not _Boom.marker.exists()


def test_trust_remote_code_is_off_unless_a_config_sets_it():
    from omegaconf import OmegaConf

    for name in ("hf_lm", "hf_vlm"):
        cfg = OmegaConf.load(ROOT / "configs" / "model" / f"{name}.yaml")
        assert cfg.get("trust_remote_code", False) is False, name
    from mio_eval.models.hf_lm import HFCausalLM
    from mio_eval.models.hf_vlm import HFVisionLM

    assert HFCausalLM(path="x").trust_remote_code is False and HFVisionLM(path="x").trust_remote_code is False


def test_no_code_is_run_from_config_or_prediction_content():
    """No eval/exec, no pickle, and every torch.load is weights_only, anywhere in the package."""
    offenders = []
    for folder in ("mio_eval", "tasks", "metrics"):
        for path in (ROOT / folder).rglob("*.py"):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if re.search(r"(?<![\w.])(eval|exec)\(", code) or re.search(r"\bpickle\.loads?\(", code):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
                if "torch.load(" in code and "weights_only=True" not in code:
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []


def test_media_paths_in_stored_predictions_cannot_leave_the_run_dir(tmp_path):
    """A tampered (or replayed) predictions file pointing outside the run dir fails that sample."""
    secret = tmp_path / "secret.wav"
    sf.write(secret, np.zeros(1600, dtype=np.float32), 16000)
    results = tmp_path / "results"
    run("tts_demo", "dummy", [f"paths.results_dir={results}", "runner.limit=3", "runner.stage=generate",
                              "model.seconds_per_word=0.05", "runner.progress=false"])
    preds = results / "dummy" / "tts_demo" / "predictions.jsonl"
    records = _lines(preds)
    records[0]["prediction"] = records[0]["output"]["media"][0]["path"] = "../../../secret.wav"
    records[1]["prediction"] = records[1]["output"]["media"][0]["path"] = str(secret)
    preds.write_text("".join(json.dumps(r) + "\n" for r in records))
    metrics = run("tts_demo", "dummy", [f"paths.results_dir={results}", "runner.limit=3", "runner.stage=score",
                                        "model.seconds_per_word=0.05", "runner.progress=false",
                                        "runner.max_error_rate=1.0"])
    rows = {r["id"]: r for r in _lines(results / "dummy" / "tts_demo" / "scores.jsonl")}
    assert [rows[r["id"]]["error"] for r in records] == ["media path outside the run directory: ../../../secret.wav",
                                                         f"media path outside the run directory: {secret}", None]
    assert metrics["n_errors"] == 2
