"""Speech suite: audio I/O, each loader on its exact on-disk layout, ASR / TTS round trip /
speech-to-speech end to end, judge batching, repeats with confidence intervals."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from mio_eval import run
from mio_eval.api import build, compose
from mio_eval.errors import ConfigError, MediaError
from mio_eval.media import load_audio
from mio_eval.metrics import word_error_rate
from mio_eval.metrics.normalizers import whisper_english
from mio_eval.metrics.wer import wer_counts
from mio_eval.models.whisper_asr import WhisperASR
from mio_eval.repeats import aggregate_repeats, mean_ci95
from mio_eval.tasks.base import Generated
from mio_eval.tasks.loaders.hf_speech import CommonVoiceLoader, HFSpeechLoader
from mio_eval.tasks.loaders.librispeech import LibriSpeechLoader
from mio_eval.tasks.loaders.s2s import SpeechQALoader
from mio_eval.tasks.loaders.vctk import VCTKLoader
from mio_eval.tasks.s2s import SpeechToSpeechTask, answer_contained
from mio_eval.tasks.speech import Transcriber
from mio_eval.types import Audio, Modality, Output

RATE = 16000


def _tone(seconds=0.5, rate=RATE, freq=330.0, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return mono if channels == 1 else np.stack([mono, 0.5 * mono], axis=1)


def _speech(text: str, path, rate=RATE):
    """Real speech from espeak-ng (installed by the setup script), resampled and written to ``path``."""
    proc = subprocess.run(["espeak-ng", "--stdout", text], capture_output=True, check=True)
    wav = path.with_suffix(".espeak.wav")
    wav.write_bytes(proc.stdout)
    audio = load_audio(wav, sample_rate=rate)
    wav.unlink()
    sf.write(path, audio.samples, rate)
    return path


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _overrides(results, *extra):
    return [f"paths.results_dir={results}", "runner.progress=false", *extra]


# --- audio I/O ----------------------------------------------------------------------------


def test_load_audio_formats_downmix_and_resample_are_recorded(tmp_path):
    stereo = _tone(channels=2, rate=48000)
    sf.write(tmp_path / "a.flac", stereo, 48000)
    audio = load_audio(tmp_path / "a.flac", sample_rate=RATE)
    assert audio.sample_rate == RATE and audio.source_rate == 48000 and audio.source_channels == 2
    assert audio.processing == {"decoder": "soundfile", "source_rate": 48000, "source_channels": 2,
                                "downmix": "mean", "resampled_to": RATE}
    assert len(audio.samples) == RATE // 2
    # Down-mix is the channel mean; polyphase resampling keeps a 330 Hz tone's amplitude.
    assert abs(np.abs(audio.samples[2000:-2000]).max() - 0.75 * 0.3) < 0.01
    same = load_audio(tmp_path / "a.flac")
    assert same.sample_rate == 48000 and same.processing["resampled_to"] is None


def test_mp3_and_m4a_read(tmp_path):
    sf.write(tmp_path / "a.mp3", _tone(1.0), RATE, format="MP3")
    mp3 = load_audio(tmp_path / "a.mp3", sample_rate=RATE)
    assert abs(mp3.duration_s - 1.0) < 0.1 and np.abs(mp3.samples).max() > 0.2
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg (installed by scripts/setup.sh) is needed to write the m4a fixture")
    sf.write(tmp_path / "a.wav", _tone(1.0), RATE)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(tmp_path / "a.wav"), str(tmp_path / "a.m4a")],
                   check=True)
    m4a = load_audio(tmp_path / "a.m4a", sample_rate=RATE)
    assert m4a.decoder == "pyav" and abs(m4a.duration_s - 1.0) < 0.1
    assert np.abs(m4a.samples).max() > 0.2


@pytest.mark.parametrize("case,needle", [
    ("missing", "not found"),
    ("empty", r"empty \(0 bytes\)"),
    ("text", "cannot decode audio"),
    ("truncated_wav", "truncated"),
    ("header_only_wav", "truncated"),
    ("truncated_flac", "cannot decode audio"),
    ("directory", "is a directory"),
    ("nan", "NaN"),
])
def test_bad_audio_is_a_media_error_with_reason(tmp_path, case, needle):
    path = tmp_path / f"{case}.wav"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("this is not audio\n" * 20)
    elif case in ("truncated_wav", "header_only_wav"):
        sf.write(path, _tone(1.0), RATE, subtype="PCM_16")
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3] if case == "truncated_wav" else data[:44])
    elif case == "truncated_flac":
        path = tmp_path / "t.flac"
        sf.write(path, _tone(1.0), RATE)
        path.write_bytes(path.read_bytes()[:3000])
    elif case == "directory":
        path.mkdir()
    elif case == "nan":
        sf.write(path, np.full(100, np.nan, dtype=np.float32), RATE, subtype="FLOAT")
    with pytest.raises(MediaError, match=needle):
        load_audio(path, sample_rate=RATE)


# --- loaders, each on its exact layout ------------------------------------------------------

LIBRI = {
    "1089-134686": ["HE HOPED THERE WOULD BE STEW FOR DINNER", "TURNIPS AND CARROTS AND BRUISED POTATOES"],
    "1188-133604": ["YOU WILL FIND ME CONTINUALLY SPEAKING OF FACTS"],
}


@pytest.fixture(scope="module")
def librispeech(tmp_path_factory):
    """``LibriSpeech/test-clean/<spk>/<chapter>/`` with a trans.txt and espeak-ng flac files."""
    root = tmp_path_factory.mktemp("data") / "LibriSpeech"
    for split in ("test-clean", "test-other"):
        for chapter_key, texts in LIBRI.items():
            speaker, chapter = chapter_key.split("-")
            folder = root / split / speaker / chapter
            folder.mkdir(parents=True)
            lines = []
            for i, text in enumerate(texts):
                utt = f"{chapter_key}-{i:04d}"
                lines.append(f"{utt} {text}")
                _speech(text.lower(), folder / f"{utt}.flac")
            (folder / f"{chapter_key}.trans.txt").write_text("\n".join(lines) + "\n")
    return root


def test_librispeech_loader(librispeech):
    samples = LibriSpeechLoader(root=str(librispeech), split="test-clean")()
    assert [s.id for s in samples] == ["1089-134686-0000", "1089-134686-0001", "1188-133604-0000"]
    assert samples[0].targets == ("HE HOPED THERE WOULD BE STEW FOR DINNER",)
    assert samples[0].metadata["speaker"] == "1089" and samples[0].metadata["chapter"] == "134686"
    (audio,) = samples[0].parts
    assert isinstance(audio, Audio) and audio.path.endswith("1089-134686-0000.flac")
    assert sf.info(audio.path).samplerate == RATE
    # The split folder itself is accepted too; lower-casing is for TTS prompts.
    lower = LibriSpeechLoader(root=str(librispeech / "test-clean"), split="test-clean", lowercase=True)()
    assert lower[0].targets == ("he hoped there would be stew for dinner",)
    assert LibriSpeechLoader(root=str(librispeech), split="test-clean").expected_size == 2620


def test_librispeech_loader_errors(librispeech, tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        LibriSpeechLoader(root=str(tmp_path), split="test-clean")()
    bad = tmp_path / "test-clean" / "1" / "2"
    bad.mkdir(parents=True)
    (bad / "1-2.trans.txt").write_text("1-2-0000\n")
    with pytest.raises(ConfigError, match="malformed LibriSpeech transcript line"):
        LibriSpeechLoader(root=str(tmp_path), split="test-clean")()
    (bad / "1-2.trans.txt").write_text("1-2-0000 HELLO\n")
    with pytest.raises(ConfigError, match="1 LibriSpeech recordings missing"):
        LibriSpeechLoader(root=str(tmp_path), split="test-clean", require_audio=True)()
    assert len(LibriSpeechLoader(root=str(tmp_path), split="test-clean")()) == 1  # missing audio: a per-sample error later


def test_vctk_loader_both_layouts(tmp_path):
    for spk, utt, text in (("p225", "p225_001", "Please call Stella."), ("p226", "p226_002", "Ask her to bring these things.")):
        (tmp_path / "txt" / spk).mkdir(parents=True)
        (tmp_path / "txt" / spk / f"{utt}.txt").write_text(text + "\n")
    (tmp_path / "wav48_silence_trimmed" / "p225").mkdir(parents=True)
    sf.write(tmp_path / "wav48_silence_trimmed" / "p225" / "p225_001_mic1.flac", _tone(), 48000)
    (tmp_path / "wav48" / "p226").mkdir(parents=True)
    sf.write(tmp_path / "wav48" / "p226" / "p226_002.wav", _tone(), 48000)
    samples = VCTKLoader(root=str(tmp_path), require_audio=True)()
    assert [s.metadata["reference_audio"].split("/")[-1] for s in samples] == ["p225_001_mic1.flac", "p226_002.wav"]
    assert samples[1].targets == ("Ask her to bring these things.",)


def _globe_rows(tmp_path):
    rows = []
    for i, text in enumerate(["The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background."]):
        wav = tmp_path / f"clip{i}.wav"
        sf.write(wav, _tone(0.3, freq=300 + 100 * i), RATE)
        rows.append({"audio": {"bytes": wav.read_bytes(), "path": f"S_00000{i}_000001.wav"},
                     "speaker_id": f"S_00000{i}", "transcript": text, "accent": "Scottish English",
                     "duration": 0.3, "age": "twenties", "gender": "female"})
    return rows


def test_hf_parquet_snapshot_loader(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _globe_rows(tmp_path)
    (tmp_path / "GLOBE_V2" / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "GLOBE_V2" / "data" / "test-00000-of-00001.parquet")
    loader = HFSpeechLoader(path=str(tmp_path / "GLOBE_V2"), split="test", metadata_columns=["accent"],
                            cache_dir=str(tmp_path / "cache"))
    samples = loader()
    assert [s.targets[0] for s in samples] == [r["transcript"] for r in rows]
    assert samples[1].metadata["speaker"] == "S_000001" and samples[1].metadata["accent"] == "Scottish English"
    cached = samples[0].parts[0].path
    assert cached.startswith(str(tmp_path / "cache")) and open(cached, "rb").read() == rows[0]["audio"]["bytes"]
    assert loader()[0].parts[0].path == cached  # content-addressed: a second load reuses the file
    with pytest.raises(ConfigError, match="no parquet shards for split 'validation'"):
        HFSpeechLoader(path=str(tmp_path / "GLOBE_V2"), split="validation", cache_dir=str(tmp_path / "cache"))()
    with pytest.raises(ConfigError, match="no column"):
        HFSpeechLoader(path=str(tmp_path / "GLOBE_V2"), text_column="sentence", cache_dir=str(tmp_path / "c"))()


def test_hf_save_to_disk_loader(tmp_path):
    import datasets

    rows = _globe_rows(tmp_path)
    # As a hub copy saved with save_to_disk: the audio column is a decoding Audio feature, which
    # the loader reads undecoded (decoding would need torchcodec, absent here).
    ds = datasets.Dataset.from_list(rows).cast_column("audio", datasets.Audio(sampling_rate=RATE))
    assert ds.features["audio"].decode
    datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "saved"))
    samples = HFSpeechLoader(path=str(tmp_path / "saved"), split="test", cache_dir=str(tmp_path / "cache"))()
    assert len(samples) == 2 and samples[0].targets[0] == rows[0]["transcript"]
    assert load_audio(samples[1].parts[0].path).duration_s == pytest.approx(0.3)


def test_common_voice_tsv_loader(tmp_path):
    (tmp_path / "clips").mkdir()
    sf.write(tmp_path / "clips" / "common_voice_en_1.mp3", _tone(), RATE, format="MP3")
    (tmp_path / "test.tsv").write_text(
        "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tlocale\tsegment\n"
        'abc\tcommon_voice_en_1.mp3\tHe said "hello" twice.\t2\t0\tthirties\tmale\t\ten\t\n')
    (sample,) = CommonVoiceLoader(root=str(tmp_path))()
    assert sample.id == "common_voice_en_1" and sample.targets == ('He said "hello" twice.',)  # no quote stripping
    assert sample.metadata["speaker"] == "abc" and sample.metadata["age"] == "thirties"
    assert load_audio(sample.parts[0].path, sample_rate=RATE).duration_s == pytest.approx(0.5, abs=0.06)


def test_speech_qa_jsonl_loader(tmp_path):
    (tmp_path / "q.jsonl").write_text(
        json.dumps({"id": "q1", "audio": "audio/q1.wav", "answer": "Paris", "question": "capital of France?"}) + "\n"
        + json.dumps({"id": "q2", "audio": "/abs/q2.wav", "answer": ["four", "4"]}) + "\n")
    q1, q2 = SpeechQALoader(path=str(tmp_path / "q.jsonl"))()
    assert q1.parts[0].path == str(tmp_path / "audio" / "q1.wav") and q1.targets == ("Paris",)
    assert q2.targets == ("four", "4") and q2.parts[0].path == "/abs/q2.wav"
    (tmp_path / "bad.jsonl").write_text('{"id": "x", "audio": "a.wav"}\n')
    with pytest.raises(ConfigError, match="bad.jsonl:1: malformed item"):
        SpeechQALoader(path=str(tmp_path / "bad.jsonl"))()


# --- ASR end to end -------------------------------------------------------------------------


def test_asr_librispeech_with_tiny_whisper_end_to_end(librispeech, tiny_whisper, tmp_path):
    data = librispeech.parent
    # A corrupt recording must cost one sample, not the run.
    corrupt = librispeech / "test-other" / "1188" / "133604" / "1188-133604-0000.flac"
    corrupt.write_bytes(b"fLaC" + b"\0" * 100)
    metrics = run("asr_librispeech_test_other", "whisper", _overrides(
        tmp_path, f"model.path={tiny_whisper}", "model.max_new_tokens=6", f"paths.data_dir={data}",
        "runner.batch_size=2", "runner.max_error_rate=0.5"))
    run_dir = tmp_path / metrics["model"] / "asr_librispeech_test_other"
    rows = _lines(run_dir / "scores.jsonl")
    assert [r["id"] for r in rows] == ["1089-134686-0000", "1089-134686-0001", "1188-133604-0000"]
    assert rows[2]["error"].startswith("cannot decode audio 1188-133604-0000.flac")
    assert metrics["n"] == 3 and metrics["n_errors"] == 1 and metrics["errors"] == {"generate": 1, "score": 0}
    ok = [r for r in rows if r["error"] is None]
    refs, hyps = [r["reference"] for r in ok], [r["hypothesis"] for r in ok]
    assert metrics["metrics"]["wer_corpus"]["value"] == pytest.approx(word_error_rate(refs, hyps, mode="corpus"))
    assert metrics["metrics"]["wer_utt_mean"]["value"] == pytest.approx(
        word_error_rate(refs, hyps, mode="utterance_mean"))
    for row in ok:  # per-utterance alignment counts kept beside the texts
        (counts,) = wer_counts([whisper_english(row["reference"])], [whisper_english(row["hypothesis"])])
        assert (row["substitutions"], row["deletions"], row["insertions"]) == (
            counts.substitutions, counts.deletions, counts.insertions)
        assert row["reference_normalized"] == whisper_english(row["reference"])
    # The transcripts are the adapter's own, batch-independent output.
    predictions = {r["id"]: r["prediction"] for r in _lines(run_dir / "predictions.jsonl")}
    assert [predictions[r["id"]] for r in ok] == hyps
    assert metrics["model_provenance"]["decoding"]["max_new_tokens"] == 6


def test_asr_empty_transcripts_score_wer_one(librispeech, tmp_path):
    """An adapter that answers nothing deletes every word: corpus WER is exactly 1."""
    metrics = run("asr_librispeech_test_clean", "dummy", _overrides(
        tmp_path, f"paths.data_dir={librispeech.parent}", "model.response=''"))
    assert metrics["n_errors"] == 0
    assert metrics["metrics"]["wer_corpus"]["value"] == 1.0
    assert metrics["metrics"]["wer_utt_mean"]["value"] == 1.0
    rows = _lines(tmp_path / "dummy" / "asr_librispeech_test_clean" / "scores.jsonl")
    assert rows[0]["deletions"] == 8 and rows[0]["substitutions"] == 0


@pytest.mark.parametrize("target, name, wer", [
    ("WhisperEnglish", "whisper_en", 0.0),   # "stew-for-dinner." -> "stew for dinner": 8 of 8 words right
    ("SeedTTS", "seed_tts", 3 / 8),          # punctuation deleted: "stewfordinner" = 1 substitution + 2 deletions
])
def test_asr_text_normalizer_is_chosen_by_target(librispeech, tmp_path, target, name, wer):
    metrics = run("asr_librispeech_test_clean", "dummy", _overrides(
        tmp_path, f"paths.data_dir={librispeech.parent}", "model.response='He hoped there would be stew-for-dinner.'",
        f"task.normalizer._target_=mio_eval.metrics.normalizers.{target}"))
    assert metrics["metrics"]["wer_corpus"]["variant"] == f"corpus+{name}" and metrics["scoring"]["normalizer"] == name
    rows = _lines(tmp_path / "dummy" / "asr_librispeech_test_clean" / "scores.jsonl")
    assert rows[0]["id"] == "1089-134686-0000" and rows[0]["wer"] == wer


@pytest.mark.parametrize("task", ["asr_librispeech_test_clean", "tts_librispeech_test_clean", "s2s"])
def test_string_text_normalizer_is_refused(librispeech, tmp_path, task):
    with pytest.raises(ConfigError) as err:
        build(compose([f"task={task}", "model=dummy", f"paths.data_dir={librispeech.parent}",
                       "task.normalizer=seed_tts"]))
    message = str(err.value)
    assert "\n" not in message and "got 'seed_tts'" in message
    assert "task.normalizer._target_=mio_eval.metrics.normalizers.SeedTTS" in message


def test_asr_instruction_prompt_needs_a_text_reading_model(librispeech, tmp_path, tiny_whisper):
    with pytest.raises(ConfigError, match="reads text but the model reads only audio"):
        run("asr_librispeech_test_clean", "whisper", _overrides(
            tmp_path, f"model.path={tiny_whisper}", f"paths.data_dir={librispeech.parent}",
            "task.prompt='Please transcribe this speech.'"))


def test_asr_cli_missing_data_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mio_eval.cli", "task=asr_librispeech_test_clean", "model=dummy",
                           f"paths.data_dir={tmp_path}", f"paths.results_dir={tmp_path / 'r'}"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "LibriSpeech split 'test-clean' not found" in proc.stderr
    assert not (tmp_path / "r").exists()


# --- the judge: batched transcription equals one file at a time ------------------------------


def test_judge_batched_equals_one_by_one(librispeech, tiny_whisper, tmp_path):
    paths = [s.parts[0].path for s in LibriSpeechLoader(root=str(librispeech), split="test-clean")()]
    paths.append(str(tmp_path / "missing.wav"))
    judge = WhisperASR(path=str(tiny_whisper), max_new_tokens=6)
    batched = Transcriber(judge, batch_size=4)(paths, tmp_path)
    single = Transcriber(judge, batch_size=1)(paths, tmp_path)
    assert [o.text for o in batched] == [o.text for o in single]
    assert batched[-1].error and "not found" in batched[-1].error
    assert all(o.text is not None for o in batched[:-1])
    assert Transcriber(judge, batch_size=4).provenance()["batch_size"] == 4


# --- TTS: round trip and speaker references -------------------------------------------------


def test_tts_round_trip_with_an_any_to_any_model(tmp_path):
    """The dummy reads audio and writes text; transcribing its own speech it echoes the (empty)
    text of an audio-only request, so the round-trip WER is exactly 1 beside the judge's."""
    metrics = run("tts_demo", "dummy", _overrides(tmp_path, "runner.limit=2", "task.round_trip=true",
                                                  "model.seconds_per_word=0.05"))
    assert metrics["metrics"]["wer_corpus_roundtrip"]["value"] == 1.0
    assert metrics["metrics"]["wer_corpus_roundtrip"]["variant"].endswith("+roundtrip")
    assert "wer_corpus" in metrics["metrics"]  # the judge's number is still there
    assert [j["role"] for j in metrics["judges"]] == ["judge", "round-trip"]
    rows = _lines(tmp_path / "dummy" / "tts_demo" / "scores.jsonl")
    assert all(r["roundtrip_transcript"] == "" and r["roundtrip_wer"] == 1.0 for r in rows)


