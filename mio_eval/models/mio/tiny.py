"""Build a tiny RANDOM MIO-like checkpoint for CPU tests (``python -m mio_eval.models.mio_tiny OUT_DIR``).

It has the directory layout the real MIO-7B checkpoints are loaded from (the HF snapshots of
m-a-p/MIO-7B-Instruct and m-a-p/MIO-7B-Base), so the adapter runs exactly the same loading and
inference code on it::

    OUT_DIR/  config.json model.safetensors generation_config.json     2-layer LlamaForCausalLM
              tokenizer.model tokenizer_config.json added_tokens.json   slow LlamaTokenizer
              special_tokens_map.json
              SpeechTokenizer/{config.json,SpeechTokenizer.pt}           real speechtokenizer classes
              seed-tokenizer-2/{seed_quantizer.pt,eva_vit_g.pth,         tiny SEED tokenizer: the real architecture
                                seed_config.json}                        (mio.seed) at tiny widths
              stable-diffusion-2-1-unclip/                               tiny diffusers unCLIP pipeline

* Text tokenizer: a SentencePiece BPE model trained in memory on a few sentences, Yi-like ids
  (``<unk>``=0, ``<|startoftext|>``=1 BOS, ``<|endoftext|>``=2 EOS, ``<|im_start|>``=6,
  ``<|im_end|>``=7), loaded as the slow ``LlamaTokenizer`` MIO uses, plus MIO's added tokens
  ``<img0..8191>``, ``<spch0..4095>``, ``<image>``, ``</image>``, ``<spch>``, ``</spch>``.
* SpeechTokenizer: the ``speechtokenizer`` package's own model at a tiny width, codebooks
  initialised from encoded random audio (otherwise every code is 0; see ``_init_codebooks``).
* Image: ``mio.seed.build_tiny_seed`` -- SEED's EVA-ViT / causal Q-Former / 8192 x 32
  quantizer / unCLIP-embedding MLP at tiny widths, in the released file layout and loaded by the
  same code as the real files (32 codes of 8192 per image) -- + a tiny ``StableUnCLIPImg2ImgPipeline``
  after diffusers' own test components (16x16 images, 2 inference steps).

Everything is random, with one arrangement (``script=True``, the default): the LLM is damped into
a bigram chain so that after the chat template's final newline it answers with a fixed,
well-formed multimodal script -- "MIO says hi", one image block of 32 codes, one speech block of
4 x 25 codes, ``<|im_end|>`` -- whatever the task (see ``_script``). That lets tests check the
parsing, repair-free decoding, media writing and judging end to end; the tokens are meaningless.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

__all__ = ["build_tiny_mio", "script_tokens", "TINY_SPEECH_CONFIG", "SPECIAL_PIECES", "SCRIPT_TEXT", "SCRIPT_FRAMES"]

# Yi's user-defined pieces after <unk>, BOS, EOS; the names at ids 3-5 and 8 are a guess
# (Yi's tokenizer), what matters is <|im_start|>=6 and <|im_end|>=7 as in MIO's infer.py.
SPECIAL_PIECES = ["<|Human|>", "<|Assistant|>", "<|System|>", "<|im_start|>", "<|im_end|>", "<|im_sep|>"]
TINY_SPEECH_CONFIG = {
    "n_filters": 8, "strides": [8, 5, 4, 2], "dimension": 32, "semantic_dimension": 16, "bidirectional": True,
    "dilation_base": 2, "residual_kernel_size": 3, "n_residual_layers": 1, "lstm_layers": 1, "activation": "ELU",
    "codebook_size": 1024, "n_q": 8, "sample_rate": 16000,
}
_CORPUS = [
    "You are MIO, an AI assistant capable of understanding and generating images, text, videos, and speech.",
    "Please provide an accurate and detailed description of this image.",
    "Please transcribe this speech. The transcription of this speech is",
    "Please generate a speech according to the given transcription. Start with the speech.",
    "Please generate an image of a beautiful sunset over the ocean, a tree in the middle of a meadow.",
    "Question: What is the capital of France? Answer: Paris is the capital of France.",
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well. These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls. The juice of lemons makes fine punch.",
    "user assistant system 0123456789 what which where when who why how a b c d",
]


def _tokenizer(out: Path):
    import sentencepiece as spm
    from transformers import LlamaTokenizer

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_CORPUS * 4), model_writer=model, vocab_size=400, model_type="bpe",
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, unk_piece="<unk>", bos_piece="<|startoftext|>",
        eos_piece="<|endoftext|>", user_defined_symbols=SPECIAL_PIECES, byte_fallback=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False, split_digits=True,
        add_dummy_prefix=False, minloglevel=2)
    vocab_file = out / "tokenizer.model"
    vocab_file.write_bytes(model.getvalue())
    tok = LlamaTokenizer(vocab_file=str(vocab_file), unk_token="<unk>", bos_token="<|startoftext|>",
                         eos_token="<|endoftext|>", pad_token="<unk>", add_bos_token=False, add_eos_token=False,
                         legacy=True)
    tok.add_tokens([f"<img{i}>" for i in range(8192)] + [f"<spch{i}>" for i in range(4096)]
                   + ["<image>", "</image>", "<spch>", "</spch>"])
    tok.save_pretrained(str(out))
    return tok


SCRIPT_TEXT = "MIO says hi"
SCRIPT_FRAMES = 25  # speech frames in the scripted answer (0.5 s at 50 frames/s)


def script_tokens(tok, frames: int = SCRIPT_FRAMES) -> list[str]:
    """The scripted answer as token strings: text, one image block (32 codes), one speech block
    (content + three timbre runs of ``frames`` codes), ``<|im_end|>``. Every token is distinct,
    so a bigram model can follow it."""
    text = tok.convert_ids_to_tokens(tok.encode(SCRIPT_TEXT, add_special_tokens=False))
    image = [f"<img{(97 * k + 5) % 8192}>" for k in range(32)]
    speech = [f"<spch{layer * 1024 + (37 * k + 11 * layer) % 1024}>" for layer in range(4) for k in range(frames)]
    tokens = [*text, "<image>", *image, "</image>", "<spch>", *speech, "</spch>", "<|im_end|>"]
    assert len(set(tokens)) == len(tokens)
    return tokens


def _script(model, tok, *, scale: float = 10.0, damp: float = 0.1) -> None:
    """Arrange the random LLM so that greedy, beam and top-p decoding follow ``script_tokens``
    after the chat template's final newline: the attention output and MLP down projections are
    damped (the residual stream stays close to the current token's embedding), and the LM-head
    row of each script token is its predecessor's normalised embedding times ``scale`` (a
    bigram chain; ``<|im_end|>`` -> ``<|endoftext|>`` ends Base generation too). The layers stay
    random, so the context still moves the logits a little."""
    import torch

    chain = ["<0x0A>", *script_tokens(tok), "<|endoftext|>"]
    ids = tok.convert_tokens_to_ids(chain)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.mul_(damp)
            layer.mlp.down_proj.weight.mul_(damp)
        embed = model.model.embed_tokens.weight
        head = model.lm_head.weight
        for before, after in zip(ids, ids[1:]):
            head[after] = scale * embed[before] / embed[before].norm()


def _llm(out: Path, tok, *, layers: int, context: int, script: bool) -> None:
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=context,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    if script:
        _script(model, tok)
    model.save_pretrained(str(out), safe_serialization=True)
    GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=0).save_pretrained(str(out))


def _speech_tokenizer(out: Path) -> None:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from speechtokenizer.model import SpeechTokenizer

        model = SpeechTokenizer(TINY_SPEECH_CONFIG).eval()
    _init_codebooks(model, torch.randn(2, 1, 48000) * 0.1)
    folder = out / "SpeechTokenizer"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "SpeechTokenizer.pt")
    (folder / "config.json").write_text(json.dumps(TINY_SPEECH_CONFIG, indent=2) + "\n", encoding="utf-8")


def _init_codebooks(model, audio) -> None:
    """Codebooks start at zero (``kmeans_init``: every code would be 0). The package's own
    k-means init (one training-mode forward) takes about a minute on 2 cores, so each RVQ layer's
    codebook is set instead to 1024 residual frames of random audio plus a little noise -- k-means
    with zero iterations -- layer after layer, as the residual quantiser sees them."""
    import torch

    with torch.no_grad():
        encoded = model.encoder(audio)  # (batch, dim, frames)
        residual = encoded.transpose(1, 2).reshape(-1, encoded.shape[1])
        for layer in model.quantizer.vq.layers:
            book = layer._codebook
            picks = torch.randint(0, residual.shape[0], (book.codebook_size,))
            embed = residual[picks] + 0.01 * residual.std() * torch.randn(book.codebook_size, residual.shape[1])
            book.embed.copy_(embed)
            book.embed_avg.copy_(embed)
            book.cluster_size.fill_(1.0)
            book.inited.fill_(1.0)
            residual = residual - embed[book.quantize(residual)]


def _clip_tokenizer(folder: Path):
    """A byte-level CLIPTokenizer with no merges, written offline (no hub)."""
    from transformers import CLIPTokenizer
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {token: i for i, token in enumerate(chars + [c + "</w>" for c in chars]
                                                 + ["<|startoftext|>", "<|endoftext|>"])}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def _unclip(out: Path, embed_dim: int) -> None:
    """A tiny StableUnCLIPImg2ImgPipeline (diffusers' test components, offline tokenizer)."""
    import tempfile

    import torch
    from diffusers import (AutoencoderKL, DDIMScheduler, DDPMScheduler, StableUnCLIPImg2ImgPipeline,
                           UNet2DConditionModel)
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
    from transformers import (CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = _clip_tokenizer(Path(tmp))
    vocab = tokenizer.get_vocab()
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=embed_dim, projection_dim=embed_dim, num_hidden_layers=1, num_attention_heads=4, image_size=32,
        intermediate_size=37, patch_size=4))
    text_encoder = CLIPTextModel(CLIPTextConfig(
        hidden_size=32, projection_dim=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=1,
        vocab_size=len(vocab), max_position_embeddings=77, bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"]))
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), block_out_channels=(32, 64), attention_head_dim=(2, 4),
        class_embed_type="projection", projection_class_embeddings_input_dim=embed_dim * 2, cross_attention_dim=32,
        layers_per_block=1, upcast_attention=True, use_linear_projection=True)
    vae = AutoencoderKL(block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=32,
                        sample_size=16)
    torch.manual_seed(0)
    pipeline = StableUnCLIPImg2ImgPipeline(
        feature_extractor=CLIPImageProcessor(crop_size=32, size=32), image_encoder=image_encoder,
        image_normalizer=StableUnCLIPImageNormalizer(embedding_dim=embed_dim),
        image_noising_scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"), tokenizer=tokenizer,
        text_encoder=text_encoder, unet=unet,
        scheduler=DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                prediction_type="v_prediction", set_alpha_to_one=False, steps_offset=1),
        vae=vae)
    pipeline.save_pretrained(str(out / "stable-diffusion-2-1-unclip"), safe_serialization=True)


