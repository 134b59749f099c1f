"""MIO adapter: MIO's prompts byte for byte, the reference's section-7 pitfalls one by one, output
parsing and repair policies, and end-to-end runs on the tiny checkpoint (``mio_tiny``).

The tiny checkpoint's LLM is scripted (``mio.tiny._script``): after the chat template's final
newline it answers "MIO says hi", one image block of 32 codes, one speech block of 4 x 25 codes,
then ``<|im_end|>`` -- whatever the prompt -- so every parsing and decoding path is exercised with
known token counts. The expected prompt strings below are copied from MIO's ``infer.py`` and
``tokenization_mio.py`` (MIO-Team/MIO @ 6c0b5e6); they were also checked against MIO's own
``MIOTokenizer`` string and id code run side by side (see README).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("speechtokenizer")

from mio_eval import run  # noqa: E402
from mio_eval.adapter import output_summary  # noqa: E402
from mio_eval.errors import ConfigError  # noqa: E402
from mio_eval.media import load_audio  # noqa: E402
from mio_eval.models.mio import (  # noqa: E402
    STD_SYSTEM,
    VOICE_SYSTEM,
    MIOAdapter,
    chat_prompt,
    mio_prompt,
    parse_image,
    parse_speech,
    split_blocks,
)
from mio_eval.models.mio.codecs import ImageCodecError, load_image_codec  # noqa: E402
from helpers import grey_frames, write_video  # noqa: E402
from mio_eval.models.mio.tiny import SCRIPT_FRAMES, SCRIPT_TEXT, build_tiny_mio, script_tokens  # noqa: E402
from mio_eval.types import Audio, Image, Modality, Output, Request, Text, Video  # noqa: E402

BOS = "<|startoftext|>"
RATE = 16000
N_SCRIPT = 9 + 34 + 2 + 4 * SCRIPT_FRAMES + 1  # text, image block, speech block, <|im_end|>


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models spend their time in thread hand-offs on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_mio(tmp_path_factory):
    return build_tiny_mio(tmp_path_factory.mktemp("tiny_mio"))


@pytest.fixture(scope="module")
def mio(tiny_mio):
    adapter = MIOAdapter(str(tiny_mio), variant="instruct")
    adapter.load()
    return adapter


@pytest.fixture(scope="module")
def mio_base(tiny_mio):
    adapter = MIOAdapter(str(tiny_mio), variant="base")
    adapter.load()
    return adapter


def _espeak(text, path):
    proc = subprocess.run(["espeak-ng", "--stdout", text], capture_output=True, check=True)
    raw = path.with_suffix(".espeak.wav")
    raw.write_bytes(proc.stdout)
    sf.write(path, load_audio(raw, sample_rate=RATE).samples, RATE)
    raw.unlink()
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A speech recording, a stereo 44.1 kHz recording, a PNG and a 10-frame mp4 (frame i grey 20*i)."""
    from PIL import Image as PILImage

    root = tmp_path_factory.mktemp("mio_media")
    _espeak("he hoped there would be stew", root / "speech.wav")
    t = np.arange(44100) / 44100
    sf.write(root / "stereo.wav", np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.1 * np.sin(2 * np.pi * 330 * t)], 1),
             44100)
    rng = np.random.default_rng(0)
    PILImage.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(root / "a.png")
    write_video(root / "clip.mp4", grey_frames([20 * i for i in range(10)]))
    return root


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- prompts: MIO's strings byte for byte (infer.py rows, reference section 3.2) --------------

STD = f"{BOS}<|im_start|>system\n{STD_SYSTEM}<|im_end|>\n<|im_start|>user\n"
VOICE = f"{BOS}<|im_start|>system\n{VOICE_SYSTEM}<|im_end|>\n<|im_start|>user\n"
END = "<|im_end|>\n<|im_start|>assistant\n"
TTS_TEXT = ("Mister Morton replied that far from making any claim upon his good opinion his only wish and the sole "
            "purpose of his visit was to find out the means of deserving it")
FRAMES3 = "<image_placeholder_0><image_placeholder_1><image_placeholder_2>"

