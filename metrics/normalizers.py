"""Text normalisers used before word error rate, by name.

- ``whisper_en``: openai-whisper's ``EnglishTextNormalizer`` (the Whisper paper's and lmms-eval's
  LibriSpeech convention). It is the package's own code, loaded without ``whisper/__init__`` so
  that scoring text does not import torch.
- ``seed_tts``: seed-tts-eval ``run_wer.py: process_one`` for English: delete every ASCII and
  Chinese punctuation mark except the apostrophe, replace double spaces by one, lowercase. No
  number normalisation (seed-tts-eval issue #12).
- ``none``: the text unchanged.
"""

from __future__ import annotations

import functools
import importlib.util
import string
import sys
from typing import Callable

__all__ = ["NORMALIZERS", "get_normalizer", "whisper_english", "seed_tts"]


@functools.lru_cache(maxsize=1)
def _whisper_english_normalizer() -> Callable[[str], str]:
    if "whisper" in sys.modules:  # already imported with torch: use it as is
        from whisper.normalizers import EnglishTextNormalizer
    else:
        spec = importlib.util.find_spec("whisper")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("openai-whisper is not installed: pip install openai-whisper")
        pkg_dir = spec.submodule_search_locations[0]
        name = "_mio_eval_whisper_normalizers"
        norm_spec = importlib.util.spec_from_file_location(
            name, f"{pkg_dir}/normalizers/__init__.py", submodule_search_locations=[f"{pkg_dir}/normalizers"]
        )
        module = importlib.util.module_from_spec(norm_spec)
        sys.modules[name] = module
        norm_spec.loader.exec_module(module)
        EnglishTextNormalizer = module.EnglishTextNormalizer
    return EnglishTextNormalizer()


def whisper_english(text: str) -> str:
    """openai-whisper ``EnglishTextNormalizer``.

    >>> whisper_english("Mr. Park visited Assoc. Prof. Kim Jr.")
    'mister park visited associate professor kim junior'
    """
    return _whisper_english_normalizer()(text)


@functools.lru_cache(maxsize=1)
def _seed_tts_punctuation() -> str:
    from zhon.hanzi import punctuation as zh_punctuation

    return "".join(ch for ch in zh_punctuation + string.punctuation if ch != "'")


def seed_tts(text: str) -> str:
    """seed-tts-eval's English normalisation.

    >>> seed_tts("Hello,  World! It's 3.5 km.")
    "hello world it's 35 km"
    """
    for ch in _seed_tts_punctuation():
        text = text.replace(ch, "")
    return text.replace("  ", " ").lower()


def _identity(text: str) -> str:
    return text


NORMALIZERS: dict[str, Callable[[str], str]] = {
    "whisper_en": whisper_english,
    "seed_tts": seed_tts,
    "none": _identity,
}


def get_normalizer(name: str) -> Callable[[str], str]:
    try:
        return NORMALIZERS[name]
    except KeyError:
        raise ValueError(f"unknown normalizer {name!r}; choose one of {sorted(NORMALIZERS)}") from None
