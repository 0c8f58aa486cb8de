"""Built-in optimizers: torch's update rules with validated Params (DESIGN §2, §4).

Each builds a ``torch.optim`` optimizer; fused kernels where torch has them (one pass over
all parameters instead of one per tensor: fused Adam measured 6× faster per step than the
default on a 2-core CPU), multi-tensor otherwise.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field, model_validator

from aebench.components import Optimizer, OptimizerParams, per_member
from aebench.hookspecs import hookimpl


def _fused(cls: type[torch.optim.Optimizer], params: list[torch.nn.Parameter], **kw: Any) -> torch.optim.Optimizer:
    try:
        return cls(params, fused=True, **kw)
    except (RuntimeError, TypeError):  # a device or dtype without a fused kernel
        return cls(params, foreach=True, **kw)


class SGDParams(OptimizerParams):
    momentum: float = Field(0.0, ge=0, lt=1, description="Momentum (0: plain SGD).")
    nesterov: bool = Field(False, description="Nesterov momentum (needs momentum > 0).")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty added to the gradient.")

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> SGDParams:
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov = true needs momentum > 0")
        return self


class SGD(Optimizer):
    name = "sgd"
    summary = "Stochastic gradient descent, with optional (Nesterov) momentum (torch.optim.SGD)."
    Params = SGDParams

    def build(self, params, lr):
        p = self.params
        return _fused(
            torch.optim.SGD, params, lr=lr, momentum=p.momentum, nesterov=p.nesterov, weight_decay=p.weight_decay
        )


class RMSpropParams(OptimizerParams):
    decay: float = Field(0.9, ge=0, lt=1, description="Decay of the squared-gradient average (torch's alpha).")
    eps: float = Field(1e-8, gt=0, description="Added to the root-mean-square: numerical stabiliser.")
    momentum: float = Field(0.0, ge=0, lt=1, description="Momentum of the scaled step.")
    centered: bool = Field(False, description="Divide by the gradient's estimated variance instead of its square.")


class RMSprop(Optimizer):
    name = "rmsprop"
    summary = "RMSprop (Tieleman & Hinton; decay 0.9 in Zhou et al.) (torch.optim.RMSprop)."
    Params = RMSpropParams

    def build(self, params, lr):
        # No fused kernel; torch's own choice (multi-tensor on CUDA, a per-tensor loop on CPU)
        # measured 5 % faster per step on CPU than forcing multi-tensor (784-1000-1000, 2 cores).
        p = self.params
        return torch.optim.RMSprop(params, lr=lr, alpha=p.decay, eps=p.eps, momentum=p.momentum, centered=p.centered)


class AdamParams(OptimizerParams):
    beta1: float = Field(0.9, ge=0, lt=1, description="Decay of the first-moment (mean) estimate.")
    beta2: float = Field(0.999, ge=0, lt=1, description="Decay of the second-moment estimate.")
    eps: float = Field(1e-8, gt=0, description="Added to the denominator: numerical stabiliser.")
    amsgrad: bool = Field(False, description="Use the maximum of past second moments (AMSGrad).")


class Adam(Optimizer):
    name = "adam"
    summary = "Adam (Kingma & Ba) (torch.optim.Adam)."
    Params = AdamParams

    def build(self, params, lr):
        p = self.params
        return _fused(torch.optim.Adam, params, lr=lr, betas=(p.beta1, p.beta2), eps=p.eps, amsgrad=p.amsgrad)


class AdamWParams(AdamParams):
    weight_decay: float = Field(0.01, ge=0, description="Decoupled weight decay (scaled by the learning rate).")


class AdamW(Optimizer):
    name = "adamw"
    summary = "Adam with decoupled weight decay (Loshchilov & Hutter) (torch.optim.AdamW)."
    Params = AdamWParams

    def build(self, params, lr):
        p = self.params
        return _fused(
            torch.optim.AdamW,
            params,
            lr=lr,
            betas=(p.beta1, p.beta2),
            eps=p.eps,
            amsgrad=p.amsgrad,
            weight_decay=p.weight_decay,
        )


class AdadeltaParams(OptimizerParams):
    lr: float = per_member(1.0, gt=0, description="Scale of the step (Zeiler's method has none: 1).")
    rho: float = Field(0.9, ge=0, lt=1, description="Decay of the running averages.")
    eps: float = Field(1e-6, gt=0, description="Added inside the square roots: numerical stabiliser.")


class Adadelta(Optimizer):
    name = "adadelta"
    summary = "Adadelta (Zeiler) (torch.optim.Adadelta)."
    Params = AdadeltaParams

    def build(self, params, lr):
        p = self.params
        return torch.optim.Adadelta(params, lr=lr, rho=p.rho, eps=p.eps, foreach=True)


@hookimpl
def aebench_optimizers():
    return [SGD, RMSprop, Adam, AdamW, Adadelta]