INSTRUCT_ROWS = [
    ("text", Request("s", (Text("What's the capital of France?"),), kind="text"),
     STD + "What's the capital of France?" + END),
    ("caption", Request("s", (Image("a.jpg"),), kind="caption"),
     STD + "Please provide an accurate and detailed description of this image.\n<image_placeholder_0>" + END),
    ("image_qa", Request("s", (Image("a.jpg"), Text("What colour of clothes is the man wearing?")), kind="vqa"),
     STD + "What colour of clothes is the man wearing?\n<image_placeholder_0>" + END),
    ("image_generation", Request("s", (Text("A beautiful sunset over the ocean."),), output_modality="image",
                                 kind="t2i"),
     STD + "Please generate an image according to the caption.\nA beautiful sunset over the ocean." + END),
    ("asr", Request("s", (Audio("a.flac"),), kind="asr"),
     STD + "Please transcribe this speech.\n<speech_placeholder_0>" + END),
    ("speech_understanding", Request("s", (Audio("a.flac"), Text("\nPlease continue the story."))),
     STD + "<speech_placeholder_0>\nPlease continue the story." + END),
    ("tts", Request("s", (Text(TTS_TEXT),), output_modality="audio", kind="tts"),
     VOICE + f"The transcription is ``{TTS_TEXT}''. Please generate a speech according to the given transcription. "
             "Start with <spch>." + END),
    ("speech_generation", Request("s", (Text("What abilities do you have?"),), output_modality="audio"),
     VOICE + "What abilities do you have?" + END),
    ("speech_to_speech", Request("s", (Audio("q.wav"),), output_modality="audio", kind="s2s"),
     VOICE + "<speech_placeholder_0>" + END),
    ("video_qa", Request("s", (Video("v.mp4"), Text("What is this woman doing in this video?")), kind="video_qa"),
     STD + "What is this woman doing in this video?\n" + FRAMES3 + END),
    ("video_generation", Request("s", (Text("rush hour traffic jam and gridlock in the city streets"),),
                                 output_modality="image", kind="video_gen"),
     STD + "Please generate a video for ``rush hour traffic jam and gridlock in the city streets''" + END),
    ("interleaved", Request("s", (Text("Generate a visual story about Star Wars."),), output_modality="image",
                            kind="interleaved"),
     STD + "Generate a visual story about Star Wars." + END),
]
BASE_ROWS = [
    ("text", Request("s", (Text("1+1=?"),), kind="text"), BOS + "Question: 1+1=? Answer:"),
    ("caption", Request("s", (Image("a.jpg"),), kind="caption"),
     BOS + "<image_placeholder_0> The caption of this image is"),
    ("image_generation", Request("s", (Text("a tree in the middle of a meadow"),), output_modality="image",
                                 kind="t2i"),
     BOS + "Please generate an image of ``a tree in the middle of a meadow''"),
    ("asr", Request("s", (Audio("a.flac"),), kind="asr"),
     BOS + "<speech_placeholder_0> The transcription of this speech is"),
    ("tts", Request("s", (Text(TTS_TEXT),), output_modality="audio", kind="tts"),
     BOS + f"Please generate a speech of ``{TTS_TEXT}'': <spch>"),
    ("video_captioning", Request("s", (Video("v.mp4"),), kind="video_qa"),
     BOS + "Please describe the following video: " + FRAMES3),
    ("video_generation", Request("s", (Text("Bird eye panoramic view of busiest Asian cargo port"),),
                                 output_modality="image", kind="video_gen"),
     BOS + "Please generate a video for ``Bird eye panoramic view of busiest Asian cargo port'': <image>"),
]


@pytest.mark.parametrize("row,request_,expected", INSTRUCT_ROWS, ids=[r[0] for r in INSTRUCT_ROWS])
def test_instruct_prompts_match_mio(row, request_, expected):
    prompt = mio_prompt(request_, variant="instruct", video_frames=3)
    assert prompt.text == expected
    assert prompt.mode == ("voice" if request_.output_modality == Modality.AUDIO else "std")


