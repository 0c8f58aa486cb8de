"""Contract tests for plug-in authors: ``aebench.testing.check_component(MyClass)``.

Each check builds the component from its default ``Params`` and asserts what aebench
relies on: params validate (and reject unknown keys), results are deterministic under a
seed, shapes fit, nothing is NaN, and the component pickles (the process and dask
executors send it to workers). Use it in your plug-in's tests::

    from aebench.testing import check_component
    def test_contract():
        check_component(MyCorruption)
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from aebench.components import BASES, Corruption, Dataset, Evaluator, LayerView, Model, Regularizer, Schedule

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
    """Default params validate, unknown keys are rejected, the class has name and summary."""
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


def check_evaluator(cls: type[Evaluator]) -> None:
    e = cls(check_params(cls))
    ctx = tiny_context()
    with torch.no_grad():
        per_epoch = e.on_epoch(ctx, 1) or {}
    out = {**per_epoch, **e.evaluate(ctx)}
    for name, da in out.items():
        assert hasattr(da, "dims") and hasattr(da, "attrs"), f"{name} must be an xarray.DataArray"
        assert da.attrs.get("long_name"), f"{name} needs a long_name attribute"
        values = np.asarray(da.values)
        if values.dtype.kind == "f":
            assert not np.isnan(values).all(), f"{name} is all NaN"
    _pickles(e)


CHECKS = {
    "corruption": check_corruption,
    "regularizer": check_regularizer,
    "schedule": check_schedule,
    "dataset": check_dataset,
    "model": check_model,
    "evaluator": check_evaluator,
}


def check_component(cls: type) -> None:
    """Run the contract checks of ``cls``'s kind; raises AssertionError naming the problem."""
    CHECKS[kind_of(cls)](cls)


__all__ = ["check_component", "stage_loss", "tiny_context", *(f"check_{k}" for k in CHECKS)]
