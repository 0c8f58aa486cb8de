"""Executors: where tasks train (this process, worker processes, a dask cluster).

Every executor sends :class:`~aebench.execution.lifecycle.Task` objects to
:func:`~aebench.execution.lifecycle.train_task` and hands each result to the client's
:class:`~aebench.execution.lifecycle.Recorder`; no worker writes a run folder.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import uuid
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from aebench import options
from aebench.errors import AebenchError
from aebench.execution.lifecycle import (
    CheckpointPlace,
    Recorder,
    RunResult,
    Task,
    pin_device,
    train_task,
)


def threads_per_worker(workers: int) -> int:
    """Split the machine's cores among workers so that they do not oversubscribe them."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def plan_devices(device: str) -> list[str] | None:
    """One device per worker when ``--device`` is ``cuda`` (or ``auto``) and several GPUs are
    visible: ``["cuda:0", ..., "cuda:N-1"]``; None otherwise (``cuda:K``, CPU: as asked)."""
    if device not in ("cuda", "auto") or not torch.cuda.is_available():
        return None
    n = torch.cuda.device_count()
    return [f"cuda:{k}" for k in range(n)] if n > 0 else None


def init_worker(threads: int, parent: int | None = None, device: str | None = None) -> None:
    torch.set_num_threads(threads)
    if parent is not None:
        die_with_parent(parent)
    pin_device(device)


def _worker_args(threads: int, parent: int, devices: list[str] | None, index: int) -> tuple:
    return (threads, parent, devices[index % len(devices)] if devices else None)


def die_with_parent(parent: int) -> None:
    """End this worker process when ``parent`` dies (kill -9 included), so no orphan keeps
    training and writing checkpoints beside a ``--resume``.

    Linux: the kernel's parent-death signal (SIGKILL); elsewhere, and as a fallback, a
    daemon thread that watches the parent pid.
    """
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="aebench-parent-watch", daemon=True).start()


def record_all(rec: Recorder, task: Task, results: list[RunResult]) -> None:
    by_id = {r.run_id: r for r in task.runs}
    for res in results:
        rec.record(by_id[res.run_id], res)


