"""JSON Lines are split at ``\\n`` only: U+2028, U+2029 and NEL (U+0085) inside a string, which
``json.dumps(..., ensure_ascii=False)`` writes raw and ``str.splitlines()`` splits on, stay in
their line; a bad line is one ConfigError naming ``file:line``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from mio_eval.errors import ConfigError
from mio_eval.jsonl import read_jsonl, read_lines
from mio_eval.tasks.loaders.omnibench import OmniBenchLoader
from mio_eval.tasks.loaders.s2s import SpeechQALoader

SEPARATORS = ("\u2028", "\u2029", "\u0085")


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_line_and_paragraph_separators_and_nel_stay_inside_strings(tmp_path):
    rows = [{"id": str(i), "text": f"before{sep}after"} for i, sep in enumerate(SEPARATORS)]
    path = _write(tmp_path / "a.jsonl", rows)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 6  # what the old readers saw
    assert [r for _, r in read_jsonl(path)] == rows
    assert [n for n, _ in read_jsonl(path)] == [1, 2, 3]
    # CRLF files and blank lines; read_lines keeps the separators too.
    crlf = tmp_path / "b.jsonl"
    crlf.write_bytes(b'{"a": 1}\r\n\r\n{"a": "x\xe2\x80\xa8y"}\r\n')
    assert list(read_jsonl(crlf)) == [(1, {"a": 1}), (3, {"a": "x\u2028y"})]
    assert [line for _, line in read_lines(crlf)] == ['{"a": 1}', "", '{"a": "x\u2028y"}']


def test_bad_lines_name_file_and_line(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{path}:2: malformed JSON \(Expecting value"):
        list(read_jsonl(path))
    path.write_text('{"a": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{path}:2: expected a JSON object, got list$"):
        list(read_jsonl(path))
    assert list(read_jsonl(path, objects=False))[1] == (2, [1, 2])
    path.write_bytes(b'{"a": 1}\n{"a": "\xff"}\n')
    with pytest.raises(ConfigError, match=rf"^{path}:2: not UTF-8"):
        list(read_jsonl(path))
    with pytest.raises(ConfigError, match="not found"):
        list(read_jsonl(tmp_path / "absent.jsonl"))


def test_loaders_read_separators_inside_answers(tmp_path):
    sf.write(tmp_path / "q.wav", np.zeros(160, dtype=np.float32), 16000)
    answers = [f"Paris{sep}France" for sep in SEPARATORS]
    _write(tmp_path / "qa.jsonl", [{"id": f"q{i}", "audio": "q.wav", "answer": a} for i, a in enumerate(answers)])
    samples = SpeechQALoader(path=str(tmp_path / "qa.jsonl"))()
    assert [s.targets[0] for s in samples] == answers
    items = [{"index": i, "question": f"Who{sep}speaks?", "options": ["a", "b", "c", "d"], "answer": "b",
              "audio_path": "x.mp3", "image_path": "x.png", "audio content": f"hi{sep}there"}
             for i, sep in enumerate(SEPARATORS)]
    (tmp_path / "omni" / "dataset").mkdir(parents=True)
    _write(tmp_path / "omni" / "dataset" / "batch-5_1142_20240817.jsonl", items)
    omni = OmniBenchLoader(root=str(tmp_path / "omni"))()
    assert [s.metadata["audio_content"] for s in omni] == [f"hi{sep}there" for sep in SEPARATORS]
