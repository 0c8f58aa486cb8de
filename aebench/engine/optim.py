"""Optimizers by name, built from the spec's ``optimizer`` table."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from aebench.spec import OptimizerParams


def make_optimizer(params: Iterable[torch.nn.Parameter], opt: OptimizerParams, lr: float | None = None) -> torch.optim.Optimizer:
    lr = opt.lr if lr is None else lr
    params = list(params)
    if opt.name == "rmsprop":
        # Tieleman & Hinton's RMSprop, decay 0.9 in the paper (torch calls it alpha).
        return torch.optim.RMSprop(params, lr=lr, alpha=opt.decay, eps=opt.eps, momentum=opt.momentum)
    if opt.name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=opt.momentum)
    return torch.optim.Adam(params, lr=lr, betas=(opt.beta1, opt.beta2), eps=opt.eps)
