"""Preparing the next batch while the current one generates (``runner.prefetch``).

An adapter may split its call in two: ``prepare(requests) -> list`` (its CPU-side work: read and
encode the media, tokenise the prompt; one item per request, in order) and
``generate(requests, media_dir=..., prepared=items)``. The runner then prepares batch k+1 in one
background thread while batch k generates, as a ``torch.utils.data.DataLoader`` worker prepares
the next batch (https://pytorch.org/docs/stable/data.html, "Single- and Multi-process Data
Loading"); torch's operators release the GIL, so the two overlap.

* Items are keyed by sample id: a batch that shrinks after an out-of-memory error takes the items
  it has and leaves the rest to the next batch.
* Outputs do not depend on it: ``prepare`` runs the code ``generate`` runs when it gets no items.
  A ``prepare`` that raises, or a batch with an item missing, is prepared inside ``generate``
  exactly as without prefetching (a per-sample failure, e.g. a corrupt file, is an item: the
  adapter's ``generate`` reports it for that sample).
* A record's ``time_s`` counts the wait for its batch's items, not the overlapped work, so the
  sum of ``time_s`` stays the generation's wall clock.
* ``close()`` waits for the running ``prepare`` (if any) and drops what was never used; no thread
  outlives the run.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Sequence

from mio_eval.types import Request

__all__ = ["Prefetcher"]

_MISSING = object()


class Prefetcher:
    """The background preparation of a run's batches; inert unless ``enabled`` and the adapter
    has ``prepare``."""

    def __init__(self, adapter: Any, *, enabled: bool) -> None:
        self._prepare = getattr(adapter, "prepare", None) if enabled else None
        self._pool = (ThreadPoolExecutor(1, thread_name_prefix="mio-eval-prefetch")
                      if callable(self._prepare) else None)
        self._ready: dict[str, Any] = {}
        self._pending: Future | None = None

    @property
    def active(self) -> bool:
        return self._pool is not None

    def submit(self, requests: Sequence[Request]) -> None:
        """Start preparing ``requests`` (those not prepared yet) in the background."""
        if self._pool is None:
            return
        self._collect()
        todo = [r for r in requests if r.sample_id not in self._ready]
        if todo:
            self._pending = self._pool.submit(self._run, todo)

    def take(self, requests: Sequence[Request]) -> list[Any] | None:
        """The items of ``requests`` (waiting for the running ``prepare``), or None when one is
        missing (``generate`` then prepares the batch itself)."""
        if self._pool is None:
            return None
        self._collect()
        items = [self._ready.pop(r.sample_id, _MISSING) for r in requests]
        return None if any(item is _MISSING for item in items) else items

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pending = None
            self._ready.clear()

    def _run(self, requests: list[Request]) -> dict[str, Any]:
        items = list(self._prepare(requests))
        if len(items) != len(requests):
            raise RuntimeError(f"prepare returned {len(items)} items for {len(requests)} requests")
        return {r.sample_id: item for r, item in zip(requests, items)}

    def _collect(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            self._ready.update(pending.result())
        except Exception:  # noqa: BLE001 - prepared again inside generate, where its error is reported
            pass
