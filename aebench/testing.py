"""Contract tests for plug-in authors: one pytest item per check, as scikit-learn's
``parametrize_with_checks``.

Each check builds the component from its default ``Params`` and asserts one thing aebench
relies on: params validate (and reject unknown keys), results are deterministic under a
seed, shapes fit, nothing is NaN, declared report variables are produced, optimizer state
survives a checkpoint, an executor records every run, and the component pickles (the process
and dask executors send it to workers). Use it in your plug-in's tests::

    from aebench.testing import parametrize_with_checks

    @parametrize_with_checks([MyCorruption, MyEvaluator])
    def test_contract(component, check):
        check(component)

A failure names the component and the check in the test id (``corruption:mine-generator``).
``check_component(MyClass)`` runs every check of its kind in one call.
"""

from __future__ import annotations

import copy
import functools
import pickle
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from aebench.components import (
    BASES,
    Corruption,
    Dataset,
    Evaluator,
    Executor,
    LayerView,
    Model,
    Optimizer,
    Regularizer,
    Schedule,
    per_member_fields,
)

TINY_SPEC = {
    "name": "contract",
    "seeds": [0],
    "data": {"name": "digits", "subset": 200, "eval_subset": 60},
    "model": {"name": "stacked", "layers": [16, 8]},
    "corruption": {"name": "gaussian", "level": 0.1},
    "schedule": {"name": "joint", "epochs": 1},
    "optimizer": {"name": "rmsprop", "lr": 0.01, "batch_size": 50},
}


def kind_of(cls: type) -> str:
    for kind, base in BASES.items():
        if isinstance(cls, type) and issubclass(cls, base):
            return kind
    raise AssertionError(f"{cls!r} is not a subclass of any aebench component base class")


def check_params(cls: type) -> Any:
    """Default params validate, unknown keys are rejected, the class has name and summary, and
    every field has a description (the Workbench's tooltip, ``aebench plugins``, a CLI flag's help)."""
    assert isinstance(cls.name, str) and cls.name, f"{cls.__name__}.name must be a non-empty string"
    assert isinstance(cls.summary, str) and cls.summary, f"{cls.__name__}.summary must be a one-line string"
    params = cls.Params()
    try:
        cls.Params.model_validate({"__not_a_field__": 1})
    except ValidationError:
        pass
    else:
        raise AssertionError(f"{cls.__name__}.Params accepts unknown keys: derive it from aebench.components.Params")
    for name, field in cls.Params.model_fields.items():
        assert field.description, f"{cls.__name__}.Params.{name} needs a description (the UI's tooltip)"
    return params


def check_pickles(cls: type) -> None:
    """A component built from its defaults pickles (the process and dask executors send it)."""
    if issubclass(cls, Model):
        _pickles(cls(cls.Params(), 12, torch.Generator().manual_seed(0)))
    elif issubclass(cls, Executor):
        _pickles(cls.Params())  # an executor stays on the client: its options travel (and are saved)
    else:
        _pickles(cls(cls.Params()))


def _pickles(obj: Any) -> None:
    again = pickle.loads(pickle.dumps(obj))
    assert type(again) is type(obj)


def check_corruption(cls: type[Corruption], shape: tuple[int, int] = (64, 20)) -> None:
    c = cls(check_params(cls))
    h = torch.rand(shape)
    a = c(h, torch.Generator().manual_seed(0))
    b = c(h, torch.Generator().manual_seed(0))
    assert a.shape == h.shape, "a corruption keeps the shape"
    assert torch.equal(a, b), "a corruption must draw its randomness from the generator it is given"
    assert torch.isfinite(a).all(), "a corruption produced NaN or inf"
    _pickles(c)


def check_regularizer(cls: type[Regularizer]) -> None:
    r = cls(check_params(cls))
    g = torch.Generator().manual_seed(0)
    W = torch.randn(8, 12, generator=g, requires_grad=True)
    b = torch.zeros(8)
    h_in = torch.rand(16, 12, generator=g)
    h_out = torch.sigmoid(h_in @ W.T + b)
    view = LayerView(0, W, b, "sigmoid", W.t())
    p = r.penalty(view, h_in, h_out)
    assert torch.as_tensor(p).ndim == 0, "a penalty is a scalar"
    assert torch.isfinite(p), "a penalty must be finite"
    assert float(p.detach()) == float(r.penalty(view, h_in, h_out).detach()), "a penalty must be deterministic"
    if p.requires_grad:
        (grad,) = torch.autograd.grad(p, W, allow_unused=True)
        assert grad is None or torch.isfinite(grad).all(), "the penalty's gradient is not finite"
    _pickles(r)