def test_tts_round_trip_refuses_a_model_that_cannot_listen(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mio_eval.cli", "task=tts_demo", "model=espeak", "task.round_trip=true",
                           f"paths.results_dir={tmp_path}"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "cannot run this task" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


# --- speech to speech -----------------------------------------------------------------------


class _ScriptedJudge:
    """A judge that 'hears' fixed transcripts, so accuracy can be predicted by hand."""

    name = "scripted"
    inputs = frozenset({Modality.AUDIO})
    outputs = frozenset({Modality.TEXT})

    def __init__(self, heard):
        self.heard = heard

    def load(self):
        pass

    def generate(self, requests, *, media_dir):
        return [Output(text=self.heard[r.parts[0].path]) if r.parts[0].path in self.heard
                else Output.failure("unreadable") for r in requests]

    def provenance(self):
        return {"model": "scripted"}


def test_answer_contained_whole_words():
    assert answer_contained("I think it is Paris, France.", ["paris"], whisper_english)
    assert not answer_contained("Parisian food", ["Paris"], whisper_english)
    assert answer_contained("the answer is four", ["4"], whisper_english)  # both sides normalised: "4"
    assert not answer_contained("no idea", ["", "yes"], whisper_english)


def test_s2s_scores_against_reference_answers(tmp_path):
    loader = lambda: SpeechQALoader(path=str(tmp_path / "q.jsonl"))()  # noqa: E731
    (tmp_path / "q.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "audio": f"q{i}.wav", "answer": a}) + "\n"
                                              for i, a in enumerate(["Paris", ["four", "4"], "blue"])))
    heard = {"a0.wav": "It is Paris.", "a1.wav": "two plus two is 4", "a2.wav": "red"}
    task = SpeechToSpeechTask(name="s2s", loader=loader, judge=_ScriptedJudge(heard), judge_batch_size=2)
    samples = task.samples()
    generated = [Generated(sample=s, output=Output(media=(Audio(f"a{i}.wav"),)), prediction=f"a{i}.wav", error=None)
                 for i, s in enumerate(samples)]
    report = task.score(generated, work_dir=tmp_path)
    by_name = {m.name: m for m in report.metrics}
    assert by_name["answer_accuracy"].value == pytest.approx(2 / 3)
    assert [r["correct"] for r in report.per_sample] == [True, True, False]
    assert by_name["wer_corpus"].value == pytest.approx(word_error_rate(
        ["Paris", "four", "blue"], ["It is Paris.", "two plus two is 4", "red"], mode="corpus"))


