"""Former home of the SEED tokenizer, kept so that existing ``from mio_eval.models.seed_tokenizer
import X`` lines keep working: every name resolves in ``mio_eval.models.mio.seed`` (network,
weights, tiny builder, config), except ``SeedCodec`` (``mio_eval.models.mio.codecs``). New code
imports those homes directly."""

from typing import Any

from mio_eval.models.mio import seed as _seed

__all__ = list(_seed.__all__) + ["SeedCodec"]  # noqa: F822 - resolved by __getattr__


def __getattr__(name: str) -> Any:  # PEP 562: delegate, so the names are written once
    if name == "SeedCodec":
        from mio_eval.models.mio.codecs import SeedCodec

        return SeedCodec
    return getattr(_seed, name)
