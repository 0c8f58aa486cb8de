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
from pathlib import Path
from typing import Any

import torch
from pydantic import Field, ValidationError

from aebench.components import Executor, ExecutorParams
from aebench.errors import AebenchError
from aebench.execution.lifecycle import Task, pin_device
from aebench.hookspecs import hookimpl


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


def plan_workers(workers: int | None, device: str) -> tuple[int, list[str] | None]:
    """How many process workers, and the device each is pinned to (by its index), if any."""
    devices = plan_devices(device)
    return workers or (len(devices) if devices else min(4, os.cpu_count() or 1)), devices


class LocalExecutor(Executor):
    """Runs one after another in this process (Ctrl-C and the Workbench's Stop stop it cleanly)."""

    name = "local"
    summary = "One run after another in this process (default)."

    def map(self, tasks: list[Task]) -> None:
        for task in tasks:
            task = self.job.start(task)
            self.job.record(task, self.job.train_here(task))


class ProcessParams(ExecutorParams):
    workers: int | None = Field(
        None, ge=1, description="Worker processes (default: one per GPU with --device cuda, else up to 4)."
    )


class ProcessExecutor(Executor):
    """N worker processes (spawned), each with cores / N torch threads; with ``--device cuda``
    and N visible GPUs, N workers, each pinned to its own GPU.

    Worker processes see installed (entry-point) plug-ins only, not ones registered in
    this process with :func:`aebench.register_plugin`.
    """

    name = "process"
    summary = "Worker processes on this machine (one per GPU with --device cuda)."
    Params = ProcessParams

    def map(self, tasks: list[Task]) -> None:
        from aebench.execution.procpool import map_tasks

        job = self.job
        workers, devices = plan_workers(self.params.workers, job.device)
        tasks = [job.start(t) for t in tasks]

        def died(task: Task, reason: str) -> None:
            for run in task.runs:
                job.fail(run, reason)

        map_tasks(
            tasks,
            {},
            job.record,
            fn=job.train,
            workers=workers,
            initializer=init_worker,
            initargs=functools.partial(_worker_args, threads_per_worker(workers), os.getpid(), devices),
            on_worker=job.worker,
            on_death=died,
            lock=job.lock,
            stop=job.stop,
        )


class DaskParams(ExecutorParams):
    scheduler: str | None = Field(
        None, min_length=1, description="Address of an existing dask scheduler (default: a LocalCluster on 127.0.0.1)."
    )
    workers: int | None = Field(
        None, ge=1, description="Workers of the LocalCluster (default: one per GPU with --device cuda, else up to 4)."
    )


