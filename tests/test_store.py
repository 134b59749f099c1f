"""PredictionStore: append-only predictions.jsonl with crash-safe resume, fingerprint and lock."""

import json

import pytest

from mio_eval.errors import ConfigError, StoreError
from mio_eval.store import PredictionStore


def _open(run_dir, fingerprint="fp1", **kw):
    return PredictionStore(run_dir).open(fingerprint=fingerprint, run_info={"task": "t"}, **kw)


def _rec(i, error=None):
    return {"id": f"s{i}", "prediction": str(i), "error": error}


def _ids(path):
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_append_then_reopen_resumes(tmp_path):
    with _open(tmp_path) as store:
        assert len(store) == 0 and store.done_ids == frozenset()
        store.append([_rec(0), _rec(1)])
        store.append([_rec(2, error="boom")])
        assert store.done_ids == {"s0", "s1", "s2"}
    with _open(tmp_path) as store:
        assert store.done_ids == {"s0", "s1", "s2"}
        assert len(store) == 3
        assert store.get("s1") == _rec(1)
        assert store.get("s2")["error"] == "boom"
        assert store.get("s9") is None
        assert not store.dropped_partial_line
        store.append([_rec(3)])
    assert _ids(tmp_path / "predictions.jsonl") == ["s0", "s1", "s2", "s3"]
    info = json.loads((tmp_path / "run.json").read_text())
    assert info == {"fingerprint": "fp1", "task": "t"}


def test_every_append_is_on_disk_as_whole_lines(tmp_path):
    path = tmp_path / "predictions.jsonl"
    with _open(tmp_path) as store:
        store.append([_rec(0), _rec(1)])
        # Flushed before append returns: another reader sees both lines while the store is open.
        data = path.read_bytes()
        assert data.endswith(b"\n") and len(data.splitlines()) == 2
        store.append([{"id": "s2", "prediction": "é ü 中"}])  # non-ASCII kept as UTF-8
    with _open(tmp_path) as store:
        assert store.get("s2")["prediction"] == "é ü 中"


def test_truncated_last_line_is_dropped_and_file_truncated(tmp_path):
    with _open(tmp_path) as store:
        store.append([_rec(0), _rec(1)])
    path = tmp_path / "predictions.jsonl"
    whole = path.read_bytes()
    partial = (json.dumps(_rec(2)) + "\n").encode()[:-9]  # a crash mid-write: no newline at the end
    path.write_bytes(whole + partial)
    with _open(tmp_path) as store:
        assert store.dropped_partial_line
        assert store.done_ids == {"s0", "s1"}
        assert path.read_bytes() == whole  # truncated to whole lines on open
        store.append([_rec(2)])
    assert _ids(path) == ["s0", "s1", "s2"]
    with _open(tmp_path) as store:
        assert not store.dropped_partial_line
        assert store.get("s2") == _rec(2)


def test_partial_line_alone_leaves_an_empty_store(tmp_path):
    _open(tmp_path).close()
    path = tmp_path / "predictions.jsonl"
    path.write_bytes(b'{"id": "s0", "pre')
    with _open(tmp_path) as store:
        assert store.dropped_partial_line and len(store) == 0
    assert path.read_bytes() == b""


def test_fingerprint_mismatch_is_refused_with_clear_message(tmp_path):
    with _open(tmp_path) as store:
        store.append([_rec(0)])
    with pytest.raises(StoreError) as info:
        _open(tmp_path, fingerprint="fp2")
    message = str(info.value)
    assert "fingerprint fp1 but this config is fp2" in message
    assert str(tmp_path) in message
    assert "runner.overwrite=true" in message
    assert isinstance(info.value, ConfigError)
    # The refusal changed nothing and released the lock: the original run still resumes.
    with _open(tmp_path) as store:
        assert store.done_ids == {"s0"}


