"""Running a spec: pre-flight checks, executors, per-run execution, merge (DESIGN §5, §9)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import xarray as xr

import aebench
from aebench import options
from aebench.engine.checkpoint import clean_temporaries, save_checkpoint, write_json, write_text
from aebench.engine.members import CannotBatch, batch_key
from aebench.engine.runner import (
    RunInterrupted,
    RunOptions,
    Trainer,
    build_contexts,
    note_hook_errors,
    records_to_dataset,
    resolve_device,
)
from aebench.errors import AebenchError, ResultsError, RunFailed, SaveError, SpecError, stopped_by
from aebench.outdir import check_output_tree
from aebench.plugins import call_hook, describe_exception, registry
from aebench.results import OutputLock, RunStore, merge_runs, write_results
from aebench.spec import RunSpec, Spec


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------ runs and batches
def execute_run(run: RunSpec, out: str | Path, *args: Any, **kwargs: Any) -> str:
    """Train and evaluate one run into ``out/runs/<run-id>`` (a batch of one: the options
    of :func:`execute_group`); return its final status."""
    return execute_group([run], out, *args, **kwargs)[0]


def execute_group(
    runs: list[RunSpec],
    out: str | Path,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    stop: threading.Event | None = None,
    position: int = 1,
    on_epoch: Callable[[str, dict], None] | None = None,
    compile: bool = False,
) -> list[str]:
    """Train runs that share shapes as the members of one batch (one run: a batch of one);
    each run's folder is written the same either way. Return each run's final status.

    A run that diverges or raises is recorded as ``failed`` with the reason (and the
    traceback in ``error.log``) and never disturbs another run's files. A batch's own
    checkpoint lives in ``runs/.ensemble-<digest>.pt`` while it trains (a solo run's in its
    ``checkpoint.pt``), so ``--resume`` continues it.
    """
    reg = registry()
    stores = [RunStore(Path(out), r.run_id) for r in runs]
    status = ["done"] * len(runs)
    todo = [k for k, (r, st) in enumerate(zip(runs, stores)) if not _is_done(st, r, resume)]
    if not todo:
        return status
    checkpoint = _checkpoint_path(out, [runs[k] for k in todo], stores[todo[0]])
    if not resume:
        checkpoint.unlink(missing_ok=True)
    devs = [_start(stores[k], runs[k], device, resume and len(todo) == 1) for k in todo]
    ctxs: list = []
    try:
        ctxs = build_contexts([runs[k] for k in todo], devs[0], reg)
        evaluators = [[e.build(reg) for e in runs[k].evaluators] for k in todo]
        for k, ctx in zip(todo, ctxs):
            ctx.extras["run_dir"] = stores[k].dir
        try:
            trainer = Trainer(
                ctxs,
                evaluators,
                RunOptions(devs[0], progress, resume, stop, position, on_epoch, compile=compile),
                checkpoint,
                reg,
            )
        except CannotBatch as why:  # found only once built (e.g. a model subclass with parameters of its own)
            _note_alone(len(todo), str(why))
            return [
                status[k]
                if k not in todo
                else execute_run(runs[k], out, device, resume, progress, stop, position, on_epoch, compile)
                for k in range(len(runs))
            ]
        resumed = trainer.restore()
        for ctx in ctxs:
            note_hook_errors(ctx, call_hook(reg, "aebench_on_run_start", run=ctx))
        records = trainer.run()
    except (RunInterrupted, KeyboardInterrupt) as exc:  # Ctrl-C, SIGTERM, SIGHUP, the Workbench's Stop
        for k in todo:
            stores[k].set_status("interrupted", reason=f"{stopped_by(exc)}; finish it with --resume")
        raise
    except SaveError:
        raise
    except Exception as exc:  # the batch's failure (OOM, a plug-in's bug) is recorded, never fatal
        _raise_save_failure(exc, runs[todo[0]], out)
        for j, k in enumerate(todo):
            status[k] = _fail(stores[k], ctxs[j] if j < len(ctxs) else None, exc, reg)
        return status
    for j, k in enumerate(todo):
        status[k] = _finish_member(
            runs[k], stores[k], ctxs[j], evaluators[j], records[j], devs[j], reg, resumed, len(todo)
        )
    if len(todo) > 1:
        checkpoint.unlink(missing_ok=True)  # every member now has its own final checkpoint.pt
    return status


def _checkpoint_path(out: str | Path, runs: list[RunSpec], store: RunStore) -> Path:
    if len(runs) == 1:
        return store.checkpoint_path
    members = "\n".join(f"{r.run_id} {r.digest()}" for r in runs)
    return Path(out) / "runs" / f".ensemble-{hashlib.sha256(members.encode()).hexdigest()[:16]}.pt"


def _finish_member(run, store, ctx, evaluators, records, dev, reg, resumed: bool, members: int) -> str:
    try:
        if "failed" in ctx.extras:
            raise RunFailed(ctx.extras["failed"])
        state = {"model": ctx.model.state_dict(), "head": ctx.head.state_dict() if ctx.head is not None else None}
        save_checkpoint(store.checkpoint_path, state)
        return _finish(run, store, ctx, evaluators, records, dev, reg, resumed=resumed, ensemble=members)
    except SaveError:
        raise
    except Exception as exc:
        _raise_save_failure(exc, run, store.dir.parent.parent)
        return _fail(store, ctx, exc, reg)


def _raise_save_failure(exc: BaseException, run: RunSpec, out: str | Path) -> None:
    if _is_save_failure(exc):
        raise SaveError(
            f"cannot save run {run.run_id} in {out} ({_why(exc)}); the earlier results are intact and the run is "
            "left to redo: free space or fix the folder, then continue with --resume."
        ) from None


def _is_save_failure(exc: BaseException) -> bool:
    """A write that failed for want of space or permission (netCDF reports these as RuntimeError)."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        w in text for w in ("no space", "disk quota", "read-only file system", "permission denied", *TORCH_WRITE_FAILS)
    )


