"""Tokens/s and samples/s of a 7B-shaped random MIO LLM on one GPU: batch 1 vs the best batch.

    python benchmarks/gpu_throughput.py --dry-run                  # the plan, and a tiny-width CPU smoke run
    python benchmarks/gpu_throughput.py                            # cuda, bfloat16, batches 1 2 4 ... until OOM
    python benchmarks/gpu_throughput.py --config /ckpt/MIO-7B-Instruct/config.json --dtype float16

The checkpoint is built offline, never downloaded: a ``LlamaForCausalLM`` (the class MIO-7B
loads with ``AutoModelForCausalLM``) with random weights, in the shape of ``--config`` when given
(the real checkpoint's ``config.json``), otherwise Yi-6B's published shape (01-ai/Yi-6B
``config.json``: hidden 4096, 32 layers, 32 heads, 4 key-value heads, MLP 11008, RoPE theta
5e6) with MIO's vocabulary: Yi's 64,000 text tokens + 8,192 image codes ``<img0..8191>`` +
4,096 speech codes ``<spch0..4095>`` + 4 modality tags (MIO repository,
``tokenization_mio.py``/``infer.py``: the added tokens). ``--save DIR`` also writes it with
``save_pretrained`` (safetensors), loadable by ``model=mio_instruct model.path=DIR`` beside a
tokenizer.

Each batch size generates ``--new-tokens`` tokens (``min_new_tokens`` = ``max_new_tokens``: a
random model would stop at random) after ``--prompt-tokens`` random prompt ids, greedy, under
``torch.inference_mode()``; the first call per batch size is a warm-up. Batch sizes double from
1 until the GPU runs out of memory (``mio_eval.runner.is_out_of_memory``) or ``--max-batch``;
the best batch is the one with the most tokens/s. Speed is measured here, never asserted.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

# Yi-6B (01-ai/Yi-6B config.json) + MIO's added tokens.
YI_6B = {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
         "num_key_value_heads": 4, "max_position_embeddings": 4096, "rope_theta": 5_000_000.0, "rms_norm_eps": 1e-5,
         "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "tie_word_embeddings": False}
MIO_VOCAB = 64_000 + 8_192 + 4_096 + 4
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2}


def llama_config(args):
    from transformers import LlamaConfig

    if args.config:
        data = json.loads(Path(args.config).read_text())
        data.pop("architectures", None)
        data.pop("model_type", None)
    else:
        data = {**YI_6B, "vocab_size": MIO_VOCAB}
    if args.dry_run:
        data = {**data, **TINY}
    return LlamaConfig(**data)


def build(config, *, device: str, dtype: str):
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(getattr(torch, dtype))
    return model.eval()


def measure(model, *, batch: int, prompt: int, new: int, vocab: int, device: str) -> dict:
    import torch

    generator = torch.Generator().manual_seed(batch)
    ids = torch.randint(3, vocab, (batch, prompt), generator=generator).to(device)
    mask = torch.ones_like(ids)
    kwargs = dict(attention_mask=mask, max_new_tokens=new, min_new_tokens=new, do_sample=False, num_beams=1,
                  pad_token_id=0)
    with torch.inference_mode():
        model.generate(ids, **kwargs)  # warm-up (kernels, allocator)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = model.generate(ids, **kwargs)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    tokens = (out.shape[1] - prompt) * batch
    return {"batch": batch, "seconds": round(seconds, 3), "tokens_per_s": round(tokens / seconds, 1),
            "samples_per_s": round(batch / seconds, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="a real MIO config.json (default: Yi-6B shape + MIO vocabulary)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    parser.add_argument("--prompt-tokens", type=int, default=128, help="e.g. an image (32 codes) + instruction")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--save", help="also save the random checkpoint here (save_pretrained)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan, then run the same code at tiny width on CPU (float32, batches 1 and 2)")
    args = parser.parse_args(argv)
    import torch

    from mio_eval.runner import is_out_of_memory

    config = llama_config(args)
    device, dtype = ("cpu", "float32") if args.dry_run else (args.device, args.dtype)
    params = (config.vocab_size * config.hidden_size * 2 + config.num_hidden_layers * (
        4 * config.hidden_size ** 2 * (1 + config.num_key_value_heads / config.num_attention_heads) / 2
        + 3 * config.hidden_size * config.intermediate_size))
    print(f"{platform.node()}: torch {torch.__version__}, "
          f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'}")
    print(f"model: LlamaForCausalLM random, vocab {config.vocab_size}, hidden {config.hidden_size}, "
          f"{config.num_hidden_layers} layers, ~{params / 1e9:.2f} B parameters, {dtype} on {device}"
          + (" (dry run: tiny width)" if args.dry_run else ""))
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here: run on a GPU machine, or --dry-run", file=sys.stderr)
        return 2
    model = build(config, device=device, dtype=dtype)
    if args.save:
        model.save_pretrained(args.save, safe_serialization=True)
    rows, batch = [], 1
    limit = 2 if args.dry_run else args.max_batch
    while batch <= limit:
        try:
            rows.append(measure(model, batch=batch, prompt=args.prompt_tokens, new=args.new_tokens,
                                vocab=config.vocab_size, device=device))
        except Exception as exc:  # noqa: BLE001 - only out-of-memory ends the search
            if not is_out_of_memory(exc):
                raise
            print(f"batch {batch}: out of memory")
            break
        print(json.dumps(rows[-1]))
        batch *= 2
    best = max(rows, key=lambda r: r["tokens_per_s"])
    print(f"batch 1: {rows[0]['tokens_per_s']} tokens/s, {rows[0]['samples_per_s']} samples/s; best batch "
          f"{best['batch']}: {best['tokens_per_s']} tokens/s, {best['samples_per_s']} samples/s "
          f"({best['tokens_per_s'] / rows[0]['tokens_per_s']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
