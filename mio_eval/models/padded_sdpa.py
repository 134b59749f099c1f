"""SDPA attention with a cheap padded causal mask, for batched LEFT-padded ``generate``.

transformers 4.57 builds the 4D mask of a padded batch with ``masking_utils.sdpa_mask_recent_torch``
at every decoding step: ``torch.vmap`` over a Python mask function (causal AND padding). For a
batch with padding that is ~16 ms per step on one CPU core, whatever the model's size, and was
~40 % of ``mio_tiny``'s batch-8 beam search (profiled with cProfile, ``benchmarks/scaling.py
batching``); a batch without padding skips the mask (SDPA's ``is_causal``), so batch 1 never pays
it. This module computes the same boolean mask with two broadcast comparisons.

It is registered through transformers' documented extension points (``AttentionInterface`` and
``AttentionMaskInterface``, https://huggingface.co/docs/transformers/attention_interface) under
its own name, ``padded_sdpa``: the attention function is transformers' own
``sdpa_attention_forward`` and the mask is bit-identical to ``sdpa_mask`` (tested on random
paddings, offsets and lengths), so the model's outputs are unchanged; any other mask pattern
(sliding windows, chunks, packed sequences, ``or``/``and`` overlays) goes to ``sdpa_mask`` itself.
Nothing global is replaced: models loaded with ``attn_implementation="sdpa"`` are untouched.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["NAME", "register", "padded_causal_mask"]

NAME = "padded_sdpa"


def padded_causal_mask(batch_size: int, cache_position: Any, kv_length: int, kv_offset: int = 0,
                       mask_function: Callable | None = None, attention_mask: Any = None,
                       local_size: int | None = None, allow_is_causal_skip: bool = True, **kwargs: Any) -> Any:
    """``masking_utils.sdpa_mask``'s contract: a ``(batch, 1, q, kv)`` bool mask (True = attend), or
    None when SDPA's ``is_causal`` does the same. Computed by broadcasting for the plain causal
    pattern (``kv_idx <= q_idx`` and the 2D padding mask); delegated to ``sdpa_mask`` otherwise."""
    import torch
    from transformers import masking_utils as mu

    if mask_function is not None and mask_function is not mu.causal_mask_function:
        return mu.sdpa_mask(batch_size=batch_size, cache_position=cache_position, kv_length=kv_length,
                            kv_offset=kv_offset, mask_function=mask_function, attention_mask=attention_mask,
                            local_size=local_size, allow_is_causal_skip=allow_is_causal_skip, **kwargs)
    padding = mu.prepare_padding_mask(attention_mask, kv_length, kv_offset)  # (batch, kv), sliced to the offset
    if allow_is_causal_skip and mu._ignore_causal_mask_sdpa(padding, cache_position.shape[0], kv_length, kv_offset,
                                                            local_size):
        return None
    kv = torch.arange(kv_length, device=cache_position.device) + kv_offset
    mask = (kv[None, :] <= cache_position[:, None])[None, None].expand(batch_size, 1, -1, -1)
    if padding is not None:
        mask = mask & padding[:, None, None, :]  # bool: create_causal_mask made the 2D mask bool
    return mask


def register() -> str:
    """Register ``padded_sdpa`` with transformers (idempotent); returns the name to pass as
    ``attn_implementation``."""
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, sdpa_attention_forward)
    AttentionMaskInterface.register(NAME, padded_causal_mask)
    return NAME
