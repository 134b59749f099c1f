"""One batched model call, written once: the runner's generation, the ASR judge and the video-QA
judge all go through :func:`generate_batch`.

Contract: ``generate_batch(adapter, requests, media_dir=...)`` returns exactly one ``Output`` per
request, in order, and never raises for a backend failure (errors are data):

* the adapter must answer as many outputs as it got requests; any other count is an error of
  the whole batch (``length_error`` names it);
* out of memory (``is_out_of_memory``) with a ``BatchSizer``: the batch is halved (the size is
  remembered for the rest of the run) and its parts run again, down to one request, which then
  fails with ``out of memory at batch size 1: <error>`` (lm-eval ``--batch_size auto``, from
  accelerate ``find_executable_batch_size``: https://github.com/huggingface/accelerate,
  ``utils/memory.py``);
* any other failure of a batch of several: each request runs again alone, so one bad input
  costs one sample and its batch-mates keep their own answers; a request that fails alone gets
  ``<ExceptionType>: <message>``. A batch of one that fails is retried once only with
  ``retry_single`` (judges: a transient judge failure then costs nothing); the runner does not
  retry it (the model call is the expensive one and deterministic).

:func:`generate_batches` chunks a request list by a fixed size and calls ``on_batch(n)`` after
each chunk (a progress bar's ``update``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from mio_eval.adapter import ModelAdapter
from mio_eval.types import Output, Request

__all__ = ["BatchSizer", "LENGTH_ERROR", "generate_batch", "generate_batches", "is_out_of_memory"]

LENGTH_ERROR = "adapter returned {got} outputs for {want} requests"


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA (or other accelerator) out-of-memory, or host ``MemoryError``."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


class BatchSizer:
    """The batch size of a run: ``settings.batch_size`` (``auto``: ``settings.max_batch_size``),
    halved whenever a batch runs out of memory and remembered for the rest of the run, as
    lm-eval's ``--batch_size auto`` (accelerate ``find_executable_batch_size``) finds the largest
    batch that fits on the first, longest, batches. ``settings`` is a ``RunnerSettings`` (or any
    object with those two attributes)."""

    def __init__(self, settings: Any) -> None:
        self.requested = settings.batch_size
        self.size = settings.max_batch_size if settings.batch_size == "auto" else int(settings.batch_size)
        self.oom_retries = 0

    def shrink(self, failed: int) -> None:
        self.size = max(1, min(self.size, failed // 2))
        self.oom_retries += 1
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def summary(self) -> dict[str, Any]:
        return {"requested": self.requested, "used": self.size, "oom_retries": self.oom_retries}


def _failure(exc: BaseException) -> Output:
    return Output.failure(f"{type(exc).__name__}: {exc}")


def _call(adapter: ModelAdapter, requests: Sequence[Request], media_dir: Path, length_error: str,
          prepared: Sequence[Any] | None = None) -> list[Output]:
    if prepared is None:
        outputs = list(adapter.generate(requests, media_dir=media_dir))
    else:  # the adapter's own prepare() items (mio_eval.prefetch), one per request
        outputs = list(adapter.generate(requests, media_dir=media_dir, prepared=prepared))
    if len(outputs) != len(requests):
        raise RuntimeError(length_error.format(got=len(outputs), want=len(requests)))
    return outputs


def generate_batch(adapter: ModelAdapter, requests: Sequence[Request], *, media_dir: Path,
                   sizer: BatchSizer | None = None, retry_single: bool = False,
                   length_error: str = LENGTH_ERROR, prepared: Sequence[Any] | None = None) -> list[Output]:
    """One ``Output`` per request, in order (see the module doc). ``length_error`` is a format
    string with ``{got}`` and ``{want}``: the error text when the adapter answers another count.
    ``prepared``: the adapter's ``prepare(requests)`` items, one per request (``mio_eval.prefetch``);
    they follow their requests into the halves and the one-by-one retries."""
    try:
        return _call(adapter, requests, media_dir, length_error, prepared)
    except Exception as batch_exc:  # noqa: BLE001 - any backend failure becomes per-sample data
        if is_out_of_memory(batch_exc) and sizer is not None:
            if len(requests) == 1:
                sizer.shrink(1)
                return [Output.failure(f"out of memory at batch size 1: {type(batch_exc).__name__}: {batch_exc}")]
            sizer.shrink(len(requests))
            outputs, start = [], 0
            while start < len(requests):  # the size may shrink again inside: re-read it for every part
                end = start + sizer.size
                outputs += generate_batch(adapter, requests[start:end], media_dir=media_dir, sizer=sizer,
                                          retry_single=retry_single, length_error=length_error,
                                          prepared=None if prepared is None else prepared[start:end])
                start = end
            return outputs
        if len(requests) == 1 and not retry_single:
            return [_failure(batch_exc)]
    outputs = []
    for k, request in enumerate(requests):  # isolate the culprit: each request alone
        try:
            outputs += _call(adapter, [request], media_dir, length_error,
                             None if prepared is None else prepared[k:k + 1])
        except Exception as exc:  # noqa: BLE001 - this request's failure is this sample's error
            outputs.append(_failure(exc))
    return outputs


def generate_batches(adapter: ModelAdapter, requests: Sequence[Request], *, media_dir: Path, batch_size: int,
                     retry_single: bool = False, length_error: str = LENGTH_ERROR,
                     on_batch: Callable[[int], Any] | None = None) -> list[Output]:
    """``requests`` in chunks of ``batch_size`` through :func:`generate_batch`; ``on_batch(n)``
    after each chunk of n requests. One ``Output`` per request, in order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    outputs: list[Output] = []
    for start in range(0, len(requests), batch_size):
        chunk = requests[start : start + batch_size]
        outputs += generate_batch(adapter, chunk, media_dir=media_dir, retry_single=retry_single,
                                  length_error=length_error)
        if on_batch is not None:
            on_batch(len(chunk))
    return outputs