#: how torch.save reports a write that ran out of room (its C++ stream writer, no errno)
TORCH_WRITE_FAILS = ("inline_container.cc", "pytorchstreamwriter")


def _is_done(store: RunStore, run: RunSpec, resume: bool) -> bool:
    previous = store.status()
    if not (resume and previous.get("status") == "done" and previous.get("digest") == run.digest()):
        return False
    problem = store.damage()
    if problem:  # a finished run whose files were truncated or deleted is trained again, and we say so
        import warnings

        warnings.warn(f"run {run.run_id} was done but {problem}; running it again.", stacklevel=2)
        return False
    return True


def _start(store: RunStore, run: RunSpec, device: str, resume: bool) -> torch.device:
    previous = store.status()
    store.dir.mkdir(parents=True, exist_ok=True)
    write_json(store.spec_path, json.loads(run.to_json()))
    if not resume or previous.get("digest") != run.digest():
        store.checkpoint_path.unlink(missing_ok=True)
    dev = resolve_device(device)
    store.set_status(  # pid: the process training it (a dead worker's runs are failed by name)
        "running",
        digest=run.digest(),
        seed=run.seed,
        point=run.point,
        started=_now(),
        device=str(dev),
        reason="",
        pid=os.getpid(),
    )
    return dev


def _finish(run, store, ctx, evaluators, records, dev, reg, resumed: bool = False, ensemble: int = 1) -> str:
    """Evaluate, write metrics.nc and status ``done``, call the run-end hook."""
    ds = records_to_dataset(records)
    for ev in evaluators:
        ds = ds.assign(ev.evaluate(ctx))
    ds["train_seconds"] = xr.DataArray(
        float(ds["epoch_seconds"].sum()), attrs={"long_name": "training time, all stages", "units": "s"}
    )
    ds.attrs.update(run_id=run.run_id, seed=run.seed, resumed=int(resumed), device=str(dev), ensemble_members=ensemble)
    store.write_metrics(ds)
    note_hook_errors(ctx, call_hook(reg, "aebench_on_run_end", run=ctx, result=ds))
    note = ctx.checked_stop_reason() or ""
    store.set_status("done", finished=_now(), note=note, hook_errors=ctx.extras.get("hook_errors", []))
    return "done"


def _fail(store, ctx, exc: BaseException, reg) -> str:
    # describe_exception: a plug-in's exception whose __str__ raises must not hide the failure
    reason = str(exc) if isinstance(exc, (RunFailed, AebenchError)) else describe_exception(exc)
    try:
        write_text(store.dir / "error.log", traceback.format_exc())
        store.set_status("failed", reason=reason, finished=_now())
    except (OSError, RuntimeError, ResultsError) as err:  # disk full: say so once, keep the sweep resumable
        raise SaveError(
            f"cannot save run {store.dir.name} in {store.dir.parent.parent} ({_why(err)}; the run itself ended with: "
            f"{reason}). The earlier results are intact: free space or fix the folder, then continue with --resume."
        ) from None
    if ctx is not None:
        call_hook(reg, "aebench_on_run_end", run=ctx, result=None)
    return "failed"


