"""Per-run stores and the merged results dataset (DESIGN §6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from aebench.atomic import atomic_write, write_json
from aebench.errors import ResultsError, SaveError
from aebench.evaluate.flags import flag_unconverged

RESULTS = "results.nc"
STATUS_ATTRS = {"long_name": "run status (done, failed, running, missing)", "units": "1"}


class RunStore:
    """``DIR/runs/<run-id>/``: spec.json, status.json, metrics.nc, checkpoint.pt."""

    def __init__(self, out: Path, run_id: str) -> None:
        self.dir = Path(out) / "runs" / run_id

    spec_path = property(lambda self: self.dir / "spec.json")
    status_path = property(lambda self: self.dir / "status.json")
    metrics_path = property(lambda self: self.dir / "metrics.nc")
    checkpoint_path = property(lambda self: self.dir / "checkpoint.pt")

    def status(self) -> dict[str, Any]:
        try:
            return json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {"status": "missing"}

    def set_status(self, status: str, **info: Any) -> None:
        write_json(self.status_path, {**self.status(), "status": status, **info})

    def write_metrics(self, ds: xr.Dataset) -> None:
        write_netcdf(ds, self.metrics_path)

    def damage(self) -> str | None:
        """Why a finished run's files cannot be trusted (missing or unreadable), or None."""
        import zipfile

        try:
            if self.load_metrics() is None:
                return f"{self.metrics_path} is missing"
        except Exception as exc:
            return f"{self.metrics_path} is unreadable ({type(exc).__name__})"
        if not zipfile.is_zipfile(self.checkpoint_path):
            return f"{self.checkpoint_path} is missing or truncated"
        return None

    def load_metrics(self) -> xr.Dataset | None:
        if not self.metrics_path.is_file():
            return None
        with xr.open_dataset(self.metrics_path) as ds:
            # Merging pads with NaN: the on-disk integer encodings must not follow.
            return ds.load().drop_encoding()


def load_model(run_dir: str | Path, device: str = "cpu"):
    """The trained model of a finished run (``DIR/runs/<run-id>``), rebuilt from its spec and checkpoint.

    Returns ``(model, data)``: the model in eval mode and the run's ``DataSplits``.
    """
    import torch

    from aebench.engine.checkpoint import load_checkpoint
    from aebench.plugins import registry
    from aebench.spec import resolve

    run_dir = Path(run_dir)
    try:
        saved = json.loads((run_dir / "spec.json").read_text())
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{run_dir} is not a run folder: {exc}") from None
    run = resolve(saved["spec"], 0, saved["seed"], saved["point"], registry(), str(run_dir / "spec.json"))
    data = run.data.build().load()
    model = run.model.cls()(run.model.params, data.n_inputs, torch.Generator().manual_seed(run.seed))
    state = load_checkpoint(run_dir / "checkpoint.pt", strict=True)  # unreadable or unsafe: says which
    if state is None:
        raise ResultsError(f"{run_dir / 'checkpoint.pt'} is missing.")
    model.load_state_dict(state["model"])
    return model.to(device).eval(), data


def write_netcdf(ds: xr.Dataset, path: Path) -> None:
    """Write ``ds`` atomically (netCDF4); a failure leaves any earlier file intact."""
    atomic_write(Path(path), lambda p: ds.to_netcdf(p, engine="netcdf4"))


