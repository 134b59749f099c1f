"""HF adapters on tiny RANDOM models built offline and loaded through the adapters' real loading.

A character-level tokenizer over printable ASCII (every string has exactly one tokenisation, so
decoded greedy output re-encodes to the same ids) with BOS added by its post-processor, Llama-style; a
2-layer ``LlamaForCausalLM``; a LLaVA (tiny CLIP vision tower + 1-layer Llama) with a
``LlavaProcessor``. Reference numbers are computed by hand here: a forward pass without padding,
``log_softmax`` and a gather.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from mio_eval.errors import ConfigError  # noqa: E402
from mio_eval.models.hf_base import cut_at_stop, split_trailing_space  # noqa: E402
from mio_eval.models.hf_lm import HFCausalLM  # noqa: E402
from mio_eval.models.hf_vlm import HFVisionLM, video_frames  # noqa: E402
from mio_eval.types import Image, Request, Text, Video  # noqa: E402
from helpers import char_tokenizer, grey_frames, write_video  # noqa: E402

SPECIALS = ["<pad>", "<s>", "</s>", "<image>", "<unk>"]
PAD, BOS, EOS, IMAGE, UNK = range(5)
LM_CONTEXT = 96
LM_CHAT = ("{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
           "{% if add_generation_prompt %}assistant:{% endif %}")
VLM_CHAT = ("{% for m in messages %}{% if m['role'] == 'user' %}USER: {% for c in m['content'] %}"
            "{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}\n"
            "{% else %}{{ m['role'] }}: {{ m['content'] }}\n{% endif %}{% endfor %}"
            "{% if add_generation_prompt %}ASSISTANT:{% endif %}")


def _tokenizer(chat_template):
    return char_tokenizer(SPECIALS, chat_template=chat_template, model_input_names=["input_ids", "attention_mask"])


def _llama_config(vocab_size, *, layers, context):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=context,
                       bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, initializer_range=0.3,
                       tie_word_embeddings=False)


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    tok = _tokenizer(LM_CHAT)
    model = LlamaForCausalLM(_llama_config(len(tok), layers=2, context=LM_CONTEXT))
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def lm(lm_dir):
    adapter = HFCausalLM(str(lm_dir), dtype="float32")
    adapter.load()
    return adapter


@pytest.fixture(scope="module")
def vlm_dir(tmp_path_factory):
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration,
                              LlavaProcessor)

    torch.manual_seed(1)
    tok = _tokenizer(None)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=32)
    config = LlavaConfig(vision_config=vision, text_config=_llama_config(len(tok), layers=1, context=512),
                         image_token_index=IMAGE, vision_feature_layer=-1,
                         vision_feature_select_strategy="default", projector_hidden_act="gelu")
    model = LlavaForConditionalGeneration(config)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tok, patch_size=8, vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=VLM_CHAT)
    path = tmp_path_factory.mktemp("tiny-llava")
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def vlm(vlm_dir):
    adapter = HFVisionLM(str(vlm_dir), dtype="float32")
    adapter.load()
    return adapter


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Two small PNGs, a corrupt 'PNG' and a 10-frame mp4 whose frame i is grey level 20*i."""
    from PIL import Image as PILImage

    root = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        PILImage.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(root / f"{name}.png")
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    write_video(root / "clip.mp4", grey_frames([20 * i for i in range(10)]))
    return root


def _gen(*parts, **generation):
    generation.setdefault("max_new_tokens", 6)
    return Request(sample_id="s", parts=tuple(Text(p) if isinstance(p, str) else p for p in parts),
                   generation=generation)


def _ll(prompt, *continuations, **generation):
    return Request(sample_id="s", parts=(Text(prompt),), generation=generation, continuations=continuations)


def _direct(model, ids, n_context):
    """Sum of log P(ids[k] | ids[:k]) over the continuation, and whether each is the arg-max."""
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
    cont = ids[n_context:]
    rows = logprobs[n_context - 1:len(ids) - 1]
    total = sum(rows[k, t].item() for k, t in enumerate(cont))
    return total, all(rows[k].argmax().item() == t for k, t in enumerate(cont))


def _greedy_ids(model, ids, n):
    """Greedy continuation by repeated unpadded forward passes (no generate(), no cache)."""
    ids = list(ids)
    for _ in range(n):
        with torch.no_grad():
            ids.append(model(torch.tensor([ids])).logits[0, -1].argmax().item())
    return ids[-n:]


# --- HFCausalLM -------------------------------------------------------------------------------