def test_s2s_end_to_end_with_tiny_whisper_judge(tmp_path, tiny_whisper):
    data = tmp_path / "data" / "s2s"
    data.mkdir(parents=True)
    _speech("what is the capital of france", data / "q1.wav")
    _speech("how many legs does a cat have", data / "q2.wav")
    (data / "questions.jsonl").write_text(
        json.dumps({"id": "q1", "audio": "q1.wav", "answer": "Paris"}) + "\n"
        + json.dumps({"id": "q2", "audio": "q2.wav", "answer": ["four", "4"]}) + "\n")
    metrics = run("s2s", "dummy", _overrides(tmp_path / "results", f"paths.data_dir={tmp_path / 'data'}",
                                             f"task.judge.whisper_path={tiny_whisper}", "task.judge.max_new_tokens=4",
                                             "model.seconds_per_word=0.2"))
    assert metrics["n"] == 2 and metrics["n_errors"] == 0
    assert set(metrics["metrics"]) == {"answer_accuracy", "wer_corpus", "wer_utt_mean"}
    assert metrics["judges"][0]["path"] == str(tiny_whisper)
    rows = _lines(tmp_path / "results" / "dummy" / "s2s" / "scores.jsonl")
    assert [r["answers"] for r in rows] == [["Paris"], ["four", "4"]]
    assert metrics["metrics"]["answer_accuracy"]["value"] == sum(r["correct"] for r in rows) / 2


