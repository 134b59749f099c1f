"""TTS: VCTK loader, ASR judges (tiny random Whisper, pocketsphinx), the pipeline end to end."""

import hashlib
import json

import numpy as np
import pytest
import soundfile as sf

from mio_eval import run
from mio_eval.errors import ConfigError
from mio_eval.metrics import word_error_rate
from mio_eval.metrics.wer import wer_counts
from mio_eval.metrics.normalizers import whisper_english
from mio_eval.models.pocketsphinx_asr import PocketSphinxASR
from mio_eval.models.whisper_asr import WhisperASR
from mio_eval.tasks.loaders.vctk import VCTKLoader
from mio_eval.types import Audio, Request

DEMO_FIRST_IDS = ["harvard01_001", "harvard01_002", "harvard01_003"]


def _wav(path, seconds=1.0, rate=16000, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t), rate)
    return path


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _overrides(results, *extra):
    return [f"paths.results_dir={results}", "runner.progress=false", *extra]


def _check_wer_recomputes(metrics, rows):
    """metrics.json's WER equals word_error_rate recomputed from scores.jsonl's text."""
    ok = [r for r in rows if r["error"] is None]
    refs, hyps = [r["reference"] for r in ok], [r["transcript"] for r in ok]
    assert metrics["metrics"]["wer_corpus"]["value"] == pytest.approx(word_error_rate(refs, hyps, mode="corpus"))
    assert metrics["metrics"]["wer_utt_mean"]["value"] == pytest.approx(
        word_error_rate(refs, hyps, mode="utterance_mean"))
    for row, counts in zip(ok, wer_counts([whisper_english(r) for r in refs], [whisper_english(h) for h in hyps])):
        assert (row["substitutions"], row["deletions"], row["insertions"], row["ref_words"]) == (
            counts.substitutions, counts.deletions, counts.insertions, counts.ref_words)
        assert row["reference_normalized"] == whisper_english(row["reference"])
        assert row["transcript_normalized"] == whisper_english(row["transcript"])
        assert row["wer"] == pytest.approx(counts.wer)


# --- VCTK loader ------------------------------------------------------------------------------

def _vctk_fixture(root):
    """VCTK's layout: txt/<spk>/<utt>.txt, 0.92 flac recordings and the older wav48 wavs."""
    texts = {"p225_001": "Please call Stella.", "p225_002": "Ask her to bring these things\nwith her.",
             "p226_001": "Six spoons of fresh snow peas.", "p227_001": "Some other text."}
    for utt, text in texts.items():
        spk = utt.split("_")[0]
        (root / "txt" / spk).mkdir(parents=True, exist_ok=True)
        (root / "txt" / spk / f"{utt}.txt").write_text(text + "\n", encoding="utf-8")
    (root / "wav48_silence_trimmed" / "p225").mkdir(parents=True)
    sf.write(root / "wav48_silence_trimmed" / "p225" / "p225_001_mic1.flac", np.zeros(4800), 48000)
    sf.write(root / "wav48_silence_trimmed" / "p225" / "p225_001_mic2.flac", np.zeros(4800), 48000)
    (root / "wav48" / "p226").mkdir(parents=True)
    _wav(root / "wav48" / "p226" / "p226_001.wav", seconds=0.1, rate=48000)
    return texts


def test_vctk_loader_layouts_and_reference_audio(tmp_path):
    texts = _vctk_fixture(tmp_path)
    samples = VCTKLoader(root=str(tmp_path))()
    assert [s.id for s in samples] == ["p225_001", "p225_002", "p226_001", "p227_001"]
    by_id = {s.id: s for s in samples}
    assert by_id["p225_001"].targets == ("Please call Stella.",)
    assert by_id["p225_002"].targets == ("Ask her to bring these things with her.",)  # whitespace collapsed
    assert by_id["p225_002"].parts[0].text == "Ask her to bring these things with her."
    assert {s.metadata["speaker"] for s in samples} == {"p225", "p226", "p227"}
    # 0.92 layout (flac, mic1 by default) and the older wav48 layout are both found.
    assert by_id["p225_001"].metadata["reference_audio"] == str(
        tmp_path / "wav48_silence_trimmed" / "p225" / "p225_001_mic1.flac")
    assert by_id["p226_001"].metadata["reference_audio"] == str(tmp_path / "wav48" / "p226" / "p226_001.wav")
    assert sf.info(by_id["p225_001"].metadata["reference_audio"]).samplerate == 48000
    assert "reference_audio" not in by_id["p225_002"].metadata
    mic2 = VCTKLoader(root=str(tmp_path), mic="mic2", speakers=["p225"])()
    assert mic2[0].metadata["reference_audio"].endswith("p225_001_mic2.flac")
    assert len(texts) == len(samples)


