"""Write ``tests/reference/mio_prompt_ids.json``: the token ids MIO's own ``MIOTokenizer`` produces for
every prompt template, over the tiny vocabulary ``mio_eval.models.mio_tiny`` ships.

Reference: MIO-Team/MIO @6c0b5e6 ``tokenization_mio.py`` (``MIOTokenizer.__call__``,
``apply_chat_template``, ``tokenize_images``, ``tokenize_speeches``, the two system prompts), read
with ``git show`` into a temporary directory and imported; never committed. The user turns and
Base prompts are ``infer.py``'s (same commit; line numbers in ``ROWS``).

MIOTokenizer's text path runs unchanged. Its codec back ends are replaced by stand-ins that return
fixed codes (recorded in the fixture): the SEED image tokenizer (``image_transform`` +
``image_tokenizer.encode_image``), SpeechTokenizer (``speech_tokenizer.encode``) and
``torchaudio.load`` (torchaudio does not import beside this torch); so the block strings
(``<image><img..>x32</image>``, ``<spch><spch..>..</spch>``, content codes only) are built by MIO's
own code. The tokenizer is built by ``mio_eval.models.mio.tiny._tokenizer`` (SentencePiece BPE trained in memory,
slow ``LlamaTokenizer`` + MIO's added tokens) and loaded by MIO with
``LlamaTokenizer.from_pretrained``; the sha256 of its ``tokenizer.model`` is recorded.

Usage: ``python scripts/reference/mio_fixture.py [--cache DIR]`` (``REF_MIO_TEAM_MIO`` = a local clone).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sources import arguments, show, source  # noqa: E402

REPO, COMMIT = "MIO-Team/MIO", "6c0b5e6"
OUT = ROOT / "tests" / "reference" / "mio_prompt_ids.json"
TTS = ("Mister Morton replied that far from making any claim upon his good opinion his only wish and the sole "
       "purpose of his visit was to find out the means of deserving it")
IMAGE_GREYS = {"image": 40, "frames": (100, 140, 180)}
SPEECH_SAMPLES = 4000  # 0.25 s at 16 kHz
F3 = "".join(f"<image_placeholder_{i}>" for i in range(3))

# name, variant, mode (Instruct) / None (Base), MIO's string (infer.py @6c0b5e6), images, speeches
ROWS = [
    ("text", "instruct", "std", "What's the capital of France?", 0, 0),  # L145
    ("caption", "instruct", "std", "Please provide an accurate and detailed description of this image.\n<image_placeholder_0>", 1, 0),  # L168
    ("image_qa", "instruct", "std", "What colour of clothes is the man wearing?\n<image_placeholder_0>", 1, 0),  # L178
    ("image_generation", "instruct", "std", "Please generate an image according to the caption.\nA beautiful sunset over the ocean.", 0, 0),  # L190
    ("asr", "instruct", "std", "Please transcribe this speech.\n<speech_placeholder_0>", 0, 1),  # L209
    ("speech_understanding", "instruct", "std", "<speech_placeholder_0>\nPlease continue the story.", 0, 1),  # L217
    ("tts", "instruct", "voice", f"The transcription is ``{TTS}''. Please generate a speech according to the given "
                                 "transcription. Start with <spch>.", 0, 0),  # L224
    ("speech_generation", "instruct", "voice", "What abilities do you have?", 0, 0),  # L243
    ("speech_to_speech", "instruct", "voice", "<speech_placeholder_0>", 0, 1),  # L251
    ("video_qa", "instruct", "std", "What is this woman doing in this video?\n" + F3, 3, 0),  # L267
    ("video_generation", "instruct", "std", "Please generate a video for ``rush hour traffic jam and gridlock in the city streets''", 0, 0),  # L290
    ("interleaved", "instruct", "std", "Generate a visual story about Star Wars.", 0, 0),  # L306
    ("text", "base", None, "Question: 1+1=? Answer:", 0, 0),  # L59
    ("caption", "base", None, "<image_placeholder_0> The caption of this image is", 1, 0),  # L72
    ("image_generation", "base", None, "Please generate an image of ``a tree in the middle of a meadow''", 0, 0),  # L81
    ("asr", "base", None, "<speech_placeholder_0> The transcription of this speech is", 0, 1),  # L95
    ("tts", "base", None, f"Please generate a speech of ``{TTS}'': <spch>", 0, 0),  # L103
    ("video_captioning", "base", None, "Please describe the following video: " + F3, 3, 0),  # L126
    ("video_generation", "base", None, "Please generate a video for ``Bird eye panoramic view of busiest Asian cargo port'': <image>", 0, 0),  # L134 (shortened)
]


def image_codes(grey: int) -> list[int]:
    return [(grey * 7 + 13 * k) % 8192 for k in range(32)]


def speech_codes(n_samples: int) -> list[list[int]]:
    frames = n_samples // 320
    return [[(layer * 101 + 17 * k + n_samples) % 1024 for k in range(frames)] for layer in range(8)]


def load_mio(src_text: str, vocab_dir: Path):
    import numpy as np
    import soundfile as sf
    import torch

    class Key(int):
        def to(self, _device):
            return self

    stubs = {
        "image_tokenizer": types.ModuleType("image_tokenizer"),
        "image_tokenizer.models": types.ModuleType("image_tokenizer.models"),
        "image_tokenizer.models.seed_llama_tokenizer": types.SimpleNamespace(SeedLlamaTokenizer=None),
        "image_tokenizer.models.transforms": types.SimpleNamespace(get_transform=None),
        "speech_tokenizer": types.SimpleNamespace(SpeechTokenizer=None),
        "torchaudio": types.SimpleNamespace(load=lambda path: (torch.from_numpy(sf.read(path, dtype="float32")[0])[None], 16000)),
    }
    sys.modules.update(stubs)
    module = types.ModuleType("tokenization_mio")
    exec(compile(src_text, f"tokenization_mio.py@{COMMIT}", "exec"), module.__dict__)
    from transformers import LlamaTokenizer

    mio = module.MIOTokenizer.__new__(module.MIOTokenizer)  # __init__ would load the real codecs
    mio.device = "cpu"
    mio.tokenizer = LlamaTokenizer.from_pretrained(str(vocab_dir))
    mio.tokenizer.padding_side, mio.tokenizer.truncation_side = "left", "right"
    mio.image_transform = lambda image: Key(round(float(np.asarray(image.convert("L")).mean())))
    mio.image_tokenizer = types.SimpleNamespace(encode_image=lambda image_torch: torch.tensor([image_codes(int(image_torch))]))
    mio.speech_tokenizer = types.SimpleNamespace(
        sample_rate=16000, config={"codebook_size": 1024},
        encode=lambda wav: torch.tensor(speech_codes(wav.shape[-1]))[:, None, :])
    return module, mio


def main(argv=None) -> int:
    args = arguments(__doc__, argv)
    import numpy as np
    import soundfile as sf
    from PIL import Image

    from mio_eval.models.mio.tiny import _tokenizer

    git_dir = source(REPO, COMMIT, cache=args.cache)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _tokenizer(tmp)
        module, mio = load_mio(show(git_dir, COMMIT, "tokenization_mio.py"), tmp)
        image = tmp / "image.png"
        Image.new("RGB", (40, 30), (IMAGE_GREYS["image"],) * 3).save(image)
        frames = []
        for i, grey in enumerate(IMAGE_GREYS["frames"]):
            frames.append(tmp / f"frame_{i}.png")
            Image.new("RGB", (40, 30), (grey,) * 3).save(frames[-1])
        speech = tmp / "speech.wav"
        sf.write(speech, np.linspace(-0.1, 0.1, SPEECH_SAMPLES, dtype=np.float32), 16000)
        rows = []
        for name, variant, mode, text, n_images, n_speech in ROWS:
            images = [[str(image)]] if n_images == 1 else [[str(f) for f in frames]] if n_images else None
            speeches = [[str(speech)]] if n_speech else None
            if variant == "instruct":
                out = mio.apply_chat_template([[{"role": "user", "content": text}]], batch_image_paths=images,
                                              batch_speech_paths=speeches, mode=mode)
            else:
                out = mio([text], batch_image_paths=images, batch_speech_paths=speeches)
            rows.append({"name": name, "variant": variant, "mode": mode, "mio_input": text, "ids": out["input_ids"][0]})
        digest = hashlib.sha256((tmp / "tokenizer.model").read_bytes()).hexdigest()
    fixture = {
        "reference": f"{REPO}@{COMMIT} tokenization_mio.py MIOTokenizer (prompts: infer.py)",
        "script": "scripts/reference/mio_fixture.py",
        "vocabulary": {"builder": "mio_eval.models.mio.tiny._tokenizer", "tokenizer_model_sha256": digest},
        "systems": {"std": module.MIO_STD_MODE_SYSTEM, "voice": module.MIO_VOICE_MODE_SYSTEM},
        "media": {"image_greys": IMAGE_GREYS, "speech_samples": SPEECH_SAMPLES,
                  "image_codes": {str(g): image_codes(g) for g in (IMAGE_GREYS["image"], *IMAGE_GREYS["frames"])},
                  "speech_codes": speech_codes(SPEECH_SAMPLES)},
        "rows": rows,
    }
    OUT.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(rows)} templates)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