# --- repeats: mean ± 95% CI over seeds -------------------------------------------------------


def test_mean_ci95_t_interval():
    mean, sd, half = mean_ci95([1.0, 2.0, 3.0])
    assert mean == 2.0 and sd == 1.0
    assert half == pytest.approx(4.302652729911275 / 3 ** 0.5)  # t(0.975, df=2) * s / sqrt(n)
    assert mean_ci95([0.5]) == (0.5, None, None)


def test_aggregate_repeats_means_and_totals():
    def metrics(value, n_errors):
        return {"task": "t", "model": "m", "n": 4, "n_scored": 4 - n_errors, "n_errors": n_errors,
                "errors": {"generate": n_errors, "score": 0}, "fingerprint": f"f{value}",
                "started_at": "s", "finished_at": "f", "runner": {},
                "metrics": {"wer_corpus": {"value": value, "higher_is_better": False, "variant": "corpus",
                                           "provenance": "p", "scale": 100.0, "n": 4, "extra": {}}}}
    out = aggregate_repeats([(0, metrics(0.1, 0)), (1, metrics(0.2, 1)), (2, metrics(0.3, 0))])
    wer = out["metrics"]["wer_corpus"]
    assert wer["value"] == pytest.approx(0.2) and wer["extra"]["values"] == [0.1, 0.2, 0.3]
    assert wer["extra"]["seeds"] == [0, 1, 2]
    assert wer["extra"]["ci95"] == pytest.approx([0.2 - 0.2484138, 0.2 + 0.2484138], abs=1e-6)
    assert (out["n"], out["n_scored"], out["n_errors"], out["n_per_repeat"]) == (12, 11, 1, 4)
    assert [r["fingerprint"] for r in out["repeats"]] == ["f0.1", "f0.2", "f0.3"]