class DaskExecutor(Executor):
    """``dask.distributed``: a LocalCluster on 127.0.0.1, or an existing cluster (``scheduler``).

    Results come back over the network and the client writes the run folders, so workers need
    no access to ``--out``; resumable checkpoints go to ``--out`` when every worker sees it,
    else to ``--checkpoints URL``, else nowhere (an interrupted run restarts; the user is told).
    A worker that dies mid-run has its task retried on another worker by the scheduler.
    """

    name = "dask"
    summary = "dask.distributed: a LocalCluster, or an existing cluster's scheduler."
    Params = DaskParams

    @classmethod
    def unavailable(cls, params: ExecutorParams) -> str | None:
        from aebench.execution.signals import signals_held

        try:
            with signals_held():  # a SIGTERM in the middle of its C extensions' imports would garble it
                import dask.distributed  # noqa: F401
        except ImportError:
            return "--executor dask needs dask.distributed: pip install 'aebench[dask]'."
        return None

    _client: Any = None
    _cluster: Any = None
    _pin: bool = False
    _sent: tuple[str, ...] = ()

    def start(self) -> None:
        """Reach the scheduler (or start a LocalCluster) and check every worker: all before ``--out``
        is touched. Signals wait until the cluster is up (a half-started one cannot be closed cleanly)."""
        from dask.distributed import Client

        from aebench.execution.signals import signals_held

        if self._client is not None:
            return
        devices = plan_devices(self.job.device)
        with signals_held():
            if self.params.scheduler:
                self._client = Client(self.params.scheduler)
            else:
                self._cluster, self._pin = _local_cluster(self.params.workers, devices)
                self._client = Client(self._cluster)
        try:
            if self._cluster is not None:
                n = len(self._client.scheduler_info()["workers"])
                self._client.run(torch.set_num_threads, threads_per_worker(n))
            if self._pin:
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
                forget_data(client, list(self._sent))
                client.close()
            if cluster is not None:
                cluster.close()
        self._sent = ()

    def map(self, tasks: list[Task]) -> None:
        started_here = self._client is None
        self.start()
        job, client, cluster = self.job, self._client, self._cluster
        try:
            devices = plan_devices(job.device)
            place = job.place
            if self.params.scheduler and place is not None and not place.url and not _all_see(client, Path(place.root)):
                place = None
                warnings.warn(
                    "the dask workers do not see --out: their results come back over the network, but an "
                    "interrupted run restarts from its first epoch (give --checkpoints URL, a store every worker "
                    "can reach, to resume one).",
                    stacklevel=2,
                )
            # one task holds one GPU: our LocalCluster's workers, or a cluster's started with --resources GPU=1
            gpus = (cluster is not None and bool(devices)) or (job.device != "cpu" and _workers_have(client, "GPU"))
            self._submit(client, [job.start(t, place) for t in tasks], gpus)
        finally:
            if started_here:
                self.close()

    def check(self, client) -> None:
        """Every worker: same aebench version, the spec's plug-ins, the same data; data a worker
        cannot load is sent to every worker, now and when one joins or restarts."""
        from aebench.execution.cluster import send_data
        from aebench.execution.preflight import check_workers, components_named, datasets_named, worker_facts

        spec = self.job.spec
        named = datasets_named(spec)
        facts = client.run(worker_facts, components_named(spec), named)
        data = {key: reg_load(name, params) for key, (name, params) in named.items()}
        sent: dict[str, str] = {}

        def send(addr: str, key: str, splits: Any) -> None:
            if key not in sent:
                sent[key] = send_data(client, key, splits)
                self._sent = (*self._sent, sent[key])

        check_workers(facts, data, send)

    def _submit(self, client, tasks: list[Task], gpus: bool) -> None:
        from dask.distributed import as_completed
        from distributed.scheduler import KilledWorker

        job = self.job
        resources = {"GPU": 1} if gpus else None
        futures = {client.submit(job.train, t, pure=False, key=t.key, resources=resources): t for t in tasks}
        try:
            for fut in as_completed(futures):
                task = futures[fut]
                try:
                    results = fut.result()
                except KilledWorker:
                    for run in task.runs:
                        job.fail(run, "its dask worker died again and again while training it")
                    continue
                job.record(task, results)
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

    # dask's own logs stay off the terminal: a failed task, a dead worker or a stop reaches the user as
    # aebench's one-paragraph message, while a worker whose scheduler closes first logs an ERROR with a
    # traceback about its heartbeat (seen on CI when SIGTERM arrives as the workers start)
    common = {"threads_per_worker": 1, "dashboard_address": None, "silence_logs": logging.CRITICAL}
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
    probe = out / f".probe-{token[:8]}.tmp"  # a temporary: removed by the next run if left
    write_text(probe, token)
    try:
        return all(client.run(_sees, str(probe), token).values())
    finally:
        probe.unlink(missing_ok=True)


@hookimpl
def aebench_executors() -> list[type]:
    return [LocalExecutor, ProcessExecutor, DaskExecutor]


def executor_setup(executor: Any, reg: Any) -> tuple[type[Executor], ExecutorParams]:
    """The executor class and its validated options from a name or a table ``{name, **options}``
    (or an :class:`Executor` class, whose tests need not register it);
    bad input is an :class:`AebenchError` naming the option as a flag (``--workers``)."""
    if isinstance(executor, type) and issubclass(executor, Executor):  # a class, registered or not (its tests)
        executor = {"name": executor}
    table = {"name": executor} if isinstance(executor, str) else dict(executor)
    name = table.pop("name", "local")
    if isinstance(name, type) and issubclass(name, Executor):
        cls, name = name, name.name
    else:
        try:
            cls = reg.get("executor", name)
        except AebenchError as exc:
            raise AebenchError(f"--executor {name!r}: {exc}") from None
    try:
        params = cls.Params.model_validate(table)
    except ValidationError as exc:
        raise AebenchError("; ".join(_option_problem(e, name, cls) for e in exc.errors()) + ".") from None
    why = cls.unavailable(params)
    if why:
        raise AebenchError(why)
    return cls, params


def _option_problem(err: dict[str, Any], name: str, cls: type[Executor]) -> str:
    flag = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "--executor"
    if err["type"] == "extra_forbidden":
        own = ", ".join("--" + f.replace("_", "-") for f in cls.Params.model_fields) or "none"
        return f"{flag} is not an option of the {name!r} executor (its options: {own})"
    return f"{flag} {err.get('input')!r}: {err['msg'].removeprefix('Value error, ')}"
