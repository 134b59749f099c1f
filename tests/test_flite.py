"""CMU Flite as a TTS model (the real Debian binary, installed by scripts/setup.sh), its voice
configs, and ``task=tts``."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
import soundfile as sf

from mio_eval import run
from mio_eval.errors import ConfigError
from mio_eval.models.flite import FliteTTS, flite_voices
from mio_eval.types import Request, Text

SENTENCES = {"s1": "The birch canoe slid on the smooth planks.",
             "s2": "Glue the sheet to the dark blue background.",
             "s3": "It's easy to tell the depth of a well."}


def _requests(texts):
    return [Request(sample_id=k, parts=(Text(v),)) for k, v in texts.items()]


def test_flite_speaks_each_request_into_a_wav(tmp_path):
    tts = FliteTTS(voice="rms")
    tts.load()
    outputs = tts.generate(_requests({**SENTENCES, "blank": "  \n "}), media_dir=tmp_path / "media")
    assert [o.ok for o in outputs] == [True, True, True, False]
    assert outputs[3].error == "flite: empty text"
    for key, out in zip(SENTENCES, outputs):
        (audio,) = out.media
        info = sf.info(audio.path)
        assert audio.path == str(tmp_path / "media" / f"{key}.wav") and audio.sample_rate == info.samplerate
        # rms is a 16 kHz voice; a sentence of 8-9 words is well over a second of speech
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames > info.samplerate
        assert out.n_input_tokens == len(SENTENCES[key].split())
    assert sorted(p.name for p in (tmp_path / "media").iterdir()) == ["s1.wav", "s2.wav", "s3.wav"]  # no temp files
    prov = tts.provenance()
    assert prov["model"] == "cmu-flite" and prov["voice"] == "rms" and prov["version"].startswith("flite-")
    # another voice is another model: different audio for the same text; a slower one is longer
    awb = FliteTTS(voice="awb").generate(_requests({"s1": SENTENCES["s1"]}), media_dir=tmp_path / "awb")[0]
    slow = FliteTTS(voice="rms", duration_stretch=1.5).generate(_requests({"s1": SENTENCES["s1"]}),
                                                                 media_dir=tmp_path / "slow")[0]
    digest = lambda out: hashlib.sha256(open(out.media[0].path, "rb").read()).hexdigest()  # noqa: E731
    assert digest(awb) != digest(outputs[0])
    assert sf.info(slow.media[0].path).frames > 1.3 * sf.info(outputs[0].media[0].path).frames


def test_flite_refuses_unknown_voice_and_reports_unwritable_output(tmp_path):
    assert {"rms", "awb", "slt", "kal16"} <= set(flite_voices("flite"))
    with pytest.raises(ConfigError, match=r"no voice 'nobody'.*lists: .*rms"):
        FliteTTS(voice="nobody").load()  # flite itself would fall back to its default voice silently
    with pytest.raises(ConfigError, match="voice file not found"):
        FliteTTS(voice=str(tmp_path / "missing.flitevox")).load()
    with pytest.raises(ConfigError, match="duration_stretch must be > 0"):
        FliteTTS(duration_stretch=0)
    tts = FliteTTS(voice="slt")
    tts.load()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the media dir should be")
    (out,) = tts.generate(_requests({"s1": SENTENCES["s1"]}), media_dir=blocked)
    assert not out.ok and out.error.startswith("flite: ")


def test_missing_flite_binary_is_a_config_error_with_the_install_hint(tmp_path):
    with pytest.raises(ConfigError, match="no-such-flite not found on PATH: apt-get install flite"):
        FliteTTS(executable="no-such-flite").load()
    proc = subprocess.run([sys.executable, "-m", "mio_eval.cli", "task=tts", "model=flite_slt",
                           "model.executable=no-such-flite", "runner.limit=1", "runner.progress=false",
                           f"paths.results_dir={tmp_path / 'results'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "apt-get install flite" in lines[0], proc.stderr


def test_voice_configs_inherit_from_flite_yaml():
    from omegaconf import OmegaConf

    from mio_eval.api import build, compose

    base = OmegaConf.to_container(compose(["task=tts", "model=flite"]).model)
    assert (base["name"], base["voice"]) == ("flite", "rms")
    for voice in ("awb", "slt"):
        cfg = compose(["task=tts", f"model=flite_{voice}"])
        assert OmegaConf.to_container(cfg.model) == {**base, "name": f"flite_{voice}", "voice": voice}
        _, model = build(cfg)
        assert isinstance(model, FliteTTS) and (model.name, model.voice) == (f"flite_{voice}", voice)
    # overrides still reach the inherited keys
    assert compose(["task=tts", "model=flite_awb", "model.workers=1"]).model.workers == 1


def test_tts_is_the_embedded_default_and_tts_demo_its_alias():
    from omegaconf import OmegaConf

    from mio_eval.api import build, compose

    tts = OmegaConf.to_container(compose(["task=tts", "model=dummy"]).task)
    demo = OmegaConf.to_container(compose(["task=tts_demo", "model=dummy"]).task)
    assert (tts.pop("name"), demo.pop("name")) == ("tts", "tts_demo")
    assert tts == demo  # same data, judge, normaliser and generation settings
    task, _ = build(compose(["task=tts", "model=dummy"]))
    samples = task.samples()
    assert task.name == "tts" and len(samples) == 50 and samples[0].id == "harvard01_001"


def test_tts_with_flite_end_to_end_pocketsphinx_hears_it(tmp_path):
    metrics = run("tts", "flite", [f"paths.results_dir={tmp_path}", "runner.progress=false", "runner.limit=3"])
    run_dir = tmp_path / "flite" / "tts"
    assert metrics == json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["task"], metrics["model"], metrics["n"], metrics["n_errors"]) == ("tts", "flite", 3, 0)
    assert metrics["model_provenance"]["voice"] == "rms" and metrics["judges"][0]["model"] == "pocketsphinx"
    rows = [json.loads(line) for line in (run_dir / "scores.jsonl").read_text().splitlines()]
    assert all(r["error"] is None and r["transcript"].strip() for r in rows)
    # The judge hears flite: many words come through (espeak-ng is ~95 % wrong on the same set;
    # garbage audio would be ~100 %).
    assert metrics["metrics"]["wer_corpus"]["value"] < 0.7
    for row in (json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()):
        assert sf.info(run_dir / row["prediction"]).samplerate == 16000
