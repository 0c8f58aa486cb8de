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


#: where a training error is read: (curve, its epoch axis, which training in words, flag variable, what it covers).
#: A run's own supervised training (``class_error``) judges the whole run; an evaluator's private
#: training (the finetune evaluator) judges only that evaluator's variables (``finetune_*``).
SOURCES = (
    ("finetune_curve", "finetune_epoch", "the finetune evaluator's", "finetune_converged", "finetune_"),
    ("class_error", "epoch", "supervised", "converged", ""),
)


def training_error(ds: xr.Dataset, curve: str = "", epoch: str = "") -> tuple[xr.DataArray, str] | None:
    """Each run's training error at its best validation epoch, and which training it measures.

    Without ``curve``: the first source of :data:`SOURCES` the results have."""
    for var, axis, what, _, _ in SOURCES:
        if (curve and var != curve) or var not in ds or not {"split", epoch or axis} <= set(ds[var].dims):
            continue
        valid = ds[var].sel(split="valid")
        ok = valid.notnull().any(axis)
        best = valid.fillna(np.inf).argmin(axis)
        train = ds[var].sel(split="train", drop=True).isel({axis: best}, drop=True)
        return train.where(ok), what
    return None


def flag_unconverged(ds: xr.Dataset) -> xr.Dataset:
    """Add a flag (1/0, NaN where there is no training error) per training the results hold, and say why in ``reason``.

    ``converged`` judges the run's own supervised training and covers every variable;
    ``finetune_converged`` judges the finetune evaluator's training and covers only its
    ``finetune_*`` variables (its ``covers`` attribute), so a failed fine-tuning leaves the
    run's Parzen, SVM and reconstruction numbers in their tables. :func:`counts` combines them.
    """
    if "status" not in ds:
        return ds
    out = ds
    for curve, axis, what, flag, prefix in SOURCES:
        found = training_error(ds, curve, axis)
        if found is None:
            continue
        flags, reasons = _judge(out, *found, covers=prefix)
        attrs = dict(CONVERGED_ATTRS)
        if prefix:
            attrs["long_name"] = f"0 when {what} training ended far above its peers' error, else 1"
            attrs["covers"] = prefix
        out = out.assign({flag: (ds["status"].dims, flags, attrs)})
        if "reason" in ds:
            out["reason"] = ds["reason"].copy(data=reasons.astype(str))
    return out


def _judge(ds: xr.Dataset, err: xr.DataArray, what: str, covers: str) -> tuple[np.ndarray, np.ndarray]:
    """1/0/NaN per run against its peers' median training error, and the reasons (appended to ``reason``)."""
    err = err.broadcast_like(ds["status"]).transpose(*ds["status"].dims)
    groups = _peer_groups(ds)
    values = err.values.astype(float)
    flags = np.where(np.isfinite(values), 1.0, np.nan)
    reasons = ds["reason"].values.astype(object).copy() if "reason" in ds else np.full(values.shape, "", object)
    only = f" (only its {covers}* results are left out)" if covers else ""
    for group in np.unique(groups):
        members = (groups == group) & np.isfinite(values)
        if members.sum() < 3:  # no peers to compare with
            continue
        median = float(np.median(values[members]))
        limit = max(RATIO * median, median + MARGIN)
        bad = members & (values > limit)
        flags[bad] = 0.0
        for idx in zip(*np.nonzero(bad)):
            text = (
                f"not converged: {what} training error {values[idx]:.3f} at its best validation epoch, "
                f"against a median of {median:.3f} over {int(members.sum())} runs on the same data{only}"
            )
            reasons[idx] = f"{reasons[idx]}; {text}" if reasons[idx] else text
    return flags, reasons


def flag_vars(ds: xr.Dataset) -> list[str]:
    """The convergence flags the results hold (``converged`` and evaluator-specific ones)."""
    return [flag for *_, flag, _ in SOURCES if flag in ds]


def counts(ds: xr.Dataset, var: str) -> xr.DataArray | None:
    """True where ``var``'s value counts: every flag that covers ``var`` is not 0 (None when none does).

    ``converged`` covers every variable; a flag with a ``covers`` prefix only the variables
    whose names start with it."""
    mask = None
    for flag in flag_vars(ds):
        covers = ds[flag].attrs.get("covers", "")
        if covers and not var.startswith(covers):
            continue
        ok = ds[flag] != 0
        mask = ok if mask is None else mask & ok
    return mask


def _peer_groups(ds: xr.Dataset) -> np.ndarray:
    """A label per run (shaped like ``status``): its data set, or one group when no data set is swept."""
    shape = ds["status"].shape
    if "data.name" not in ds.coords:
        return np.zeros(shape, dtype=int)
    name = ds["data.name"].broadcast_like(ds["status"]).transpose(*ds["status"].dims)
    _, codes = np.unique(name.values.astype(str), return_inverse=True)
    return codes.reshape(shape)


def converged_mask(ds: xr.Dataset) -> xr.DataArray | None:
    """True where a run counts as a whole (its own training converged or was not judged), or None."""
    if "converged" not in ds:
        return None
    return ds["converged"] != 0
