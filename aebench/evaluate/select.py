"""Model selection as the papers do it: choose on validation, report test."""

from __future__ import annotations

import numpy as np
import xarray as xr


def select_best(
    ds: xr.Dataset,
    over: list[str],
    by: str | xr.DataArray = "recon_error_final",
    report: list[str] | None = None,
    minimize: bool = True,
) -> xr.Dataset:
    """For each group (the sweep axes not in ``over``), pick the point of ``over`` whose
    seed-mean validation metric ``by`` is best, and return the ``report`` metrics there.

    ``by`` is a variable name (its ``valid`` split is used when it has one) or a
    DataArray. The result keeps the group axes and ``seed`` and has a ``chosen_<axis>``
    variable for every axis in ``over``. Zhou et al.'s protocol::

        select_best(ds, over=["optimizer.lr", "corruption.level"], by="recon_error_final",
                    report=["recon_error_final", "svm_error"])
    """
    crit = ds[by] if isinstance(by, str) else by
    if "split" in crit.dims:
        crit = crit.sel(split="valid", drop=True)
    score = crit.mean("seed") if "seed" in crit.dims else crit
    flat = score.stack(_point=over)
    # An all-NaN group (every run failed) picks its first point, whose metrics are NaN.
    filled = flat.fillna(np.inf if minimize else -np.inf)
    idx = filled.argmin("_point") if minimize else filled.argmax("_point")
    out = xr.Dataset()
    for name in report or [by if isinstance(by, str) else str(crit.name)]:
        picked = ds[name].stack(_point=over).isel(_point=idx)
        out[name] = picked.drop_vars(["_point", *over], errors="ignore").assign_attrs(ds[name].attrs)
    for k in over:
        out[f"chosen_{k}"] = (
            flat[k]
            .isel(_point=idx)
            .drop_vars(["_point", *over], errors="ignore")
            .assign_attrs(long_name=f"{k} chosen on validation", units="")
        )
    return out
