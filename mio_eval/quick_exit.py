"""End a finished ``mio-eval`` process without the interpreter's teardown.

When ``mio-eval`` returns, everything it writes is on disk: records are fsynced per batch and
``metrics.json`` is written atomically. What is left is CPython's finalisation
(https://docs.python.org/3/c-api/init.html#c.Py_FinalizeEx): join the non-daemon threads, run
the ``atexit`` handlers, then collect every module and object. With torch and transformers
loaded the collection alone takes ~1.4 s, and torch._dynamo's ``atexit`` handler
(``torch/_dynamo/utils.py``: ``dump_compile_times``) builds its compile-time table, importing
``tabulate``, ~0.8 s, even when its logger drops the INFO record it makes. Every run and every
rank of a data-parallel job paid that (``python benchmarks/scaling.py teardown``: ~2.1 s from a
``mio_tiny`` run's last line to its process's end, ~0.08 s with this).

``run(main)`` does the first two steps as CPython does: threading's own shutdown (it wakes idle
``concurrent.futures`` workers, then joins the non-daemon threads), then the ``atexit`` handlers
(the rank group's exit flag, logging's flush, temporary directories' finalizers,
multiprocessing's clean-up). It unregisters dynamo's handler only when its logger would drop the
record, flushes the standard streams, and ends the process with ``os._exit``. An exception other
than ``SystemExit`` is left to the interpreter (traceback, exit 1, the usual teardown).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
from typing import Callable, NoReturn

__all__ = ["run", "exit_code"]


def exit_code(code: object) -> int:
    """The status ``raise SystemExit(code)`` gives, as CPython's ``handle_system_exit``: None is
    0, an int is itself (the OS keeps its low byte), anything else is printed to stderr and is 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def run(main: Callable[[], object]) -> NoReturn:
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exit_code(exc.code)
    finish(code)


def finish(code: int) -> NoReturn:
    # CPython's own first step (Py_FinalizeEx -> threading._shutdown): the callbacks registered
    # with threading._register_atexit (they wake idle concurrent.futures workers), then a join of
    # every non-daemon thread. A plain join would wait forever on an executor never shut down.
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None and threading.current_thread() is threading.main_thread():
        shutdown()
    else:
        current = threading.current_thread()
        for thread in threading.enumerate():
            if thread is not current and not thread.daemon:
                thread.join()
    dynamo = sys.modules.get("torch._dynamo.utils")
    handler = getattr(dynamo, "dump_compile_times", None)
    if handler is not None and not logging.getLogger(dynamo.__name__).isEnabledFor(logging.INFO):
        atexit.unregister(handler)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
