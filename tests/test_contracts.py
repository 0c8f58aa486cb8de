"""Every built-in passes the same contract suite a third-party author runs (aebench.testing),
one test item per check; and the suite catches what it promises to catch."""

from __future__ import annotations

import pytest
import torch
import xarray as xr

import aebench
from aebench.components import Corruption, Evaluator, Optimizer
from aebench.hookspecs import Metric
from aebench.testing import check_component, checks, parametrize_with_checks

REG = aebench.registry()
BUILTIN = [
    REG.get(kind, name)
    for kind in REG.kinds()
    for name in REG.names(kind)
    if REG.entry(kind, name).dist == "aebench" and not (kind == "dataset" and name not in ("digits", "mnist"))
]


@parametrize_with_checks(BUILTIN)
def test_builtin_passes_the_contract(component, check):
    check(component)


def test_every_kind_has_checks_and_each_check_is_its_own_item():
    kinds = {c.kind for c in BUILTIN}
    assert kinds == set(REG.kinds())  # the suite covers every kind the registry knows
    mark = parametrize_with_checks([REG.get("optimizer", "adam")])
    ids = mark.kwargs["ids"]
    assert ids == [f"optimizer:adam-{name}" for name, _ in checks(REG.get("optimizer", "adam"))]
    assert len(ids) >= 4


def test_the_contract_catches_a_corruption_that_ignores_the_generator():
    class Sloppy(Corruption):
        name = "sloppy"
        summary = "uses the global RNG"

        def __call__(self, h, generator):
            return h + torch.randn(h.shape)

    with pytest.raises(AssertionError, match="generator it is given"):
        check_component(Sloppy)


class _Scalar(Evaluator):
    name = "scalar"
    summary = "one number"
    attrs: dict = {"long_name": "a number", "units": "1"}

    def evaluate(self, ctx):
        return {"a_number": xr.DataArray(1.0, attrs=dict(self.attrs))}


def test_the_contract_catches_a_variable_without_units():
    class NoUnits(_Scalar):
        attrs = {"long_name": "a number"}

    with pytest.raises(AssertionError, match="a_number needs a units attribute"):
        check_component(NoUnits)


def test_the_contract_catches_a_declared_variable_that_is_never_returned():
    class Typo(_Scalar):
        reports = (Metric("a_nubmer", title="A number"),)

    with pytest.raises(AssertionError, match=r"declares \['a_nubmer'\], which neither on_epoch\(\) nor evaluate"):
        check_component(Typo)
    _Scalar.reports = (Metric("a_number", title="A number"),)
    try:
        check_component(_Scalar)  # the right name passes
    finally:
        del _Scalar.reports


class _NormScaled(Optimizer):
    """Steps by g / ||g|| over the whole tensor (as LARS does): not element-wise."""

    name = "norm-scaled"
    summary = "normalised gradient steps"

    def build(self, params, lr):
        return _NormSGD(params, lr)


class _NormSGD(torch.optim.Optimizer):
    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.sub_(group["lr"] * p.grad / p.grad.norm())


class _Honest(_NormScaled):
    name = "norm-scaled-apart"
    batchable = False  # its runs train one at a time


def test_the_contract_catches_an_optimizer_that_is_not_element_wise_unless_it_says_so():
    with pytest.raises(AssertionError, match="must step as its solo run"):
        check_component(_NormScaled)
    check_component(_Honest)


def test_an_optimizer_that_cannot_batch_trains_its_runs_alone(in_process_plugin, caplog):
    class Plugin:
        @staticmethod
        @aebench.hookimpl
        def aebench_optimizers():
            return [_Honest]

    from aebench.execution import group_runs

    in_process_plugin(Plugin)
    spec = aebench.Spec.from_dict(
        {
            "name": "apart",
            "seeds": [0, 1],
            "ensemble": True,
            "data": {"name": "digits", "subset": 100},
            "model": {"name": "stacked", "layers": [8]},
            "schedule": {"name": "joint", "epochs": 1},
            "optimizer": {"name": "norm-scaled-apart"},
        }
    )
    with caplog.at_level("WARNING", logger="aebench"):
        assert [len(g) for g in group_runs(spec)] == [1, 1]
    assert "does not act element by element" in caplog.text
