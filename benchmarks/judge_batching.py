"""ASR-judge transcription: batched (as mio-eval's TTS/S2S scoring runs it) vs a batch-1 loop
(as seed-tts-eval's ``run_wer.py`` transcribes one file per call), same model, same files, same
greedy decoding; the transcripts must be identical and the ratio of wall times is reported.

    python benchmarks/judge_batching.py [--utterances 200] [--batch-size 16] [--repeats 3] [--max-new-tokens 32]

The judge is a random-initialised Whisper with the tiny model's width (openai-whisper checkpoint
format, loaded through ``whisper.load_model``): no weights can be downloaded here, and decoding
cost per token does not depend on the weights' values. Utterances are espeak-ng speech (Harvard
sentences of the embedded demo set), 16 kHz.
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

from mio_eval.media import load_audio  # noqa: E402
from mio_eval.models.whisper_asr import WhisperASR  # noqa: E402
from mio_eval.tasks.loaders.vctk import VCTKLoader  # noqa: E402
from mio_eval.config import data_path  # noqa: E402
from mio_eval.tasks.speech import Transcriber  # noqa: E402


def tiny_whisper(path: Path) -> Path:
    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=384, n_audio_head=6, n_audio_layer=4,
                           n_vocab=51865, n_text_ctx=448, n_text_state=384, n_text_head=6, n_text_layer=4)
    torch.save({"dims": dims.__dict__, "model_state_dict": Whisper(dims).state_dict()}, path)
    return path


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
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = utterances(tmp, args.utterances)
        judge = WhisperASR(path=str(tiny_whisper(tmp / "tiny-random.pt")), max_new_tokens=args.max_new_tokens)
        judge.load()
        timings: dict[str, list[float]] = {"batched": [], "batch-1 loop": []}
        texts: dict[str, list[str]] = {}
        for _ in range(args.repeats):
            for label, size in (("batched", args.batch_size), ("batch-1 loop", 1)):
                started = time.perf_counter()
                outputs = Transcriber(judge, batch_size=size)(paths, tmp)
                timings[label].append(time.perf_counter() - started)
                texts[label] = [o.text for o in outputs]
        assert all(o is not None for o in texts["batched"]), "a transcription failed"
        same = texts["batched"] == texts["batch-1 loop"]
        batched, single = (statistics.median(timings[k]) for k in ("batched", "batch-1 loop"))
        print(f"{args.utterances} utterances, Whisper tiny-width (random), greedy, <= {args.max_new_tokens} tokens, "
              f"CPU threads {torch.get_num_threads()}, median of {args.repeats}")
        print(f"  batch-1 loop (seed-tts-eval style): {single:.2f} s ({1000 * single / args.utterances:.1f} ms/utt)")
        print(f"  batched, {args.batch_size} per decode (mio-eval):   {batched:.2f} s "
              f"({1000 * batched / args.utterances:.1f} ms/utt)")
        print(f"  speed-up {single / batched:.2f}x; transcripts identical: {same}")
        if not same:
            diff = sum(a != b for a, b in zip(texts["batched"], texts["batch-1 loop"]))
            print(f"  {diff} of {args.utterances} transcripts differ", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