def _why(err: BaseException) -> str:
    if any(w in str(err).lower() for w in TORCH_WRITE_FAILS):  # not torch's C++ internals: what they mean
        return "a checkpoint could not be written: is the disk full?"
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


def group_runs(spec: Spec, reg=None) -> list[list[RunSpec]]:
    """Tasks in run order: one run each, or (``ensemble = true``) runs sharing shapes together.

    A run whose model or custom objective cannot batch trains alone, with a one-line note."""
    if not spec.raw.get("ensemble"):
        return [[r] for r in spec.runs]
    reg = reg or registry()
    groups: dict[str, list[RunSpec]] = {}
    alone: dict[str, int] = {}
    for r in spec.runs:
        key, why = batch_key(r, reg)
        if key is None:
            alone[why] = alone.get(why, 0) + 1
            key = f"alone:{r.run_id}"
        groups.setdefault(key, []).append(r)
    for why, n in alone.items():
        _note_alone(n, why)
    return list(groups.values())


def _note_alone(n: int, why: str) -> None:
    logging.getLogger("aebench").warning(
        "ensemble = true: %d run%s train%s one at a time: %s.", n, "s" if n != 1 else "", "" if n != 1 else "s", why
    )


def _threads_per_worker(workers: int) -> int:
    """Split the machine's cores among workers so that they do not oversubscribe them."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _init_worker(threads: int, parent: int | None = None) -> None:
    torch.set_num_threads(threads)
    if parent is not None:
        die_with_parent(parent)


def die_with_parent(parent: int) -> None:
    """End this worker process when ``parent`` dies (kill -9 included), so no orphan keeps
    training and writing run folders beside a ``--resume``.

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


class LocalExecutor:
    """Runs one after another in this process (Ctrl-C and the Workbench's Stop stop it cleanly)."""

    name = "local"

    def __init__(self, workers: int | None = None, scheduler: str | None = None) -> None:
        pass

    def map(self, groups: list[list[RunSpec]], kwargs: dict[str, Any], on_done: Callable[[RunSpec, str], None]) -> None:
        for group in groups:
            for run, status in zip(group, execute_group(group, **kwargs)):
                on_done(run, status)


class ProcessExecutor:
    """N worker processes (spawned), each with cores / N torch threads.

    Worker processes see installed (entry-point) plug-ins only, not ones registered in
    this process with :func:`aebench.register_plugin`.
    """

    name = "process"
    lock = None  # the run's OutputLock, set by run()

    def __init__(self, workers: int | None = None, scheduler: str | None = None) -> None:
        self.workers = workers or min(4, os.cpu_count() or 1)

    def map(self, groups, kwargs, on_done) -> None:
        from aebench.procpool import map_groups

        kwargs = {**kwargs, "stop": None, "progress": False, "on_epoch": None}
        out = Path(kwargs["out"])

        def mark_failed(run: RunSpec, reason: str) -> None:  # its worker died under it
            RunStore(out, run.run_id).set_status("failed", reason=reason, finished=_now())

        map_groups(
            groups,
            kwargs,
            on_done,
            fn=execute_group,
            workers=self.workers,
            initializer=_init_worker,
            initargs=(_threads_per_worker(self.workers), os.getpid()),
            mark_failed=mark_failed,
            lock=self.lock,
        )


class DaskExecutor:
    """``dask.distributed``: a LocalCluster on 127.0.0.1, or an existing cluster (``scheduler``)."""

    name = "dask"

    def __init__(self, workers: int | None = None, scheduler: str | None = None) -> None:
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.scheduler = scheduler

    def map(self, groups, kwargs, on_done) -> None:
        from dask.distributed import Client, LocalCluster, as_completed

        kwargs = {
            **kwargs,
            "stop": None,
            "progress": False,
            "on_epoch": None,
            "out": str(Path(kwargs["out"]).resolve()),
        }
        if self.scheduler:
            cluster, client = None, Client(self.scheduler)
        else:
            cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            client = Client(cluster)
        try:
            client.run(_init_worker, _threads_per_worker(self.workers))
            futures = [
                client.submit(execute_group, g, pure=False, key=f"{g[0].run_id}-{g[0].digest()}", **kwargs)
                for g in groups
            ]
            by_key = {f.key: g for f, g in zip(futures, groups)}
            for fut in as_completed(futures):
                for run, status in zip(by_key[fut.key], fut.result()):
                    on_done(run, status)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


