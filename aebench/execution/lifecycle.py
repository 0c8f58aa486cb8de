"""A run's life: trained where an executor puts it, recorded where the output folder is.

A :class:`Task` (one run, or runs that train as one batch) goes to a worker, which trains it
with :func:`train_task` and returns one :class:`RunResult` per run: the metrics as an
``xarray.Dataset``, the status and reason, hook errors, timings and the final weights. The
worker touches the output folder only for resumable checkpoints, and only when the folder is
shared (or a ``--checkpoints`` store is named); the client's :class:`Recorder` writes the run
store. Disk errors are mapped to one message in :func:`save_error` (worded by
:mod:`aebench.errors`, as the CLI and the Workbench word them); the user's callback
(``on_run_done``) fires in :meth:`Recorder.record` only.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import logging
import os
import socket
import threading
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import xarray as xr

from aebench.atomic import write_bytes, write_json, write_text
from aebench.context import MemberResult, RunContext
from aebench.engine.checkpoint import CheckpointSlot, checkpoint_slot
from aebench.engine.members import CannotBatch
from aebench.engine.runner import RunInterrupted, RunOptions, Trainer, build_contexts, records_to_dataset
from aebench.errors import (
    AebenchError,
    ResultsError,
    RunFailed,
    SaveError,
    is_save_failure,
    os_error_reason,
    stopped_by,
)
from aebench.names import check_results
from aebench.plugins import describe_exception, fire, registry
from aebench.results import RunStore
from aebench.spec import RunSpec
from aebench.urls import mask


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------ what travels
@dataclass(frozen=True)
class CheckpointPlace:
    """Where a task keeps its resumable checkpoint: the (shared) output folder, or an fsspec URL."""

    root: str
    url: bool = False

    def slot(self, runs: list[RunSpec]) -> CheckpointSlot:
        return checkpoint_slot(self.location(runs))

    def location(self, runs: list[RunSpec]) -> str:
        if len(runs) > 1:
            members = "\n".join(f"{r.run_id} {r.digest()}" for r in runs)
            name = f".ensemble-{hashlib.sha256(members.encode()).hexdigest()[:16]}.pt"
            return f"{self.root.rstrip('/')}/{name}" if self.url else str(Path(self.root) / "runs" / name)
        run = runs[0]
        if self.url:  # the run's digest in the name: a changed run never resumes another's weights
            return f"{self.root.rstrip('/')}/{run.run_id}-{run.digest()[:16]}.pt"
        return str(Path(self.root) / "runs" / run.run_id / "checkpoint.pt")


@dataclass
class Task:
    """What a worker needs to train one group of runs (picklable; no path it must write)."""

    runs: list[RunSpec]
    device: str = "auto"
    resume: bool = False
    compile: bool = False
    checkpoints: CheckpointPlace | None = None  # None: no shared place; an interrupted run restarts

    @property
    def key(self) -> str:
        return f"{self.runs[0].run_id}-{self.runs[0].digest()}"


@dataclass
class RunResult:
    """One run's outcome, sent from the worker that trained it to the client that records it."""

    run_id: str
    status: str  # done | failed
    reason: str = ""
    metrics: xr.Dataset | None = None
    weights: bytes | None = None  # the final model and head (checkpoint.pt), torch.save'd
    hook_errors: list[str] = field(default_factory=list)
    note: str = ""  # a callback's stop request
    error_log: str = ""  # the traceback of a failure
    files: dict[str, bytes] = field(default_factory=dict)  # evaluators' files for the run folder
    device: str = ""
    host: str = ""
    pid: int = 0
    started: str = ""
    finished: str = ""
    seconds: float = 0.0  # wall time of the task on the worker, evaluation included

    def nbytes(self) -> int:
        """Roughly what it ships back: metrics, weights and files."""
        metrics = int(self.metrics.nbytes) if self.metrics is not None else 0
        return metrics + len(self.weights or b"") + sum(len(b) for b in self.files.values())


