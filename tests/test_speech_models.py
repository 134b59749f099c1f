"""transformers speech backends: wav2vec2 CTC ASR, VITS / SpeechT5 TTS, WavLM speaker similarity.

Every checkpoint is a tiny random model built with the real transformers classes, saved with
``save_pretrained`` and loaded back through the adapters' own ``load()``; audio is written with
numpy + soundfile.
"""

import hashlib
import json
import re

import numpy as np
import pytest
import soundfile as sf

from mio_eval.errors import ConfigError
from mio_eval.metrics.base import MetricResult
from mio_eval.metrics.speaker import (
    SpeakerEncoder,
    SpeakerSimilarity,
    cosine_similarity,
    score_pairs,
    speaker_similarity,
)
from mio_eval.models.hf_tts import HFTextToSpeech
from mio_eval.models.wav2vec2_asr import Wav2Vec2ASR
from mio_eval.types import Audio, Modality, Request, Text

LETTERS = list("abcdefghijklmnopqrstuvwxyz'")
SENTENCES = ["the birch canoe slid on the smooth planks", "glue the sheet to the dark blue background",
             "it is easy to tell the depth of a well", "these days a chicken leg is a rare dish",
             "rice is often served in round bowls", "the juice of lemons makes fine punch"]


def _sha16(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _wav(path, seconds=1.0, rate=16000, freq=220.0, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * np.sin(2 * np.pi * 3.1 * freq * t)
    sf.write(path, np.stack([wave] * channels, axis=1) if channels > 1 else wave, rate)
    return path


def _audio_requests(paths):
    return [Request(sample_id=f"u{i}", parts=(Audio(str(p)),)) for i, p in enumerate(paths)]


def _text_requests(texts, **generation):
    return [Request(sample_id=f"s{i}", parts=(Text(t),), output_modality=Modality.AUDIO, generation=generation)
            for i, t in enumerate(texts)]


def _write_vocab(path, tokens):
    path.write_text(json.dumps({tok: i for i, tok in enumerate(tokens)}), encoding="utf-8")
    return path


# tiny wav2vec2-style front end: 7 conv layers, 320x downsampling (20 ms frames), as the real models
CONV = dict(conv_dim=(16,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2),
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
LAYER_NORM = dict(feat_extract_norm="layer", do_stable_layer_norm=True)   # large / lv60 checkpoints
GROUP_NORM = dict(feat_extract_norm="group", do_stable_layer_norm=False)  # base checkpoints


# --- fixtures: tiny random checkpoints --------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny models: intra-op threads only add overhead, and on a busy 2-core machine they spin
    (a tiny VITS forward took 2.8 s with 2 threads, 0.07 s with 1)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _build_wav2vec2(root, norm, mask):
    import torch
    from transformers import (Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC,
                              Wav2Vec2Processor)

    root.mkdir()
    vocab = _write_vocab(root / "vocab.json", ["<pad>", "<unk>", "|", *[c.upper() for c in LETTERS]])
    tokenizer = Wav2Vec2CTCTokenizer(str(vocab), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|")
    features = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                        return_attention_mask=mask)
    Wav2Vec2Processor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(root)
    torch.manual_seed(0)
    config = Wav2Vec2Config(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **CONV, **norm)
    Wav2Vec2ForCTC(config).save_pretrained(root)
    return root


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory):
    """Layer-norm front end + attention mask (padding is exact): clips share one forward pass."""
    return _build_wav2vec2(tmp_path_factory.mktemp("w2v") / "layer", LAYER_NORM, mask=True)


@pytest.fixture(scope="module")
def tiny_wav2vec2_base(tmp_path_factory):
    """Group-norm front end, no attention mask, like facebook/wav2vec2-base-960h."""
    return _build_wav2vec2(tmp_path_factory.mktemp("w2v") / "group", GROUP_NORM, mask=False)


@pytest.fixture(scope="module")
def tiny_vits(tmp_path_factory):
    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    root = tmp_path_factory.mktemp("vits") / "mms-tiny"
    root.mkdir()
    vocab = _write_vocab(root / "vocab.src.json", ["<pad>", "<unk>", " ", *LETTERS])
    tokenizer = VitsTokenizer(str(vocab), phonemize=False, normalize=True, add_blank=True)
    tokenizer.save_pretrained(root)
    torch.manual_seed(0)
    config = VitsConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=32,
        window_size=2, flow_size=8, spectrogram_bins=9, upsample_initial_channel=16, upsample_rates=[4, 4],
        upsample_kernel_sizes=[8, 8], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
        depth_separable_channels=2, depth_separable_num_layers=2, duration_predictor_num_flows=2,
        duration_predictor_filter_channels=16, prior_encoder_num_flows=2, prior_encoder_num_wavenet_layers=1,
        posterior_encoder_num_wavenet_layers=1, sampling_rate=8000)
    VitsModel(config).save_pretrained(root)
    return root


@pytest.fixture(scope="module")
def tiny_speecht5(tmp_path_factory):
    """SpeechT5 TTS (+ sentencepiece char model), a HiFi-GAN vocoder and an 8-d speaker x-vector."""
    import sentencepiece as spm
    import torch
    from transformers import (SpeechT5Config, SpeechT5FeatureExtractor, SpeechT5ForTextToSpeech, SpeechT5HifiGan,
                              SpeechT5HifiGanConfig, SpeechT5Processor, SpeechT5Tokenizer)

    base = tmp_path_factory.mktemp("speecht5")
    # Fairseq's special ids, as microsoft/speecht5_tts's spm_char.model: <s>=0 <pad>=1 </s>=2 <unk>=3.
    spm.SentencePieceTrainer.train(sentence_iterator=iter(SENTENCES * 4), model_prefix=str(base / "spm_char"),
                                   model_type="char", vocab_size=30, hard_vocab_limit=False, bos_id=0, pad_id=1,
                                   eos_id=2, unk_id=3, minloglevel=2)
    tts = base / "tts"
    tokenizer = SpeechT5Tokenizer(str(base / "spm_char.model"))
    SpeechT5Processor(feature_extractor=SpeechT5FeatureExtractor(), tokenizer=tokenizer).save_pretrained(tts)
    torch.manual_seed(0)
    config = SpeechT5Config(
        vocab_size=len(tokenizer), hidden_size=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, speech_decoder_prenet_units=16,
        speech_decoder_postnet_units=16, speech_decoder_postnet_layers=2, speaker_embedding_dim=8,
        num_mel_bins=20, max_text_positions=64, max_speech_positions=256, pad_token_id=1, bos_token_id=0,
        eos_token_id=2, decoder_start_token_id=2)
    SpeechT5ForTextToSpeech(config).save_pretrained(tts)
    vocoder = base / "hifigan"
    SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=20, sampling_rate=16000, upsample_initial_channel=16, upsample_rates=[4, 4],
        upsample_kernel_sizes=[8, 8], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
        normalize_before=False)).save_pretrained(vocoder)
    speaker = base / "xvector.npy"
    np.save(speaker, np.random.default_rng(0).normal(size=8).astype(np.float32))
    return tts, vocoder, speaker