def test_construction_reads_nothing_and_missing_dir_is_config_error(tmp_path):
    adapter = HFCausalLM(str(tmp_path / "missing"))  # no error yet: weights load in load()
    assert adapter.supports_loglikelihood and adapter.name == "hf_lm"
    with pytest.raises(ConfigError, match="not found"):
        adapter.load()
    with pytest.raises(ConfigError, match="dtype"):
        HFCausalLM(str(tmp_path), dtype="float8")
    with pytest.raises(ConfigError, match="not found"):
        HFVisionLM(str(tmp_path / "missing")).load()


def test_unreadable_model_dir_is_one_config_error_line(tmp_path):
    """A directory transformers cannot load from is one ConfigError line naming the class (HFAdapter)."""
    (tmp_path / "config.json").write_text("{}")
    for adapter, cls in ((HFCausalLM(str(tmp_path)), "AutoTokenizer"), (HFVisionLM(str(tmp_path)), "AutoProcessor")):
        with pytest.raises(ConfigError, match=f"cannot load {cls} from") as info:
            adapter.load()
        assert "\n" not in str(info.value) and adapter.model is None


def test_checkpoint_digests(tmp_path):
    import hashlib

    from mio_eval.checkpoints import file_digest, weights_digest, weights_digests

    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "config.json").write_text("{}")
    sha = hashlib.sha256(b"weights").hexdigest()
    assert file_digest(tmp_path / "model.safetensors") == sha[:16]
    assert weights_digests(tmp_path) == {"model.safetensors": sha[:16]}
    assert weights_digest(tmp_path) == hashlib.sha256(f"model.safetensors\0{sha}\n".encode()).hexdigest()[:16]
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match="no weights file"):
        weights_digests(tmp_path)


def test_split_trailing_space_and_cut_at_stop():
    assert split_trailing_space("Answer: ", "B") == ("Answer:", " B")
    assert split_trailing_space("Q\n\n", "x") == ("Q", "\n\nx")
    assert split_trailing_space("Q", " x") == ("Q", " x")
    assert cut_at_stop("abc\nQ: d", ["Q:", "\n"]) == "abc"
    assert cut_at_stop("abc", []) == "abc"


def test_loglikelihood_equals_direct_computation(lm):
    tok, model = lm.tokenizer, lm.model
    cases = [("The cat sat on", (" the mat", " a hat", "x")),
             ("Answer: ", ("B", "C")),  # the trailing space is scored with the continuation
             ("", ("hello",))]  # empty context: BOS stands in (lm-eval's prefix token)
    outputs = lm.generate([_ll(p, *c) for p, c in cases], media_dir=None)
    for (prompt, continuations), output in zip(cases, outputs):
        assert output.ok, output.error
        assert len(output.logprobs) == len(output.greedy) == len(continuations)
        for continuation, logprob, greedy in zip(continuations, output.logprobs, output.greedy):
            context, cont = split_trailing_space(prompt, continuation)
            ctx_ids = tok(context).input_ids if context else [BOS]
            whole = tok(context + cont).input_ids if context else [BOS] + tok(cont, add_special_tokens=False).input_ids
            assert whole[:len(ctx_ids)] == ctx_ids and whole.count(BOS) == 1
            expected, expected_greedy = _direct(model, whole, len(ctx_ids))
            assert logprob == pytest.approx(expected, abs=1e-4)
            assert greedy == expected_greedy
    assert outputs[1].logprobs[0] != outputs[1].logprobs[1]


def test_loglikelihood_batched_equals_one_at_a_time(lm):
    requests = [_ll("A much longer prompt than the others", " yes", " no"), _ll("Hi", " there", "!!!"),
                _ll("Q: 2+2=", "4", " four")]
    batched = lm.generate(requests, media_dir=None)
    for request, output in zip(requests, batched):
        single = lm.generate([request], media_dir=None)[0]
        assert output.logprobs == pytest.approx(single.logprobs, abs=1e-5)
        assert output.greedy == single.greedy and output.n_input_tokens == single.n_input_tokens


def test_generation_left_padded_batch_equals_unpadded_reference(lm):
    tok, model = lm.tokenizer, lm.model
    prompts = ["Once upon a time, in a land far away,", "Hi", "The quick brown fox"]
    batched = lm.generate([_gen(p, max_new_tokens=8) for p in prompts], media_dir=None)
    for prompt, output in zip(prompts, batched):
        assert output.ok, output.error
        ids = tok(prompt).input_ids
        new = _greedy_ids(model, ids, 8)
        end = next((k for k, t in enumerate(new) if t == EOS), len(new))
        # Only the new tokens are decoded: the prompt is not in the text.
        assert output.text == tok.decode(new[:end], skip_special_tokens=True)
        assert output.n_input_tokens == len(ids)
        assert output.text == lm.generate([_gen(prompt, max_new_tokens=8)], media_dir=None)[0].text


