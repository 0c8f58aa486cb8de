"""The optimizer of a batch of members: the run's optimizer component, and per-member learning rates.

The optimizer itself is a plug-in (``aebench.components.Optimizer``, built-ins in
``aebench/builtin/optimizers.py``); this module only decides how members share it.
"""

from __future__ import annotations

from typing import Any

import torch


def make_member_optimizer(params: list[torch.nn.Parameter], optimizer: Any, lrs: list[float], device: torch.device):
    """The optimizer of S members' (S, ...) parameters (or one run's): the component's own when
    every member has one learning rate (torch's update rules act element-wise, hence
    member-wise), else :class:`PerMemberLR` around it."""
    if len(set(lrs)) == 1:
        return optimizer.build(params, lrs[0])
    return PerMemberLR(optimizer.build(params, 1.0), params, torch.tensor(lrs, device=device))


class PerMemberLR:
    """One optimizer built at ``lr = 1``, each member's step scaled by its own learning rate.

    Exact for update rules of the form ``p -= lr * u`` with ``u`` independent of ``lr`` (SGD,
    momentum, Nesterov, RMSprop, Adam, AdamW's decoupled decay, Adadelta): the inner step
    moves ``p`` by ``-u``, and ``p_old + lr_s * (p_new - p_old)`` is member s's own update. An
    optimizer for which that is not so keeps ``lr`` out of the per-member fields, so runs that
    differ in it never share one (``aebench_optimizers``)."""

    def __init__(self, inner: torch.optim.Optimizer, params: list[torch.nn.Parameter], lrs: torch.Tensor) -> None:
        self.inner, self.params, self.lrs = inner, params, lrs

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.inner.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.inner.load_state_dict(sd)

    @torch.no_grad()
    def step(self) -> None:
        before = [p.detach().clone() if p.grad is not None else None for p in self.params]
        self.inner.step()
        for p, old in zip(self.params, before):
            if old is None:  # unused by this stage's loss (e.g. decoder biases under labels): untouched
                continue
            lr = self.lrs.to(p.dtype).view(-1, *[1] * (p.dim() - 1))
            p.sub_(old).mul_(lr).add_(old)
