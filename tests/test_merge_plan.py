"""#13 merge and resume cost: rank 0 places the shards' lines by its plan (``merge_shards(...,
dealt=...)``: no id read or looked up), the store loads ``predictions.jsonl`` as undecoded lines
keyed by id, and lines are written in chunks with one fsync. Every fast path must give the bytes,
records and attempts of the slow one, and fall back to it on anything it does not vouch for."""

import errno
import json
import os

import pytest

import mio_eval.recordlines
import mio_eval.shards
import mio_eval.storeio
from mio_eval.distributed import ShardWriter, balance, merge_shards
from mio_eval.errors import StoreError, StoreWriteError
from mio_eval.recordlines import fast_ids, load_records, planned, whole_lines
from mio_eval.store import PredictionStore

IDS = [f"s{i}" for i in range(9)] + ["é \u2028x", "tab\tid"]


def _record(sample_id, text, error=None, **extra):
    """A record in ``predictions.record``'s key order (id first)."""
    return {"id": sample_id, "prompt": [{"type": "text", "text": text}], "output": {"text": text, "error": None},
            "prediction": None if error else text, "error": error, "time_s": 0.1, "input_digest": "d", **extra}


def _plan(ids, world=3):
    return balance([len(i) % 4 + 1 for i in ids], world)


def _write(run_dir, ids, dealt, edit=None):
    """The shards ``dealt`` makes (rank r writes its samples in its order); ``edit(rank, records)``
    may change a rank's records before they are written."""
    vouched = {}
    for rank, mine in enumerate(dealt):
        if mine:
            records = [_record(ids[i], f"P-{ids[i]}", error="oom" if i == 2 else None) for i in mine]
            with ShardWriter(run_dir, rank) as writer:
                writer.append(edit(rank, records) if edit else records)
            voucher = writer.voucher([ids[i] for i in mine])
            if voucher is not None:
                vouched[voucher["name"]] = voucher["bytes"]
    return vouched


def _merge(tmp_path, name, ids, dealt, *, plan, edit=None, stored=(), monkeypatch=None):
    """Merge the same shards with or without the plan: (bytes, records, attempts, placed by plan)."""
    run_dir = tmp_path / name
    by_id = []
    real = mio_eval.shards._merge

    def spy(*args):
        by_id.append(True)
        return real(*args)

    monkeypatch.setattr(mio_eval.shards, "_merge", spy)
    with PredictionStore(run_dir).open(fingerprint="f", run_info={}) as store:
        if stored:
            store.append(list(stored))
        _write(run_dir, ids, dealt, edit)
        merge_shards(store, ids, dealt=dealt if plan else None)
        assert not (run_dir / "shards").exists()
        records = {i: store.get(i) for i in store.done_ids}
        attempts = {i: store.attempts(i) for i in store.done_ids}
    with PredictionStore(run_dir).open(fingerprint="f", run_info={}) as store:  # loads what was written
        assert {i: store.get(i) for i in store.done_ids} == records
    placed = not by_id
    return (run_dir / "predictions.jsonl").read_bytes(), records, attempts, placed


def _both(tmp_path, monkeypatch, ids, dealt, **kw):
    fast = _merge(tmp_path, "plan", ids, dealt, plan=True, monkeypatch=monkeypatch, **kw)
    slow = _merge(tmp_path, "by_id", ids, dealt, plan=False, monkeypatch=monkeypatch, **kw)
    assert fast[:3] == slow[:3]  # same bytes, records, attempts
    return fast


def test_planned_merge_places_lines_without_reading_ids(tmp_path, monkeypatch):
    ids = [i for i in IDS if "\t" not in i]
    dealt = _plan(ids)
    assert all(dealt)
    data, records, attempts, placed = _both(tmp_path, monkeypatch, ids, dealt)
    assert placed
    assert [json.loads(x)["id"] for x in data.splitlines()] == ids  # the dataset order
    assert records["s2"]["error"] == "oom" and set(attempts.values()) == {1}
    # The planned path never reads an id: with the id reader broken it merges the same bytes.
    monkeypatch.setattr(mio_eval.recordlines, "fast_ids", lambda *a: pytest.fail("ids read"))
    with PredictionStore(tmp_path / "again").open(fingerprint="f", run_info={}) as store:
        _write(tmp_path / "again", ids, dealt)
        assert merge_shards(store, ids, dealt=dealt) == len(ids)
    assert (tmp_path / "again" / "predictions.jsonl").read_bytes() == data