def test_vctk_loader_speakers_filter_and_errors(tmp_path):
    _vctk_fixture(tmp_path)
    assert [s.id for s in VCTKLoader(root=str(tmp_path), speakers=["p226"])()] == ["p226_001"]
    assert [s.id for s in VCTKLoader(root=str(tmp_path), speakers=["p227", "p225"])()] == [
        "p225_001", "p225_002", "p227_001"]
    assert [s.id for s in VCTKLoader(root=str(tmp_path), max_per_speaker=1)()] == [
        "p225_001", "p226_001", "p227_001"]
    with pytest.raises(ConfigError, match="p999"):
        VCTKLoader(root=str(tmp_path), speakers=["p225", "p999"])()
    with pytest.raises(ConfigError, match="recording missing"):
        VCTKLoader(root=str(tmp_path), require_audio=True)()
    assert len(VCTKLoader(root=str(tmp_path), speakers=["p226"], require_audio=True)()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="VCTK transcripts not found: .*empty.txt"):
        VCTKLoader(root=str(empty))()
    (empty / "txt" / "p225").mkdir(parents=True)  # speaker dirs but no transcripts
    with pytest.raises(ConfigError, match="no VCTK transcripts"):
        VCTKLoader(root=str(empty))()
    with pytest.raises(ConfigError):
        VCTKLoader(root=str(tmp_path / "does-not-exist"))()


def test_embedded_demo_set_through_the_task_config():
    from mio_eval.api import build, compose

    task, _ = build(compose(["task=tts_demo", "model=dummy"]))
    samples = task.samples()
    assert len(samples) == 50
    speakers = [s.metadata["speaker"] for s in samples]
    assert sorted(set(speakers)) == [f"harvard0{i}" for i in range(1, 6)]
    assert all(speakers.count(spk) == 10 for spk in set(speakers))
    assert len({s.id for s in samples}) == 50
    assert samples[0].id == "harvard01_001"
    assert samples[0].targets[0] == "The birch canoe slid on the smooth planks."
    assert all(s.targets[0].strip() and "reference_audio" not in s.metadata for s in samples)
    assert task.request(samples[0]).text == samples[0].targets[0]


# --- judges -----------------------------------------------------------------------------------

def test_whisper_batched_decode_equals_per_sample_decode(tiny_whisper, tmp_path):
    asr = WhisperASR(path=str(tiny_whisper), max_new_tokens=6)
    wavs = [_wav(tmp_path / f"{i}.wav", seconds=0.5 + i / 2, rate=(16000, 22050, 8000)[i], freq=300 + 100 * i)
            for i in range(3)]
    requests = [Request(sample_id=str(i), parts=(Audio(str(p)),)) for i, p in enumerate(wavs)]
    batched = asr.generate(requests, media_dir=tmp_path)
    single = [asr.generate([r], media_dir=tmp_path)[0] for r in requests]
    assert all(o.error is None and isinstance(o.text, str) for o in batched)
    assert [o.text for o in batched] == [o.text for o in single]
    assert [o.n_output_tokens for o in batched] == [o.n_output_tokens for o in single]
    assert all(0 < o.n_output_tokens <= 6 for o in batched)  # max_new_tokens bounds the decode
    prov = asr.provenance()
    assert prov["model"] == "openai-whisper" and prov["dims"]["n_audio_state"] == 64
    assert prov["sha256"] == hashlib.sha256(tiny_whisper.read_bytes()).hexdigest()[:16]


@pytest.mark.parametrize("judge_kind", ["pocketsphinx", "whisper"])
def test_judge_returns_errors_for_unreadable_audio(judge_kind, tiny_whisper, tmp_path):
    judge = PocketSphinxASR() if judge_kind == "pocketsphinx" else WhisperASR(path=str(tiny_whisper),
                                                                              max_new_tokens=4)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"this is not audio at all" * 10)
    (tmp_path / "riff.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunkjunkjunk")
    good = _wav(tmp_path / "good.wav", seconds=0.5)
    names = ["empty.wav", "junk.wav", "riff.wav", "gone.wav", "good.wav"]
    requests = [Request(sample_id=n, parts=(Audio(str(tmp_path / n)),)) for n in names]
    requests.append(Request(sample_id="no-audio", parts=()))
    outputs = judge.generate(requests, media_dir=tmp_path)  # no exception: per-sample errors are data
    assert len(outputs) == len(requests)
    assert [o.text for o in outputs[:4]] == [None] * 4
    assert "empty" in outputs[0].error and "empty.wav" in outputs[0].error
    assert "cannot decode" in outputs[1].error and "junk.wav" in outputs[1].error
    assert "cannot decode" in outputs[2].error
    assert "not found" in outputs[3].error
    assert outputs[4].error is None and isinstance(outputs[4].text, str) and good.exists()
    assert "expected one audio part" in outputs[5].error