def test_greedy_flag_on_the_models_own_greedy_output(lm):
    tok, model = lm.tokenizer, lm.model
    for prompt in ("Tell me", "Say it", "Well then", "Go on", "Why not", "Now what"):
        new = _greedy_ids(model, tok(prompt).input_ids, 3)
        if all(t >= len(SPECIALS) for t in new):
            break
    else:
        pytest.fail("no prompt with a 3-token greedy continuation free of special tokens")
    text = lm.generate([_gen(prompt, max_new_tokens=3)], media_dir=None)[0].text
    assert text == tok.decode(new) and len(text) == 3
    with torch.no_grad():
        last = model(torch.tensor([tok(prompt + text[:2]).input_ids])).logits[0, -1]
    other = tok.decode([int(last.argsort()[-2])])  # the runner-up last character
    out = lm.generate([_ll(prompt, text, text[:2] + other)], media_dir=None)[0]
    assert out.greedy == (True, False)
    assert out.logprobs[0] > out.logprobs[1]


def test_stop_strings_and_chat_template(lm):
    tok = lm.tokenizer
    full = lm.generate([_gen("Hello there", max_new_tokens=10)], media_dir=None)[0].text
    stop = full[4:6]
    cut = lm.generate([_gen("Hello there", max_new_tokens=10, until=[stop])], media_dir=None)[0].text
    assert cut == full[:full.find(stop)]
    chat = lm.generate([_gen("Hi", chat=True)], media_dir=None)[0]
    templated = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert templated.startswith("<s>user: Hi")
    # The template writes BOS itself: it is not added a second time.
    assert chat.n_input_tokens == len(tok(templated, add_special_tokens=False).input_ids)


def test_overlong_prompt_is_a_per_sample_error(lm):
    long = "x" * (LM_CONTEXT + 10)
    requests = [_gen("Short prompt"), _gen(long), _gen("y" * (LM_CONTEXT - 3), max_new_tokens=6),
                _ll(long, " a"), _ll("ok", " fine")]
    outputs = lm.generate(requests, media_dir=None)
    assert outputs[0].ok and outputs[0].text == lm.generate([requests[0]], media_dir=None)[0].text
    for output in outputs[1:4]:
        assert not output.ok and "context" in output.error and output.text is None
    assert outputs[4].ok and len(outputs[4].logprobs) == 1


def test_lm_provenance(lm, lm_dir):
    prov = lm.provenance()
    assert prov["path"] == str(lm_dir) and prov["dtype"] == "float32" and prov["max_length"] == LM_CONTEXT
    assert len(prov["weights_sha256"]) == 16 and prov["transformers"] == transformers.__version__
    assert prov["add_bos"] is True and prov["class"] == "LlamaForCausalLM"


# --- HFVisionLM -------------------------------------------------------------------------------

def _vlm_reference(vlm, request, frames_by_part=None):
    """Prompt and images the way a user of the processor would build them by hand."""
    from PIL import Image as PILImage

    content, images = [], []
    for part in request.parts:
        if isinstance(part, Text):
            content.append({"type": "text", "text": part.text})
        elif isinstance(part, Image):
            images.append(PILImage.open(part.path).convert("RGB"))
            content.append({"type": "image"})
        else:
            frames = video_frames(part.path, request.generation["video_frames"])
            images += frames
            content += [{"type": "image"}] * len(frames)
    prompt = vlm.processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                               add_generation_prompt=True)
    return prompt, images


def test_video_frames_are_sampled_uniformly(media):
    frames = video_frames(media / "clip.mp4", 4)  # linspace(0, 9, 4) -> frames 0, 3, 6, 9
    assert len(frames) == 4 and all(f.size == (32, 32) and f.mode == "RGB" for f in frames)
    levels = [float(np.asarray(f).mean()) for f in frames]
    assert levels == pytest.approx([0, 60, 120, 180], abs=10)
    assert len(video_frames(media / "clip.mp4", 12)) == 12  # shorter clip than asked: frames repeat


