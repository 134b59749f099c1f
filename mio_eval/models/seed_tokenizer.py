"""Former home of the SEED tokenizer, kept as a re-export for existing imports; new code imports
``mio_eval.models.mio.seed`` (network, weights, tiny builder) and ``mio_eval.models.mio.codecs``
(``SeedCodec``). Importing this module imports torch."""

from mio_eval.models.mio.codecs import SeedCodec
from mio_eval.models.mio.seed import (
    EVA_VIT_FILE,
    SEED_CONFIG_FILE,
    SEED_QUANTIZER_FILE,
    TINY_SEED_CONFIG,
    SeedConfig,
    seed_transform,
)
from mio_eval.models.mio.seed.network import SeedImageTokenizer
from mio_eval.models.mio.seed.tiny import build_tiny_seed
from mio_eval.models.mio.seed.weights import load_seed_tokenizer, save_seed_checkpoint

__all__ = ["SeedConfig", "TINY_SEED_CONFIG", "SeedImageTokenizer", "SeedCodec", "seed_transform",
           "load_seed_tokenizer", "save_seed_checkpoint", "build_tiny_seed", "SEED_QUANTIZER_FILE", "EVA_VIT_FILE",
           "SEED_CONFIG_FILE"]