EXECUTORS: dict[str, type] = {"local": LocalExecutor, "process": ProcessExecutor, "dask": DaskExecutor}
assert tuple(EXECUTORS) == options.EXECUTORS, "aebench.options lists the executors the CLI and Workbench offer"


def make_executor(name: str, workers: int | None = None, scheduler: str | None = None):
    if name not in EXECUTORS:
        raise AebenchError(f"--executor {name!r} is unknown; choose one of {', '.join(EXECUTORS)}.")
    if workers is not None and workers < 1:
        raise AebenchError(f"--workers {workers} must be at least 1.")
    if name == "dask":
        try:
            import dask.distributed  # noqa: F401
        except ImportError:
            raise AebenchError("--executor dask needs dask.distributed: pip install 'aebench[dask]'.") from None
    return EXECUTORS[name](workers=workers, scheduler=scheduler)


# ---------------------------------------------------------------------- pre-flight
def preflight(spec: Spec, rows: dict[str, list[dict[str, int]]] | None = None) -> dict[str, dict[str, str]]:
    """Load every data set once and check the runs can start: raises before anything is written.

    Returns the data checksums; ``rows``, when given, receives each data set's split sizes
    as the runs will see them (a report's protocol note is written from them).
    """
    reg = registry()
    checksums: dict[str, dict[str, str]] = {}
    seen: dict[str, Any] = {}
    for run in spec.runs:
        key = run.data.name + run.data.params.model_dump_json()
        if key not in seen:
            seen[key] = run.data.build(reg).load()
        data = seen[key]
        checksums[data.name] = data.checksums
        if rows is not None:
            sizes = {split: len(getattr(data, split).y) for split in ("train", "valid", "test")}
            if sizes not in rows.setdefault(run.data.name, []):
                rows[run.data.name].append(sizes)
        loss = getattr(run.model.params, "loss", None)
        if loss == "cross-entropy":
            hi = float(data.train.x.max()) * data.scale
            lo = float(data.train.x.min()) * data.scale
            if hi > 1 + 1e-6 or lo < -1e-6:
                raise SpecError(
                    f"model.loss = 'cross-entropy' needs inputs in [0, 1], but data {data.name!r} spans "
                    f"[{lo:g}, {hi:g}]; normalise the data or use loss = 'squared-error'."
                )
        n_layers = len(getattr(run.model.params, "layers", [])) or 1
        if not any(sched.build(reg).stages(n_layers) for sched in run.schedules):
            names = ", ".join(s.name for s in run.schedules)
            raise SpecError(f"schedule ({names}) has no stage to train in run {run.run_id} ({run.point}).")
    return checksums


def _prepare_out(out: Path, spec: Spec, resume: bool, force: bool = False) -> None:
    saved = out / "spec.toml"
    # every path a run writes, at any depth (runs/<id>/ and its files too): no link, no pipe
    check_output_tree(out, [r.run_id for r in spec.runs])
    if saved.is_file():
        try:
            same = Spec.from_text(saved.read_text(), source=str(saved)).raw == spec.raw
        except AebenchError:
            same = False
        if not same:
            raise ResultsError(
                f"{out} holds the results of another spec ({saved}); choose another --out or delete that folder."
            )
        if not resume and (out / "runs").exists():
            raise ResultsError(
                f"{out} already holds runs of this spec; pass --resume to finish them, or choose another --out."
            )
    else:
        _refuse_foreign(out, force)
        out.mkdir(parents=True, exist_ok=True)
        write_text(saved, spec.to_toml())
    removed = clean_temporaries(out)
    if removed:
        logging.getLogger("aebench").info("removed %d temporary files left by an interrupted write", len(removed))


def _refuse_foreign(out: Path, force: bool) -> None:
    """A folder with files but no spec of ours is someone else's: refuse it (``--force`` to write beside them)."""
    if force or not out.is_dir() or (out / "spec.toml").is_file():
        return
    foreign = sorted(p.name for p in out.iterdir() if p.name != ".lock")
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ResultsError(
            f"{out} already holds files that aebench did not write ({shown}); choose an empty or new --out, "
            "or pass --force to write beside them."
        )


