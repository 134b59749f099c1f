"""Checkpoint files on disk: where a model directory is, and the sha256 digests recorded in
provenance (so that a result names the exact weights it came from).

* ``file_digest(path)``: sha256 of one file, first 16 hex chars (Whisper ``.pt``, SpeechTokenizer,
  SEED files, speaker x-vectors).
* ``weights_digest(directory)``: one digest over every weight file of a transformers directory
  (sha256 over ``name NUL sha256`` lines, name-sorted; shards and formats all count) -- hf_lm,
  hf_vlm, MIO.
* ``weights_digests(directory)``: ``{file name: digest}`` of its safetensors / PyTorch weights
  (wav2vec2, hf_tts, the speaker encoder); no weights file is a ConfigError.
* ``checkpoint_dir(path, what)``: a local ``save_pretrained`` directory (it holds ``config.json``)
  or one ConfigError line.

Nothing here imports torch or transformers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mio_eval.errors import ConfigError

__all__ = ["file_digest", "weights_digest", "weights_digests", "checkpoint_dir", "WEIGHT_SUFFIXES"]

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")


def file_digest(path: str | Path, *, chars: int = 16) -> str:
    """sha256 of the file's bytes (read in 1 MiB blocks), the first ``chars`` hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:chars]


def weights_digest(directory: str | Path, *, chars: int = 16) -> str:
    """sha256 over (file name, file sha256) of every weight file in ``directory``, name-sorted."""
    digest = hashlib.sha256()
    files = sorted(p for p in Path(directory).iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    for path in files:
        digest.update(f"{path.name}\0{file_digest(path, chars=64)}\n".encode())
    return digest.hexdigest()[:chars]


def weights_digests(directory: str | Path) -> dict[str, str]:
    """``{weights file name: sha256[:16]}`` for every safetensors / PyTorch weights file (shards too)."""
    files = sorted({f for pattern in _WEIGHT_PATTERNS for f in Path(directory).glob(pattern)})
    if not files:
        raise ConfigError(f"no weights file (*.safetensors or pytorch_model*.bin) in {directory}")
    return {f.name: file_digest(f) for f in files}


def checkpoint_dir(path: str | Path, what: str) -> Path:
    """``path`` as a transformers model directory (it holds ``config.json``), else ConfigError."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{what} model directory not found: {path} (a local save_pretrained dir or hub snapshot)")
    if not (path / "config.json").is_file():
        raise ConfigError(f"{what} model directory has no config.json: {path}")
    return path