# --- the pipeline end to end ------------------------------------------------------------------

def test_tts_end_to_end_with_tiny_whisper_judge(tiny_whisper, tmp_path):
    returned = run("tts_demo", "espeak", _overrides(tmp_path, f"task.judge.whisper_path={tiny_whisper}",
                                                    "task.judge.max_new_tokens=8", "runner.limit=3"))
    run_dir = tmp_path / "espeak" / "tts_demo"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(returned))
    assert (metrics["n"], metrics["n_errors"], metrics["n_scored"]) == (3, 0, 3)
    (judge,) = metrics["judges"]
    assert judge["model"] == "openai-whisper" and judge["path"] == str(tiny_whisper)
    assert judge["sha256"] == hashlib.sha256(tiny_whisper.read_bytes()).hexdigest()[:16]
    assert judge["decoding"]["temperature"] == 0.0 and judge["decoding"]["language"] == "en"
    assert judge["decoding"]["max_new_tokens"] == 8
    assert metrics["model_provenance"]["model"] == "espeak-ng"
    assert metrics["scoring"] == {"normalizer": "whisper_en", "wer_modes": ["corpus", "utterance_mean"],
                                  "judge_batch_size": 8, "round_trip": False, "speaker_reference": None}
    for name, variant in (("wer_corpus", "corpus+whisper_en"), ("wer_utt_mean", "utterance_mean+whisper_en")):
        entry = metrics["metrics"][name]
        assert entry["variant"] == variant and entry["n"] == 3
        assert entry["higher_is_better"] is False and entry["scale"] == 100.0
        assert isinstance(entry["value"], float) and entry["value"] >= 0
    rows = _lines(run_dir / "scores.jsonl")
    assert [r["id"] for r in rows] == DEMO_FIRST_IDS
    assert all(r["error"] is None and isinstance(r["transcript"], str) for r in rows)
    assert all({"substitutions", "deletions", "insertions", "ref_words", "wer"} <= set(r) for r in rows)
    _check_wer_recomputes(metrics, rows)
    predictions = _lines(run_dir / "predictions.jsonl")
    assert sorted(p["id"] for p in predictions) == DEMO_FIRST_IDS  # written longest request first
    for row in predictions:
        info = sf.info(run_dir / row["prediction"])
        assert info.samplerate == 22050 and info.channels == 1 and info.frames > 0


def test_tts_end_to_end_with_espeak_and_pocketsphinx(tmp_path):
    metrics = run("tts_demo", "espeak", _overrides(tmp_path, "runner.limit=3"))
    run_dir = tmp_path / "espeak" / "tts_demo"
    assert metrics == json.loads((run_dir / "metrics.json").read_text())
    (judge,) = metrics["judges"]
    assert judge["model"] == "pocketsphinx" and judge["package"].startswith("pocketsphinx ")
    assert (metrics["n"], metrics["n_errors"]) == (3, 0)
    wer = metrics["metrics"]["wer_corpus"]["value"]
    # A real recogniser on real speech: some words are right (random text would be ~1.0 or more).
    assert isinstance(wer, float) and 0.0 <= wer < 1.0
    assert 0.0 <= metrics["metrics"]["wer_utt_mean"]["value"] < 1.0
    for row in _lines(run_dir / "predictions.jsonl"):
        wav = run_dir / row["prediction"]
        assert wav.suffix == ".wav" and wav.is_file()
        info = sf.info(wav)
        assert info.samplerate == 22050 and info.subtype == "PCM_16" and info.frames > info.samplerate // 2  # over half a second of speech
    rows = _lines(run_dir / "scores.jsonl")
    assert [r["id"] for r in rows] == DEMO_FIRST_IDS
    assert any(r["transcript"].strip() for r in rows)
    _check_wer_recomputes(metrics, rows)


