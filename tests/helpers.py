"""Builders shared by several test modules: tiny video files, an offline character tokenizer, a
LibriSpeech-layout split of noise clips."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def grey_frames(levels: Sequence[int], size: int = 32) -> list[np.ndarray]:
    """One flat RGB frame per grey level (a sampled frame's level tells which frame it was)."""
    return [np.full((size, size, 3), int(level), dtype=np.uint8) for level in levels]


def write_video(path: str | Path, frames: Sequence[np.ndarray], *, fps: int = 5, container_format: str | None = None) -> Path:
    """Encode RGB ``frames`` (H×W×3 uint8) with PyAV's mpeg4 codec, yuv420p."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def char_tokenizer(specials: Sequence[str], *, chat_template: str | None = None, **extra):
    """A fast tokenizer with one token per printable ASCII character (space and newline in
    byte-level spelling), ``specials`` first, ``<s>`` prepended: every id decodes to a whole
    character, so decoded greedy output re-encodes to the same ids and token counts are character
    counts + 1."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    alphabet = [chr(b) for b in range(33, 127)] + ["Ġ", "Ċ"]
    vocab = {token: i for i, token in enumerate(specials)}
    vocab.update({ch: len(specials) + i for i, ch in enumerate(alphabet)})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", vocab["<s>"])])
    tok.add_special_tokens(list(specials))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", chat_template=chat_template, **extra)


def librispeech_noise(root: Path, lengths: Sequence[int], texts: Sequence[str], *, amplitude: float = 0.01) -> Path:
    """A LibriSpeech-layout split (``LibriSpeech/test-clean/1089/134686``) of seeded noise clips of
    ``lengths`` samples at 16 kHz with transcripts ``texts``; returns the chapter folder."""
    import soundfile as sf

    folder = Path(root) / "LibriSpeech" / "test-clean" / "1089" / "134686"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, n in enumerate(lengths):
        sf.write(folder / f"1089-134686-{i:04d}.flac", amplitude * rng.standard_normal(n), 16000)
    (folder / "1089-134686.trans.txt").write_text("".join(f"1089-134686-{i:04d} {t}\n" for i, t in enumerate(texts)))
    return folder
