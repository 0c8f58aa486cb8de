"""``aebench.run``: pre-flight, the output folder, the executor, the merge (DESIGN §5, §9)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import xarray as xr

from aebench.engine.members import batch_key
from aebench.engine.runner import RunInterrupted, resolve_device
from aebench.errors import StopSignal
from aebench.execution.executors import executor_setup
from aebench.execution.lifecycle import CheckpointPlace, Job, Recorder, Task, note_alone, now
from aebench.execution.output import OutputLock, open_out, prepare_out
from aebench.execution.preflight import preflight
from aebench.plugins import registry
from aebench.results import merge_runs, write_results
from aebench.spec import RunSpec, Spec
from aebench.version import __version__

#: the least time between two intermediate writes of results.nc during a sweep
MERGE_EVERY_S = 5.0


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
        note_alone(n, why)
    return list(groups.values())


def run(
    spec: Spec | str | Path,
    out: str | Path,
    *,
    executor: str | dict[str, Any] | type = "local",
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    stop: threading.Event | None = None,
    on_run_done: Callable[[RunSpec, str], None] | None = None,
    on_epoch: Callable[[str, dict], None] | None = None,
    ensemble: bool | None = None,
    force: bool = False,
    compile: bool | None = None,
    checkpoints: str | None = None,
) -> xr.Dataset:
    """Run every run of ``spec`` into ``out`` and return the merged results.

    ``executor`` names an installed executor (``"local"``, ``"process"``, ``"dask"``, a
    plug-in's), or is a table with its options: ``{"name": "dask", "scheduler": "tcp://...:8786"}``,
    ``{"name": "process", "workers": 4}`` (``aebench plugins`` lists each executor's options), or
    an executor class (``aebench.testing.check_executor`` runs one that is not registered).

    ``ensemble`` and ``compile`` override the spec's keys of those names (and are saved
    with the spec). ``force`` lets a run write into a folder that holds files aebench did
    not write. ``checkpoints`` names an fsspec store (``s3://bucket/exp``, ``memory://x``, a
    local folder) for resumable checkpoints when the workers do not share ``out``.

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
    executor_cls, executor_params = executor_setup(executor, registry())  # bad options: before any write
    open_out(out, force)
    with OutputLock(out) as lock:
        prepare_out(out, spec, resume, force)
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

        rec = Recorder(out, resume, done)
        place = CheckpointPlace(checkpoints, url=True) if checkpoints else CheckpointPlace(str(out.resolve()))
        compiled = bool(spec.raw.get("compile", False))
        try:
            tasks = [Task(g, device, resume, compiled) for g in group_runs(spec)]
            tasks = [t for t in map(rec.todo, tasks) if t is not None]
            job = Job(spec, device, rec, place, lock, stop, progress, on_epoch)
            executor_cls(executor_params, job).map(tasks)
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, StopSignal, RunInterrupted)):
                rec.interrupted(exc)
            try:  # Ctrl-C or Stop: still merge what finished, then re-raise the interruption
                write_results(merge_runs(out, spec.runs, dims, attrs, loaded), out)
            except Exception:
                pass
            raise
        finally:
            bar.close()
        ds = merge_runs(out, spec.runs, dims, attrs, loaded)
        ds.attrs["result_bytes"] = rec.shipped
        write_results(ds, out)
    return ds


def _attrs(spec: Spec, device: str, checksums: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": spec.name,
        "spec": spec.to_toml(),
        "aebench_version": __version__,
        "torch_version": torch.__version__,
        "device": str(resolve_device(device)),
        "data_checksums": json.dumps(checksums, sort_keys=True),
        "sweep_mode": spec.raw.get("sweep", {}).get("mode", "grid"),
        "explicit_runs": int(bool(spec.raw.get("runs"))),
        "n_seeds": len(spec.raw.get("seeds", [0])),
        "created": now(),
    }


def _overall_bar(total: int, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="runs", unit="run", disable=not progress or total < 2, position=0)


def statuses(ds: xr.Dataset) -> Iterable[str]:
    return [str(v) for v in ds["status"].values.ravel()]
