"""Restricted Boltzmann machines trained by contrastive divergence (CD-k)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from aebench import hookimpl
from aebench.components import Objective, Schedule, ScheduleParams, Stage
from aebench.errors import SpecError
from aebench.models import Stacked, StackedParams


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
    """F(v) = −cᵀv − Σ_j softplus(W_j v + b_j), per row.

    One RBM: v (B, n), W (m, n), b (m,), c (n,) -> (B,). S members at once: v (S, B, n),
    W (S, m, n), b (S, m), c (S, n) -> (S, B)."""
    return -(v @ c.unsqueeze(-1)).squeeze(-1) - F.softplus(v @ W.transpose(-1, -2) + b.unsqueeze(-2)).sum(-1)


def gibbs(v: torch.Tensor, W, b, c, k: int, sample) -> torch.Tensor:
    """k steps v → h ~ p(h|v) → v ~ p(v|h); returns p(v|h) of the last step (a constant).
    ``sample(p)`` draws Bernoulli(p) (each member from its own generator)."""
    with torch.no_grad():
        for _ in range(k):
            h = sample(torch.sigmoid(v @ W.transpose(-1, -2) + b.unsqueeze(-2)))
            pv = torch.sigmoid(h @ W + c.unsqueeze(-2))
            v = sample(pv)
        return pv


class CDLoss(Objective):
    """The CD-k surrogate F(v0) − F(vk) for layer j = stage.depth − 1 on its frozen mean-field
    input, for every member of the batch (each member's Gibbs chain from its own generator)."""

    def __call__(self, batch, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        net, stage = batch.net, batch.stage
        j = stage.depth - 1
        if not (getattr(net.params, "tied", False) and net.acts[j] == "sigmoid"):
            raise SpecError(
                "schedule rbm-cd needs tied weights and sigmoid units (model 'rbm', or 'stacked' with tied = true)."
            )
        with torch.no_grad():
            v0 = net.encode(x, upto=j)
        W, b, c = net.weights[j], net.enc_bias[j], net.dec_bias[j]

        def sample(p: torch.Tensor) -> torch.Tensor:
            return batch.each(p, lambda s, ps, g: torch.bernoulli(ps, generator=g))

        vk = gibbs(v0, W, b, c, stage.options.get("k", 1), sample)
        return (free_energy(v0, W, b, c) - free_energy(vk, W, b, c)).mean(-1)


cd_loss = CDLoss()


class CDParams(ScheduleParams):
    k: int = Field(1, ge=1, description="Gibbs steps per update (CD-k).")


class RBMCD(Schedule):
    name = "rbm-cd"
    summary = "Greedy layer-wise RBM training by contrastive divergence (CD-k), bottom to top."
    Params = CDParams

    def stages(self, n_layers):
        p = self.params
        return [
            Stage(
                f"rbm{j}",
                (j,),
                j + 1,
                "custom",
                p.epochs,
                corrupt="none",
                regularize=False,
                lr=p.lr,
                objective=cd_loss,
                options={"k": p.k},
            )
            for j in range(n_layers)
        ]


@hookimpl
def aebench_models():
    return [RBM]


@hookimpl
def aebench_schedules():
    return [RBMCD]
