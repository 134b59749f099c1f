"""ASR-judge transcription: mio-eval's batched judge (openai-whisper ``decode``, ``task.judge_batch_size``
files per call) vs seed-tts-eval's own transcription path (``run_wer.py`` @752f429: per file
``soundfile.read``, ``WhisperProcessor(wav, sampling_rate=16000).input_features``,
``WhisperForConditionalGeneration.generate``, ``batch_decode``), same weights, same files, greedy.

    python benchmarks/judge_batching.py [--utterances 200] [--batch-size 16] [--repeats 1]

No Whisper weights can be downloaded here, so both sides load ONE random-initialised Whisper at the
tiny model's width (openai-whisper checkpoint for our judge; the same tensors converted to
transformers' ``WhisperForConditionalGeneration`` for the baseline; their logits are asserted equal).
A random decoder never emits end-of-text and would decode every file to the token cap, which
flatters batching; this one is edited to stop like a real judge: the decoder's position table gets
a ramp along one direction that the end-of-text embedding points to, so every transcript ends after
17-18 tokens (a Harvard sentence is 8-12 words, about 10-14 Whisper tokens), and special
tokens' embeddings are shrunk so that neither decoder ever predicts one (as a trained model). The
two models' logits agree to 0.0 on a probe (checked once while writing this; transcripts are
compared in every run). Two
deviations from ``run_wer.py``, both outside the timed model work: transformers 4.57 no longer
accepts the ``forced_decoder_ids`` argument, so ``generate(language="en", task="transcribe")`` builds
the same prompt; and text is decoded with openai-whisper's tokenizer (the same ids; no HF tokenizer
files can be downloaded). Real transcripts vary in length, which costs a batched decoder a little
(a batch runs to its longest member): here they are all equally long.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mio_eval.config import data_path  # noqa: E402
from mio_eval.media import load_audio  # noqa: E402
from mio_eval.models.whisper_asr import WhisperASR  # noqa: E402
from mio_eval.tasks.loaders.vctk import VCTKLoader  # noqa: E402
from mio_eval.tasks.speech import Transcriber  # noqa: E402

# openai-whisper -> transformers parameter names (the renames transformers' own converter makes).
_RENAMES = [("encoder.blocks.", "model.encoder.layers."), ("decoder.blocks.", "model.decoder.layers."),
            (".cross_attn_ln.", ".encoder_attn_layer_norm."), (".cross_attn.", ".encoder_attn."),
            (".attn_ln.", ".self_attn_layer_norm."), (".attn.", ".self_attn."), (".mlp_ln.", ".final_layer_norm."),
            (".mlp.0.", ".fc1."), (".mlp.2.", ".fc2."), (".query.", ".q_proj."), (".key.", ".k_proj."),
            (".value.", ".v_proj."), (".out.", ".out_proj.")]
_NAMES = {"encoder.positional_embedding": "model.encoder.embed_positions.weight",
          "encoder.ln_post.weight": "model.encoder.layer_norm.weight", "encoder.ln_post.bias": "model.encoder.layer_norm.bias",
          "decoder.token_embedding.weight": "model.decoder.embed_tokens.weight",
          "decoder.positional_embedding": "model.decoder.embed_positions.weight",
          "decoder.ln.weight": "model.decoder.layer_norm.weight", "decoder.ln.bias": "model.decoder.layer_norm.bias"}


RAMP = 2.6  # position-table slope along the end-of-text direction: transcripts end after 17-18 tokens


def tiny_judge(path: Path):
    """A random tiny-width Whisper that stops after 17-18 tokens (``RAMP``); saved for openai-whisper
    at ``path``; returns (openai model, tokenizer)."""
    import torch
    import whisper
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=384, n_audio_head=6, n_audio_layer=4,
                           n_vocab=51865, n_text_ctx=448, n_text_state=384, n_text_head=6, n_text_layer=4)
    model = Whisper(dims)
    tok = whisper.tokenizer.get_tokenizer(True, language="en", task="transcribe")
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        u = torch.randn(dims.n_text_state, generator=g)
        u /= u.norm()
        model.decoder.positional_embedding.copy_(torch.randn(dims.n_text_ctx, dims.n_text_state, generator=g) * 0.02
                                                 + RAMP * torch.arange(dims.n_text_ctx)[:, None] * u)
        model.decoder.token_embedding.weight[tok.eot] = 10 * u
        model.decoder.token_embedding.weight[tok.eot + 1:] *= 0.01
    torch.save({"dims": dims.__dict__, "model_state_dict": model.state_dict()}, path)
    return model.eval(), tok


def to_transformers(model, tok):
    """The same weights as transformers' WhisperForConditionalGeneration (+ a generation config
    with the ids openai-whisper's tokenizer uses)."""
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    d = model.dims
    config = WhisperConfig(vocab_size=d.n_vocab, num_mel_bins=d.n_mels, d_model=d.n_text_state,
                           encoder_layers=d.n_audio_layer, encoder_attention_heads=d.n_audio_head,
                           decoder_layers=d.n_text_layer, decoder_attention_heads=d.n_text_head,
                           encoder_ffn_dim=4 * d.n_audio_state, decoder_ffn_dim=4 * d.n_text_state,
                           max_source_positions=d.n_audio_ctx, max_target_positions=d.n_text_ctx,
                           decoder_start_token_id=tok.sot, eos_token_id=tok.eot, pad_token_id=tok.eot,
                           bos_token_id=tok.eot, tie_word_embeddings=True)
    state = {}
    for key, value in model.state_dict().items():
        new = key
        for a, b in _RENAMES:
            new = new.replace(a, b)
        state[_NAMES.get(new, new if new.startswith("model.") else "model." + new)] = value
    hf = WhisperForConditionalGeneration(config)
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert missing == ["proj_out.weight"] and not unexpected, (missing, unexpected)  # proj_out is tied
    hf.generation_config = GenerationConfig(
        decoder_start_token_id=tok.sot, eos_token_id=tok.eot, pad_token_id=tok.eot, max_length=d.n_text_ctx,
        is_multilingual=True, lang_to_id={"<|en|>": tok.special_tokens["<|en|>"]},
        task_to_id={"transcribe": tok.transcribe, "translate": tok.translate}, no_timestamps_token_id=tok.no_timestamps,
        suppress_tokens=list(tok.non_speech_tokens), begin_suppress_tokens=[tok.encode(" ")[0], tok.eot],
        return_timestamps=False)
    return hf.eval()


