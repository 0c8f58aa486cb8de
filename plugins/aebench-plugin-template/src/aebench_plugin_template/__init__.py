"""A template aebench plug-in: one component of each kind, registered through the hooks."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr
from pydantic import Field

from aebench import hookimpl
from aebench.components import (
    Corruption,
    CorruptionParams,
    Dataset,
    DatasetParams,
    DataSplits,
    Evaluator,
    Params,
    Regularizer,
    RegularizerParams,
    Schedule,
    Split,
    Stage,
)
from aebench.hookspecs import Metric
from aebench.models import Stacked, StackedParams


class LinearParams(StackedParams):
    activation: str = Field("linear", description="Unit type (fixed: linear).", pattern="^linear$")
    output_activation: str = Field("linear", description="Output unit type (fixed: linear).", pattern="^linear$")
    loss: str = Field(
        "squared-error", description="Reconstruction loss (fixed: squared error).", pattern="^squared-error$"
    )
    layers: list[int] = Field([8], min_length=1, description="Hidden units per layer.")


class LinearAE(Stacked):
    name = "template-linear"
    summary = "Tied linear autoencoder with squared error (spans the PCA subspace)."
    example = True  # a template to copy: the Workbench's pickers hide it unless asked
    Params = LinearParams


class UniformParams(CorruptionParams):
    level: float = Field(0.2, ge=0, description="Half-width of the uniform noise.")


class UniformNoise(Corruption):
    name = "template-uniform"
    summary = "Additive noise uniform in [-level, level]."
    example = True  # a template to copy: the Workbench's pickers hide it unless asked
    Params = UniformParams

    def __call__(self, h, generator):
        u = torch.rand(h.shape, generator=generator, device=h.device, dtype=h.dtype)
        return h + self.params.level * (2 * u - 1)


class MaxNormParams(RegularizerParams):
    c: float = Field(1.0, gt=0, description="Allowed L2 norm of each hidden unit's weight row.")


class MaxNorm(Regularizer):
    name = "template-max-norm"
    summary = "Soft max-norm: Σ_j max(0, ||W_j|| − c)²."
    example = True  # a template to copy: the Workbench's pickers hide it unless asked
    Params = MaxNormParams

    def penalty(self, layer, h_in, h_out):
        return torch.relu(layer.weight.norm(dim=1) - self.params.c).pow(2).sum()


class TopDown(Schedule):
    name = "template-top-down"
    summary = "Layer-wise reconstruction of each layer's input, top layer first."
    example = True  # a template to copy: the Workbench's pickers hide it unless asked

    def stages(self, n_layers):
        p = self.params
        return [
            Stage(f"top-down{j}", (j,), j + 1, "local", p.epochs, corrupt="trained", lr=p.lr)
            for j in reversed(range(n_layers))
        ]


class BlobsParams(DatasetParams):
    seed: int = Field(0, ge=0, description="Seed of the generator.")
    n: int = Field(600, ge=30, description="Rows in all (split 60/20/20 %).")


class Blobs(Dataset):
    name = "template-blobs"
    summary = "Three Gaussian blobs in 16 dimensions, squashed into [0, 1]."
    example = True  # a template to copy: the Workbench's pickers hide it unless asked
    Params = BlobsParams

    def load(self) -> DataSplits:
        p = self.params
        rng = np.random.default_rng(p.seed)
        y = rng.integers(0, 3, p.n)
        centres = rng.normal(0, 2, (3, 16))
        x = 1 / (1 + np.exp(-(centres[y] + rng.normal(0, 1, (p.n, 16)))))
        x = x.astype(np.float32)
        a, b = int(0.6 * p.n), int(0.8 * p.n)
        train = Split(x[:a], y[:a].astype(np.int64))
        if p.subset is not None:
            train = Split(train.x[: p.subset], train.y[: p.subset])
        return DataSplits(
            "template-blobs",
            train,
            Split(x[a:b], y[a:b].astype(np.int64)),
            Split(x[b:], y[b:].astype(np.int64)),
            n_classes=3,
        )


class CodeStatsParams(Params):
    threshold: float = Field(0.05, gt=0, lt=0.5, description="A unit is saturated below it or above 1 − it.")


class CodeStats(Evaluator):
    name = "template-code-stats"
    summary = "Mean activation and fraction of saturated units of the top code (test split)."
    example = True  # a template to copy: the Workbench's pickers hide it unless asked
    Params = CodeStatsParams
    # How `aebench report`, `aebench.tables` and the summary of `aebench run` show these results:
    # a titled table (in %, a figure of bars with the ± over seeds) for one, a table only for the other.
    reports = (
        Metric("code_saturated", title="Saturated top-layer units", units="%", scale=100),
        Metric("code_mean", title="Mean top-layer activation", figure="none", summary=False),
    )

    def evaluate(self, ctx):
        with torch.no_grad():
            h = ctx.features("test")
        t = self.params.threshold
        saturated = ((h < t) | (h > 1 - t)).float().mean()
        return {
            "code_mean": xr.DataArray(float(h.mean()), attrs={"long_name": "mean top-layer activation", "units": "1"}),
            "code_saturated": xr.DataArray(
                float(saturated), attrs={"long_name": "fraction of saturated top-layer units", "units": "1"}
            ),
        }


@hookimpl
def aebench_models():
    return [LinearAE]


@hookimpl
def aebench_corruptions():
    return [UniformNoise]


@hookimpl
def aebench_regularizers():
    return [MaxNorm]


@hookimpl
def aebench_schedules():
    return [TopDown]


@hookimpl
def aebench_datasets():
    return [Blobs]


@hookimpl
def aebench_evaluators():
    return [CodeStats]
