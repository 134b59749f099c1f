"""``mio-eval`` ends its process without the interpreter's teardown (``mio_eval.quick_exit``):
what CPython's exit does that matters still happens (threads joined, atexit handlers, streams
flushed, the exit status), and torch._dynamo's compile-time table is skipped only when its
logger would drop it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_threads_atexit_streams_and_status_as_cpython():
    proc = _py("""
        import atexit, sys, threading, time
        from mio_eval.quick_exit import run
        atexit.register(lambda: print("atexit ran", flush=False))
        def work():
            time.sleep(0.3)
            print("thread finished", flush=False)
        threading.Thread(target=work).start()            # non-daemon: joined before exit
        sys.stdout.write("x" * 200_000)                   # buffered, flushed at exit
        run(lambda: sys.exit(3))
    """)
    assert proc.returncode == 3
    assert proc.stdout.startswith("x" * 200_000)
    assert proc.stdout.endswith("thread finished\natexit ran\n")  # CPython's order: threads, then atexit


def test_an_executor_never_shut_down_does_not_hang_the_exit():
    # concurrent.futures' idle workers are non-daemon threads woken by threading's own shutdown
    # (threading._register_atexit); a bare join of the threads would wait forever.
    proc = _py("""
        import sys
        from concurrent.futures import ThreadPoolExecutor
        from mio_eval.quick_exit import run
        pool = ThreadPoolExecutor(1)
        pool.submit(print, "worked", flush=True).result()
        run(lambda: sys.exit(4))
    """)
    assert (proc.returncode, proc.stdout) == (4, "worked\n")


@pytest.mark.parametrize(("body", "status", "stderr"), [
    ("return None", 0, ""),
    ("sys.exit(None)", 0, ""),
    ("sys.exit(2)", 2, ""),
    ("sys.exit('mio-eval: error: boom')", 1, "mio-eval: error: boom\n"),
])
def test_exit_status_of_systemexit(body, status, stderr):
    proc = _py(f"""
        import sys
        from mio_eval.quick_exit import run
        def main():
            {body}
        run(main)
    """)
    assert (proc.returncode, proc.stderr) == (status, stderr)


def test_an_uncaught_exception_is_left_to_the_interpreter():
    proc = _py("""
        from mio_eval.quick_exit import run
        def main():
            raise ValueError("not ours to swallow")
        run(main)
    """)
    assert proc.returncode == 1 and "ValueError: not ours to swallow" in proc.stderr


@pytest.mark.parametrize(("level", "table_built"), [("WARNING", False), ("INFO", True)])
def test_dynamo_compile_table_only_when_its_logger_logs_info(level, table_built):
    # Registered first, so run last (atexit is LIFO): it sees whether dynamo's handler ran,
    # which imports tabulate to build its table.
    proc = _py(f"""
        import atexit, logging, sys
        atexit.register(lambda: print("table built:", "tabulate" in sys.modules))
        import torch._dynamo.utils
        assert "tabulate" not in sys.modules
        logging.getLogger("torch._dynamo.utils").setLevel(logging.{level})
        from mio_eval.quick_exit import run
        run(lambda: None)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == f"table built: {table_built}"


def test_the_console_script_and_python_m_use_it():
    import mio_eval.__main__ as dunder_main
    from importlib.metadata import entry_points

    scripts = {e.name: e.value for e in entry_points(group="console_scripts") if e.name == "mio-eval"}
    assert scripts == {"mio-eval": "mio_eval.cli:entry"}
    assert dunder_main.entry.__module__ == "mio_eval.cli"
