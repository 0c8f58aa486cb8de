"""Data sets sent to the workers of a dask cluster.

A worker that cannot load a data set of the spec gets the client's copy as a dask
``WorkerPlugin``, which the scheduler installs on every worker that joins, a worker its nanny
restarted included; so a restarted worker still has the data its retried task needs.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from aebench.execution.lifecycle import SENT_DATA, receive_data


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