def _swap(rank, records):
    return records[::-1] if rank == 0 else records


def _drop_last(rank, records):
    return records[:-1] if rank == 1 else records


def _extra(rank, records):
    return records + [_record("zz", "Z")] if rank == 1 else records


def _attempt(rank, records):
    return [dict(r, attempt=3) if r["id"] == "s4" else r for r in records]


def _nested_attempt(rank, records):  # a key named attempt below the top level: copied as is
    return [dict(r, output={"text": "x", "attempt": 1}) if r["id"] == "s4" else r for r in records]


def _old_order(rank, records):  # a line not in the fast form (an older writer's key order)
    return [{"prediction": r["prediction"], **r} if r["id"] == "s5" else r for r in records]


def _duplicate(rank, records):
    return records + [_record("s0", "P-s0")] if rank == 2 else records


@pytest.mark.parametrize("edit", [_swap, _drop_last, _extra, _attempt, _nested_attempt, _old_order, _duplicate])
def test_shards_unlike_the_plan_merge_by_id_with_the_same_result(tmp_path, monkeypatch, edit):
    ids = [i for i in IDS if "\t" not in i]
    dealt = _plan(ids)
    data, records, _, placed = _both(tmp_path, monkeypatch, ids, dealt, edit=edit)
    assert not placed
    if edit is _attempt:  # the stray attempt key is dropped, the line encoded again
        assert b'"attempt"' not in data and records["s4"]["prediction"] == "P-s4"
    if edit is _extra:
        assert data.splitlines()[-1].startswith(b'{"id": "zz", ')  # an id not in order: after, by id


def test_escaped_ids_and_a_stored_retry_merge_by_id(tmp_path, monkeypatch):
    ids = IDS + ['q"uote', "back\\slash"]  # ids json.dumps escapes: never planned
    dealt = _plan(ids)
    assert not _both(tmp_path / "escaped", monkeypatch, ids, dealt)[3]
    ids = [i for i in IDS if "\t" not in i]
    dealt = _plan(ids)  # s2 failed in an earlier run and is generated again (a retry)
    _, records, attempts, placed = _both(tmp_path / "retry", monkeypatch, ids, dealt,
                                         stored=[_record("s2", "old", error="boom")])
    assert not placed and attempts["s2"] == 2 and records["s2"]["attempt"] == 2


def test_torn_last_line_and_bad_plans_fall_back(tmp_path, monkeypatch):
    ids = [i for i in IDS if "\t" not in i]
    dealt = _plan(ids)
    data = _both(tmp_path / "plain", monkeypatch, ids, dealt)[0]
    run_dir = tmp_path / "torn"  # a killed rank's last line, cut: dropped, that sample is missing
    with PredictionStore(run_dir).open(fingerprint="f", run_info={}) as store:
        _write(run_dir, ids, dealt)
        shard = next((run_dir / "shards").glob("rank-1-*"))
        shard.write_bytes(shard.read_bytes()[:-7])
        assert merge_shards(store, ids, dealt=dealt) == len(ids) - 1
    lost = b'{"id": "%s", ' % ids[dealt[1][-1]].encode()
    assert (run_dir / "predictions.jsonl").read_bytes() == b"".join(
        x + b"\n" for x in data.splitlines() if not x.startswith(lost))
    for n, bad in enumerate(([dealt[0], dealt[0] + dealt[1], dealt[2]],  # a position dealt twice
                             [dealt[0], dealt[2], dealt[1]],  # the ranks' lists swapped
                             [*dealt, [0]])):  # a rank with samples but no shard
        run_dir = tmp_path / f"bad{n}"
        with PredictionStore(run_dir).open(fingerprint="f", run_info={}) as store:
            _write(run_dir, ids, dealt)
            merge_shards(store, ids, dealt=bad)
        assert (run_dir / "predictions.jsonl").read_bytes() == data


def test_shards_written_by_a_plan_that_deals_a_sample_twice_merge_by_id(tmp_path, monkeypatch):
    ids = ["a", "b", "c"]
    twice = [[0, 1], [1]]  # as many positions as samples, each shard as dealt, but b twice and c never
    data, records, _, placed = _both(tmp_path, monkeypatch, ids, twice)
    assert not placed and list(records) == ["a", "b"]  # b's second copy is skipped, as by id
    assert [json.loads(x)["id"] for x in data.splitlines()] == ["a", "b"]