# ------------------------------------------------------------------ in the worker
#: the device this worker process is pinned to (``--device cuda`` with several GPUs), or None
PINNED_DEVICE: str | None = None


def pin_device(device: str | None) -> None:
    """Pin this worker process to one device (``cuda:K``): tasks asking for ``cuda``/``auto`` get it."""
    global PINNED_DEVICE
    PINNED_DEVICE = device
    if device is not None and device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.set_device(torch.device(device))


#: data sets the client sent to this worker (it could not load them itself), by :func:`data_key`
SENT_DATA: dict[str, Any] = {}


def data_key(run: RunSpec) -> str:
    return run.data.name + run.data.params.model_dump_json()


def receive_data(key: str, data: Any) -> None:
    """On a worker: keep a data set the client sent (its DataSplits), for the tasks that need it."""
    SENT_DATA[key] = data


def whoami(_: Any = None) -> dict[str, Any]:
    """This worker: its host, process and pinned device (the cluster's pre-flight shows them)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "device": PINNED_DEVICE}


def worker_device(requested: str) -> torch.device:
    from aebench.engine.runner import resolve_device

    if PINNED_DEVICE is not None and requested in ("auto", "cuda"):
        return torch.device(PINNED_DEVICE)
    return resolve_device(requested)


def train_task(
    task: Task,
    *,
    progress: bool = False,
    stop: threading.Event | None = None,
    position: int = 1,
    on_epoch: Callable[[str, dict], None] | None = None,
) -> list[RunResult]:
    """Train and evaluate ``task``'s runs as one batch (a single run: a batch of one).

    A run that diverges or raises comes back ``failed`` with the reason and its traceback and
    never disturbs another run. Interruptions (Ctrl-C, SIGTERM, the Workbench's Stop) propagate:
    the checkpoint is kept and the client marks the runs.
    """
    t0 = _dt.datetime.now(_dt.timezone.utc)
    reg = registry()
    runs = task.runs
    slot = task.checkpoints.slot(runs) if task.checkpoints is not None else None
    if slot is not None and not task.resume:
        slot.remove()
    dev = worker_device(task.device)
    ctxs: list[RunContext] = []
    try:
        ctxs = build_contexts(runs, dev, reg, lambda r: SENT_DATA.get(data_key(r)))
        shared = task.checkpoints is not None and not task.checkpoints.url
        for ctx in ctxs:  # callbacks may write under --out where this worker sees it (loggers)
            ctx.out = Path(task.checkpoints.root) if shared else None
        evaluators = [[e.build(reg) for e in r.evaluators] for r in runs]
        opts = RunOptions(dev, progress, task.resume, stop, position, on_epoch, compile=task.compile)
        try:
            trainer = Trainer(ctxs, evaluators, opts, slot, reg)
        except CannotBatch as why:  # found only once built (e.g. a model subclass with parameters of its own)
            note_alone(len(runs), str(why))
            kw = {"progress": progress, "stop": stop, "position": position, "on_epoch": on_epoch}
            return [res for r in runs for res in train_task(replace(task, runs=[r]), **kw)]
        resumed = trainer.restore()
        for ctx in ctxs:
            fire(reg, ctx, "on_run_start")
        members = trainer.run()
    except (RunInterrupted, KeyboardInterrupt, SaveError):
        raise
    except Exception as exc:  # the batch's failure (OOM, a plug-in's bug) is recorded, never fatal
        raise_save_failure(exc, runs[0].run_id, task.checkpoints.location(runs) if task.checkpoints else "its worker")
        log = traceback.format_exc()
        return [_failed(r, ctxs[j] if j < len(ctxs) else None, exc, log, reg, dev, t0) for j, r in enumerate(runs)]
    results = [
        _finish(r, ctx, evs, m, dev, reg, resumed, len(runs), t0)
        for r, ctx, evs, m in zip(runs, ctxs, evaluators, members)
    ]
    if slot is not None and (len(runs) > 1 or task.checkpoints.url):
        slot.remove()  # every member's final weights travel back in its result (checkpoint.pt)
    return results


def _finish(
    run: RunSpec, ctx: RunContext, evaluators: list, m: MemberResult, dev, reg, resumed: bool, size: int, t0
) -> RunResult:
    """Evaluate a trained member, call the run-end hook; its result (or failure)."""
    if m.failed:
        return _failed(run, ctx, RunFailed(m.failure), "", reg, dev, t0)
    try:
        ds = records_to_dataset(m.records)
        for ev in evaluators:
            produced = ev.evaluate(ctx)
            bad = check_results(getattr(ev, "name", type(ev).__name__), produced)
            if bad:  # this run fails, naming the evaluator; never the sweep, never "the disk"
                raise RunFailed(bad)
            ds = ds.assign(produced)
        ds["train_seconds"] = xr.DataArray(
            float(ds["epoch_seconds"].sum()), attrs={"long_name": "training time, all stages", "units": "s"}
        )
        attrs = {"run_id": run.run_id, "seed": run.seed, "resumed": int(resumed), "device": str(dev)}
        ds.attrs.update(attrs, ensemble_members=size)
        buf = io.BytesIO()
        torch.save(
            {"model": ctx.model.state_dict(), "head": ctx.head.state_dict() if ctx.head is not None else None}, buf
        )
        fire(reg, ctx, "on_run_end", result=ds)
        note = ctx.checked_stop_reason() or ""
    except (RunInterrupted, KeyboardInterrupt, SaveError):
        raise
    except Exception as exc:
        raise_save_failure(exc, run.run_id)
        return _failed(run, ctx, exc, traceback.format_exc(), reg, dev, t0)
    return RunResult(
        run.run_id,
        "done",
        metrics=ds,
        weights=buf.getvalue(),
        hook_errors=list(ctx.hook_errors),
        note=note,
        files=dict(ctx.files),
        **_where(dev, t0),
    )


def _failed(run: RunSpec, ctx: RunContext | None, exc: BaseException, log: str, reg, dev, t0) -> RunResult:
    # describe_exception: a plug-in's exception whose __str__ raises must not hide the failure
    reason = str(exc) if isinstance(exc, (RunFailed, AebenchError)) else describe_exception(exc)
    hook_errors: list[str] = []
    if ctx is not None:
        fire(reg, ctx, "on_run_end", result=None)
        hook_errors = list(ctx.hook_errors)
    return RunResult(
        run.run_id, "failed", reason=reason, error_log=log or reason, hook_errors=hook_errors, **_where(dev, t0)
    )


def _where(dev, t0) -> dict[str, Any]:
    end = _dt.datetime.now(_dt.timezone.utc)
    return {
        "device": str(dev),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": t0.isoformat(timespec="seconds"),
        "finished": end.isoformat(timespec="seconds"),
        "seconds": (end - t0).total_seconds(),
    }


def note_alone(n: int, why: str) -> None:
    logging.getLogger("aebench").warning(
        "ensemble = true: %d run%s train%s one at a time: %s.", n, "s" if n != 1 else "", "" if n != 1 else "s", why
    )


# ------------------------------------------------------------------ disk errors
def save_error(run_id: str, where: str | Path, err: BaseException, ended: str = "") -> SaveError:
    """The one message for a run that could not be saved (disk full, read-only, no permission)."""
    also = f"; the run itself ended with: {ended}" if ended else ""
    return SaveError(
        mask(
            f"cannot save run {run_id} in {where} ({os_error_reason(err)}{also}). The earlier results are intact and "
            "the run is left to redo: free space or fix the folder, then continue with --resume.",
            str(where),
        )
    )


def raise_save_failure(exc: BaseException, run_id: str, where: str | Path = "its checkpoint store") -> None:
    if is_save_failure(exc):
        raise save_error(run_id, where, exc) from None


# ------------------------------------------------------------------ in the client
class Recorder:
    """The client's side of a run's life: which runs are left, their run folders, their results.

    ``on_done(run, status)`` is called once per run of the sweep (a run already done counts).
    """

    def __init__(self, out: Path, resume: bool, on_done: Callable[[RunSpec, str], None]) -> None:
        self.out, self.resume, self.on_done = Path(out), resume, on_done
        self.pending: dict[str, RunSpec] = {}  # started, not yet recorded
        self.shipped = 0  # bytes of results received (benchmarks)

    def store(self, run: RunSpec) -> RunStore:
        return RunStore(self.out, run.run_id)

    def todo(self, task: Task) -> Task | None:
        """``task`` without its finished runs (``--resume``), or None when all are done."""
        left = [r for r in task.runs if not self._is_done(r)]
        for r in task.runs:
            if r not in left:
                self.on_done(r, "done")
        return replace(task, runs=left) if left else None

    def _is_done(self, run: RunSpec) -> bool:
        store = self.store(run)
        previous = store.status()
        if not (self.resume and previous.get("status") == "done" and previous.get("digest") == run.digest()):
            return False
        problem = store.damage()
        if problem:  # a finished run whose files were truncated or deleted is trained again, and we say so
            warnings.warn(f"run {run.run_id} was done but {problem}; running it again.", stacklevel=2)
            return False
        return True

    def start(self, task: Task) -> Task:
        """Mark ``task``'s runs ``running`` (submitted), write their specs, clear a checkpoint
        that is not to be resumed; returns the task to send, which resumes whatever checkpoint
        it finds (so a task retried after its worker died continues where it was)."""
        if not self.resume and task.checkpoints is not None:
            task.checkpoints.slot(task.runs).remove()
        for run in task.runs:
            store = self.store(run)
            previous = store.status()
            store.dir.mkdir(parents=True, exist_ok=True)
            write_json(store.spec_path, json.loads(run.to_json()))
            if not (self.resume and len(task.runs) == 1) or previous.get("digest") != run.digest():
                store.checkpoint_path.unlink(missing_ok=True)
            info = {"digest": run.digest(), "seed": run.seed, "point": run.point, "started": now(), "reason": ""}
            store.set_status("running", **info, device=task.device)
            self.pending[run.run_id] = run
        return replace(task, resume=True)

    def worker(self, task: Task, pid: int) -> None:
        """The process now training ``task`` (status.json ``pid``: a dead worker's runs are failed by name)."""
        for run in task.runs:
            self.store(run).set_status("running", pid=pid)

    def record(self, run: RunSpec, result: RunResult) -> str:
        """Write one run's result into its run folder; return its status."""
        store = self.store(run)
        self.shipped += result.nbytes()
        ended = result.reason if result.status == "failed" else ""
        try:
            info = {
                "finished": result.finished or now(),
                "hook_errors": result.hook_errors,
                "device": result.device,
                "host": result.host,
                "pid": result.pid,
                "worker_seconds": round(result.seconds, 3),  # on the worker: build, train, evaluate
            }
            if result.status == "done":
                write_bytes(store.checkpoint_path, result.weights or b"")
                for name, data in result.files.items():
                    write_bytes(store.dir / Path(name).name, data)
                unwritable = self._write_metrics(store, result)
                if unwritable:  # the results themselves (not the disk): this run fails, the sweep goes on
                    store.checkpoint_path.unlink(missing_ok=True)  # final weights: not a checkpoint to resume
                    result = replace(result, status="failed", reason=unwritable, error_log=unwritable)
            if result.status == "done":
                store.set_status("done", note=result.note, reason="", **info)
            else:
                write_text(store.dir / "error.log", mask(result.error_log or result.reason))
                store.set_status("failed", reason=mask(result.reason), **info)
        except (OSError, RuntimeError, ResultsError) as err:  # disk full: say so once, keep the sweep resumable
            raise save_error(run.run_id, self.out, err, ended) from None
        self.pending.pop(run.run_id, None)
        self.on_done(run, result.status)
        return result.status

    @staticmethod
    def _write_metrics(store: RunStore, result: RunResult) -> str:
        """Write ``metrics.nc``; a disk error propagates, results netCDF cannot hold are the reason returned."""
        try:
            store.write_metrics(result.metrics)
        except Exception as exc:
            if isinstance(exc, (OSError, ResultsError)) or is_save_failure(exc):
                raise
            store.metrics_path.unlink(missing_ok=True)
            return f"its results could not be written as netCDF ({describe_exception(exc)})"
        return ""

    def fail(self, run: RunSpec, reason: str) -> None:
        """A run whose worker died under it."""
        self.store(run).set_status("failed", reason=mask(reason), finished=now())
        self.pending.pop(run.run_id, None)
        self.on_done(run, "failed")

    def interrupted(self, exc: BaseException) -> None:
        """Every run started and not recorded: ``interrupted`` (its checkpoint, if any, is kept)."""
        for run in list(self.pending.values()):
            try:
                self.store(run).set_status("interrupted", reason=f"{stopped_by(exc)}; finish it with --resume")
            except OSError:
                pass
        self.pending.clear()

    def unsaved(self, exc: SaveError) -> None:
        """Every run started and not recorded when a save failed (the store or ``--out`` full, read-only):
        ``failed`` with the reason, so neither ``status.json`` nor ``results.nc`` says ``running``;
        ``--resume`` trains them again. Where even that cannot be written, the run stays as it was."""
        for run in list(self.pending.values()):
            try:
                self.store(run).set_status("failed", reason=mask(exc), finished=now())
            except (OSError, ResultsError):
                pass
        self.pending.clear()


# ------------------------------------------------------------------ what an executor is given
#: ``Job.start(task)`` without a place: the job's own
_OWN_PLACE: Any = object()


@dataclass(frozen=True)
class Job:
    """Everything an executor needs, given when it is built (``cls(params, job)``; see
    :func:`aebench.hookspecs.aebench_executors`): the spec and device, the output folder's lock
    (``lock.add_workers(pids)``), the Stop event, and the steps of a task's life."""

    spec: Any  # aebench.Spec
    device: str
    recorder: Recorder
    place: CheckpointPlace | None = None
    lock: Any = None  # aebench.execution.output.OutputLock
    stop: threading.Event | None = None
    progress: bool = True
    on_epoch: Callable[[str, dict], None] | None = None

    #: trains a task where it is called (a worker) and returns its results; picklable
    train = staticmethod(train_task)

    def start(self, task: Task, place: CheckpointPlace | None = _OWN_PLACE) -> Task:
        """Mark ``task``'s runs ``running`` and return the task to send (checkpoints in ``place``:
        the job's own by default, None for workers that cannot reach it)."""
        return self.recorder.start(replace(task, checkpoints=self.place if place is _OWN_PLACE else place))

    def train_here(self, task: Task, position: int = 1) -> list[RunResult]:
        """Train ``task`` in this process, with progress bars, Stop and live epochs."""
        return train_task(task, position=position, progress=self.progress, stop=self.stop, on_epoch=self.on_epoch)

    def record(self, task: Task, results: list[RunResult]) -> None:
        """Write each result's run folder (on the client)."""
        by_id = {r.run_id: r for r in task.runs}
        for res in results:
            self.recorder.record(by_id[res.run_id], res)

    def fail(self, run: RunSpec, reason: str) -> None:
        """``run`` failed without a result (its worker died)."""
        self.recorder.fail(run, reason)

    def worker(self, task: Task, pid: int) -> None:
        """The process now training ``task``, by its pid (a dead worker's runs are failed by name)."""
        self.recorder.worker(task, pid)