def seed_tts_eval_transcribe(paths, processor, model, tok) -> list[str]:
    """run_wer.py's English branch, one file per call."""
    import scipy.signal

    texts = []
    for path in paths:
        wav, sr = sf.read(path)
        if sr != 16000:
            wav = scipy.signal.resample(wav, int(len(wav) * 16000 / sr))
        input_features = processor(wav, sampling_rate=16000, return_tensors="pt").input_features
        predicted_ids = model.generate(input_features, language="en", task="transcribe")
        texts.append(tok.decode([i for i in predicted_ids[0].tolist() if i < tok.eot]))
    return texts


def utterances(folder: Path, n: int) -> list[str]:
    texts = [s.targets[0] for s in VCTKLoader(root=data_path("tts_demo"))()]
    paths = []
    for i in range(n):
        wav = folder / f"u{i:03d}.wav"
        raw = subprocess.run(["espeak-ng", "--stdout", "-s", str(150 + 5 * (i % 7)), texts[i % len(texts)]],
                             capture_output=True, check=True).stdout
        (folder / "raw.wav").write_bytes(raw)
        sf.write(wav, load_audio(folder / "raw.wav", sample_rate=16000).samples, 16000)
        paths.append(str(wav))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    import torch
    from transformers import WhisperFeatureExtractor

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = utterances(tmp, args.utterances)
        model, tok = tiny_judge(tmp / "tiny-judge.pt")
        hf = to_transformers(model, tok)
        processor = WhisperFeatureExtractor()  # run_wer.py's WhisperProcessor(audio) is this call
        judge = WhisperASR(path=str(tmp / "tiny-judge.pt"))
        judge.load()
        timings: dict[str, list[float]] = {"ours": [], "seed-tts-eval": []}
        texts: dict[str, list[str]] = {}
        for _ in range(args.repeats):
            started = time.perf_counter()
            texts["ours"] = [o.text for o in Transcriber(judge, batch_size=args.batch_size)(paths, tmp)]
            timings["ours"].append(time.perf_counter() - started)
            started = time.perf_counter()
            with torch.no_grad():
                texts["seed-tts-eval"] = seed_tts_eval_transcribe(paths, processor, hf, tok)
            timings["seed-tts-eval"].append(time.perf_counter() - started)
        ours, base = (statistics.median(timings[k]) for k in ("ours", "seed-tts-eval"))
        lengths = [len(tok.encode(t)) for t in texts["seed-tts-eval"]]
        same = sum(a.strip() == b.strip() for a, b in zip(texts["ours"], texts["seed-tts-eval"]))
        n = args.utterances
        print(f"{n} utterances, random tiny-width Whisper stopping after ~{statistics.mean(lengths):.1f} tokens "
              f"(min {min(lengths)}, max {max(lengths)}), greedy, CPU threads {torch.get_num_threads()}, "
              f"median of {args.repeats}")
        print(f"  seed-tts-eval run_wer.py path (transformers generate, 1 file per call): {base:.2f} s "
              f"({1000 * base / n:.0f} ms/utt)")
        print(f"  mio-eval judge (openai-whisper decode, {args.batch_size} files per call): {ours:.2f} s "
              f"({1000 * ours / n:.0f} ms/utt)")
        print(f"  speed-up {base / ours:.2f}x; transcripts identical: {same}/{n}")


if __name__ == "__main__":
    main()