class Executor:
    """The interface: ``map(tasks, rec, place)`` trains every task and records every result."""

    name = ""
    lock: Any = None  # the run's OutputLock, set by run()

    def __init__(self, workers: int | None = None, scheduler: str | None = None, device: str = "auto") -> None:
        self.workers, self.scheduler, self.device = workers, scheduler, device

    def map(self, tasks: list[Task], rec: Recorder, place: CheckpointPlace | None, local: dict[str, Any]) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Reach what it runs on and check it (a cluster's pre-flight), before ``--out`` is touched."""

    def close(self) -> None:
        """Let go of what :meth:`start` reached."""

    def __enter__(self) -> Executor:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LocalExecutor(Executor):
    """Runs one after another in this process (Ctrl-C and the Workbench's Stop stop it cleanly)."""

    name = "local"

    def map(self, tasks, rec, place, local) -> None:
        for task in tasks:
            task = rec.start(replace(task, checkpoints=place))
            record_all(rec, task, train_task(task, position=1, **local))


class ProcessExecutor(Executor):
    """N worker processes (spawned), each with cores / N torch threads; with ``--device cuda``
    and N visible GPUs, N workers, each pinned to its own GPU.

    Worker processes see installed (entry-point) plug-ins only, not ones registered in
    this process with :func:`aebench.register_plugin`.
    """

    name = "process"

    def plan(self) -> tuple[int, list[str] | None]:
        """How many workers, and the device each is pinned to (by its index), if any."""
        devices = plan_devices(self.device)
        return self.workers or (len(devices) if devices else min(4, os.cpu_count() or 1)), devices

    def map(self, tasks, rec, place, local) -> None:
        from aebench.execution.procpool import map_tasks

        workers, devices = self.plan()
        tasks = [rec.start(replace(t, checkpoints=place)) for t in tasks]

        def died(task: Task, reason: str) -> None:
            for run in task.runs:
                rec.fail(run, reason)

        map_tasks(
            tasks,
            {},
            functools.partial(record_all, rec),
            fn=train_task,
            workers=workers,
            initializer=init_worker,
            initargs=functools.partial(_worker_args, threads_per_worker(workers), os.getpid(), devices),
            on_worker=rec.worker,
            on_death=died,
            lock=self.lock,
            stop=local.get("stop"),
        )


class DaskExecutor(Executor):
    """``dask.distributed``: a LocalCluster on 127.0.0.1, or an existing cluster (``scheduler``).

    Results come back over the network and the client writes the run folders, so workers need
    no access to ``--out``; resumable checkpoints go to ``--out`` when every worker sees it,
    else to ``--checkpoints URL``, else nowhere (an interrupted run restarts; the user is told).
    A worker that dies mid-run has its task retried on another worker by the scheduler.
    """

    name = "dask"

    _client: Any = None
    _cluster: Any = None
    _sent: list[str] = []

    def start(self) -> None:
        """Reach the scheduler (or start a LocalCluster) and check every worker: all before ``--out``
        is touched. Signals wait until the cluster is up (a half-started one cannot be closed cleanly)."""
        from dask.distributed import Client

        from aebench.execution.signals import signals_held

        if self._client is not None:
            return
        devices = plan_devices(self.device)
        pin = False
        with signals_held():
            if self.scheduler:
                self._client = Client(self.scheduler)
            else:
                self._cluster, pin = _local_cluster(self.workers, devices)
                self._client = Client(self._cluster)
        try:
            if self._cluster is not None:
                n = len(self._client.scheduler_info()["workers"])
                self._client.run(torch.set_num_threads, threads_per_worker(n))
            if pin:
                _pin_workers(self._client, devices or [])
            self.check(self._client)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        from aebench.execution.cluster import forget_data
        from aebench.execution.signals import signals_held

        client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        with signals_held():  # a second SIGTERM must not cut the closing short (dask's tracebacks)
            if client is not None:
                forget_data(client, self._sent)
                client.close()
            if cluster is not None:
                cluster.close()
        self._sent = []

    def map(self, tasks, rec, place, local) -> None:
        started_here = self._client is None
        self.start()
        client, cluster = self._client, self._cluster
        try:
            if self.scheduler and place is not None and not place.url and not _all_see(client, Path(place.root)):
                place = None
                warnings.warn(
                    "the dask workers do not see --out: their results come back over the network, but an "
                    "interrupted run restarts from its first epoch (give --checkpoints URL, a store every worker "
                    "can reach, to resume one).",
                    stacklevel=2,
                )
            # one task holds one GPU: our LocalCluster's workers, or a cluster's started with --resources GPU=1
            devices = plan_devices(self.device)
            gpus = (cluster is not None and bool(devices)) or (self.device != "cpu" and _workers_have(client, "GPU"))
            self._submit(client, [replace(t, checkpoints=place) for t in tasks], rec, gpus)
        finally:
            if started_here:
                self.close()

    #: set by run(): the spec, for the cluster's pre-flight
    spec: Any = None

    def check(self, client) -> None:
        """Every worker: same aebench version, the spec's plug-ins, the same data; data a worker
        cannot load is sent to every worker, now and when one joins or restarts."""
        from aebench.execution.cluster import send_data
        from aebench.execution.preflight import check_workers, components_named, datasets_named, worker_facts

        if self.spec is None:
            return
        named = datasets_named(self.spec)
        facts = client.run(worker_facts, components_named(self.spec), named)
        data = {key: reg_load(name, params) for key, (name, params) in named.items()}
        sent: dict[str, str] = {}

        def send(addr: str, key: str, splits: Any) -> None:
            if key not in sent:
                sent[key] = send_data(client, key, splits)
                self._sent = [*self._sent, sent[key]]

        check_workers(facts, data, send)

    def _submit(self, client, tasks: list[Task], rec: Recorder, gpus: bool) -> None:
        from dask.distributed import as_completed
        from distributed.scheduler import KilledWorker

        tasks = [rec.start(t) for t in tasks]
        resources = {"GPU": 1} if gpus else None
        futures = {client.submit(train_task, t, pure=False, key=t.key, resources=resources): t for t in tasks}
        try:
            for fut in as_completed(futures):
                task = futures[fut]
                try:
                    results = fut.result()
                except KilledWorker:
                    for run in task.runs:
                        rec.fail(run, "its dask worker died again and again while training it")
                    continue
                record_all(rec, task, results)
        except BaseException:
            client.cancel(list(futures))
            raise


def reg_load(name: str, params: str) -> Any:
    """A data set loaded here, by registry name and Params JSON."""
    from aebench.plugins import registry

    cls = registry().get("dataset", name)
    return cls(cls.Params.model_validate_json(params)).load()


def _local_cluster(workers: int | None, devices: list[str] | None):
    """A LocalCluster on 127.0.0.1 and whether its workers still need pinning; with GPUs, one
    worker per GPU holding a ``GPU`` resource (dask-cuda's LocalCUDACluster when installed,
    which pins each worker itself through CUDA_VISIBLE_DEVICES)."""
    from dask.distributed import LocalCluster

    common = {"threads_per_worker": 1, "dashboard_address": None, "silence_logs": logging.ERROR}
    if devices:
        try:
            from dask_cuda import LocalCUDACluster

            return LocalCUDACluster(n_workers=len(devices), resources={"GPU": 1}, host="127.0.0.1", **common), False
        except ImportError:
            pass
        n = len(devices)
        return LocalCluster(n_workers=n, processes=True, host="127.0.0.1", resources={"GPU": 1}, **common), True
    n = workers or min(4, os.cpu_count() or 1)
    return LocalCluster(n_workers=n, processes=True, host="127.0.0.1", **common), False


def _pin_workers(client, devices: list[str]) -> None:
    """Pin each worker of a LocalCluster to its own GPU (dask-cuda does this with CUDA_VISIBLE_DEVICES)."""
    for k, addr in enumerate(sorted(client.scheduler_info()["workers"])):
        client.run(pin_device, devices[k % len(devices)], workers=[addr])


def _workers_have(client, resource: str) -> bool:
    workers = client.scheduler_info()["workers"].values()
    return bool(workers) and all(resource in (w.get("resources") or {}) for w in workers)


def _sees(path: str, token: str) -> bool:
    try:
        return Path(path).read_text() == token
    except OSError:
        return False


def _all_see(client, out: Path) -> bool:
    """Whether every worker reads the same ``--out`` folder as this client (a shared disk)."""
    from aebench.atomic import write_text

    token = uuid.uuid4().hex
    probe = out / f".probe.{token[:8]}.tmp"  # named as atomic_write's temporaries: the next run removes it
    write_text(probe, token)
    try:
        return all(client.run(_sees, str(probe), token).values())
    finally:
        probe.unlink(missing_ok=True)


EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor, "process": ProcessExecutor, "dask": DaskExecutor}
assert tuple(EXECUTORS) == options.EXECUTORS, "aebench.options lists the executors the CLI and Workbench offer"


def make_executor(name: str, workers: int | None = None, scheduler: str | None = None, device: str = "auto"):
    if name not in EXECUTORS:
        raise AebenchError(f"--executor {name!r} is unknown; choose one of {', '.join(EXECUTORS)}.")
    if workers is not None and workers < 1:
        raise AebenchError(f"--workers {workers} must be at least 1.")
    if name == "dask":
        from aebench.execution.signals import signals_held

        try:
            with signals_held():  # a SIGTERM in the middle of its C extensions' imports would garble it
                import dask.distributed  # noqa: F401
        except ImportError:
            raise AebenchError("--executor dask needs dask.distributed: pip install 'aebench[dask]'.") from None
    return EXECUTORS[name](workers=workers, scheduler=scheduler, device=device)