def test_repeats_end_to_end(tmp_path):
    metrics = run("tts_demo", "dummy", _overrides(tmp_path, "runner.limit=2", "runner.repeats=2",
                                                  "model.seconds_per_word=0.05"))
    run_dir = tmp_path / "dummy" / "tts_demo"
    seeds = [json.loads((run_dir / f"seed_{s}" / "metrics.json").read_text()) for s in (0, 1)]
    assert [s["config"]["task"]["generation"]["seed"] for s in seeds] == [0, 1]
    assert seeds[0]["fingerprint"] != seeds[1]["fingerprint"]
    wer = metrics["metrics"]["wer_corpus"]
    assert wer["extra"]["values"] == [s["metrics"]["wer_corpus"]["value"] for s in seeds]
    assert wer["value"] == pytest.approx(sum(wer["extra"]["values"]) / 2)
    assert json.loads((run_dir / "metrics.json").read_text())["metrics"] == metrics["metrics"]
    from mio_eval.report import load_runs, render_runs

    assert " ± " in render_runs(load_runs(tmp_path))


def test_repeats_refused_for_deterministic_decoding(librispeech, tmp_path):
    with pytest.raises(ConfigError, match="has no generation.seed"):
        run("asr_librispeech_test_clean", "dummy", _overrides(tmp_path, "runner.repeats=3",
                                                              f"paths.data_dir={librispeech.parent}"))
