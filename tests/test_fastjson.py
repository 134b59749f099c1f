"""``mio_eval.fastjson.loads`` gives exactly ``json.loads``'s objects, and fails where it fails."""

from __future__ import annotations

import json

import pytest

from mio_eval import fastjson

CASES = [
    b'{"id": "q1", "output": {"text": "a\\u2028b\xc3\xa9", "error": null}, "time_s": 0.307437}',
    b'{"a": 123456789012345678901234567890}',  # orjson would give a float
    b'{"a": 18446744073709551616, "b": -9223372036854775809}',
    b'{"a": NaN, "b": Infinity, "c": -Infinity}',  # json.dumps writes these; orjson refuses them
    b'{"a": "\\ud800"}',  # a lone surrogate escape
    b'{"a": 1, "a": 2}',
    b'[5e-324, 1e308, -0.0, 0.1, 1.5e-07]',
    '{"text": "caf\u00e9 \u2029"}',
]


@pytest.mark.parametrize("line", CASES)
def test_same_objects_as_json_loads(line):
    ours, theirs = fastjson.loads(line), json.loads(line)
    assert repr(ours) == repr(theirs)  # repr: NaN != NaN, and int vs float must differ


@pytest.mark.parametrize("line", [b'{"a": 1', b"\xff\xfe{}", b"", b'{"a": 01}', b"{'a': 1}"])
def test_fails_where_json_loads_fails(line):
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)) as ours:
        fastjson.loads(line)
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)) as theirs:
        json.loads(line)
    assert type(ours.value) is type(theirs.value) or issubclass(type(ours.value), json.JSONDecodeError)


def test_works_without_orjson(monkeypatch):
    monkeypatch.setattr(fastjson, "_orjson", None)
    assert fastjson.loads(CASES[0]) == json.loads(CASES[0])
