"""Restricted Boltzmann machines trained by contrastive divergence (CD-k)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from aebench import hookimpl
from aebench.models import Stacked, StackedParams
from aebench.components import Schedule, ScheduleParams, Stage
from aebench.errors import SpecError


class RBMParams(StackedParams):
    @model_validator(mode="after")
    def _binary_units(self) -> "RBMParams":
        if not self.tied or self.activations() != ["sigmoid"] * len(self.layers) or self.output_activation != "sigmoid":
            raise ValueError("an RBM stack has tied weights and sigmoid (binary) units in every layer")
        return self


class RBM(Stacked):
    name = "rbm"
    summary = "A stack of binary RBMs (tied weights, mean-field up/down passes); train it with rbm-cd."
    Params = RBMParams


def free_energy(v: torch.Tensor, W: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """F(v) = −cᵀv − Σ_j softplus(W_j v + b_j), per row."""
    return -(v @ c) - F.softplus(v @ W.T + b).sum(1)


def gibbs(v: torch.Tensor, W, b, c, k: int, generator: torch.Generator) -> torch.Tensor:
    """k steps v → h ~ p(h|v) → v ~ p(v|h); returns p(v|h) of the last step (a constant)."""
    with torch.no_grad():
        for _ in range(k):
            h = torch.bernoulli(torch.sigmoid(v @ W.T + b), generator=generator)
            pv = torch.sigmoid(h @ W + c)
            v = torch.bernoulli(pv, generator=generator)
        return pv


def cd_loss(ctx, stage: Stage, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The CD-k surrogate for layer j = stage.depth − 1 on the frozen mean-field input."""
    model, j = ctx.model, stage.depth - 1
    with torch.no_grad():
        v0 = model.encode(x, upto=j)
    W, b, c = model.weights[j], model.enc_bias[j], model.dec_bias[j]
    if not (getattr(model.params, "tied", False) and model.acts[j] == "sigmoid"):
        raise SpecError("schedule rbm-cd needs tied weights and sigmoid units (model 'rbm', or 'stacked' with tied = true).")
    vk = gibbs(v0, W, b, c, stage.options.get("k", 1), ctx.generator)
    return (free_energy(v0, W, b, c) - free_energy(vk, W, b, c)).mean()


class CDParams(ScheduleParams):
    k: int = Field(1, ge=1, description="Gibbs steps per update (CD-k).")


class RBMCD(Schedule):
    name = "rbm-cd"
    summary = "Greedy layer-wise RBM training by contrastive divergence (CD-k), bottom to top."
    Params = CDParams

    def stages(self, n_layers):
        p = self.params
        return [
            Stage(f"rbm{j}", (j,), j + 1, "custom", p.epochs, corrupt="none", regularize=False, lr=p.lr, objective=cd_loss, options={"k": p.k})
            for j in range(n_layers)
        ]


@hookimpl
def aebench_models():
    return [RBM]


@hookimpl
def aebench_schedules():
    return [RBMCD]
