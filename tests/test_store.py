import json

import pytest

from mio_eval.errors import StoreError
from mio_eval.store import PredictionStore


def _open(run_dir, fingerprint="fp1", **kw):
    return PredictionStore(run_dir).open(fingerprint=fingerprint, run_info={"task": "t"}, **kw)


def _rec(i, error=None):
    return {"id": f"s{i}", "prediction": str(i), "error": error}


def test_append_then_reopen_resumes(tmp_path):
    with _open(tmp_path) as store:
        store.append([_rec(0), _rec(1)])
        store.append([_rec(2, error="boom")])
    with _open(tmp_path) as store:
        assert store.done_ids == {"s0", "s1", "s2"}
        assert store.get("s2")["error"] == "boom"
    assert json.loads((tmp_path / "run.json").read_text())["fingerprint"] == "fp1"


def test_truncated_last_line_is_dropped(tmp_path):
    with _open(tmp_path) as store:
        store.append([_rec(0), _rec(1)])
    path = tmp_path / "predictions.jsonl"
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"id": "s2", "predic')
    with _open(tmp_path) as store:
        assert store.dropped_partial_line
        assert store.done_ids == {"s0", "s1"}
        store.append([_rec(2)])
    lines = path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["s0", "s1", "s2"]


def test_fingerprint_mismatch_is_refused(tmp_path):
    with _open(tmp_path) as store:
        store.append([_rec(0)])
    with pytest.raises(StoreError, match="fingerprint fp1 but this config is fp2"):
        _open(tmp_path, fingerprint="fp2")
    with _open(tmp_path, fingerprint="fp2", overwrite=True) as store:
        assert len(store) == 0


def test_second_process_is_locked_out(tmp_path):
    with _open(tmp_path):
        with pytest.raises(StoreError, match="in use"):
            _open(tmp_path)
    with _open(tmp_path) as store:  # released on close
        assert len(store) == 0


def test_corrupt_middle_line_and_duplicates(tmp_path):
    with _open(tmp_path) as store:
        store.append([_rec(0)])
        with pytest.raises(StoreError, match="already stored"):
            store.append([_rec(0)])
    path = tmp_path / "predictions.jsonl"
    path.write_text("not json\n" + path.read_text())
    with pytest.raises(StoreError, match="corrupt"):
        _open(tmp_path)


def test_score_only_needs_an_existing_run(tmp_path):
    with pytest.raises(StoreError, match="run stage=generate first"):
        _open(tmp_path / "none", create=False)
