"""Optimizers are a plug-in kind: built-ins with validated Params, members that differ in lr
share one optimizer and each still steps exactly as its solo run (torch's own optimizer on
that member alone is the reference)."""

from __future__ import annotations

import pytest
import torch

import aebench
from aebench.engine.optim import PerMemberLR, make_member_optimizer

SETTINGS = {
    "sgd": {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    "rmsprop": {"decay": 0.9, "momentum": 0.5, "centered": True},
    "adam": {"amsgrad": True},
    "adamw": {"weight_decay": 0.1},
    "adadelta": {"rho": 0.8},
}


def _optimizer(name: str, **params):
    cls = aebench.registry().get("optimizer", name)
    return cls(cls.Params(**params))


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_members_with_their_own_lr_step_as_their_solo_runs(name):
    rule = _optimizer(name, **SETTINGS[name])
    lrs = [0.05, 0.003]
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(2, 4, 3, generator=gen)
    grads = [torch.randn(2, 4, 3, generator=gen) for _ in range(4)]
    batched = torch.nn.Parameter(start.clone())
    opt = make_member_optimizer([batched], rule, lrs, torch.device("cpu"))
    assert isinstance(opt, PerMemberLR)
    solos = [torch.nn.Parameter(start[s].clone()) for s in range(2)]
    solo_opts = [rule.build([p], lr) for p, lr in zip(solos, lrs)]
    for g in grads:
        batched.grad = g.clone()
        opt.step()
        for s, (p, o) in enumerate(zip(solos, solo_opts)):
            p.grad = g[s].clone()
            o.step()
    for s in range(2):
        torch.testing.assert_close(batched.detach()[s], solos[s].detach(), rtol=1e-5, atol=1e-6)
    assert not torch.equal(batched.detach()[0], start[0])  # it did move


def test_one_lr_for_every_member_is_torchs_own_optimizer():
    p = torch.nn.Parameter(torch.zeros(2, 3))
    opt = make_member_optimizer([p], _optimizer("adam"), [0.01, 0.01], torch.device("cpu"))
    assert isinstance(opt, torch.optim.Adam)


def test_params_are_validated():
    cls = aebench.registry().get("optimizer", "sgd")
    with pytest.raises(ValueError, match="nesterov = true needs momentum > 0"):
        cls.Params(nesterov=True)
    with pytest.raises(aebench.SpecError, match=r"optimizer.beta1: unknown key; allowed: batch_size, lr, momentum"):
        aebench.Spec.from_dict(
            {
                "name": "x",
                "data": {"name": "digits"},
                "model": {"name": "stacked", "layers": [4]},
                "schedule": {"name": "joint"},
                "optimizer": {"name": "sgd", "beta1": 0.9},
            }
        )