@pytest.fixture(scope="module")
def tiny_wavlm(tmp_path_factory):
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    root = tmp_path_factory.mktemp("wavlm") / "wavlm-tiny-sv"
    torch.manual_seed(0)
    config = WavLMConfig(**CONV, **LAYER_NORM, num_buckets=16, max_bucket_distance=64, classifier_proj_size=16,
                         tdnn_dim=(16, 16, 16, 16, 24), xvector_output_dim=12,
                         initializer_range=0.3)  # the default 0.02 makes embeddings ~1e-8: float noise
    WavLMForXVector(config).save_pretrained(root)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=False,
                             return_attention_mask=True).save_pretrained(root)
    return root


@pytest.fixture
def clips(tmp_path):
    """Different lengths, rates and channel counts (the adapters resample to 16 kHz mono)."""
    return [_wav(tmp_path / "a.wav", 1.0, 16000, 180.0), _wav(tmp_path / "b.wav", 0.6, 22050, 260.0, channels=2),
            _wav(tmp_path / "c.wav", 0.8, 8000, 330.0), _wav(tmp_path / "d.flac", 0.4, 44100, 410.0)]


# --- wav2vec2 CTC ASR ---------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["layer_norm_masked", "group_norm_unmasked"])
def test_wav2vec2_batched_equals_single(which, tiny_wav2vec2, tiny_wav2vec2_base, clips, tmp_path):
    path = tiny_wav2vec2 if which == "layer_norm_masked" else tiny_wav2vec2_base
    asr = Wav2Vec2ASR(path=str(path))
    requests = _audio_requests(clips)
    batched = asr.generate(requests, media_dir=tmp_path)
    single = [asr.generate([r], media_dir=tmp_path)[0] for r in requests]
    assert all(o.error is None and isinstance(o.text, str) for o in batched)
    assert [o.text for o in batched] == [o.text for o in single]
    assert [o.n_output_tokens for o in batched] == [o.n_output_tokens for o in single]
    # A random model emits tokens of its vocabulary: letters, ', word breaks and the special tokens
    # the tokenizer adds (decoded as the model card does, special tokens kept).
    assert any(o.text for o in batched)
    letters = [re.sub("</?s>|<unk>", "", o.text) for o in batched]
    assert all(set(t) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ' ") for t in letters)
    tokens = [re.sub("</?s>|<unk>", "#", o.text).replace(" ", "") for o in batched]  # one char per token
    assert all(o.n_output_tokens >= len(t) > 0 for o, t in zip(batched, tokens) if o.text)
    prov = asr.provenance()
    assert prov["model"] == "transformers Wav2Vec2ForCTC" and prov["path"] == str(path)
    assert prov["weights_sha256"] == {"model.safetensors": _sha16(path / "model.safetensors")}
    assert prov["package"].startswith("transformers ") and prov["decoding"]["method"] == "greedy_ctc"
    expected = "padded+attention_mask" if which == "layer_norm_masked" else "one_clip_per_forward"
    assert prov["decoding"]["batching"] == expected


def test_wav2vec2_group_norm_padding_is_not_exact(tiny_wav2vec2_base, clips, tmp_path):
    """Why group-norm checkpoints run one clip per pass: zero padding changes their logits."""
    import torch

    asr = Wav2Vec2ASR(path=str(tiny_wav2vec2_base))
    asr.load()
    from mio_eval.media import load_audio

    short, long = (load_audio(p, sample_rate=16000).samples for p in (clips[3], clips[0]))
    fe = asr.processor.feature_extractor
    with torch.inference_mode():
        alone = asr.model(fe([short], sampling_rate=16000, return_tensors="pt")["input_values"]).logits[0]
        padded = asr.model(fe([short, long], sampling_rate=16000, padding=True,
                              return_tensors="pt")["input_values"]).logits[0, : alone.shape[0]]
    assert not torch.allclose(alone, padded, atol=1e-3)
    forced = Wav2Vec2ASR(path=str(tiny_wav2vec2_base), force_batching=True)
    outputs = forced.generate(_audio_requests(clips), media_dir=tmp_path)
    assert all(o.error is None for o in outputs)
    assert forced.provenance()["decoding"]["batching"] == "padded+attention_mask"


def test_wav2vec2_unreadable_audio_is_a_per_sample_error(tiny_wav2vec2, clips, tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"this is not audio at all" * 10)
    sf.write(tmp_path / "blip.wav", np.zeros(200), 16000)  # 12.5 ms: shorter than one conv window
    bad = [tmp_path / "empty.wav", tmp_path / "junk.wav", tmp_path / "gone.wav", tmp_path / "blip.wav"]
    requests = _audio_requests([clips[0], *bad, clips[1]])
    requests.append(Request(sample_id="no-audio", parts=(Text("hello"),)))
    asr = Wav2Vec2ASR(path=str(tiny_wav2vec2))
    outputs = asr.generate(requests, media_dir=tmp_path)
    assert len(outputs) == len(requests)
    assert [o.ok for o in outputs] == [True, False, False, False, False, True, False]
    assert "empty" in outputs[1].error and "junk.wav" in outputs[2].error and "not found" in outputs[3].error
    assert "too short" in outputs[4].error and "blip.wav" in outputs[4].error
    assert "expected one audio part" in outputs[6].error
    good = asr.generate(_audio_requests([clips[0], clips[1]]), media_dir=tmp_path)
    assert [outputs[0].text, outputs[5].text] == [o.text for o in good]  # the failures did not disturb the rest


def test_wav2vec2_missing_dir_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        Wav2Vec2ASR(path=str(tmp_path / "nowhere")).load()
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(ConfigError, match="config.json"):
        Wav2Vec2ASR(path=str(tmp_path / "empty-dir")).load()
    assert Wav2Vec2ASR(path=str(tmp_path / "nowhere")).inputs == frozenset({Modality.AUDIO})  # build is lazy
    (tmp_path / "empty-dir" / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="no weights file"):
        Wav2Vec2ASR(path=str(tmp_path / "empty-dir")).load()


def test_wav2vec2_incomplete_dir_is_a_config_error(tiny_wav2vec2, tmp_path):
    import shutil

    partial = shutil.copytree(tiny_wav2vec2, tmp_path / "partial")
    (partial / "preprocessor_config.json").unlink()  # the feature extractor's file
    with pytest.raises(ConfigError, match="cannot load Wav2Vec2Processor"):
        Wav2Vec2ASR(path=str(partial)).load()


# --- VITS ---------------------------------------------------------------------------------------

def _read(output):
    (part,) = output.media
    data, rate = sf.read(part.path, dtype="float32")
    return data, rate, sf.info(part.path)


def test_vits_writes_wavs_at_the_model_rate(tiny_vits, tmp_path):
    tts = HFTextToSpeech(path=str(tiny_vits))
    texts = ["The birch canoe slid!", "a", "Rice is often served in round bowls."]
    outputs = tts.generate(_text_requests(texts, seed=3), media_dir=tmp_path)
    assert all(o.ok for o in outputs)
    from mio_eval.media import output_path

    for request_id, output, text in zip(["s0", "s1", "s2"], outputs, texts):
        data, rate, info = _read(output)
        assert output.media[0].path == str(output_path(tmp_path, request_id, ".wav"))
        assert rate == 8000 == output.media[0].sample_rate and info.channels == 1 and info.subtype == "PCM_16"
        # at least one 16-sample hop (upsample 4x4) per character token, as the duration predictor's floor
        n_tokens = output.n_input_tokens
        assert n_tokens == len(tts.tokenizer(text.strip())["input_ids"])
        assert len(data) % 16 == 0 and len(data) >= 16 and np.abs(data).max() > 0
    assert len(_read(outputs[2])[0]) > len(_read(outputs[1])[0])  # a long sentence lasts longer than "a"
    prov = tts.provenance()
    assert prov["kind"] == "vits" and prov["model"] == "transformers VitsModel"
    assert prov["weights_sha256"]["model"] == {"model.safetensors": _sha16(tiny_vits / "model.safetensors")}
    assert prov["synthesis"]["sampling_rate"] == 8000 and prov["synthesis"]["noise_scale"] == pytest.approx(0.667)


def test_vits_seeds_reproduce(tiny_vits, tmp_path):
    tts = HFTextToSpeech(path=str(tiny_vits), seed=5)
    texts = ["glue the sheet to the dark blue background", "it is easy to tell the depth of a well"]

    def synth(sub, **generation):
        return [_read(o)[0] for o in tts.generate(_text_requests(texts, **generation), media_dir=tmp_path / sub)]

    first, again = synth("a", seed=1), synth("b", seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    other = synth("c", seed=2)
    assert any(len(x) != len(y) or not np.array_equal(x, y) for x, y in zip(first, other))
    # No seed in the request: the adapter's own seed (5), equal to asking for seed 5.
    assert all(np.array_equal(x, y) for x, y in zip(synth("d"), synth("e", seed=5)))


def test_vits_batched_equals_single_without_noise(tiny_vits, tmp_path):
    """Noise off: a padded batch equals batch-1 except near each waveform's end (HF's HiFi-GAN
    decoder convolves past the valid frames); the longest item, unpadded, is identical."""
    tts = HFTextToSpeech(path=str(tiny_vits), noise_scale=0.0, noise_scale_duration=0.0, subtype="FLOAT")
    texts = SENTENCES[:3] + ["rice"]
    outputs = tts.generate(_text_requests(texts), media_dir=tmp_path / "batch")
    assert _read(outputs[0])[2].subtype == "FLOAT"
    batched = [_read(o)[0] for o in outputs]
    single = [_read(tts.generate(_text_requests([t]), media_dir=tmp_path / f"one{i}")[0])[0]
              for i, t in enumerate(texts)]
    assert [len(b) for b in batched] == [len(s) for s in single]
    tail = 1024  # samples near the end that may see the padded frames (64 frames of 16 samples)
    for b, s in zip(batched, single):
        body = max(len(b) - tail, 0)
        np.testing.assert_allclose(b[:body], s[:body], atol=1e-4)
    longest = int(np.argmax([len(s) for s in single]))
    np.testing.assert_allclose(batched[longest], single[longest], atol=1e-4)


def test_vits_per_sample_does_not_depend_on_the_batch(tiny_vits, tmp_path):
    tts = HFTextToSpeech(path=str(tiny_vits), per_sample=True)
    texts = SENTENCES[:3]
    batched = [_read(o)[0] for o in tts.generate(_text_requests(texts, seed=7), media_dir=tmp_path / "b")]
    single = [_read(tts.generate(_text_requests([t], seed=7), media_dir=tmp_path / f"s{i}")[0])[0]
              for i, t in enumerate(texts)]
    assert all(np.array_equal(b, s) for b, s in zip(batched, single))


def test_vits_empty_text_is_a_per_sample_error(tiny_vits, tmp_path):
    tts = HFTextToSpeech(path=str(tiny_vits), kind="vits")
    outputs = tts.generate(_text_requests(["the juice of lemons", "   ", "12345 ?!", "a well"]), media_dir=tmp_path)
    assert [o.ok for o in outputs] == [True, False, False, True]
    assert "empty text" in outputs[1].error
    assert "vocabulary" in outputs[2].error  # nothing left after the tokenizer's normalisation
    assert all(len(_read(o)[0]) > 0 for o in (outputs[0], outputs[3]))


def test_hf_tts_config_errors(tiny_vits, tiny_speecht5, tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        HFTextToSpeech(path=str(tmp_path / "nowhere")).load()
    with pytest.raises(ConfigError, match="unknown kind"):
        HFTextToSpeech(path=str(tiny_vits), kind="tacotron")
    with pytest.raises(ConfigError, match="holds a 'vits' model"):
        HFTextToSpeech(path=str(tiny_vits), kind="speecht5").load()
    tts_dir, vocoder, speaker = tiny_speecht5
    with pytest.raises(ConfigError, match="vocoder_path"):
        HFTextToSpeech(path=str(tts_dir), speaker_embedding=str(speaker)).load()
    with pytest.raises(ConfigError, match="speaker_embedding"):
        HFTextToSpeech(path=str(tts_dir), vocoder_path=str(vocoder)).load()
    np.save(tmp_path / "wrong.npy", np.zeros(5, dtype=np.float32))
    with pytest.raises(ConfigError, match="5 values"):
        HFTextToSpeech(path=str(tts_dir), vocoder_path=str(vocoder),
                       speaker_embedding=str(tmp_path / "wrong.npy")).load()


# --- SpeechT5 -----------------------------------------------------------------------------------

def test_speecht5_synthesises_seeded_per_request(tiny_speecht5, tmp_path):
    tts_dir, vocoder, speaker = tiny_speecht5
    tts = HFTextToSpeech(path=str(tts_dir), vocoder_path=str(vocoder), speaker_embedding=str(speaker),
                         max_len_ratio=3.0)
    texts = ["the birch canoe", "", "rice is often served in round bowls"]
    outputs = tts.generate(_text_requests(texts, seed=11), media_dir=tmp_path / "a")
    assert [o.ok for o in outputs] == [True, False, True] and "empty text" in outputs[1].error
    waves = [_read(o) for o in (outputs[0], outputs[2])]
    for (data, rate, info), text in zip(waves, (texts[0], texts[2])):
        assert rate == 16000 and info.channels == 1
        n_ids = len(tts.tokenizer(text)["input_ids"])
        # whole spectrogram frames of 16 samples (HiFi-GAN 4x4), at most max_len_ratio frames per input token
        assert len(data) % 16 == 0 and 0 < len(data) <= int(3.0 * n_ids) * 16
    # Each request runs alone after seeding: the same audio in any batch, and again on a rerun.
    alone = tts.generate(_text_requests([texts[2]], seed=11), media_dir=tmp_path / "b")[0]
    np.testing.assert_array_equal(_read(alone)[0], waves[1][0])
    prov = tts.provenance()
    assert prov["kind"] == "speecht5" and prov["model"] == "transformers SpeechT5ForTextToSpeech"
    assert prov["weights_sha256"]["vocoder"] == {"model.safetensors": _sha16(vocoder / "model.safetensors")}
    assert prov["weights_sha256"]["speaker_embedding"] == _sha16(speaker)
    assert prov["synthesis"]["batching"] == "one request per pass"


# --- speaker similarity -------------------------------------------------------------------------

def test_cosine_similarity_values():
    assert cosine_similarity([1, 0], [0, 3]) == 0.0
    assert cosine_similarity([2, 2], [1, 1]) == pytest.approx(1.0)
    assert cosine_similarity(np.array([1.0, 2.0]), [-2, -4]) == pytest.approx(-1.0)
    assert cosine_similarity([3, 4], [-6, -8]) == -1.0
    assert cosine_similarity([1, 0], [1, 1]) == pytest.approx(2 ** -0.5)
    with pytest.raises(ValueError, match="zero vector"):
        cosine_similarity([0, 0], [1, 1])
    with pytest.raises(ValueError, match="different sizes"):
        cosine_similarity([1, 0, 0], [1, 1])


@pytest.fixture(scope="module")
def speaker_encoder(tiny_wavlm):
    encoder = SpeakerEncoder(tiny_wavlm, model_id="tiny/wavlm-sv", batch_size=3)
    encoder.load()
    return encoder


def test_speaker_embeddings_batched_equal_single(speaker_encoder, tiny_wavlm, clips):
    import torch

    from mio_eval.media import load_audio

    batched = speaker_encoder.embed(clips)  # batches of 3 and 1
    single = [speaker_encoder.embed([c])[0] for c in clips]
    assert all(e.ok and e.vector.shape == (12,) and np.abs(e.vector).max() > 0.1 for e in batched)
    for b, s in zip(batched, single):
        np.testing.assert_allclose(b.vector, s.vector, rtol=1e-4, atol=1e-4)
        assert cosine_similarity(b.vector, s.vector) == pytest.approx(1.0, abs=1e-6)
    assert cosine_similarity(batched[0].vector, batched[0].vector) == pytest.approx(1.0)
    assert cosine_similarity(batched[0].vector, batched[1].vector) < 0.9999  # different clips differ
    # On one unpadded clip our path is transformers' WavLMForXVector.forward; on a padded batch
    # transformers pools frames computed from padding (tdnn lengths ignore dilation), ours does not.
    model, fe = speaker_encoder.model, speaker_encoder.feature_extractor
    short, long = (load_audio(p, sample_rate=16000).samples for p in (clips[3], clips[0]))
    with torch.inference_mode():
        alone = model(**fe([short], sampling_rate=16000, return_tensors="pt")).embeddings[0].numpy()
        padded = model(**fe([long, short], sampling_rate=16000, padding=True,
                            return_tensors="pt")).embeddings[1].numpy()
    np.testing.assert_allclose(batched[3].vector, alone, rtol=1e-4, atol=1e-4)
    assert not np.allclose(padded, alone, rtol=1e-3, atol=1e-3)
    prov = speaker_encoder.provenance()
    assert prov["model_id"] == "tiny/wavlm-sv" and prov["embedding_dim"] == 12
    assert prov["weights_sha256"] == {"model.safetensors": _sha16(tiny_wavlm / "model.safetensors")}
    assert prov["batching"] == "padded+attention_mask"
    assert SpeakerEncoder(tiny_wavlm).model_id == "wavlm-tiny-sv"  # default: the directory name


def test_speaker_embedding_pass_shows_a_progress_bar(speaker_encoder, clips, capsys, monkeypatch):
    from mio_eval import progress

    monkeypatch.delenv("MIO_EVAL_PROGRESS", raising=False)
    monkeypatch.setattr(progress, "DELAY_S", 0.0)  # every pass counts as long
    assert all(e.ok for e in speaker_encoder.embed(clips))
    err = capsys.readouterr().err
    assert "scoring: WavLM speaker embeddings" in err and f"{len(clips)}/{len(clips)}" in err
    monkeypatch.setenv("MIO_EVAL_PROGRESS", "0")
    speaker_encoder.embed(clips)
    assert capsys.readouterr().err == ""


def test_speaker_similarity_pairs_and_per_file_errors(speaker_encoder, clips, tmp_path):
    encoder = speaker_encoder
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunkjunkjunk")
    sf.write(tmp_path / "short.wav", np.zeros(1600), 16000)  # 0.1 s: too few frames to pool
    embeddings = encoder.embed([clips[0], tmp_path / "broken.wav", clips[1], tmp_path / "short.wav", clips[0]])
    assert [e.ok for e in embeddings] == [True, False, True, False, True]
    assert "broken.wav" in embeddings[1].error and "too short" in embeddings[3].error
    vectors = {str(p): e.vector for p, e in zip(clips, encoder.embed(clips))}

    generated = [clips[0], clips[1], tmp_path / "broken.wav", clips[2]]
    references = [clips[0], clips[2], clips[3], tmp_path / "missing.wav"]
    values = speaker_similarity(generated, references, encoder)
    assert values[0] == pytest.approx(1.0)  # a file against itself
    assert values[1] == pytest.approx(cosine_similarity(vectors[str(clips[1])], vectors[str(clips[2])]), abs=1e-6)
    assert values[2] is None and values[3] is None
    pairs = score_pairs(generated, references, encoder)
    assert pairs[2].error.startswith("generated: ") and pairs[3].error.startswith("reference: ")
    assert "not found" in pairs[3].error
    with pytest.raises(ValueError, match="references"):
        speaker_similarity(generated, references[:2], encoder)

    metric = SpeakerSimilarity(encoder)
    first = metric.update(generated[:2], references[:2])
    second = metric.update(generated[2:], references[2:])
    assert first == pytest.approx(values[:2]) and all(isinstance(v, str) for v in second)
    result = metric.compute()
    assert isinstance(result, MetricResult)
    assert (result.name, result.variant, result.higher_is_better, result.scale) == (
        "speaker_sim", "wavlm_xvector", True, 1.0)
    assert result.value == pytest.approx((values[0] + values[1]) / 2) and result.n == 2
    assert result.extra["n_errors"] == 2 and result.extra["decimals"] == 3
    assert "tiny/wavlm-sv" in result.provenance and "seed-tts-eval" in result.provenance
    metric.reset()
    assert metric.compute().value is None and metric.compute().n == 0


def test_speaker_encoder_missing_dir_is_a_config_error(tmp_path):
    encoder = SpeakerEncoder(tmp_path / "nowhere")  # construction reads nothing
    with pytest.raises(ConfigError, match="not found"):
        encoder.embed([tmp_path / "x.wav"])


# --- through the harness ------------------------------------------------------------------------

def test_hf_tts_end_to_end_through_the_harness(tiny_vits, tmp_path):
    from mio_eval.api import run

    metrics = run("tts_demo", "hf_tts", [f"model.path={tiny_vits}", "runner.limit=2",
                                         f"paths.results_dir={tmp_path}", "runner.progress=false"])
    run_dir = tmp_path / metrics["model"] / "tts_demo"
    assert (run_dir / "metrics.json").is_file() and json.loads((run_dir / "metrics.json").read_text()) == metrics
    assert metrics["n"] == 2 and metrics["errors"]["generate"] == 0
    assert metrics["model_provenance"]["kind"] == "vits" and metrics["model_provenance"]["path"] == str(tiny_vits)
    rows = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == ["harvard01_001", "harvard01_002"]
    for row in rows:
        info = sf.info(run_dir / row["prediction"])
        assert info.samplerate == 8000 and info.channels == 1 and info.frames > 0


def test_speaker_similarity_end_to_end_on_a_vctk_layout(tiny_vits, tiny_wavlm, tmp_path):
    """tts_vctk with the tiny VITS as the model and the tiny WavLM as the task's speaker encoder."""
    from mio_eval.api import run

    root = tmp_path / "VCTK"
    for utt, text in (("p225_001", SENTENCES[0]), ("p226_001", SENTENCES[1])):
        spk = utt.split("_")[0]
        (root / "txt" / spk).mkdir(parents=True)
        (root / "txt" / spk / f"{utt}.txt").write_text(text + "\n", encoding="utf-8")
        (root / "wav48_silence_trimmed" / spk).mkdir(parents=True)
        _wav(root / "wav48_silence_trimmed" / spk / f"{utt}_mic1.flac", 1.0, 48000, 150.0 + 100 * len(spk + utt))
    results = tmp_path / "results"
    metrics = run("tts_vctk", "hf_tts", [
        f"model.path={tiny_vits}", f"task.loader.root={root}", "task.judge.whisper_path=null",
        f"task.speaker_encoder={{_target_:mio_eval.metrics.speaker.SpeakerEncoder,path:'{tiny_wavlm}'}}",
        f"paths.results_dir={results}", "runner.progress=false"])
    assert metrics["n"] == 2 and metrics["n_errors"] == 0
    sim = metrics["metrics"]["speaker_sim"]
    assert sim["variant"] == "wavlm_xvector" and sim["higher_is_better"] is True and sim["n"] == 2
    assert -1.0 <= sim["value"] <= 1.0
    assert any(j.get("model") == "transformers WavLMForXVector" for j in metrics["judges"])
    run_dir = results / metrics["model"] / "tts_vctk"
    rows = {r["id"]: r for r in map(json.loads, (run_dir / "scores.jsonl").read_text().splitlines())}
    predictions = {p["id"]: run_dir / p["prediction"]
                   for p in map(json.loads, (run_dir / "predictions.jsonl").read_text().splitlines())}
    ids = sorted(rows)
    refs = [root / "wav48_silence_trimmed" / i.split("_")[0] / f"{i}_mic1.flac" for i in ids]
    expected = speaker_similarity([predictions[i] for i in ids], refs, SpeakerEncoder(tiny_wavlm))
    assert [rows[i]["speaker_sim"] for i in ids] == pytest.approx(expected, abs=1e-6)
    assert sim["value"] == pytest.approx(sum(expected) / 2, abs=1e-6)


def test_wav2vec2_end_to_end_asr_on_a_librispeech_layout(tiny_wav2vec2, tmp_path):
    """asr_librispeech_test_clean with the tiny wav2vec2; one corrupt recording is one sample error."""
    from mio_eval.api import run

    folder = tmp_path / "LibriSpeech" / "test-clean" / "1089" / "134686"
    folder.mkdir(parents=True)
    utts = [f"1089-134686-000{i}" for i in range(3)]
    (folder / "1089-134686.trans.txt").write_text(
        "\n".join(f"{u} {s.upper()}" for u, s in zip(utts, SENTENCES)) + "\n", encoding="utf-8")
    _wav(folder / f"{utts[0]}.flac", 0.9, 16000, 200.0)
    _wav(folder / f"{utts[1]}.flac", 0.5, 16000, 300.0)
    (folder / f"{utts[2]}.flac").write_bytes(b"fLaC but not really")
    results = tmp_path / "results"
    metrics = run("asr_librispeech_test_clean", "wav2vec2", [
        f"model.path={tiny_wav2vec2}", f"task.loader.root={tmp_path / 'LibriSpeech'}",
        f"paths.results_dir={results}", "runner.progress=false", "runner.max_error_rate=0.5"])
    assert metrics["n"] == 3 and metrics["n_errors"] == 1 and metrics["errors"]["generate"] == 1
    assert metrics["model_provenance"]["model"] == "transformers Wav2Vec2ForCTC"
    assert metrics["metrics"]["wer_corpus"]["n"] == 2
    rows = {r["id"]: r for r in map(json.loads, (results / metrics["model"] / "asr_librispeech_test_clean" /
                                                  "predictions.jsonl").read_text().splitlines())}
    assert set(rows) == set(utts) and rows[utts[2]]["error"] and not rows[utts[0]]["error"]
