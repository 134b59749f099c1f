"""MIO ("MIO: A Foundation Model on Multimodal Tokens"; MIO-Team/MIO @ 6c0b5e6) as a model adapter.

* ``adapter``: ``MIOAdapter`` (the configs' ``_target_``: ``mio_eval.models.mio.MIOAdapter``).
* ``prompts``: MIO's prompt templates, one table keyed by (variant, request kind).
* ``blocks``: image / speech blocks in the generated tokens and the repair policies.
* ``codecs``: speech (SpeechTokenizer) and image (SEED + unCLIP decoder) codecs behind one protocol.
* ``seed``: the native SEED image tokenizer (network, weights, tiny builder).
* ``tiny``: the tiny random MIO-like checkpoint for CPU tests (``python -m mio_eval.models.mio_tiny``).

Importing this package imports neither torch nor transformers.
"""

from mio_eval.models.mio.adapter import MIOAdapter
from mio_eval.models.mio.blocks import Block, Parsed, parse_image, parse_speech, split_blocks
from mio_eval.models.mio.prompts import STD_SYSTEM, VARIANTS, VOICE_SYSTEM, MIOPrompt, chat_prompt, mio_prompt

__all__ = [
    "MIOAdapter",
    "MIOPrompt",
    "mio_prompt",
    "chat_prompt",
    "STD_SYSTEM",
    "VOICE_SYSTEM",
    "VARIANTS",
    "split_blocks",
    "parse_speech",
    "parse_image",
    "Block",
    "Parsed",
]