def _tiny_seed(out: Path, embed_dim: int) -> None:
    """The tiny SEED tokenizer (real architecture) in ``seed-tokenizer-2/``."""
    from dataclasses import replace

    from mio_eval.models.mio.codecs import SEED_DIR
    from mio_eval.models.mio.seed import TINY_SEED_CONFIG, build_tiny_seed

    build_tiny_seed(out / SEED_DIR, config=replace(TINY_SEED_CONFIG, image_features_dim=embed_dim),
                    num_inference_steps=2)


def build_tiny_mio(out_dir: str | Path, *, seed: int = 0, layers: int = 2, context: int = 4096,
                   image: bool = True, script: bool = True) -> Path:
    """Write the tiny checkpoint into ``out_dir`` (created); ``image=False`` skips the image
    tokenizer and unCLIP decoder (faster; image requests then fail per sample); ``script=False``
    leaves the LLM fully random (it then rarely writes a well-formed image or speech block)."""
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tok = _tokenizer(out)
    _llm(out, tok, layers=layers, context=context, script=script)
    _speech_tokenizer(out)
    if image:
        embed_dim = 32
        _tiny_seed(out, embed_dim)
        _unclip(out, embed_dim)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mio_eval.models.mio_tiny", description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", help="directory to write the checkpoint into")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-image", action="store_true", help="skip the image tokenizer and unCLIP decoder")
    parser.add_argument("--random", action="store_true", help="a fully random LLM (no scripted answer)")
    args = parser.parse_args(argv)
    path = build_tiny_mio(args.out_dir, seed=args.seed, image=not args.no_image, script=not args.random)
    print(f"tiny MIO checkpoint written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