def test_vlm_generation_batched_equals_single_and_reference(vlm, media):
    a, b = Image(str(media / "a.png")), Image(str(media / "b.png"))
    requests = [_gen(a, "What is this?"), _gen("Compare", a, "with", b), _gen("Hello"),
                _gen("Describe the clip", Video(str(media / "clip.mp4")), video_frames=3)]
    batched = vlm.generate(requests, media_dir=None)
    for request, output in zip(requests, batched):
        assert output.ok, output.error
        assert output.text == vlm.generate([request], media_dir=None)[0].text
    # 16 image tokens per image (4x4 patches): two images and three video frames are all in the prompt.
    assert batched[1].n_input_tokens - batched[2].n_input_tokens > 2 * 16
    assert batched[3].n_input_tokens > 3 * 16
    # The generated text is the new ids only, as by hand with the processor and generate().
    prompt, images = _vlm_reference(vlm, requests[1])
    inputs = vlm.processor(text=[prompt], images=images, return_tensors="pt")
    assert inputs["input_ids"][0].tolist().count(IMAGE) == 2 * 16
    with torch.no_grad():
        out = vlm.model.generate(**inputs, max_new_tokens=6, do_sample=False, pad_token_id=PAD)
    new = out[0, inputs["input_ids"].shape[1]:].tolist()
    end = next((k for k, t in enumerate(new) if t == EOS), len(new))
    assert batched[1].text == vlm.tokenizer.decode(new[:end], skip_special_tokens=True)
    assert batched[1].n_input_tokens == inputs["input_ids"].shape[1]


def test_vlm_corrupt_image_is_a_per_sample_error(vlm, media):
    good = _gen(Image(str(media / "a.png")), "What is this?")
    outputs = vlm.generate([_gen(Image(str(media / "corrupt.png")), "Broken?"), good,
                            _gen(Image(str(media / "nope.png")), "Missing?")], media_dir=None)
    assert not outputs[0].ok and "corrupt.png" in outputs[0].error
    assert not outputs[2].ok and "not found" in outputs[2].error
    assert outputs[1].ok and outputs[1].text == vlm.generate([good], media_dir=None)[0].text


def test_vlm_loglikelihood_equals_direct_and_batched_equals_single(vlm, media):
    a, b = Image(str(media / "a.png")), Image(str(media / "b.png"))
    requests = [Request(sample_id="1", parts=(a, Text("Colour?")), continuations=(" red", " blue")),
                Request(sample_id="2", parts=(Text("Left or right?"), a, b), continuations=(" left", " right", "x"))]
    batched = vlm.generate(requests, media_dir=None)
    for request, output in zip(requests, batched):
        assert output.ok, output.error
        single = vlm.generate([request], media_dir=None)[0]
        assert output.logprobs == pytest.approx(single.logprobs, abs=1e-5) and output.greedy == single.greedy
        prompt, images = _vlm_reference(vlm, request)
        n_ctx = vlm.processor(text=[prompt], images=images)["input_ids"][0]
        for continuation, logprob, greedy in zip(request.continuations, output.logprobs, output.greedy):
            inputs = vlm.processor(text=[prompt + continuation], images=images, return_tensors="pt")
            ids = inputs["input_ids"][0].tolist()
            assert ids[:len(n_ctx)] == list(n_ctx)
            with torch.no_grad():
                logprobs = torch.log_softmax(vlm.model(**inputs).logits[0].float(), dim=-1)
            cont = ids[len(n_ctx):]
            rows = logprobs[len(n_ctx) - 1:len(ids) - 1]
            assert logprob == pytest.approx(sum(rows[k, t].item() for k, t in enumerate(cont)), abs=1e-4)
            assert greedy == all(rows[k].argmax().item() == t for k, t in enumerate(cont))


def test_vlm_overlong_prompt_and_provenance(vlm_dir, media):
    adapter = HFVisionLM(str(vlm_dir), dtype="float32", max_length=40)  # one image is 16 tokens
    good = _gen("Hi", max_new_tokens=4)
    outputs = adapter.generate([_gen(Image(str(media / "a.png")), Image(str(media / "b.png")), "Both?"), good],
                               media_dir=None)
    assert not outputs[0].ok and "context" in outputs[0].error
    assert outputs[1].ok
    prov = adapter.provenance()
    assert prov["class"] == "LlavaForConditionalGeneration" and prov["processor"] == "LlavaProcessor"
    assert prov["max_length"] == 40 and len(prov["weights_sha256"]) == 16


def test_generation_runs_under_inference_mode_on_the_configured_device(lm, monkeypatch):
    """#13 GPU path: decoding happens in ``torch.inference_mode()`` with inputs on the model's
    device (``model.device=cuda`` puts the weights on this rank's GPU, see distributed.Group)."""
    seen = []
    real = lm.model.generate

    def spy(**kwargs):
        seen.append((torch.is_inference_mode_enabled(), kwargs["input_ids"].device, lm.model.device))
        return real(**kwargs)

    monkeypatch.setattr(lm.model, "generate", spy)
    (out,) = lm.generate([Request("s", (Text("hi"),), generation={"max_new_tokens": 3})], media_dir=None)
    assert out.ok and seen == [(True, lm.model.device, lm.model.device)]
    assert str(lm.model.device) == lm.device == "cpu"