def _open_out(out: Path, force: bool = False) -> None:
    """``--out`` must be a folder aebench can write: a clear error (exit 2) before anything starts."""
    if out.exists() and not out.is_dir():
        raise ResultsError(f"--out {out} is a file, not a folder; choose a folder.")
    _refuse_foreign(out, force)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsError(f"--out {out} cannot be created ({exc.strerror or exc}).") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ResultsError(f"--out {out} is not writable (read-only folder or file system, or no permission).")


# ----------------------------------------------------------------------- the API
def run(
    spec: Spec | str | Path,
    out: str | Path,
    *,
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    stop: threading.Event | None = None,
    on_run_done: Callable[[RunSpec, str], None] | None = None,
    on_epoch: Callable[[str, dict], None] | None = None,
    ensemble: bool | None = None,
    force: bool = False,
    compile: bool | None = None,
) -> xr.Dataset:
    """Run every run of ``spec`` into ``out`` and return the merged results.

    ``ensemble`` and ``compile`` override the spec's keys of those names (and are saved
    with the spec).
    ``force`` lets a run write into a folder that holds files aebench did not write.

    ``out/results.nc`` is (re)written after every finished run, so a partial sweep is
    always readable. Bad input raises :class:`aebench.AebenchError` before anything is
    written.
    """
    if not isinstance(spec, Spec):
        spec = Spec.from_toml(spec)
    for key, value in (("ensemble", ensemble), ("compile", compile)):
        if value is not None and bool(spec.raw.get(key, False)) != value:
            spec = Spec.from_dict({**spec.raw, key: value}, spec.source)
    out = Path(out)
    resolve_device(device)
    rows: dict[str, list[dict[str, int]]] = {}
    checksums = preflight(spec, rows)
    ex = make_executor(executor, workers, scheduler)
    _open_out(out, force)
    with OutputLock(out) as lock:
        ex.lock = lock
        _prepare_out(out, spec, resume, force)
        attrs = {**_attrs(spec, device, checksums), "data_rows": json.dumps(rows, sort_keys=True)}
        dims = spec.sweep_dims()
        bar = _overall_bar(len(spec.runs), progress)
        loaded: dict[str, xr.Dataset] = {}
        last_write = [0.0]

        def done(run: RunSpec, status: str) -> None:
            bar.update(1)
            # Keep results.nc current while the sweep runs, but at most every few seconds:
            # a merge of hundreds of runs after each one would cost O(n²).
            if time.monotonic() - last_write[0] >= MERGE_EVERY_S:
                write_results(merge_runs(out, spec.runs, dims, attrs, loaded), out)
                last_write[0] = time.monotonic()
            if on_run_done is not None:
                on_run_done(run, status)

        try:
            kwargs = {
                "out": out,
                "device": device,
                "resume": resume,
                "progress": progress,
                "stop": stop,
                "on_epoch": on_epoch,
                "compile": bool(spec.raw.get("compile", False)),
            }
            ex.map(group_runs(spec), kwargs, done)
        except BaseException:
            try:  # Ctrl-C or Stop: still merge what finished, then re-raise the interruption
                write_results(merge_runs(out, spec.runs, dims, attrs, loaded), out)
            except Exception:
                pass
            raise
        finally:
            bar.close()
        ds = merge_runs(out, spec.runs, dims, attrs, loaded)
        write_results(ds, out)
    return ds


#: the least time between two intermediate writes of results.nc during a sweep
MERGE_EVERY_S = 5.0


def _attrs(spec: Spec, device: str, checksums: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": spec.name,
        "spec": spec.to_toml(),
        "aebench_version": aebench.__version__,
        "torch_version": torch.__version__,
        "device": str(resolve_device(device)),
        "data_checksums": json.dumps(checksums, sort_keys=True),
        "sweep_mode": spec.raw.get("sweep", {}).get("mode", "grid"),
        "explicit_runs": int(bool(spec.raw.get("runs"))),
        "n_seeds": len(spec.raw.get("seeds", [0])),
        "created": _now(),
    }


def _overall_bar(total: int, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="runs", unit="run", disable=not progress or total < 2, position=0)


def statuses(ds: xr.Dataset) -> Iterable[str]:
    return [str(v) for v in ds["status"].values.ravel()]