@pytest.mark.parametrize("row,request_,expected", BASE_ROWS, ids=[r[0] for r in BASE_ROWS])
def test_base_prompts_match_mio(row, request_, expected):
    prompt = mio_prompt(request_, variant="base", video_frames=3)
    assert prompt.text == expected and prompt.mode is None
    assert prompt.opened == {"tts": "<spch>", "video_generation": "<image>"}.get(row, "")


def test_task_instruction_text_is_kept_in_part_order():
    """A task that writes its own instruction (the paper's Table 12 caption template) keeps it."""
    request = Request("s", (Text("Provide a one-sentence caption for the provided image. "), Image("a.jpg")),
                      kind="caption")
    assert mio_prompt(request, variant="instruct").text == (
        STD + "Provide a one-sentence caption for the provided image. <image_placeholder_0>" + END)
    scored = Request("s", (Text("Question: 2+2? Answer:"),), kind="text", continuations=(" A", " B"))
    assert mio_prompt(scored, variant="base").text == BOS + "Question: 2+2? Answer:"
    assert chat_prompt("hi", mode="voice", bos="<s>") == f"<s><|im_start|>system\n{VOICE_SYSTEM}<|im_end|>\n" \
                                                         "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_prompt_ids_one_bos_and_media_strings(mio, media):
    """MIO's placeholders become ``<spch>`` content codes (50/s) and ``<image>`` + 32 codes."""
    request = Request("s", (Image(str(media / "a.png")), Audio(str(media / "speech.wav")), Text("?")))
    prompt, text = mio.render(request)
    assert text.startswith(STD + "<image>") and text.endswith("?" + END)
    image_block = text[text.index("<image>"):text.index("</image>")]
    assert image_block.count("<img") == 32
    speech_block = text[text.index("<spch>"):text.index("</spch>")]
    seconds = load_audio(media / "speech.wav").duration_s
    assert speech_block.count("<spch") - 1 == pytest.approx(50 * seconds, abs=1)
    assert all(int(c) < 1024 for c in __import__("re").findall(r"<spch(\d+)>", speech_block))  # content only
    ids = mio.encode(text)
    tok = mio.tokenizer
    assert ids[0] == tok.bos_token_id and ids[1] == tok.convert_tokens_to_ids("<|im_start|>")
    tokens = tok.convert_ids_to_tokens(ids)  # every modality token is one id
    assert sum(t.startswith("<img") for t in tokens) == 32 and tokens.count("<spch>") == 1


# --- pitfalls (reference section 7), one test each ------------------------------------------

