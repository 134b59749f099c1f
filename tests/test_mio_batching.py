"""Batched MIO generation equals one request at a time, and equals transformers' own path.

* ``padded_sdpa.padded_causal_mask`` is bit-identical to transformers' ``sdpa_mask`` (random
  left paddings, query lengths, both skip settings), and delegates other mask patterns.
* The adapter's beam search (prompt prefilled once per prompt, cache repeated per beam, the
  broadcast mask) gives the same new ids as plain ``model.generate`` on the same LEFT-padded batch
  with transformers' stock ``sdpa``, and batch 3 (three prompt lengths, so padding) gives the
  same ids as batch 1, on a fully random tiny LLM (no scripted answer to hide differences).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from mio_eval.models import padded_sdpa  # noqa: E402
from mio_eval.models.hf_base import Decoding, left_pad  # noqa: E402
from mio_eval.models.mio.adapter import MIOAdapter  # noqa: E402
from mio_eval.models.mio.tiny import build_tiny_mio  # noqa: E402


def test_mask_equals_transformers_sdpa_mask():
    from transformers import masking_utils as mu

    g = torch.Generator().manual_seed(0)
    compared = 0
    for trial in range(60):
        batch, length = int(torch.randint(1, 6, (1,), generator=g)), int(torch.randint(1, 20, (1,), generator=g))
        pads = torch.randint(0, length, (batch,), generator=g) * (trial % 3 != 0)  # every third: no padding
        mask2d = torch.arange(length)[None, :] >= pads[:, None]
        q = 1 if trial % 2 else int(torch.randint(1, length + 1, (1,), generator=g))
        positions = torch.arange(length - q, length)
        for skip in (True, False):
            kwargs = dict(batch_size=batch, cache_position=positions, kv_length=length, kv_offset=0,
                          mask_function=mu.causal_mask_function, attention_mask=mask2d, allow_is_causal_skip=skip)
            ours, theirs = padded_sdpa.padded_causal_mask(**kwargs), mu.sdpa_mask(**kwargs)
            assert (ours is None) == (theirs is None)
            if theirs is not None:
                assert ours.dtype == theirs.dtype and torch.equal(ours, theirs)
                compared += 1
    assert compared > 40
    # another pattern (a sliding window) is transformers' own result
    window = mu.sliding_window_causal_mask_function(3)
    kwargs = dict(batch_size=2, cache_position=torch.arange(6), kv_length=6, mask_function=window,
                  attention_mask=torch.ones(2, 6, dtype=torch.bool), allow_is_causal_skip=False)
    assert torch.equal(padded_sdpa.padded_causal_mask(**kwargs), mu.sdpa_mask(**kwargs))


@pytest.fixture(scope="module")
def random_mio(tmp_path_factory):
    return build_tiny_mio(tmp_path_factory.mktemp("random_mio"), image=False, script=False, seed=3)


def test_batched_beam_search_equals_single_and_stock_generate(random_mio):
    adapter = MIOAdapter(str(random_mio))
    adapter.load()
    assert adapter.model.config._attn_implementation == padded_sdpa.NAME
    tok = adapter.tokenizer
    texts = ["Please transcribe this speech.", "The birch canoe slid on the smooth planks of the lake today.",
             "Rice is often served in round bowls."]
    prompts = [adapter.encode(tok.bos_token + t) for t in texts]
    assert len({len(p) for p in prompts}) == 3
    settings = Decoding.of({"num_beams": 5, "do_sample": False, "max_new_tokens": 8})
    batched = adapter._generate_ids(prompts, settings, {})
    single = [adapter._generate_ids([p], settings, {})[0] for p in prompts]
    assert batched == single
    assert all(len(row) >= 1 for row in batched)

    stock = MIOAdapter(str(random_mio), attn_implementation="sdpa")
    stock.load()
    ids, mask = left_pad(prompts, stock._pad_id)
    with torch.inference_mode():
        out = stock.model.generate(input_ids=ids, attention_mask=mask, pad_token_id=stock._pad_id,
                                   eos_token_id=stock.stop_id, **settings.generate_kwargs())
    reference = []
    for row in out[:, ids.shape[1]:].tolist():
        reference.append(row[: row.index(stock.stop_id) + 1] if stock.stop_id in row else row)
    assert batched == reference