def test_rescoring_saved_generations_with_another_judge(tiny_whisper, tmp_path):
    generated = run("tts_demo", "espeak", _overrides(tmp_path, "runner.limit=2", "runner.stage=generate"))
    assert generated["metrics"] == {} and generated["stage"] == "generate"
    run_dir = tmp_path / "espeak" / "tts_demo"
    assert not (run_dir / "metrics.json").exists()
    before = (run_dir / "predictions.jsonl").read_text()
    media_before = {p.name: p.read_bytes() for p in (run_dir / "media").iterdir()}
    fingerprint = json.loads((run_dir / "run.json").read_text())["fingerprint"]
    # The judge is a scoring key: a different judge keeps the generation fingerprint.
    metrics = run("tts_demo", "espeak", _overrides(tmp_path, "runner.limit=2", "runner.stage=score",
                                                   f"task.judge.whisper_path={tiny_whisper}",
                                                   "task.judge.max_new_tokens=4"))
    assert metrics["fingerprint"] == fingerprint
    assert metrics["judges"][0]["model"] == "openai-whisper" and metrics["judges"][0]["path"] == str(tiny_whisper)
    assert (metrics["n"], metrics["n_errors"]) == (2, 0)
    assert set(metrics["metrics"]) == {"wer_corpus", "wer_utt_mean"}
    assert (run_dir / "predictions.jsonl").read_text() == before  # nothing regenerated
    assert {p.name: p.read_bytes() for p in (run_dir / "media").iterdir()} == media_before
    _check_wer_recomputes(metrics, _lines(run_dir / "scores.jsonl"))
    # A generation-relevant change is refused on the same run dir.
    with pytest.raises(ConfigError, match="fingerprint"):
        run("tts_demo", "espeak", _overrides(tmp_path, "runner.limit=2", "runner.stage=score", "model.rate=120"))
    with pytest.raises(ConfigError, match="fingerprint"):
        run("tts_demo", "espeak", _overrides(tmp_path, "runner.limit=2", "runner.stage=score",
                                             "task.prompt='Say: {text}'"))


def test_corrupt_generated_audio_is_a_scoring_error(tmp_path):
    assert run("tts_demo", "dummy", _overrides(tmp_path, "runner.limit=3", "runner.stage=generate"))["metrics"] == {}
    run_dir = tmp_path / "dummy" / "tts_demo"
    predictions = _lines(run_dir / "predictions.jsonl")
    assert sorted(p["id"] for p in predictions) == DEMO_FIRST_IDS
    victim = next(p for p in predictions if p["id"] == "harvard01_002")
    (run_dir / victim["prediction"]).write_bytes(b"RIFF garbage, not a wave file")
    metrics = run("tts_demo", "dummy", _overrides(tmp_path, "runner.limit=3", "runner.stage=score",
                                                  "runner.max_error_rate=0.5"))
    assert metrics["n"] == 3 and metrics["n_errors"] == 1 and metrics["n_scored"] == 2
    assert metrics["errors"] == {"generate": 0, "score": 1}
    rows = _lines(run_dir / "scores.jsonl")
    assert [r["id"] for r in rows] == DEMO_FIRST_IDS
    (bad,) = [r for r in rows if r["error"]]
    assert bad["id"] == victim["id"] and bad["stage"] == "score"
    assert bad["error"].startswith("judge: cannot decode audio")
    assert metrics["metrics"]["wer_corpus"]["n"] == metrics["metrics"]["wer_utt_mean"]["n"] == 2
    _check_wer_recomputes(metrics, rows)


def test_text_output_on_tts_task_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="wants audio output"):
        run("tts_demo", "dummy", _overrides(tmp_path, "model.outputs=[text]"))
    assert not (tmp_path / "dummy" / "tts_demo" / "predictions.jsonl").exists()


def test_missing_judge_checkpoint_fails_before_generation(tmp_path):
    with pytest.raises(ConfigError, match="judge checkpoint not found"):
        run("tts_demo", "espeak", _overrides(tmp_path, "runner.limit=2",
                                             f"task.judge.whisper_path={tmp_path / 'missing.pt'}"))
    assert not (tmp_path / "espeak" / "tts_demo" / "predictions.jsonl").exists()
    # Generation alone does not need the judge.
    assert run("tts_demo", "espeak", _overrides(tmp_path, "runner.limit=1", "runner.stage=generate",
                                                f"task.judge.whisper_path={tmp_path / 'missing.pt'}"))
