"""#13 merge cost: ``merge_shards`` reads sample ids from the lines' fast form and decodes in full
only the lines of samples that need a decision (more than one record) and lines not in the fast
form; the result must be the same bytes and records as decoding every line (the fallback)."""

import json
import re

import pytest

import mio_eval.fastjson
import mio_eval.recordlines
import mio_eval.store
from mio_eval.distributed import ShardWriter, merge_shards
from mio_eval.errors import StoreError
from mio_eval.recordlines import decode_line, fast_lines
from mio_eval.store import PredictionStore

ORDER = ["a", "b", "c", "d", "é \u2028x", 'q"uote', "e", "f"]


def _record(sample_id, text, error=None, **extra):
    """A record in ``predictions.record``'s key order (id first)."""
    return {"id": sample_id, "prompt": [{"type": "text", "text": text}], "output": {"text": text, "error": None},
            "prediction": None if error else text, "error": error, "time_s": 0.1, "input_digest": "d", **extra}


def _write_shards(run_dir):
    with ShardWriter(run_dir, 0) as w0, ShardWriter(run_dir, 1) as w1:
        w0.append([_record("a", "A"), _record("b", "B0", error="boom"), _record("é \u2028x", "U")])
        w0.append([_record('q"uote', "Q"), _record("f", "F", attempt=3)])  # escaped id; a stray attempt key
        w1.append([_record("b", "B1")])  # b: failed on rank 0, then its retry succeeded (another world size)
        w1.append([_record("e", "E"), _record("a", "A")])  # a: the same record twice (a repeated merge)
    shard = w1.predictions_path
    old = {"prediction": "C", "error": None, "id": "c", "prompt": [], "output": {"text": "C"}, "time_s": 0.1,
           "input_digest": "d"}  # an older writer's key order
    shard.write_bytes(shard.read_bytes() + json.dumps(old, ensure_ascii=False).encode() + b"\n"
                      + b'{"id": "d", "prompt": [{"ty')  # a killed rank's torn last line


def _merge(tmp_path, name, monkeypatch, *, fast):
    run_dir = tmp_path / name
    decoded = []
    real = mio_eval.fastjson.loads

    def counting(data):
        record = real(data)
        decoded.append(record["id"])
        return record

    with monkeypatch.context() as m:
        if not fast:  # no line is in the fast form: every line goes through the full decode
            m.setattr(mio_eval.recordlines, "_FAST", re.compile(rb"(?!)"))
            m.setattr(mio_eval.recordlines, "_FIRST", re.compile(rb"(?!)"))
        m.setattr(mio_eval.fastjson, "loads", counting)
        m.setattr(mio_eval.recordlines, "loads", counting)
        m.setattr(mio_eval.store, "loads", counting)
        with PredictionStore(run_dir).open(fingerprint="f", run_info={}) as store:
            store.append([_record("e", "E0", error="oom")])  # a failure stored by an earlier run
            _write_shards(run_dir)
            assert merge_shards(store, ORDER) == 8
            merge_decoded = list(decoded)
            records = {i: store.get(i) for i in store.done_ids}
            attempts = {i: store.attempts(i) for i in store.done_ids}
    return (run_dir / "predictions.jsonl").read_bytes(), records, attempts, merge_decoded


def test_fast_path_and_full_decode_merge_the_same(tmp_path, monkeypatch):
    fast, fast_records, fast_attempts, decoded = _merge(tmp_path, "fast", monkeypatch, fast=True)
    slow, slow_records, slow_attempts, slow_decoded = _merge(tmp_path, "slow", monkeypatch, fast=False)
    assert fast == slow and fast_records == slow_records and fast_attempts == slow_attempts
    rows = [json.loads(line) for line in fast.splitlines()]
    assert [(r["id"], r["prediction"], r.get("attempt")) for r in rows] == [
        ("e", None, None),  # stored before the merge
        ("a", "A", None), ("b", None, None), ("c", "C", None), ("é \u2028x", "U", None), ('q"uote', "Q", None),
        ("e", "E", 2), ("f", "F", None),  # e's retry after its stored failure; f's stray attempt key dropped
        ("b", "B1", 2),  # the second round: b's retry follows its failed attempt
    ]
    assert "d" not in fast_records  # the torn line is dropped: d will be generated again
    assert fast_attempts == {"e": 2, "a": 1, "b": 2, "c": 1, "é \u2028x": 1, 'q"uote': 1, "f": 1}
    # The fast path decodes only: samples with two records (a, b), the one stored before (e: its
    # shard line), and lines not in the fast form (c: old key order; q"uote: escaped id; f: attempt key).
    assert sorted(set(decoded)) == sorted(["a", "b", "e", "c", 'q"uote', "f"])
    assert "é \u2028x" not in decoded and len(decoded) == 8  # a and b: both their lines
    assert sorted(slow_decoded) != sorted(decoded) and "é \u2028x" in slow_decoded
    # The merged lines are copied, not encoded again (fast-form lines are the shard's bytes).
    assert b'{"id": "a", "prompt": [{"type": "text", "text": "A"}]' in fast


def test_merged_store_reads_lines_lazily_and_reopens(tmp_path):
    run_dir = tmp_path / "run"
    with PredictionStore(run_dir).open(fingerprint="f", run_info={}) as store:
        with ShardWriter(run_dir, 0) as w:
            w.append([_record("a", "A"), _record("b", "B", error="boom")])
        assert merge_shards(store, ["b", "a"]) == 2
        assert type(store._records["a"]) is bytes  # not decoded by the merge
        assert store.failed_ids == ["b"] and store.get("a") == _record("a", "A")
        assert store.attempts("a") == 1 and store.attempts("zz") == 0
        with pytest.raises(StoreError, match="already stored"):
            store.append_lines(["a"], [json.dumps(_record("a", "A")).encode()])
        store.append([_record("b", "B2")])  # a retry of a merged failure
        assert store.attempts("b") == 2
        store._records["a"] = b'{"id": "a", "pred'  # a line damaged after the fast form
        with pytest.raises(StoreError, match="corrupt"):
            store.get("a")
    with PredictionStore(run_dir).open(fingerprint="f", run_info={}) as store:
        assert [store.get(i)["prediction"] for i in ("b", "a")] == ["B2", "A"] and store.attempts("b") == 2


def test_fast_form_rules():
    lines = [b'{"id": "x", "a": 1}', b'{"id": "\xc3\xa9", "b": [1]}']
    assert fast_lines(b"".join(line + b"\n" for line in lines)) == (["x", "é"], lines)
    assert fast_lines(b"") == ([], [])
    for line in (b'{"a": 1, "id": "x"}', b'{"id": "x\\"y", "a": 1}', b'{"id": "\xff", "a": 1}', b"", b"[1]"):
        assert fast_lines(lines[0] + b"\n" + line + b"\n") is None  # one such line: read line by line
    assert decode_line(lines[0]) == ("x", None)
    assert decode_line(b'{"a": 1, "id": "x"}') == ("x", {"a": 1, "id": "x"})
    assert decode_line(b'{"id": "x\\"y", "a": 1}') == ('x"y', {"id": 'x"y', "a": 1})
    assert decode_line(b'{"id": 1, "a": 1}') == decode_line(b"") == decode_line(b"[1]") == (None, None)
