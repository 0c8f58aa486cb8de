"""Evaluators: measurements written into the run's results."""

from __future__ import annotations

import torch
import xarray as xr
from pydantic import Field

from aebench.components import Evaluator, Params
from aebench.engine.context import SPLITS
from aebench.hookspecs import hookimpl


class ReconParams(Params):
    max_rows: int | None = Field(None, ge=1, description="Measure on the first N rows of each split; default: all.")
    batch_size: int = Field(1000, ge=1, description="Rows per evaluation batch.")


class Recon(Evaluator):
    name = "recon"
    summary = "Input-space reconstruction error per epoch on train/valid/test, through the whole stack and per depth."
    Params = ReconParams

    def on_epoch(self, ctx, epoch):
        model, p = ctx.model, self.params
        n = model.n_layers
        sums = torch.zeros(len(SPLITS), n, dtype=torch.float64)
        for s, split in enumerate(SPLITS):
            rows = 0
            for x, _ in ctx.batches(split, p.batch_size, p.max_rows):
                h = x
                for depth in range(1, n + 1):
                    h = model.encode_layer(depth - 1, h)
                    pre = model.decode(h, depth, activate=False)
                    sums[s, depth - 1] += float(model.reconstruction_loss(x, pre, 0)) * len(x)
                rows += len(x)
            sums[s] /= max(rows, 1)
        units = "nats per example" if getattr(model.params, "loss", "") == "cross-entropy" else "squared error per example"
        coords = {"split": list(SPLITS), "depth": list(range(1, n + 1))}
        by_depth = xr.DataArray(
            sums.numpy(), dims=("split", "depth"), coords=coords,
            attrs={"long_name": "input-space reconstruction error using the bottom `depth` layers", "units": units},
        )  # fmt: skip
        full = by_depth.sel(depth=n, drop=True).assign_attrs(
            long_name="input-space reconstruction error through the whole stack (clean input)", units=units
        )
        self.last = full
        return {"recon_error": full, "recon_error_layer": by_depth}

    def evaluate(self, ctx):
        if getattr(self, "last", None) is None:
            self.last = self.on_epoch(ctx, 0)["recon_error"]
        return {"recon_error_final": self.last.assign_attrs(long_name="reconstruction error after training (whole stack)")}


@hookimpl
def aebench_evaluators():
    return [Recon]
