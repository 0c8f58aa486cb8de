"""Schedules: which parameters each stage trains, eq. 11 vs eq. 12, U from L, alpha ≡ joint."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_toml

import aebench
from aebench.engine.runner import RunOptions, Trainer, build_context
from aebench.engine.stage import StageLoss
from aebench.spec import Spec


def ctx_for(schedule: str, extra: dict | None = None):
    text = tiny_toml(schedule={"name": schedule, "epochs": 1, **(extra or {})})
    return build_context(Spec.from_text(text).runs[0], torch.device("cpu"))


def stage_table(schedule: str, extra: dict | None = None):
    return [(s.label, s.train_layers, s.depth, s.target, s.regularize) for s in ctx_for(schedule, extra).stages]


def test_stage_plans():
    assert stage_table("joint") == [("joint", (0, 1), 2, "input", True)]
    assert stage_table("layerwise") == [("layer0", (0,), 1, "local", True), ("layer1", (1,), 2, "local", True)]
    assert stage_table("layerwise-input") == [
        ("layer-input0", (0,), 1, "input", True),
        ("layer-input1", (1,), 2, "input", True),
    ]
    assert stage_table("pretrain-joint")[-1] == ("joint", (0, 1), 2, "input", False)
    assert (
        ctx_for("pretrain-joint").stages[-1].corrupt == "none"
        and ctx_for("pretrain-joint-reg").stages[-1].corrupt == "all"
    )
    assert stage_table("pretrain-joint-reg")[-1] == ("joint", (0, 1), 2, "input", True)
    assert stage_table("alpha") == [("alpha0", (0,), 2, "input", True), ("alpha1", (1,), 2, "input", True)]
    assert stage_table("finetune") == [("finetune", (0, 1), 2, "labels", False)]
    assert ctx_for("supervised").stages[0].reinit and not ctx_for("finetune").stages[0].reinit
    assert stage_table("hybrid", {"alpha": 0.5}) == [("hybrid", (0, 1), 2, "hybrid", True)]


def _trainer(ctx):
    return Trainer(ctx, [], RunOptions(torch.device("cpu"), progress=False), None, aebench.registry())


@pytest.mark.parametrize("schedule", ["alpha", "layerwise-input", "pretrain-joint", "finetune", "hybrid"])
def test_each_stage_changes_exactly_its_layers(schedule):
    ctx = ctx_for(schedule)
    trainer = _trainer(ctx)
    names = [n for n, _ in ctx.model.named_parameters()]
    for k, stage in enumerate(ctx.stages):
        before = [p.detach().clone() for p in ctx.model.parameters()]
        trainer.train_stage(k)
        changed = {n.split(".")[1] for n, a, p in zip(names, before, ctx.model.parameters()) if not torch.equal(a, p)}
        assert changed == {str(i) for i in stage.train_layers}, (schedule, stage.label)


def test_eq11_and_eq12_give_layer2_different_gradients():
    eq12 = ctx_for("layerwise")
    eq11 = ctx_for("layerwise-input")
    eq11.model.load_state_dict(eq12.model.state_dict())
    eq11.corruptions = eq12.corruptions = []
    x, y = eq12.splits["train"].rows(slice(0, 50)), eq12.splits["train"].y[:50]
    grads = []
    for ctx in (eq12, eq11):
        stage = ctx.stages[1]
        for p in ctx.model.layer_parameters(0):
            p.requires_grad_(False)  # frozen, as the stage runner sets it
        ctx.model.zero_grad()
        StageLoss(ctx, stage)(x, y).backward()
        grads.append(ctx.model.weights[1].grad.clone())
    assert not torch.allclose(grads[0], grads[1], rtol=1e-2)


def test_pretrain_joint_starts_from_the_layerwise_weights(tmp_path):
    ctx_u, ctx_l = ctx_for("pretrain-joint"), ctx_for("layerwise")
    t_u, t_l = _trainer(ctx_u), _trainer(ctx_l)
    t_l.run()
    for k in range(len(ctx_u.stages) - 1):
        t_u.train_stage(k)
    for a, b in zip(ctx_u.model.parameters(), ctx_l.model.parameters()):
        assert torch.equal(a, b)


def test_alpha_with_one_layer_equals_joint(tmp_path):
    results = []
    for name in ("alpha", "joint"):
        spec = Spec.from_text(tiny_toml({"model.layers": [24], "schedule.name": name}))
        results.append(aebench.run(spec, out=tmp_path / name, progress=False)["recon_error"].values)
    assert (results[0] == results[1]).all()


def test_supervised_restarts_from_the_initial_weights():
    ctx = ctx_for("supervised")
    initial = [p.detach().clone() for p in ctx.model.parameters()]
    trainer = _trainer(ctx)
    with torch.no_grad():
        for p in ctx.model.parameters():
            p.add_(1.0)  # as if pre-trained
    trainer.train_stage(0)
    # It trained from the initial point: far closer to it than to the perturbed weights.
    dist = sum(float((p.detach() - i).abs().mean()) for p, i in zip(ctx.model.parameters(), initial))
    assert dist < 0.5 * len(initial)


def test_finetune_learns_labels_and_stops_early(tmp_path):
    text = tiny_toml(
        schedule=[{"name": "layerwise", "epochs": 2}, {"name": "finetune", "epochs": 60, "patience": 5, "lr": 0.01}]
    )
    ds = aebench.run(Spec.from_text(text), out=tmp_path / "o", progress=False)
    err = ds["class_error"].squeeze("seed").dropna("epoch", how="all")
    assert float(err.sel(split="test").min()) < 0.3  # ten classes: chance is 0.9
    valid = err.sel(split="valid").values
    assert len(valid) < 60  # stopped early...
    assert len(valid) - 1 - int(valid.argmin()) == 5  # ...five epochs after the best validation error
