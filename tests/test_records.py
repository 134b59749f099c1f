"""Typed records (Sample, Request, Output, parts) and the capability check."""

import dataclasses
import json

import pytest

import mio_eval
from mio_eval.adapter import CapabilityError, ModelAdapter, check_capabilities
from mio_eval.errors import ConfigError
from mio_eval.models.dummy import DummyAdapter
from mio_eval.types import (
    Audio,
    Image,
    Modality,
    Output,
    Request,
    Sample,
    Text,
    Video,
    part_from_json,
    part_to_json,
)


def _sample():
    return Sample(id="s1", parts=[Text("hello"), Image("a.png")], targets=["hi"], choices=["x", "y"],
                  metadata={"speaker": "p225"})


# -- frozen records ----------------------------------------------------------------------------


def test_sample_is_frozen_and_normalises_sequences():
    sample = _sample()
    assert sample.parts == (Text("hello"), Image("a.png"))
    assert sample.targets == ("hi",) and sample.choices == ("x", "y")
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.id = "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.targets = ("changed",)
    with pytest.raises(TypeError):
        sample.metadata["speaker"] = "p226"  # read-only mapping
    assert sample.metadata["speaker"] == "p225"
    assert sample.modalities() == {Modality.TEXT, Modality.IMAGE}


def test_sample_metadata_is_a_copy_of_the_callers_dict():
    meta = {"speaker": "p225"}
    sample = Sample(id="s1", parts=(Text("x"),), metadata=meta)
    meta["speaker"] = "changed"
    assert sample.metadata["speaker"] == "p225"


@pytest.mark.parametrize("bad", ["", None, 3])
def test_sample_id_must_be_a_non_empty_string(bad):
    with pytest.raises(ValueError, match="sample id must be a non-empty string"):
        Sample(id=bad, parts=(Text("x"),))


def test_request_is_frozen_and_coerces_modality():
    request = Request(sample_id="s1", parts=[Text("a")], output_modality="audio", generation={"top_p": 0.7})
    assert request.output_modality is Modality.AUDIO
    assert isinstance(request.parts, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.output_modality = Modality.TEXT
    with pytest.raises(TypeError):
        request.generation["top_p"] = 1.0
    with pytest.raises(ValueError):
        Request(sample_id="s1", parts=(), output_modality="smell")


def test_output_and_parts_are_frozen():
    output = Output(text="hi", media=[Audio("x.wav", 16000)])
    assert isinstance(output.media, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        output.text = "changed"
    with pytest.raises(dataclasses.FrozenInstanceError):
        output.media[0].path = "y.wav"
    with pytest.raises(dataclasses.FrozenInstanceError):
        Text("a").text = "b"


# -- JSON ---------------------------------------------------------------------------------------


def test_output_json_round_trip_with_media_parts():
    output = Output(
        text="a caption",
        media=(Audio("media/s1.wav", 24000), Audio("media/s1b.wav"), Image("media/s1.png"), Video("media/s1.mp4"),
               Text("inline")),
        n_input_tokens=7,
        n_output_tokens=3,
    )
    data = json.loads(json.dumps(output.to_json()))  # through real JSON text, as the store does
    assert data["media"][0] == {"type": "audio", "path": "media/s1.wav", "sample_rate": 24000}
    assert data["media"][1] == {"type": "audio", "path": "media/s1b.wav"}  # None fields are left out
    assert [m["type"] for m in data["media"]] == ["audio", "audio", "image", "video", "text"]
    back = Output.from_json(data)
    assert back == output
    assert [type(p) for p in back.media] == [Audio, Audio, Image, Video, Text]
    assert back.modalities() == {Modality.TEXT, Modality.AUDIO, Modality.IMAGE, Modality.VIDEO}
    assert back.ok


def test_failed_output_round_trips_as_failure():
    output = Output.failure("cuda out of memory")
    back = Output.from_json(json.loads(json.dumps(output.to_json())))
    assert back == output
    assert not back.ok and back.error == "cuda out of memory" and back.media == () and back.text is None
    assert back.modalities() == frozenset()


def test_output_from_minimal_json():
    assert Output.from_json({"text": "x"}) == Output(text="x")


@pytest.mark.parametrize("part", [Text("t"), Image("i.png"), Audio("a.wav"), Audio("a.wav", 8000), Video("v.mp4")])
def test_part_round_trip(part):
    data = part_to_json(part)
    assert data["type"] == part.modality.value
    assert part_from_json(data) == part


def test_part_from_json_unknown_type():
    data = {"type": "smell", "path": "x"}
    with pytest.raises(ValueError, match="unknown part type 'smell'"):
        part_from_json(data)
    assert data == {"type": "smell", "path": "x"}  # the caller's dict is not consumed


def test_part_from_json_does_not_mutate_input():
    data = {"type": "audio", "path": "a.wav", "sample_rate": 16000}
    part_from_json(data)
    assert data == {"type": "audio", "path": "a.wav", "sample_rate": 16000}


# -- Request helpers --------------------------------------------------------------------------


def test_request_text_and_size():
    request = Request(sample_id="s1", parts=(Text("abc"), Image("x.png"), Text("de"), Audio("y.wav")))
    assert request.text == "abcde"
    assert request.size() == 5 + 2 * 1000
    assert request.modalities() == {Modality.TEXT, Modality.IMAGE, Modality.AUDIO}
    assert Request(sample_id="s", parts=(Text("x" * 900),)).size() < Request(sample_id="s", parts=(Image("p"),)).size()
    assert Request(sample_id="s", parts=()).size() == 0


# -- capabilities -------------------------------------------------------------------------------


def test_dummy_adapter_satisfies_protocol():
    assert isinstance(DummyAdapter(), ModelAdapter)


def test_check_capabilities_accepts_a_possible_pairing():
    check_capabilities(DummyAdapter(), needs_inputs=frozenset({Modality.TEXT}), produces=Modality.AUDIO)


def test_check_capabilities_refuses_text_only_model_on_tts():
    adapter = DummyAdapter(outputs=["text"])
    with pytest.raises(CapabilityError, match="wants audio output but the model writes only text"):
        check_capabilities(adapter, needs_inputs=frozenset({Modality.TEXT}), produces=Modality.AUDIO)


def test_check_capabilities_reports_missing_inputs_and_output_together():
    adapter = DummyAdapter(name="blind", inputs=["text"], outputs=["text"])
    with pytest.raises(CapabilityError) as info:
        check_capabilities(adapter, needs_inputs=frozenset({Modality.IMAGE, Modality.AUDIO, Modality.TEXT}),
                           produces=Modality.IMAGE)
    message = str(info.value)
    assert "'blind'" in message
    assert "reads audio, image but the model reads only text" in message
    assert "wants image output" in message
    assert isinstance(info.value, ConfigError)  # the CLI turns it into exit code 2


def test_run_refuses_text_only_model_on_tts_before_generating(tmp_path):
    with pytest.raises(ConfigError, match="wants audio output but the model writes only text") as info:
        mio_eval.run("tts_demo", "dummy", ["model.outputs=[text]", f"paths.results_dir={tmp_path}"])
    assert isinstance(info.value, CapabilityError)
    assert not list(tmp_path.rglob("predictions.jsonl"))
    assert not list(tmp_path.rglob("*.wav"))
    assert not (tmp_path / "dummy" / "tts_demo").exists()