def test_overwrite_clears_previous_run(tmp_path):
    with _open(tmp_path) as store:
        store.append([_rec(0), _rec(1)])
        store.media_dir.mkdir()
        (store.media_dir / "s0.wav").write_bytes(b"RIFF")
    (tmp_path / "scores.jsonl").write_text('{"id": "s0"}\n')
    (tmp_path / "metrics.json").write_text("{}")
    with _open(tmp_path, fingerprint="fp2", overwrite=True) as store:
        assert len(store) == 0
        assert not (tmp_path / "scores.jsonl").exists()
        assert not (tmp_path / "metrics.json").exists()
        assert not (tmp_path / "media").exists()
        store.append([_rec(5)])
    assert json.loads((tmp_path / "run.json").read_text())["fingerprint"] == "fp2"
    assert _ids(tmp_path / "predictions.jsonl") == ["s5"]


def test_resume_false_starts_over_with_same_fingerprint(tmp_path):
    with _open(tmp_path) as store:
        store.append([_rec(0)])
    with _open(tmp_path, resume=False) as store:
        assert len(store) == 0
    assert not (tmp_path / "predictions.jsonl").read_text()


def test_second_open_is_locked_out(tmp_path):
    first = _open(tmp_path)
    try:
        first.append([_rec(0)])
        with pytest.raises(StoreError, match="in use by another mio-eval process"):
            _open(tmp_path)
        with pytest.raises(StoreError, match="in use"):  # overwrite must not bypass the lock
            _open(tmp_path, overwrite=True)
        assert _ids(tmp_path / "predictions.jsonl") == ["s0"]
    finally:
        first.close()
    with _open(tmp_path) as store:  # released on close
        assert store.done_ids == {"s0"}


def test_corrupt_middle_line_is_refused(tmp_path):
    with _open(tmp_path) as store:
        store.append([_rec(0), _rec(1), _rec(2)])
    path = tmp_path / "predictions.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = '{"id": "s1", "predi\n'
    path.write_text("".join(lines))
    with pytest.raises(StoreError, match=r"predictions\.jsonl:2 is corrupt.*runner\.overwrite=true"):
        _open(tmp_path)
    assert path.read_text() == "".join(lines)  # not "repaired" behind the user's back
    with _open(tmp_path, overwrite=True) as store:
        assert len(store) == 0


def test_repeated_id_on_disk_is_refused(tmp_path):
    with _open(tmp_path) as store:
        store.append([_rec(0), _rec(1)])
    path = tmp_path / "predictions.jsonl"
    path.write_text(path.read_text() + json.dumps(_rec(0)) + "\n")
    with pytest.raises(StoreError, match=r":3 repeats sample 's0'"):
        _open(tmp_path)


def test_duplicate_append_raises_and_writes_nothing(tmp_path):
    path = tmp_path / "predictions.jsonl"
    with _open(tmp_path) as store:
        store.append([_rec(0)])
        before = path.read_bytes()
        with pytest.raises(StoreError, match="'s0' is already stored"):
            store.append([_rec(1), _rec(0)])
        assert path.read_bytes() == before
        assert store.done_ids == {"s0"}  # s1 was not half-added either
        store.append([_rec(1)])
    with _open(tmp_path) as store:
        assert store.done_ids == {"s0", "s1"}


def test_duplicate_within_one_batch_raises_and_writes_nothing(tmp_path):
    path = tmp_path / "predictions.jsonl"
    with _open(tmp_path) as store:
        with pytest.raises(StoreError, match="'s3'"):
            store.append([_rec(3), _rec(4), _rec(3)])
        assert len(store) == 0
    assert path.read_bytes() == b""
    with _open(tmp_path) as store:  # the run is still usable
        assert len(store) == 0


def test_append_on_closed_store_raises(tmp_path):
    store = _open(tmp_path)
    store.close()
    store.close()  # idempotent
    with pytest.raises(RuntimeError, match="not open"):
        store.append([_rec(0)])


def test_invalid_run_json_is_refused(tmp_path):
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(StoreError, match="run.json is not valid JSON"):
        _open(tmp_path)
    with _open(tmp_path, overwrite=True) as store:
        assert len(store) == 0
    assert json.loads((tmp_path / "run.json").read_text())["fingerprint"] == "fp1"


def test_score_only_needs_an_existing_run(tmp_path):
    with pytest.raises(StoreError, match="run stage=generate first"):
        _open(tmp_path / "none", create=False)
    assert not (tmp_path / "none").exists()
    _open(tmp_path / "run").close()
    with _open(tmp_path / "run", create=False) as store:
        assert len(store) == 0