def check_schedule(cls: type[Schedule]) -> None:
    s = cls(check_params(cls))
    for n in (1, 2, 3):
        stages = s.stages(n)
        assert stages or cls.may_be_empty, "a schedule has at least one stage (or declares may_be_empty)"
        for st in stages:
            assert set(st.train_layers) <= set(range(n)) and st.train_layers, f"stage {st.label}: bad train_layers"
            assert 1 <= st.depth <= n and st.epochs >= 1, f"stage {st.label}: bad depth or epochs"
    assert [x.label for x in s.stages(2)] == [x.label for x in s.stages(2)], "stages must be deterministic"
    _pickles(s)


def check_dataset(cls: type[Dataset], params: Any = None) -> None:
    params = params or check_params(cls)
    d = cls(params)
    a, b = d.load(), cls(copy.deepcopy(params)).load()
    for split in ("train", "valid", "test"):
        sa, sb = a.split(split), b.split(split)
        assert sa.x.ndim == 2 and len(sa.x) == len(sa.y) > 0, (
            f"{split}: x must be (rows, features) with one label a row"
        )
        assert sa.y.dtype == np.int64, f"{split}: labels must be int64"
        assert np.array_equal(sa.x, sb.x) and np.array_equal(sa.y, sb.y), f"{split}: loading must be deterministic"
        assert np.isfinite(sa.x.astype(float)).all(), f"{split}: NaN in data"
    assert a.train.x.shape[1] == a.valid.x.shape[1] == a.test.x.shape[1]
    assert a.scale > 0
    _pickles(d)


def check_model(cls: type[Model], n_inputs: int = 12) -> None:
    params = check_params(cls)
    m1 = cls(params, n_inputs, torch.Generator().manual_seed(0))
    m2 = cls(params, n_inputs, torch.Generator().manual_seed(0))
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p1, p2), "initialisation must use the generator it is given"
    x = torch.rand(5, n_inputs)
    code = m1.encode(x)
    assert code.shape == (5, m1.sizes[-1]) and m1.sizes[0] == n_inputs
    pre = m1.decode(code, activate=False)
    assert pre.shape == x.shape, "decoding returns to the input space"
    loss = m1.reconstruction_loss(x, pre, 0)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    for i in range(m1.n_layers):
        assert m1.layer_parameters(i), f"layer {i} has no parameters"
        assert isinstance(m1.layer_view(i), LayerView)
    _pickles(m2)
    _check_batched(cls, params, n_inputs)


def _check_batched(cls: type[Model], params: Any, n_inputs: int) -> None:
    """A model's batched form (``cls.batch``), if it has one, computes what its members do."""
    members = [cls(params, n_inputs, torch.Generator().manual_seed(s)) for s in (1, 2)]
    net = cls.batch(members)
    if net is None:
        return
    x = torch.rand(2, 5, n_inputs)
    code = net.encode(x)
    pre = net.decode(code, activate=False)
    loss = net.reconstruction_loss(x, pre, 0)
    assert loss.shape == (2,), "a batched model's reconstruction_loss gives one loss per member, shape (S,)"
    for s, m in enumerate(members):
        torch.testing.assert_close(code[s], m.encode(x[s]), msg="batched encode must equal each member's own")
        torch.testing.assert_close(loss[s], m.reconstruction_loss(x[s], m.decode(m.encode(x[s]), activate=False), 0))
        for i in range(m.n_layers):
            torch.testing.assert_close(net.member_view(s, i).weight, m.layer_view(i).weight)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.5)
    net.write_back(members)
    torch.testing.assert_close(members[1].encode(x[1]), net.encode(x)[1], msg="write_back copies each member's weights")