def test_fast_form_rules():
    lines = [b'{"id": "x", "a": 1}', b'{"id": "\xc3\xa9", "b": {"id": "n", "c": 2}}', b'{"id": "z", }']
    body = b"".join(line + b"\n" for line in lines)
    assert whole_lines(body + b'{"id": "torn", "a"') == (body, lines)
    assert fast_ids(body, lines) == ["x", "é", "z"] and fast_ids(b"", []) == []
    for line in (b'{"a": 1, "id": "x"}', b'{"id": "x\\"y", "a": 1}', b'{"id": "\xff", "a": 1}', b"", b"[1]",
                 b'{"id": "x", "a": 1', b'{"id": "x",}', b' {"id": "x", "a": 1}'):
        for both in ([line, lines[0]], [lines[0], line]):  # first or later line
            assert fast_ids(b"".join(x + b"\n" for x in both), both) is None, both
    assert planned(lines, ["x", "é", "z"]) and planned([], [])
    assert not planned(lines, ["x", "é"]) and not planned(lines, ["x", "e", "z"])
    assert not planned([b'{"id": "x", "a": 1'], ["x"])  # no closing brace
    assert not planned([b'{"id": "x"}'], ["x"])  # no other key: not the fast form
    for sample_id in ('q"', "b\\", "t\t", "n\n", "\ud800"):  # json.dumps escapes them; a lone surrogate
        line = json.dumps({"id": sample_id, "a": 1}, ensure_ascii=False).encode("utf-8", "surrogatepass")
        assert not planned([line], [sample_id])
    assert planned([json.dumps({"id": "é \u2028", "a": 1}, ensure_ascii=False).encode()], ["é \u2028"])


def test_store_loads_lines_lazily_as_the_full_decode(tmp_path):
    run_dir = tmp_path / "run"
    with PredictionStore(run_dir).open(fingerprint="f", run_info={}) as store:
        store.append([_record("a", "A"), _record("b", "B", error="boom"), _record("c", "C")])
        store.append([_record("b", "B2", error="boom again")])
        store.append([_record("b", "B3")])
    path = run_dir / "predictions.jsonl"
    body = path.read_bytes()
    fast, slow = load_records(body, path), load_records(body, path, fast=False)
    assert type(fast[0]["a"]) is bytes and fast[0]["b"]["prediction"] == "B3" and fast[1] == {"b": 3}
    decoded = {i: json.loads(r) if type(r) is bytes else r for i, r in fast[0].items()}
    assert decoded == slow[0] and list(decoded) == list(slow[0]) == ["a", "b", "c"]
    assert {i: slow[1].get(i, 1) for i in slow[0]} == {"a": 1, "b": 3, "c": 1}
    with PredictionStore(run_dir).open(fingerprint="f", run_info={}) as store:
        assert store.attempts("b") == 3 and store.attempts("a") == 1 and store.failed_ids == []
        assert store.get("b")["attempt"] == 3
    # A second success is refused at its line, as the full decode does.
    path.write_bytes(body + json.dumps(_record("a", "A-again")).encode() + b"\n")
    with pytest.raises(StoreError, match=r"predictions\.jsonl:6 repeats sample 'a'"):
        PredictionStore(run_dir).open(fingerprint="f", run_info={})
    # A repeated sample's damaged line: the full decode's message (the line, the count).
    path.write_bytes(body + b'{"id": "a", "x": }\n')
    with pytest.raises(StoreError, match=r"predictions\.jsonl:6 is corrupt \(1 bad line"):
        PredictionStore(run_dir).open(fingerprint="f", run_info={})
    # A line in the fast form damaged inside (never written by mio-eval) is found when first read.
    path.write_bytes(body.replace(b'"prediction": "C"', b'"prediction": C"'))
    with PredictionStore(run_dir).open(fingerprint="f", run_info={}) as store:
        assert store.get("a")["prediction"] == "A"
        with pytest.raises(StoreError, match="sample 'c' is corrupt.*mio-eval repair"):
            store.get("c")


