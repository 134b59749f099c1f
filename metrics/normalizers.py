"""Text normalisers used before word error rate: one class each, chosen in a task YAML by
``_target_`` (``normalizer: {_target_: mio_eval.metrics.normalizers.SeedTTS}``). Each has a
``name``, the string recorded in results (``variant`` ``corpus+whisper_en``, the settings'
``normalizer``); library callers may still pass that name (:func:`text_normalizer`).

- :class:`WhisperEnglish` (``whisper_en``): openai-whisper's ``EnglishTextNormalizer`` (the Whisper paper's and lmms-eval's
  LibriSpeech convention). It is the package's own code, loaded without ``whisper/__init__`` so
  that scoring text does not import torch.
- :class:`SeedTTS` (``seed_tts``): seed-tts-eval ``run_wer.py: process_one`` for English: delete every ASCII and
  Chinese punctuation mark except the apostrophe, replace double spaces by one, lowercase. No
  number normalisation (seed-tts-eval issue #12).
- :class:`Identity` (``none``): the text unchanged.
"""

from __future__ import annotations

import functools
import importlib.util
import string
import sys
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar

from mio_eval.errors import check_target
from mio_eval.metrics.base import Stateless

__all__ = ["NORMALIZERS", "TextNormalizer", "WhisperEnglish", "SeedTTS", "Identity", "check_text_normalizer",
           "get_normalizer", "text_normalizer", "whisper_english", "seed_tts"]


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


class TextNormalizer(Stateless, ABC):
    """``normalizer(text) -> text`` applied to both reference and hypothesis before WER; ``name``
    is what results record (the regression gate compares it), so it never changes for a class."""

    name: ClassVar[str]

    @abstractmethod
    def __call__(self, text: str) -> str: ...


class WhisperEnglish(TextNormalizer):
    """openai-whisper ``EnglishTextNormalizer`` (:func:`whisper_english`)."""

    name = "whisper_en"

    def __call__(self, text: str) -> str:
        return whisper_english(text)


class SeedTTS(TextNormalizer):
    """seed-tts-eval ``run_wer.py: process_one`` for English (:func:`seed_tts`).

    >>> SeedTTS()("Hello,  World!")
    'hello world'
    """

    name = "seed_tts"

    def __call__(self, text: str) -> str:
        return seed_tts(text)


class Identity(TextNormalizer):
    """The text unchanged."""

    name = "none"

    def __call__(self, text: str) -> str:
        return text


# name -> class: what a recorded name stands for (library callers, listings); YAMLs use _target_.
NORMALIZERS: dict[str, type[TextNormalizer]] = {cls.name: cls for cls in (WhisperEnglish, SeedTTS, Identity)}
_HINT = "e.g. task.normalizer._target_=mio_eval.metrics.normalizers.SeedTTS"


def text_normalizer(spec: str | TextNormalizer) -> TextNormalizer:
    """The normaliser a recorded name (``whisper_en``, ``seed_tts``, ``none``) stands for; a
    normaliser is returned as is; an unknown name is a ValueError."""
    if isinstance(spec, TextNormalizer):
        return spec
    try:
        return NORMALIZERS[spec]()
    except (KeyError, TypeError):
        raise ValueError(f"unknown normalizer {spec!r}; choose one of {sorted(NORMALIZERS)}") from None


def get_normalizer(name: str | TextNormalizer) -> Callable[[str], str]:
    """:func:`text_normalizer` (the name of earlier versions)."""
    return text_normalizer(name)


def check_text_normalizer(value: Any, *, what: str = "task.normalizer") -> TextNormalizer:
    """``value`` if it is a text normaliser, else a one-line ConfigError naming the ``_target_``
    form (a bare name such as ``whisper_en`` is the string knob of earlier versions)."""
    return check_target(value, TextNormalizer, what=what, kind="text normaliser",
                        choices=", ".join(cls.__name__ for cls in NORMALIZERS.values()), module=__name__, hint=_HINT)