def stage_loss(ctx, stage, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """The scalar loss the engine trains one run's ``stage`` on for the batch ``x`` (labels ``y``)."""
    from aebench.engine.stage import StageLoss

    return StageLoss(ctx, stage)(x, y)


def tiny_context(spec: dict[str, Any] | None = None, train: bool = True):
    """A small trained RunContext (digits, 2 layers) to call an evaluator on."""
    import aebench
    from aebench.engine.runner import RunOptions, Trainer, build_context
    from aebench.spec import Spec

    ctx = build_context(Spec.from_dict(spec or TINY_SPEC).runs[0], torch.device("cpu"))
    if train:
        Trainer(ctx, [], RunOptions(torch.device("cpu"), progress=False), None, aebench.registry()).run()
    ctx.model.eval()
    return ctx


@functools.cache
def _evaluated(cls: type[Evaluator]) -> tuple[dict[str, Any], set[str]]:
    """What ``cls`` returns on a tiny trained run (its epoch values and final values), and the
    variables the run has without it (the trainer's): computed once per class."""
    from aebench.engine.runner import records_to_dataset

    e = cls(check_params(cls))
    ctx = tiny_context()
    with torch.no_grad():
        per_epoch = e.on_epoch(ctx, 1) or {}
    out = {**per_epoch, **e.evaluate(ctx)}
    core = set(records_to_dataset(ctx.records).data_vars) | {"train_seconds"}
    return out, core


def check_evaluator_outputs(cls: type[Evaluator]) -> None:
    """``on_epoch`` and ``evaluate`` return ``xarray.DataArray``s, not all NaN."""
    out, _ = _evaluated(cls)
    for name, da in out.items():
        assert hasattr(da, "dims") and hasattr(da, "attrs"), f"{name} must be an xarray.DataArray"
        values = np.asarray(da.values)
        if values.dtype.kind == "f":
            assert not np.isnan(values).all(), f"{name} is all NaN"


def check_evaluator_attrs(cls: type[Evaluator]) -> None:
    """Every variable has ``long_name`` and ``units`` attributes (DESIGN §6; "" for a count or a flag)."""
    out, _ = _evaluated(cls)
    for name, da in out.items():
        assert da.attrs.get("long_name"), f"{name} needs a long_name attribute"
        assert isinstance(da.attrs.get("units"), str), (
            f'{name} needs a units attribute (text; "" for a dimensionless count or flag)'
        )


def declared_variables(cls: type[Evaluator]) -> set[str]:
    """The result variables an evaluator's ``reports`` name (metrics, their intervals and sources,
    criteria, estimates and their flags, figures' ``needs``)."""
    from aebench.hookspecs import Criterion, Figure, Metric

    names: set[str] = set()
    for item in getattr(cls, "reports", ()) or ():
        if isinstance(item, Metric):
            names.add(item.source or item.var)
            names |= {item.interval} if item.interval else set()
            names |= {item.criterion.var} if item.criterion is not None else set()
            names |= {v for e in item.estimates for v in (e.var, e.at_edge)}
        elif isinstance(item, Criterion):
            names.add(item.var)
        elif isinstance(item, Figure):
            names.add(item.needs)
    return names


def check_evaluator_reports(cls: type[Evaluator]) -> None:
    """Every variable its ``reports`` declare is one it returns (or the trainer's own): a typo in a
    declaration would leave a metric without its table, silently."""
    out, core = _evaluated(cls)
    missing = sorted(declared_variables(cls) - set(out) - core)
    assert not missing, (
        f"{cls.__name__}.reports declares {missing}, which neither on_epoch() nor evaluate() returned "
        f"(it returned {sorted(out)})"
    )


# ---------------------------------------------------------------------------- optimizers
def _quadratic_steps(opt_cls: type[Optimizer], params: Any, steps: int, lr: float | None = None) -> list[float]:
    """Losses of ``steps`` steps on ||p - t||^2 from a seeded start."""
    gen = torch.Generator().manual_seed(0)
    p = torch.nn.Parameter(torch.randn(4, 3, generator=gen))
    target = torch.randn(4, 3, generator=gen)
    opt = opt_cls(params).build([p], params.lr if lr is None else lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((p - target) ** 2).sum()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def check_optimizer_descends(cls: type[Optimizer]) -> None:
    """``build(params, lr)`` returns an optimizer that lowers a quadratic from its default settings."""
    params = check_params(cls)
    losses = _quadratic_steps(cls, params, 50)
    assert all(np.isfinite(losses)), "the loss became non-finite"
    assert losses[-1] < losses[0], f"50 steps did not lower ||p - t||^2 ({losses[0]:.4g} -> {losses[-1]:.4g})"


def check_optimizer_resumes(cls: type[Optimizer]) -> None:
    """Its state survives a checkpoint (``torch.save``, loaded with ``weights_only=True``, as
    ``--resume`` does): a fresh optimizer loaded from it takes the very next step the first takes."""
    import io

    params = check_params(cls)
    gen = torch.Generator().manual_seed(1)
    p = torch.nn.Parameter(torch.randn(5, generator=gen))
    grads = [torch.randn(5, generator=gen) for _ in range(4)]
    opt = cls(params).build([p], params.lr)
    for g in grads[:3]:
        p.grad = g.clone()
        opt.step()
    buf = io.BytesIO()
    torch.save({"weights": p.detach().clone(), "optimizer": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    q = torch.nn.Parameter(saved["weights"])
    again = cls(params).build([q], params.lr)
    again.load_state_dict(saved["optimizer"])
    p.grad, q.grad = grads[3].clone(), grads[3].clone()
    opt.step()
    again.step()
    torch.testing.assert_close(q.detach(), p.detach(), msg="a resumed optimizer must step as the one it was saved from")


def check_optimizer_members(cls: type[Optimizer]) -> None:
    """Members of one batch (``ensemble = true``): one optimizer over (S, ...) parameters steps
    each member as its solo run, with one learning rate for all and, when ``lr`` is per-member,
    with one each. A class with ``batchable = False`` trains its runs one at a time instead."""
    from aebench.engine.optim import make_member_optimizer

    if not cls.batchable:
        return
    params = check_params(cls)
    rule = cls(params)
    base = params.lr
    cases = [[base, base]] + ([[base, base / 4]] if "lr" in per_member_fields(cls.Params) else [])
    gen = torch.Generator().manual_seed(2)
    start = torch.randn(2, 4, 3, generator=gen)
    grads = [torch.randn(2, 4, 3, generator=gen) for _ in range(3)]
    for lrs in cases:
        batched = torch.nn.Parameter(start.clone())
        opt = make_member_optimizer([batched], rule, lrs, torch.device("cpu"))
        solos = [torch.nn.Parameter(start[s].clone()) for s in range(2)]
        solo_opts = [rule.build([q], lr) for q, lr in zip(solos, lrs)]
        for g in grads:
            batched.grad = g.clone()
            opt.step()
            for s, (q, o) in enumerate(zip(solos, solo_opts)):
                q.grad = g[s].clone()
                o.step()
        for s in range(2):
            torch.testing.assert_close(
                batched.detach()[s],
                solos[s].detach(),
                rtol=1e-5,
                atol=1e-6,
                msg=f"member {s} (lr {lrs[s]}) must step as its solo run; an update that is not element-wise "
                "sets batchable = False, one not proportional to lr declares lr without per_member",
            )


# ----------------------------------------------------------------------------- executors
def check_executor_options(cls: type[Executor]) -> None:
    """Its options can be CLI flags: each field takes a number, text or a boolean (or None)."""
    import typing

    params = check_params(cls)
    for name, field in cls.Params.model_fields.items():
        assert name.isidentifier() and not name.startswith("_"), f"option {name!r} cannot be a --flag"
        kinds = [a for a in typing.get_args(field.annotation) if a is not type(None)] or [field.annotation]
        assert len(kinds) == 1 and kinds[0] in (int, float, str, bool), (
            f"{cls.__name__}.Params.{name}: a CLI flag takes one of int, float, str, bool (or None), "
            f"not {field.annotation!r}"
        )
    why = cls.unavailable(params)
    assert why is None or (isinstance(why, str) and why), "unavailable() returns None or a reason"


def check_executor_runs(cls: type[Executor]) -> None:
    """Built with a job, ``map`` trains every task and records every run: two runs end ``done``
    with the numbers the ``local`` executor gets."""
    import xarray as xr

    import aebench
    from aebench.spec import Spec

    if cls.unavailable(cls.Params()):
        return  # it says why it cannot run here (a missing library): nothing to check on this machine
    spec = Spec.from_dict({**TINY_SPEC, "seeds": [0, 1]})
    with tempfile.TemporaryDirectory() as tmp:
        got = aebench.run(spec, out=Path(tmp) / "it", executor=cls, progress=False)
        ref = aebench.run(spec, out=Path(tmp) / "local", executor="local", progress=False)
        assert [str(s) for s in got["status"].values.ravel()] == ["done", "done"], "every run must be recorded done"
        for run in spec.runs:
            assert (Path(tmp) / "it" / "runs" / run.run_id / "metrics.nc").is_file(), f"{run.run_id} has no metrics"
        xr.testing.assert_allclose(got["recon_error"], ref["recon_error"], rtol=1e-4, atol=1e-6)


def check_callback_state(cls: type) -> None:
    """A callback's ``state_dict`` is plain data that a ``weights_only`` checkpoint can hold, and
    ``load_state_dict`` takes it back into a fresh instance, which then gives the same state."""
    import io

    import torch

    first = cls(cls.Params())
    state = first.state_dict()
    assert isinstance(state, dict), f"{cls.__name__}.state_dict() returned {type(state).__name__}, not a dict"
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    try:
        back = torch.load(buf, weights_only=True)
    except Exception as exc:  # what a resumed run would meet
        raise AssertionError(f"{cls.__name__}.state_dict() cannot be loaded with weights_only=True: {exc}") from None
    second = cls(cls.Params())
    second.load_state_dict(back)
    assert second.state_dict().keys() == state.keys(), f"{cls.__name__}: load_state_dict did not restore its state"


# --------------------------------------------------------------------- the checks by kind
#: check name -> check, for every kind; each becomes one pytest item
CHECKS: dict[str, dict[str, Callable[[type], Any]]] = {
    "corruption": {"params": check_params, "contract": check_corruption, "pickles": check_pickles},
    "regularizer": {"params": check_params, "contract": check_regularizer, "pickles": check_pickles},
    "schedule": {"params": check_params, "stages": check_schedule, "pickles": check_pickles},
    "dataset": {"params": check_params, "splits": check_dataset, "pickles": check_pickles},
    "model": {"params": check_params, "contract": check_model, "pickles": check_pickles},
    "evaluator": {
        "params": check_params,
        "outputs": check_evaluator_outputs,
        "long_name-and-units": check_evaluator_attrs,
        "declared-reports": check_evaluator_reports,
        "pickles": check_pickles,
    },
    "optimizer": {
        "params": check_params,
        "descends": check_optimizer_descends,
        "resumes": check_optimizer_resumes,
        "members": check_optimizer_members,
        "pickles": check_pickles,
    },
    "executor": {
        "params": check_params,
        "options": check_executor_options,
        "runs": check_executor_runs,
        "pickles": check_pickles,
    },
    "callback": {"params": check_params, "state": check_callback_state, "pickles": check_pickles},
}


def checks(cls: type) -> list[tuple[str, Callable[[type], Any]]]:
    """``(name, check)`` for every contract check of ``cls``'s kind; ``check(cls)`` raises
    AssertionError naming the problem."""
    return list(CHECKS[kind_of(cls)].items())


def parametrize_with_checks(classes: Iterable[type]) -> Any:
    """A ``pytest.mark.parametrize`` of ``(component, check)`` over every check of every class:
    one test item each, named ``kind:name-check``."""
    import pytest

    cases = [(cls, check) for cls in classes for _, check in checks(cls)]
    ids = [f"{kind_of(cls)}:{cls.name or cls.__name__}-{name}" for cls in classes for name, _ in checks(cls)]
    return pytest.mark.parametrize("component, check", cases, ids=ids)


def check_component(cls: type) -> None:
    """Run every contract check of ``cls``'s kind; raises AssertionError naming the problem."""
    for _, check in checks(cls):
        check(cls)


def check_evaluator(cls: type[Evaluator]) -> None:
    """Every evaluator check in one call."""
    check_component(cls)


def check_optimizer(cls: type[Optimizer]) -> None:
    """Every optimizer check in one call."""
    check_component(cls)


def check_executor(cls: type[Executor]) -> None:
    """Every executor check in one call."""
    check_component(cls)


__all__ = [
    "CHECKS",
    "check_component",
    "check_corruption",
    "check_dataset",
    "check_evaluator",
    "check_executor",
    "check_model",
    "check_optimizer",
    "check_regularizer",
    "check_schedule",
    "checks",
    "declared_variables",
    "parametrize_with_checks",
    "stage_loss",
    "tiny_context",
]