def load_results(path: str | Path) -> xr.Dataset:
    """Open a results.nc (or a results folder) fully into memory."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS
    if not path.is_file():
        if (path.parent / "runs").is_dir() and (path.parent / "spec.toml").is_file():
            raise ResultsError(
                f"no results file at {path}: the runs in {path.parent} were cut short before any were merged "
                "(killed, or a full disk); finish them with: aebench run "
                f"{path.parent / 'spec.toml'} --out {path.parent} --resume"
            )
        raise ResultsError(f"no results file at {path}.")
    try:
        with xr.open_dataset(path) as ds:
            ds = ds.load()
    except Exception as exc:
        raise ResultsError(f"results file {path} cannot be read ({type(exc).__name__}: {exc}).") from None
    return settle_running(ds, path.parent)


#: why a run is ``interrupted`` when its status says ``running`` and no process holds its folder
ENDED_WHILE_RUNNING = (
    "its process ended before the run was recorded (killed, or a save failed: a full disk?); finish it with --resume"
)


def settle_running(ds: xr.Dataset, folder: Path) -> xr.Dataset:
    """Runs whose saved status is ``running`` while no live aebench process holds ``folder`` were
    cut short where even their status could not be written (kill -9, a full disk): ``interrupted``,
    as ``aebench ls`` counts them, never ``running`` in a report of a folder nobody is writing."""
    from aebench.outdir import held

    if "status" not in ds or not (ds["status"] == "running").any() or held(folder):
        return ds
    cut = ds["status"] == "running"
    ds["status"] = ds["status"].where(~cut, "interrupted")
    if "reason" in ds:
        ds["reason"] = ds["reason"].where(~cut, ENDED_WHILE_RUNNING)
    return ds


def merge_runs(
    out: Path, runs: list, dims: list[str], attrs: dict[str, Any], loaded: dict[str, xr.Dataset] | None = None
) -> xr.Dataset:
    """One Dataset: a dimension per sweep axis (named by its dotted key) plus ``seed``.

    Grid sweeps unstack onto their axes; zip sweeps and ``[[runs]]`` lists keep one
    ``point`` dimension with each swept key as a coordinate along it. Failed runs keep
    their place with ``status = "failed"`` and NaN metrics. ``loaded`` caches finished
    runs' metrics across calls, so a sweep reads each metrics.nc once.
    """
    grid = attrs.get("sweep_mode", "grid") == "grid" and not attrs.get("explicit_runs")
    parts = []
    for run in runs:
        store = RunStore(out, run.run_id)
        status = store.status()
        if status.get("status") != "done":
            ds = xr.Dataset()
        elif loaded is not None and run.run_id in loaded:
            ds = loaded[run.run_id].copy()
        else:
            try:
                ds = store.load_metrics()
            except Exception as exc:
                ds = None
                why = f"unreadable ({type(exc).__name__})"
            else:
                why = "missing"
            if ds is None:  # done, but its numbers are gone: never report NaN as a finished result
                status = {
                    "status": "failed",
                    "reason": f"{store.metrics_path.name} is {why}; run it again with --resume",
                }
                ds = xr.Dataset()
            elif loaded is not None:
                loaded[run.run_id] = ds.copy()
        ds.attrs = {}  # run attributes differ; the merged dataset gets the sweep's own
        ds["status"] = xr.DataArray(status.get("status", "missing"), attrs=STATUS_ATTRS)
        ds["reason"] = xr.DataArray(status.get("reason", ""), attrs={"long_name": "why the run failed", "units": "1"})
        index = {"seed": [run.seed]}
        if grid:
            index = {**{k: [_coord(_point_value(run, k))] for k in dims}, **index}
            ds = ds.expand_dims(index)
        else:
            ds = ds.expand_dims({"point": [run.index // max(1, attrs.get("n_seeds", 1))], "seed": [run.seed]})
            ds = ds.assign_coords({k: ("point", [_coord(_point_value(run, k))]) for k in dims})
        parts.append(ds)
    merged = xr.merge(parts, compat="no_conflicts", join="outer", combine_attrs="drop_conflicts")
    # An outer merge sorts each index; the spec's sweep order is the one a reader expects
    # (and the one a table keyed by position would silently get wrong if it were sorted).
    order = {"seed": _unique(run.seed for run in runs)}
    if grid:
        order.update({k: _unique(_coord(_point_value(run, k)) for run in runs) for k in dims})
    merged = merged.reindex({k: v for k, v in order.items() if k in merged.dims})
    for part in parts:  # outer merges can drop variable attributes; every run writes the same ones
        for name, var in part.variables.items():
            if name in merged.variables and not merged.variables[name].attrs:
                merged.variables[name].attrs.update(var.attrs)
    for name in ("status", "reason", "stage"):
        if name in merged:
            merged[name] = _fill_strings(merged[name], "missing" if name == "status" else "")
    merged.attrs.update({k: v for k, v in attrs.items() if isinstance(v, (str, int, float))})
    merged = supervised_test_error(merged)
    return flag_unconverged(merged)  # finished but untrained runs are marked, never averaged in


def supervised_test_error(ds: xr.Dataset) -> xr.Dataset:
    """Add ``class_test_error``: each run's supervised test error at its best validation epoch.

    Early stopping's protocol (Erhan et al.'s result is this number, over seeds); the first epoch
    with the lowest validation error counts. Runs without supervised training get NaN."""
    if "class_error" not in ds or not {"epoch", "split"} <= set(ds["class_error"].dims):
        return ds
    curve = ds["class_error"]
    valid = curve.sel(split="valid")
    best = valid.fillna(np.inf).argmin("epoch")
    test = curve.sel(split="test", drop=True).isel(epoch=best, drop=True).where(valid.notnull().any("epoch"))
    attrs = {"long_name": "supervised test error at the best validation epoch", "units": "1"}
    return ds.assign(class_test_error=test.assign_attrs(attrs))


def _coord(value: Any) -> Any:
    # netCDF coordinates must be scalars: lists/tables become their TOML-ish text.
    return value if isinstance(value, (str, int, float, bool)) else json.dumps(value)


def _point_value(run, key: str) -> Any:
    """The run's value of a swept key; a ``[[runs]]`` entry that does not set it has the spec's own value."""
    from aebench.spec import get_dotted

    return run.point[key] if key in run.point else get_dotted(run.raw, key)


def _unique(values) -> list:
    return list(dict.fromkeys(values))


def _fill_strings(da: xr.DataArray, fill: str) -> xr.DataArray:
    values = np.array([v if isinstance(v, str) else fill for v in da.values.ravel()], dtype=object)
    return da.copy(data=values.reshape(da.shape).astype(str))


def write_results(ds: xr.Dataset, out: Path) -> Path:
    """Write ``out/results.nc`` atomically; a failed write (disk full) keeps the previous file."""
    path = Path(out) / RESULTS
    try:
        write_netcdf(ds, path)
    except (OSError, RuntimeError) as exc:  # netCDF reports a full disk as RuntimeError
        raise SaveError(
            f"cannot write {path} ({getattr(exc, 'strerror', None) or exc}); the previous results file is intact and "
            "the finished runs are kept: free space, then continue with --resume."
        ) from None
    return path


__all__ = ["RunStore", "load_model", "merge_runs", "load_results", "write_results", "write_json"]
