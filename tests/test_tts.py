import json

import numpy as np
import pytest
import soundfile as sf

from mio_eval import run
from mio_eval.errors import ConfigError
from mio_eval.metrics import word_error_rate
from mio_eval.models.pocketsphinx_asr import PocketSphinxASR
from mio_eval.models.whisper_asr import WhisperASR
from mio_eval.tasks.loaders.vctk import VCTKLoader
from mio_eval.types import Audio, Request


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory):
    """A random-initialised Whisper saved in openai-whisper's checkpoint format."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=2,
                           n_vocab=51865, n_text_ctx=448, n_text_state=64, n_text_head=2, n_text_layer=2)
    path = tmp_path_factory.mktemp("whisper") / "tiny-random.pt"
    torch.save({"dims": dims.__dict__, "model_state_dict": Whisper(dims).state_dict()}, path)
    return path


def _wav(path, seconds=1.0, rate=16000, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t), rate)
    return path


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_vctk_loader_both_layouts(tmp_path):
    for spk, utt in (("p225", "p225_001"), ("p225", "p225_002"), ("p226", "p226_001")):
        (tmp_path / "txt" / spk).mkdir(parents=True, exist_ok=True)
        (tmp_path / "txt" / spk / f"{utt}.txt").write_text(f"Please call {utt}.\n")
    (tmp_path / "wav48_silence_trimmed" / "p225").mkdir(parents=True)
    sf.write(tmp_path / "wav48_silence_trimmed" / "p225" / "p225_001_mic1.flac", np.zeros(4800), 48000)
    (tmp_path / "wav48" / "p226").mkdir(parents=True)
    _wav(tmp_path / "wav48" / "p226" / "p226_001.wav", rate=48000)
    samples = VCTKLoader(root=str(tmp_path))()
    assert [s.id for s in samples] == ["p225_001", "p225_002", "p226_001"]
    assert samples[0].targets == ("Please call p225_001.",)
    assert samples[0].metadata["reference_audio"].endswith("p225_001_mic1.flac")
    assert "reference_audio" not in samples[1].metadata
    assert samples[2].metadata["reference_audio"].endswith("wav48/p226/p226_001.wav")
    assert [s.id for s in VCTKLoader(root=str(tmp_path), speakers=["p226"])()] == ["p226_001"]
    with pytest.raises(ConfigError, match="p999"):
        VCTKLoader(root=str(tmp_path), speakers=["p999"])()
    with pytest.raises(ConfigError, match="recording missing"):
        VCTKLoader(root=str(tmp_path), require_audio=True)()
    with pytest.raises(ConfigError):
        VCTKLoader(root=str(tmp_path / "nothing"))()


def test_embedded_demo_set():
    from mio_eval.config import data_path

    samples = VCTKLoader(root=data_path("tts_demo"))()
    assert len(samples) == 50
    assert len({s.metadata["speaker"] for s in samples}) == 5
    assert samples[0].targets[0] == "The birch canoe slid on the smooth planks."


def test_whisper_batched_equals_single_and_bad_audio_is_data(tiny_whisper, tmp_path):
    asr = WhisperASR(path=str(tiny_whisper), max_new_tokens=6)
    wavs = [_wav(tmp_path / f"{i}.wav", seconds=0.5 + i / 2, freq=300 + 100 * i) for i in range(3)]
    requests = [Request(sample_id=str(i), parts=(Audio(str(p)),)) for i, p in enumerate(wavs)]
    batched = asr.generate(requests, media_dir=tmp_path)
    single = [asr.generate([r], media_dir=tmp_path)[0] for r in requests]
    assert [o.text for o in batched] == [o.text for o in single]
    assert all(o.error is None for o in batched)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"this is not audio at all" * 10)
    bad = [Request(sample_id=n, parts=(Audio(str(tmp_path / n)),)) for n in ("empty.wav", "junk.wav", "gone.wav")]
    for judge in (asr, PocketSphinxASR()):
        outputs = judge.generate(bad, media_dir=tmp_path)
        assert [o.text for o in outputs] == [None, None, None]
        assert "empty" in outputs[0].error and "cannot decode" in outputs[1].error and "not found" in outputs[2].error
    assert asr.provenance()["sha256"] and asr.provenance()["model"] == "openai-whisper"


def _overrides(results, *extra):
    return [f"paths.results_dir={results}", "runner.progress=false", *extra]


def test_tts_end_to_end_with_tiny_whisper_judge(tiny_whisper, tmp_path):
    metrics = run("tts_demo", "espeak", _overrides(tmp_path, f"task.judge.whisper_path={tiny_whisper}",
                                                   "task.judge.max_new_tokens=8", "runner.limit=3"))
    assert (metrics["n"], metrics["n_errors"]) == (3, 0)
    (judge,) = metrics["judges"]
    assert judge["model"] == "openai-whisper" and judge["path"] == str(tiny_whisper) and len(judge["sha256"]) == 16
    assert judge["decoding"]["temperature"] == 0.0 and judge["decoding"]["language"] == "en"
    assert metrics["metrics"]["wer_corpus"]["variant"] == "corpus+whisper_en"
    assert metrics["metrics"]["wer_utt_mean"]["variant"] == "utterance_mean+whisper_en"
    run_dir = tmp_path / "espeak" / "tts_demo"
    rows = _lines(run_dir / "scores.jsonl")
    assert [r["id"] for r in rows] == ["harvard01_001", "harvard01_002", "harvard01_003"]
    assert all({"transcript", "substitutions", "deletions", "insertions"} <= set(r) for r in rows)
    refs, hyps = [r["reference"] for r in rows], [r["transcript"] for r in rows]
    assert metrics["metrics"]["wer_corpus"]["value"] == pytest.approx(word_error_rate(refs, hyps))
    assert metrics["metrics"]["wer_utt_mean"]["value"] == pytest.approx(
        word_error_rate(refs, hyps, mode="utterance_mean"))
    for row in _lines(run_dir / "predictions.jsonl"):
        info = sf.info(run_dir / row["prediction"])
        assert info.samplerate == 22050 and info.frames > 0


def test_tts_espeak_with_pocketsphinx_and_rescoring(tiny_whisper, tmp_path):
    metrics = run("tts_demo", "espeak", _overrides(tmp_path, "runner.limit=2"))
    assert metrics["judges"][0]["model"] == "pocketsphinx" and metrics["n_errors"] == 0
    rows = _lines(tmp_path / "espeak" / "tts_demo" / "scores.jsonl")
    assert metrics["metrics"]["wer_corpus"]["value"] == pytest.approx(
        word_error_rate([r["reference"] for r in rows], [r["transcript"] for r in rows]))
    # The judge is a scoring option: saved generations are re-scored without regenerating.
    before = (tmp_path / "espeak" / "tts_demo" / "predictions.jsonl").read_text()
    rescored = run("tts_demo", "espeak", _overrides(tmp_path, "runner.limit=2", "runner.stage=score",
                                                    f"task.judge.whisper_path={tiny_whisper}",
                                                    "task.judge.max_new_tokens=4"))
    assert rescored["judges"][0]["model"] == "openai-whisper"
    assert (tmp_path / "espeak" / "tts_demo" / "predictions.jsonl").read_text() == before
    # A generation-relevant change is refused on the same run dir.
    with pytest.raises(ConfigError, match="fingerprint"):
        run("tts_demo", "espeak", _overrides(tmp_path, "runner.limit=2", "model.rate=120"))


def test_corrupt_generated_audio_is_a_scoring_error(tmp_path):
    assert run("tts_demo", "dummy", _overrides(tmp_path, "runner.limit=3", "runner.stage=generate"))["metrics"] == {}
    run_dir = tmp_path / "dummy" / "tts_demo"
    first = _lines(run_dir / "predictions.jsonl")[0]
    (run_dir / first["prediction"]).write_bytes(b"RIFF garbage")
    metrics = run("tts_demo", "dummy", _overrides(tmp_path, "runner.limit=3", "runner.stage=score"))
    assert metrics["n_errors"] == 1 and metrics["errors"] == {"generate": 0, "score": 1}
    errors = [r for r in _lines(run_dir / "scores.jsonl") if r["error"]]
    assert errors[0]["id"] == first["id"] and errors[0]["error"].startswith("judge: cannot decode")
    assert metrics["metrics"]["wer_corpus"]["n"] == 2


def test_text_output_on_tts_task_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="wants audio output"):
        run("tts_demo", "dummy", _overrides(tmp_path, "model.outputs=[text]"))
    assert not (tmp_path / "dummy" / "tts_demo" / "predictions.jsonl").exists()