def test_pitfall_01_no_relative_paths(tiny_mio, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MIO only works from its repo root
    adapter = MIOAdapter(str(tiny_mio))
    (out,) = adapter.generate([Request("s", (Text("hi"),), generation={"max_new_tokens": 12})], media_dir=tmp_path)
    assert out.text == SCRIPT_TEXT


def test_pitfall_02_offline_and_decoders_lazy(tiny_mio, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("MIO tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    adapter = MIOAdapter(str(tiny_mio))
    adapter.generate([Request("s", (Text("hi"),), generation={"max_new_tokens": 12})], media_dir=tmp_path)
    assert adapter._speech is None and adapter._image is None  # a text task loads no codec
    assert "speech_codec" not in adapter.provenance()


def test_pitfall_03_dtype_is_configurable(tiny_mio, mio, tmp_path):
    assert str(mio.model.dtype) == "torch.float32"
    half = MIOAdapter(str(tiny_mio), dtype="bfloat16")
    (out,) = half.generate([Request("s", (Text("hi"),), generation={"max_new_tokens": 12})], media_dir=tmp_path)
    assert str(half.model.dtype) == "torch.bfloat16" and half.provenance()["dtype"] == "bfloat16"
    assert out.ok
    with pytest.raises(ConfigError, match="dtype"):
        MIOAdapter(str(tiny_mio), dtype="fp8")


def test_pitfall_04_exactly_32_image_codes(tiny_mio, mio, tmp_path):
    assert parse_image(list(range(32))).rows == (tuple(range(32)),)
    assert parse_image(list(range(33))).repairs == ("truncate_to_32",)
    assert parse_image(list(range(32)), terminated=False).repairs == ("unterminated",)
    assert "31 codes" in parse_image(list(range(31))).error
    assert "strict" in parse_image(list(range(33)), policy="strict").error
    codec = load_image_codec(tiny_mio)
    with pytest.raises(ImageCodecError, match="exactly 32"):
        codec.decode(list(range(31)))
    # Generation cut inside the image block: an invalid output for that sample, never a crash.
    cut = Request("cut", (Text("a cat"),), output_modality="image", kind="t2i", generation={"max_new_tokens": 30})
    full = Request("full", (Text("a cat"),), output_modality="image", kind="t2i", generation={"max_new_tokens": 64})
    out_cut, out_full = mio.generate([cut, full], media_dir=tmp_path)
    assert out_cut.error == "invalid output: image block has 20 codes, needs 32"
    assert out_full.ok and [p.modality for p in out_full.media] == [Modality.IMAGE]


def test_pitfall_05_malformed_speech_is_repaired_or_invalid(tiny_mio, mio, tmp_path):
    good = [*range(3), *range(1024, 1027), *range(2048, 2051), *range(3072, 3075)]
    assert parse_speech(good).rows == ((0, 1, 2),) * 4 and parse_speech(good).repairs == ()
    unequal = [*range(3), *range(1024, 1026), *range(2048, 2051), *range(3072, 3075)]
    assert parse_speech(unequal).repairs == ("truncate_to_shortest",)
    assert parse_speech(unequal).rows == ((0, 1), (0, 1), (0, 1), (0, 1))
    content = [5, 6, 7, 1030]
    assert parse_speech(content, terminated=False).repairs == ("unterminated", "content_only")
    assert parse_speech(content, terminated=False).rows == ((5, 6, 7),)
    assert "starts with timbre" in parse_speech([1024, 1025]).error
    assert parse_speech([]).error == "empty speech block"
    assert "policy strict" in parse_speech(unequal, policy="strict").error
    # In one batch: a complete block, a cut one (content-only repair) and a cut one under strict.
    requests = [Request(i, (Text("x"),), output_modality="audio", kind="tts",
                        generation={"max_new_tokens": n, "seed": 0, "do_sample": True, "top_p": 0.7})
                for i, n in (("full", 200), ("cut", 9 + 34 + 1 + SCRIPT_FRAMES + 3))]
    full, cut = mio.generate(requests, media_dir=tmp_path)
    assert full.ok and cut.ok
    assert sf.info(full.media[0].path).frames == SCRIPT_FRAMES * 320
    assert sf.info(cut.media[0].path).frames == SCRIPT_FRAMES * 320  # content only: same length
    assert cut.provenance["repairs"] == ["unterminated", "content_only"]  # travels with the output
    assert cut.provenance["counts"].items() >= {"repair_content_only": 1, "repair_unterminated": 1}.items()
    assert "repairs" not in full.provenance
    strict = MIOAdapter(str(tiny_mio), speech_policy="strict")
    (out,) = strict.generate(requests[1:], media_dir=tmp_path / "strict")
    assert out.error.startswith("invalid output: irregular speech block") and "policy strict" in out.error


def test_pitfall_06_base_prompt_ending_tag_is_put_back(mio_base, tmp_path):
    """Base TTS ends its prompt with <spch>: the new ids hold only codes and </spch>."""
    request = Request("tts", (Text("hello"),), output_modality="audio", kind="tts",
                      generation={"max_new_tokens": 4 * SCRIPT_FRAMES + 4, "seed": 0})
    (out,) = mio_base.generate([request], media_dir=tmp_path)
    assert out.ok, out.error
    assert sf.info(out.media[0].path).frames == SCRIPT_FRAMES * 320
    assert "repairs" not in out.provenance  # a complete block, not a repaired one


def test_pitfall_07_only_new_ids_are_decoded_batch_independent(mio, tmp_path):
    short = Request("a", (Text("hi"),), generation={"max_new_tokens": 9, "num_beams": 5})
    long = Request("b", (Text("a much longer question " * 20),), generation={"max_new_tokens": 9, "num_beams": 5})
    together = mio.generate([short, long], media_dir=tmp_path)
    alone = [mio.generate([r], media_dir=tmp_path)[0] for r in (short, long)]
    assert [o.text for o in together] == [o.text for o in alone] == [SCRIPT_TEXT, SCRIPT_TEXT]
    assert together[0].n_output_tokens == 9


def test_pitfall_08_long_prompt_is_that_samples_error(tiny_mio, tmp_path):
    adapter = MIOAdapter(str(tiny_mio), max_length=120)
    ok = Request("ok", (Text("hi"),), generation={"max_new_tokens": 200})
    too_long = Request("long", (Text("word " * 200),), generation={"max_new_tokens": 4})
    out_ok, out_long = adapter.generate([ok, too_long], media_dir=tmp_path)
    assert out_long.error.startswith("prompt is ") and "context of 120 tokens" in out_long.error
    assert out_ok.ok and out_ok.n_input_tokens + out_ok.n_output_tokens <= 120
    assert out_ok.provenance["counts"]["max_new_tokens_capped"] == 1
    assert "outputs" not in adapter.provenance()  # no per-sample tallies in adapter state


def test_pitfall_09_no_double_bos(mio):
    tok = mio.tokenizer
    text = chat_prompt("hi", mode="std", bos=tok.bos_token)
    assert mio.encode(text).count(tok.bos_token_id) == 1
    before = tok.add_bos_token
    try:
        tok.add_bos_token = True  # a checkpoint whose tokenizer adds BOS itself: MIO would get two
        assert tok(text)["input_ids"][:2] == [tok.bos_token_id] * 2
        assert mio.encode(text).count(tok.bos_token_id) == 1
    finally:
        tok.add_bos_token = before


def test_pitfall_10_system_prompt_follows_the_output():
    text = mio_prompt(Request("s", (Text("hi"),)), variant="instruct").text
    voice = mio_prompt(Request("s", (Text("hi"),), output_modality="audio"), variant="instruct").text
    assert STD_SYSTEM in text and VOICE_SYSTEM in voice


def test_pitfall_11_text_tasks_need_no_media_dir(mio, tmp_path):
    media_dir = tmp_path / "never-created"
    (out,) = mio.generate([Request("s", (Text("hi"),), generation={"max_new_tokens": 20})], media_dir=media_dir)
    assert out.text == SCRIPT_TEXT and not media_dir.exists()


def test_pitfall_12_stereo_audio_is_downmixed(mio, media, tmp_path):
    (out,) = mio.generate([Request("s", (Audio(str(media / "stereo.wav")),), kind="asr",
                                   generation={"max_new_tokens": 9})], media_dir=tmp_path)
    assert out.text == SCRIPT_TEXT and out.n_input_tokens > 50  # 1 s of speech: 50 content codes
    with pytest.raises(Exception, match="mono"):
        mio._speech_codec().encode(np.zeros((2, 16000), dtype=np.float32))


def test_pitfall_13_video_frames_in_order_fresh_each_call(mio, media):
    from mio_eval.models.hf_vlm import video_frames

    request = Request("s", (Video(str(media / "clip.mp4")), Text("What happens?")), kind="video_qa",
                      generation={"video_frames": 4})
    _, text = mio.render(request)
    frames = [mio._image_string(f) for f in video_frames(media / "clip.mp4", 4)]
    assert text == STD + "What happens?\n" + "".join(frames) + END
    assert frames != frames[::-1]  # the frames differ, so the order is checked
    assert mio.render(request)[1] == text  # nothing stale from a previous call


def test_pitfall_14_stray_modality_tokens_stripped_and_counted(tiny_mio, tmp_path):
    adapter = MIOAdapter(str(tiny_mio))
    (out,) = adapter.generate([Request("s", (Text("hi"),), generation={"max_new_tokens": 200})], media_dir=tmp_path)
    assert out.text == SCRIPT_TEXT and out.n_output_tokens == N_SCRIPT
    counts = out.provenance["counts"]
    assert counts["stray_modality_tokens"] == N_SCRIPT - 9 - 1 and counts["samples_with_stray_tokens"] == 1
    text_at, blocks, stray = split_blocks(["a", "<img3>", "<spch>", "<spch1>", "b", "</image>", "<image>"])
    assert text_at == [0, 4] and stray == 2
    assert [(b.modality, b.codes, b.terminated) for b in blocks] == [(Modality.AUDIO, (1,), False),
                                                                     (Modality.IMAGE, (), False)]


def test_pitfall_16_image_decoding_is_seeded(tiny_mio):
    first = load_image_codec(tiny_mio).decode(list(range(32)))
    again = load_image_codec(tiny_mio).decode(list(range(32)))  # a fresh codec: same latents
    assert np.array_equal(np.asarray(first), np.asarray(again)) and first.size == (16, 16)


def test_instruct_stop_token_and_missing_tokens(mio, tmp_path):
    assert mio.stop_id == mio.tokenizer.convert_tokens_to_ids("<|im_end|>") == 7
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="MIO"):
        MIOAdapter(str(tmp_path)).load()
    with pytest.raises(ConfigError, match="variant"):
        MIOAdapter(str(tmp_path), variant="chat")


# --- direct adapter requests per family -----------------------------------------------------

def test_caption_vqa_text_and_interleaved(mio, media, tmp_path):
    image = Image(str(media / "a.png"))
    requests = [
        Request("cap", (image,), kind="caption", generation={"num_beams": 5, "max_new_tokens": 16}),
        Request("vqa", (image, Text("What is it?")), kind="vqa", generation={"num_beams": 5, "max_new_tokens": 16}),
        Request("txt", (Text("1+1=?"),), kind="text", generation={"num_beams": 5, "max_new_tokens": 16}),
        Request("story", (Text("Tell a story."),), output_modality="image", kind="interleaved",
                generation={"do_sample": True, "top_p": 0.7, "repetition_penalty": 1.15, "max_new_tokens": 200,
                            "seed": 0}),
        Request("bad", (Image(str(media / "missing.png")),), kind="caption", generation={"max_new_tokens": 4}),
    ]
    cap, vqa, txt, story, bad = mio.generate(requests, media_dir=tmp_path)
    assert cap.text == vqa.text == txt.text == SCRIPT_TEXT
    assert story.text == SCRIPT_TEXT and [p.modality for p in story.media] == [Modality.IMAGE, Modality.AUDIO]
    assert story.media[0].path.endswith("story.png") and story.media[1].path.endswith("story-1.wav")
    assert bad.error.startswith("image file not found")


def test_image_generation_writes_an_image(mio, tmp_path):
    from PIL import Image as PILImage

    (out,) = mio.generate([Request("sunset/1", (Text("a sunset"),), output_modality="image", kind="t2i",
                                   generation={"num_beams": 5, "repetition_penalty": 1.15, "max_new_tokens": 64})],
                          media_dir=tmp_path)
    assert out.ok and out.text == SCRIPT_TEXT
    with PILImage.open(out.media[0].path) as image:
        assert image.size == (16, 16)


def test_loglikelihood_matches_a_manual_forward(mio, tmp_path):
    request = Request("q", (Text("Question: 2+2? Answer:"),), kind="mcq", continuations=(" A", " B", " C"))
    other = Request("r", (Text("Much longer context " * 10),), continuations=(" yes",))
    (out,) = mio.generate([request], media_dir=tmp_path)
    batched = mio.generate([other, request], media_dir=tmp_path)[1]
    assert out.logprobs == pytest.approx(batched.logprobs, abs=1e-4)
    prompt = mio_prompt(request, variant="instruct").text  # chat-wrapped: " A" follows "assistant\n"
    context = mio.encode(prompt)
    cont = mio.encode(prompt + " A")[len(context):]
    with torch.inference_mode():
        logits = mio.model(torch.tensor([context + cont])).logits[0]
    expected = torch.log_softmax(logits.float(), -1)[len(context) - 1:-1].gather(
        -1, torch.tensor(cont).unsqueeze(-1)).sum()
    assert out.logprobs[0] == pytest.approx(float(expected), abs=1e-4)
    assert mio.supports_loglikelihood


# --- end to end through mio_eval.run on the tiny checkpoint --------------------------------

def _overrides(tiny_mio, results, *extra):
    return [f"model.path={tiny_mio}", f"paths.results_dir={results}", "runner.progress=false", *extra]


@pytest.fixture(scope="module")
def librispeech(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "LibriSpeech"
    folder = root / "test-clean" / "1089" / "134686"
    folder.mkdir(parents=True)
    texts = ["HE HOPED THERE WOULD BE STEW FOR DINNER", "TURNIPS AND CARROTS"]
    for i, text in enumerate(texts):
        _espeak(text.lower(), folder / f"1089-134686-{i:04d}.flac")
    (folder / "1089-134686.trans.txt").write_text(
        "".join(f"1089-134686-{i:04d} {t}\n" for i, t in enumerate(texts)))
    return root


def test_asr_librispeech_end_to_end(tiny_mio, librispeech, tmp_path):
    metrics = run("asr_librispeech_test_clean", "mio_tiny", _overrides(
        tiny_mio, tmp_path, f"paths.data_dir={librispeech.parent}", "task.generation.max_new_tokens=12"))
    assert metrics["n"] == 2 and metrics["n_errors"] == 0
    rows = _lines(tmp_path / "mio_tiny" / "asr_librispeech_test_clean" / "scores.jsonl")
    assert [r["hypothesis"] for r in rows] == [SCRIPT_TEXT] * 2
    provenance = metrics["model_provenance"]
    assert provenance["variant"] == "instruct" and provenance["tokens"]["stop"] == ["<|im_end|>", 7]
    assert provenance["speech_codec"]["frames_per_s"] == 50.0


def test_tts_demo_end_to_end_audio_written_and_judged(tiny_mio, tmp_path):
    first = run("tts_demo", "mio_tiny", _overrides(tiny_mio, tmp_path, "runner.limit=1"))
    metrics = run("tts_demo", "mio_tiny", _overrides(tiny_mio, tmp_path, "runner.limit=2"))  # resumes: 1 new
    assert metrics["n"] == 2 and metrics["errors"]["generate"] == 0
    run_dir = tmp_path / "mio_tiny" / "tts_demo"
    predictions = _lines(run_dir / "predictions.jsonl")
    assert len(predictions) == 2
    for row in predictions:
        (audio,) = [m for m in row["output"]["media"] if m["type"] == "audio"]
        info = sf.info(run_dir / audio["path"])  # stored relative to the run directory
        assert info.samplerate == RATE and info.frames == SCRIPT_FRAMES * 320
    assert "wer_corpus" in metrics["metrics"] and metrics["judges"]
    assert metrics["model_provenance"]["outputs"]["counts"].get("invalid_outputs", 0) == 0
    # Per-sample tallies are stored with each output, so the resumed run reports both samples
    # (the second process generated one) and they equal the sum over predictions.jsonl.
    stored = [(row["id"], Output.from_json(row["output"])) for row in predictions]
    assert all(o.provenance["counts"]["samples_with_stray_tokens"] == 1 for _, o in stored)
    assert first["model_provenance"]["outputs"]["counts"]["samples_with_stray_tokens"] == 1
    assert metrics["model_provenance"]["outputs"] == output_summary(stored)
    assert metrics["model_provenance"]["outputs"]["counts"]["samples_with_stray_tokens"] == 2


def test_s2s_end_to_end(tiny_mio, media, tiny_whisper, tmp_path):
    import shutil

    data = tmp_path / "data" / "s2s"
    data.mkdir(parents=True)
    for name in ("speech.wav", "stereo.wav"):  # inside the data root (media outside it are refused)
        shutil.copy(media / name, data / name)
    (data / "questions.jsonl").write_text(
        json.dumps({"id": "q1", "audio": str(data / "speech.wav"), "answer": "stew"}) + "\n"
        + json.dumps({"id": "q2", "audio": str(data / "stereo.wav"), "answer": "four"}) + "\n")
    metrics = run("s2s", "mio_tiny", _overrides(
        tiny_mio, tmp_path / "results", f"paths.data_dir={tmp_path / 'data'}",
        f"task.judge.whisper_path={tiny_whisper}", "task.judge.max_new_tokens=4"))
    assert metrics["n"] == 2 and metrics["n_errors"] == 0
    assert set(metrics["metrics"]) == {"answer_accuracy", "wer_corpus", "wer_utt_mean"}


def test_package_imports_no_torch_and_the_documented_cli_runs():
    """``import mio_eval.models.mio`` (and its seed package) loads neither torch nor transformers;
    ``python -m mio_eval.models.mio_tiny`` (the README's command) still answers."""
    import sys

    code = ("import sys, mio_eval.models.mio, mio_eval.models.mio.seed, mio_eval.models.mio.codecs; "
            "print(sorted(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
    proc = subprocess.run([sys.executable, "-m", "mio_eval.models.mio_tiny", "--help"], capture_output=True,
                          text=True, check=True)
    assert "python -m mio_eval.models.mio_tiny" in proc.stdout and "out_dir" in proc.stdout


def test_script_tokens_shape(mio):
    tokens = script_tokens(mio.tokenizer)
    assert len(tokens) == N_SCRIPT and tokens[-1] == "<|im_end|>"
    assert "".join(tokens[:9]).replace("▁", " ") == SCRIPT_TEXT


def test_mmlu_by_loglikelihood_end_to_end(tiny_mio, tmp_path):
    import csv

    root = tmp_path / "mmlu"
    for split, rows in (("test", [("Who wrote the Republic?", "Plato", "Kant", "Hume", "Locke", "A"),
                                  ("Ethics of duty?", "Utilitarianism", "Egoism", "Deontology", "Nihilism", "C")]),
                        ("dev", [("Q0?", "a", "b", "c", "d", "B")])):
        path = root / "data" / split / f"philosophy_{split}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(rows)
    metrics = run("mmlu", "mio_tiny", _overrides(tiny_mio, tmp_path / "results", f"task.loader.root={root}",
                                                 "task.loader.expected_size=null"))
    assert metrics["n"] == 2 and metrics["n_errors"] == 0 and "accuracy" in metrics["metrics"]
    records = _lines(tmp_path / "results" / "mio_tiny" / "mmlu" / "predictions.jsonl")
    assert all(len(r["output"]["logprobs"]) == 4 for r in records)


def test_video_frame_modes_keyframes_and_mio_stride(mio, tmp_path):
    """Instruct MIO takes one frame per scene, Base captioning every total//10-th frame; the number
    of image blocks in the prompt follows the frames actually taken."""
    from mio_eval.keyframes import scene_keyframes
    from mio_eval.media import read_video_frames

    clip = tmp_path / "scenes.mp4"
    # three scenes of 16 frames (PySceneDetect's ContentDetector ignores scenes under 15 frames, as MIO runs it)
    write_video(clip, grey_frames([grey for grey in (0, 120, 240) for _ in range(16)]))
    assert scene_keyframes(read_video_frames(clip)) == [0, 16, 32]   # the labelled approximation
    counts = {}
    for mode in ("keyframes", "keyframes_approx", "mio_stride", "uniform"):
        request = Request("s", (Video(str(clip)), Text("What happens?")), kind="video_qa",
                          generation={"video_frames": 5, "video_frame_mode": mode})
        prompt, text = mio.render(request)
        counts[mode] = text.count("<image>")
        assert len(re.findall(r"<image_placeholder_\d+>", prompt.text)) == counts[mode]
    assert counts == {"keyframes": 3, "keyframes_approx": 3, "mio_stride": 12, "uniform": 5}
    with pytest.raises(ConfigError, match="video_frame_mode must be one of"):
        MIOAdapter(str(mio.path), video_frame_mode="scenes")
