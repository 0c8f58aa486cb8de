"""Signals held while something must not be cut in the middle (a dask cluster starting or closing,
the import of dask itself): delivered, to the handlers in place, once it is over."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

#: the signals that stop aebench (the CLI's SIGTERM and SIGHUP, and Ctrl-C)
HELD = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


@contextlib.contextmanager
def signals_held(signums: tuple[int, ...] = HELD) -> Iterator[None]:
    """Hold ``signums`` during the block (main thread only) and deliver the first one after it, to the
    handlers that were in place: the block is never cut in the middle. A LocalCluster cut while it
    starts is left half started (workers in ``Status.init``), and dask's exit handler prints its
    tracebacks while closing it; an exception raised inside a C extension's import comes out as
    that import's error."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: got.append(signum)) for s in signums}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if got:
            signal.raise_signal(got[0])
