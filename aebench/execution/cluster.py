"""What a dask cluster needs beyond the tasks: data sets sent to its workers, and a start that a
signal cannot leave half done.

Data: a worker that cannot load a data set of the spec gets the client's copy as a dask
``WorkerPlugin``, which the scheduler installs on every worker that joins, a worker its nanny
restarted included; so a restarted worker still has the data its retried task needs.

Signals: SIGTERM, SIGHUP or Ctrl-C while a LocalCluster starts would leave it half started (its
workers in ``Status.init``), and dask's exit handler would print its tracebacks while closing
it; :func:`signals_held` holds them until the start is over, then delivers them.
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from aebench.execution.lifecycle import SENT_DATA, receive_data

#: the signals held while a cluster starts (those that stop aebench: the CLI's and Ctrl-C)
HELD = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class SentData(WorkerPlugin):
    """The client's copy of one data set (by its key), kept by every worker, now and when it (re)joins."""

    def __init__(self, key: str, data: Any) -> None:
        self.key, self.data = key, data
        self.name = plugin_name(key)

    def setup(self, worker: Any) -> None:
        receive_data(self.key, self.data)

    def teardown(self, worker: Any) -> None:
        SENT_DATA.pop(self.key, None)


def plugin_name(key: str) -> str:
    return f"aebench-data-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def send_data(client: Any, key: str, data: Any) -> str:
    """Install ``data`` on every worker of ``client``'s cluster, present and future; returns the plug-in's name."""
    plugin = SentData(key, data)
    client.register_plugin(plugin, name=plugin.name)
    return plugin.name


def forget_data(client: Any, names: list[str]) -> None:
    """Remove the data plug-ins (a shared cluster must not keep this spec's data for others)."""
    for name in names:
        with contextlib.suppress(Exception):  # a client closing, a scheduler gone: nothing left to remove
            client.unregister_worker_plugin(name)


@contextlib.contextmanager
def signals_held(signums: tuple[int, ...] = HELD) -> Iterator[None]:
    """Hold ``signums`` during the block (main thread only) and deliver the first one after it, to the
    handlers that were in place: the block is never cut in the middle."""
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
