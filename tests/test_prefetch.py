"""``runner.prefetch``: the next batch is prepared in a background thread while the current one
generates (``mio_eval.prefetch``). Results never depend on it: the same records with and without
it, through out-of-memory halving, a failing ``prepare`` and per-sample failures; on MIO too."""

from __future__ import annotations

import json
import threading

import pytest

from helpers import librispeech_noise
from mio_eval.models.dummy import DummyAdapter
from mio_eval.prefetch import Prefetcher
from mio_eval.types import Output, Request, Text
from test_runner import LONGEST_FIRST, TEXTS, _run


class PreparingAdapter(DummyAdapter):
    """The dummy adapter with a ``prepare`` step: the item of a request is its reversed text (or
    the failure of a sample listed in ``bad``); ``generate`` answers from the items, prepared
    there when none are given, exactly as MIO's adapter does."""

    def __init__(self, *, bad=(), prepare_raises=False, oom_above=None):
        super().__init__()
        self.bad, self.prepare_raises, self.oom_above = set(bad), prepare_raises, oom_above
        self.prepare_threads: list[str] = []
        self.calls: list[tuple[list[str], bool]] = []  # (sample ids, got prepared items)

    def _item(self, request):
        if request.sample_id in self.bad:
            return ValueError(f"corrupt input of {request.sample_id}")
        return (request.sample_id, request.parts[0].text[::-1])

    def prepare(self, requests):
        self.prepare_threads.append(threading.current_thread().name)
        if self.prepare_raises:
            raise RuntimeError("prepare crashed")
        return [self._item(r) for r in requests]

    def generate(self, requests, *, media_dir, prepared=None):
        self.calls.append(([r.sample_id for r in requests], prepared is not None))
        if self.oom_above is not None and len(requests) > self.oom_above:
            raise MemoryError("out of memory")
        items = prepared if prepared is not None else [self._item(r) for r in requests]
        outputs = []
        for request, item in zip(requests, items):
            if isinstance(item, Exception):
                outputs.append(Output.failure(str(item)))
                continue
            assert item[0] == request.sample_id  # each item reaches its own request
            outputs.append(Output(text=item[1][::-1]))
        return outputs


def _records(run_dir):
    lines = [json.loads(x) for x in (run_dir / "predictions.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "time_s"} for r in lines]


def _both(tmp_path, make, **settings):
    """The same run with prefetch on and off: (adapter on, adapter off)."""
    on, off = make(), make()
    _run(tmp_path / "on", adapter=on, prefetch=True, **settings)
    _run(tmp_path / "off", adapter=off, prefetch=False, **settings)
    assert _records(tmp_path / "on") == _records(tmp_path / "off")
    assert (tmp_path / "on" / "scores.jsonl").read_bytes() == (tmp_path / "off" / "scores.jsonl").read_bytes()
    return on, off


def test_next_batch_prepared_in_the_background_same_records(tmp_path):
    on, off = _both(tmp_path, PreparingAdapter, batch_size=3)
    assert off.prepare_threads == [] and not any(got for _, got in off.calls)
    assert on.prepare_threads and set(on.prepare_threads) == {"mio-eval-prefetch_0"}
    assert [got for _, got in on.calls] == [True] * 4  # every batch took prepared items
    assert [i for ids, _ in on.calls for i in ids] == LONGEST_FIRST  # order unchanged
    assert not [t for t in threading.enumerate() if t.name.startswith("mio-eval-prefetch")]  # none outlives the run


def test_items_follow_their_requests_through_out_of_memory_halving(tmp_path):
    on, _ = _both(tmp_path, lambda: PreparingAdapter(oom_above=1), batch_size=4)
    assert on.calls[0] == (LONGEST_FIRST[:4], True)
    # halved to 2, then 1; the remembered size 1 serves the rest, each from items prepared ahead
    # (the 4 prepared for the second batch before the shrink included)
    singles = [c for c in on.calls if len(c[0]) == 1]
    assert [ids[0] for ids, _ in singles] == LONGEST_FIRST and all(got for _, got in singles)


def test_a_failing_prepare_costs_nothing(tmp_path):
    on, _ = _both(tmp_path, lambda: PreparingAdapter(prepare_raises=True), batch_size=3)
    assert on.prepare_threads and not any(got for _, got in on.calls)  # generate prepared inline


def test_a_sample_failure_found_while_preparing_is_that_sample_s_error(tmp_path):
    on, _ = _both(tmp_path, lambda: PreparingAdapter(bad={"s003"}), batch_size=3, max_error_rate=0.5)
    (failed,) = [r for r in _records(tmp_path / "on") if r["error"]]
    assert failed["id"] == "s003" and failed["error"] == "corrupt input of s003"


def test_adapters_without_prepare_and_take_of_a_missing_item():
    assert not Prefetcher(DummyAdapter(), enabled=True).active
    prefetcher = Prefetcher(PreparingAdapter(), enabled=True)
    requests = [Request(sample_id=f"q{i}", parts=(Text(t),)) for i, t in enumerate(TEXTS[:3])]
    prefetcher.submit(requests[:2])
    assert prefetcher.take(requests) is None  # q2 was never prepared: generate prepares the batch
    prefetcher.submit(requests)
    assert [item[0] for item in prefetcher.take(requests[1:])] == ["q1", "q2"]
    prefetcher.close()


# --- MIO: the same records with and without prefetching, on a random tiny MIO -----------------

@pytest.fixture(scope="module")
def random_mio(tmp_path_factory):
    from mio_eval.models.mio.tiny import build_tiny_mio

    return build_tiny_mio(tmp_path_factory.mktemp("random_mio"), image=False, script=False, seed=5)


@pytest.fixture(scope="module")
def noise_split(tmp_path_factory):
    """A LibriSpeech-layout split of noise clips of five lengths, and one corrupt file."""
    root = tmp_path_factory.mktemp("data")
    folder = librispeech_noise(root, [1600 * (1 + i) for i in range(5)], [f"WORD {i}" for i in range(6)], amplitude=0.05)
    (folder / "1089-134686-0005.flac").write_bytes(b"fLaC not really")
    return root


def test_mio_records_identical_with_and_without_prefetch(random_mio, noise_split, tmp_path):
    from mio_eval import run

    for flag in ("true", "false"):
        run("asr_librispeech_test_clean", "mio_tiny", [
            f"model.path={random_mio}", f"paths.results_dir={tmp_path / flag}", f"paths.data_dir={noise_split}",
            "runner.progress=false", "runner.batch_size=2", "runner.max_error_rate=0.5",
            "task.generation.max_new_tokens=6", f"runner.prefetch={flag}"])
    on, off = (tmp_path / f / "mio_tiny" / "asr_librispeech_test_clean" for f in ("true", "false"))
    assert _records(on) == _records(off)
    outputs = [json.dumps(r["output"], sort_keys=True) for r in _records(on) if not r["error"]]
    assert len(outputs) == 5 and len(set(outputs)) > 1  # the answers depend on the clips
    (failed,) = [r for r in _records(on) if r["error"]]
    assert failed["id"].endswith("0005") and "1089-134686-0005.flac" in failed["error"]