def test_chunked_write_is_cut_back_on_a_full_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(mio_eval.storeio, "_CHUNK_LINES", 2)
    real_write, calls = os.write, []

    def flaky(fd, data):
        calls.append(len(data))
        if len(calls) == 2:  # the second chunk: half written, then the disk is full
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    run_dir = tmp_path / "run"
    with PredictionStore(run_dir).open(fingerprint="f", run_info={}) as store:
        store.append([_record("a", "A")])
        before = (run_dir / "predictions.jsonl").read_bytes()
        lines = [json.dumps(_record(i, i)).encode() for i in ("b", "c", "d", "e")]
        monkeypatch.setattr(os, "write", flaky)
        with pytest.raises(StoreWriteError, match="No space left"):
            store.append_lines(["b", "c", "d", "e"], lines)
        monkeypatch.setattr(os, "write", real_write)
        assert (run_dir / "predictions.jsonl").read_bytes() == before and set(store.done_ids) == {"a"}
        store.append_lines(["b", "c", "d", "e"], lines)  # written in 2 chunks, one fsync
    assert (run_dir / "predictions.jsonl").read_bytes() == before + b"".join(x + b"\n" for x in lines)


def test_resume_reads_outcomes_from_line_tails_as_the_decoded_records(tmp_path):
    from mio_eval.recordlines import succeeded_digest

    tricky = [
        _record("a", "A"), _record("b", "B", error="boom"), _record("c", "C", input_digest=None),
        _record("d", "D", supersedes="input changed"), _record("e", "E", attempt=2),
        {**_record("f", "F"), "more": {"error": None, "time_s": 1, "input_digest": "nested"}},  # last: a dict
        {**_record("g", "G"), "error": "late"},  # (the key keeps its place: not the tail's form)
        {**_record("h", "H"), "input_digest": "x", "note": 1}, _record("i", "I", error=""),
    ]
    for record in tricky:
        line = json.dumps(record, ensure_ascii=False).encode()
        tail, decoded = succeeded_digest(line), json.loads(line)
        if tail is not None:  # read without decoding: exactly what decoding gives
            assert decoded["error"] is None and tail == (decoded["input_digest"],), record
    repeated = b'{"id": "r", "error": "first", "time_s": 1, "input_digest": "a", "error": null, "time_s": 2, "input_digest": "b"}'
    assert succeeded_digest(repeated) == ("b",) and json.loads(repeated)["error"] is None  # the last one counts
    assert [succeeded_digest(json.dumps(r).encode()) is not None for r in tricky] == [
        True, False, True, True, False, False, False, False, False]
    run_dir = tmp_path / "run"
    with PredictionStore(run_dir).open(fingerprint="f", run_info={}) as store:
        for record in tricky:
            store.append([record])
    with PredictionStore(run_dir).open(fingerprint="f", run_info={}) as store:
        outcomes = {r["id"]: store.outcome(r["id"]) for r in tricky}
        assert type(store._records["a"]) is bytes and type(store._records["b"]) is dict  # only failures decoded
        assert outcomes == {i: (bool(store.get(i)["error"]), store.get(i)["input_digest"]) for i in outcomes}
        assert store.outcome("zz") is None


