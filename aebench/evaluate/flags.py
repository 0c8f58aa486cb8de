"""Runs that finished but did not train: flagged in the results instead of shown as numbers.

A fine-tuning run that early-stopped at epoch 22 with a training error of 0.42, while
its peers reached a few per cent, has not learned the task: its test error (53 % against
28–31 %) is a failure of optimisation, not a property of its scheme. :func:`flag_unconverged`
compares each run's training error at its chosen (best validation) epoch with its peers'
— the runs on the same data set — and marks the outliers ``converged = 0`` with the
reason, so tables and the report show "not converged" instead of averaging it in.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: a run is an outlier when its training error exceeds both ``RATIO`` × and ``MARGIN`` + the peers' median
RATIO, MARGIN = 2.0, 0.10
CONVERGED_ATTRS = {
    "long_name": "0 when training ended with a training error far above its peers' (not converged), else 1",
    "units": "1",
}


def training_error(ds: xr.Dataset) -> tuple[xr.DataArray, str] | None:
    """Each run's training error at its best validation epoch, and which training it measures."""
    for var, epoch, what in (
        ("finetune_curve", "finetune_epoch", "the finetune evaluator's"),
        ("class_error", "epoch", "supervised"),
    ):
        if var in ds and {"split", epoch} <= set(ds[var].dims):
            valid = ds[var].sel(split="valid")
            ok = valid.notnull().any(epoch)
            best = valid.fillna(np.inf).argmin(epoch)
            train = ds[var].sel(split="train", drop=True).isel({epoch: best}, drop=True)
            return train.where(ok), what
    return None


def flag_unconverged(ds: xr.Dataset) -> xr.Dataset:
    """Add ``converged`` (1/0, NaN where there is no training error) and say why in ``reason``."""
    found = training_error(ds)
    if found is None or "status" not in ds:
        return ds
    err, what = found
    err = err.broadcast_like(ds["status"]).transpose(*ds["status"].dims)
    groups = _peer_groups(ds)
    values = err.values.astype(float)
    flags = np.where(np.isfinite(values), 1.0, np.nan)
    reasons = ds["reason"].values.astype(object).copy() if "reason" in ds else np.full(values.shape, "", object)
    for group in np.unique(groups):
        members = (groups == group) & np.isfinite(values)
        if members.sum() < 3:  # no peers to compare with
            continue
        median = float(np.median(values[members]))
        limit = max(RATIO * median, median + MARGIN)
        bad = members & (values > limit)
        flags[bad] = 0.0
        for idx in zip(*np.nonzero(bad)):
            reasons[idx] = (
                f"not converged: {what} training error {values[idx]:.3f} at its best validation epoch, "
                f"against a median of {median:.3f} over {int(members.sum())} runs on the same data"
            )
    out = ds.assign(converged=(ds["status"].dims, flags, CONVERGED_ATTRS))
    if "reason" in ds:
        out["reason"] = ds["reason"].copy(data=reasons.astype(str))
    return out


def _peer_groups(ds: xr.Dataset) -> np.ndarray:
    """A label per run (shaped like ``status``): its data set, or one group when no data set is swept."""
    shape = ds["status"].shape
    if "data.name" not in ds.coords:
        return np.zeros(shape, dtype=int)
    name = ds["data.name"].broadcast_like(ds["status"]).transpose(*ds["status"].dims)
    _, codes = np.unique(name.values.astype(str), return_inverse=True)
    return codes.reshape(shape)


def converged_mask(ds: xr.Dataset) -> xr.DataArray | None:
    """True where a run counts (converged or not judged), or None when nothing was judged."""
    if "converged" not in ds:
        return None
    return ds["converged"] != 0