def test_sample_digest_is_json_dumps_digest(tmp_path):
    """The resume digests every sample: ``sample_digest`` builds json.dumps's bytes itself."""
    import hashlib
    import random

    from mio_eval.samples import file_digest, sample_digest
    from mio_eval.types import Audio, Image, Sample, Text

    def reference(sample):
        parts = [["text", p.text] if isinstance(p, Text) else [p.modality.value, file_digest(p.path)]
                 for p in sample.parts]
        blob = json.dumps({"parts": parts, "choices": list(sample.choices)}, ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

    (tmp_path / "a.wav").write_bytes(b"RIFF")
    rng = random.Random(0)
    alphabet = [chr(c) for c in range(0x40)] + list('"\\/é\u2028\u2029\x7f\x85€𝄞 abc')
    for n in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
        parts = [Text(text)] + ([Audio(str(tmp_path / "a.wav"))] if n % 3 == 0 else [])
        parts += [Image(str(tmp_path / "missing.png"))] if n % 5 == 0 else []
        choices = tuple(text[: k + 1] for k in range(n % 4))
        sample = Sample(id=f"s{n}", parts=tuple(parts), targets=("x",), choices=choices)
        assert sample_digest(sample) == reference(sample), (text, choices)
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate fails as json.dumps's bytes do
        sample_digest(Sample(id="u", parts=(Text("\ud800"),), targets=("x",)))


def test_vouched_shards_are_not_read_back_and_changed_ones_are(tmp_path, monkeypatch):
    """A rank's ShardWriter vouches for what it wrote (the dealt ids, in order, fast form, no
    attempt key, its size); rank 0 then skips the checks that read the shard back."""
    ids = [i for i in IDS if "\t" not in i]
    dealt = _plan(ids)
    reference = _merge(tmp_path, "by_id", ids, dealt, plan=False, monkeypatch=monkeypatch)[0]
    for edit in (None, _swap, _attempt, _old_order, _duplicate):
        vouched = _write(tmp_path / "w" / str(edit and edit.__name__), ids, dealt, edit)
        assert (len(vouched) == len(dealt)) == (edit is None)  # any of these: that rank does not vouch
    escaped = ids + ['q"uote']
    assert len(_write(tmp_path / "escaped", escaped, _plan(escaped))) == len(dealt) - 1

    def merged(name, change=None):
        run_dir = tmp_path / name
        with PredictionStore(run_dir).open(fingerprint="f", run_info={}) as store:
            vouched = _write(run_dir, ids, dealt)
            if change:
                change(next((run_dir / "shards").glob("rank-1-*")))
            merge_shards(store, ids, dealt=dealt, vouched=vouched)
        return (run_dir / "predictions.jsonl").read_bytes()

    checked = []
    real = mio_eval.recordlines.planned
    monkeypatch.setattr(mio_eval.recordlines, "planned", lambda *a: checked.append(1) or real(*a))
    assert merged("vouched") == reference and not checked  # nothing read back
    # A line added after the writer vouched: the size differs, the shard is checked, merged by id.
    extra = json.dumps(_record("zz", "Z")).encode() + b"\n"
    assert merged("extra", lambda p: p.write_bytes(p.read_bytes() + extra)) == reference + extra
    assert checked == [1]
    # A torn line after the vouched ones is dropped: what was vouched for is still all there.
    assert merged("torn", lambda p: p.write_bytes(p.read_bytes() + b'{"id": "zz", "pr')) == reference


def test_rank_zero_merges_its_own_shard_from_the_lines_it_kept(tmp_path, monkeypatch):
    ids = [i for i in IDS if "\t" not in i]
    dealt = _plan(ids)
    reference = _merge(tmp_path, "by_id", ids, dealt, plan=False, monkeypatch=monkeypatch)[0]

    def merged(name, change):
        run_dir = tmp_path / name
        with PredictionStore(run_dir).open(fingerprint="f", run_info={}) as store:
            vouched = _write(run_dir, ids, dealt)
            shard = next((run_dir / "shards").glob("rank-0-*"))
            held = {shard.name: shard.read_bytes().split(b"\n")[:-1]}  # what rank 0's ShardWriter(keep=True) keeps
            change(shard)
            merge_shards(store, ids, dealt=dealt, vouched=vouched, held=held)
        return (run_dir / "predictions.jsonl").read_bytes()

    # As long as vouched: not read (the same bytes overwritten with garbage do not reach the merge).
    assert merged("held", lambda p: p.write_bytes(b"x" * p.stat().st_size)) == reference
    # Longer (a line added after): read from the file, checked, merged by id.
    extra = json.dumps(_record("zz", "Z")).encode() + b"\n"
    assert merged("grown", lambda p: p.write_bytes(p.read_bytes() + extra)) == reference + extra
    with ShardWriter(tmp_path / "keep", 0, keep=True) as writer:
        writer.append([_record("a", "A"), _record("b", "B")])
    assert writer.lines == writer.predictions_path.read_bytes().split(b"\n")[:-1]
    with ShardWriter(tmp_path / "keep", 1) as other:
        assert other.lines is None


def test_merged_block_is_indexed_when_first_needed(tmp_path):
    run_dir = tmp_path / "run"
    lines = [json.dumps(_record(i, i)).encode() for i in ("a", "b")]
    with PredictionStore(run_dir).open(fingerprint="f", run_info={}) as store:
        store.append([_record("x", "X", error="boom")])
        store.append_merged(["a", "b"], lines)
        assert store._pending and len(store) == 3  # counted without indexing
        assert store.get("b")["prediction"] == "b" and not store._pending
        assert set(store.done_ids) == {"x", "a", "b"} and store.attempts("a") == 1 and store.failed_ids == ["x"]
        with pytest.raises(StoreError, match="'a' is already stored"):
            store.append([_record("a", "again")])
        store.append_merged(["c", "c"], lines)  # a broken promise (an id twice) is found at the index
        with pytest.raises(StoreError, match="a merge wrote a sample twice"):
            store.get("c")
    assert (run_dir / "predictions.jsonl").read_bytes().count(b"\n") == 5
