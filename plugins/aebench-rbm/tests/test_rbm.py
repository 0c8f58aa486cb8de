"""CD-k against the textbook update, training helps, and RBM vs AE pre-training in one sweep."""

import pytest
import torch
import xarray as xr

import aebench
from aebench.components import Stage
from aebench.testing import check_component, stage_loss
from aebench_rbm import RBM, RBMCD, cd_loss, free_energy


def test_components_pass_the_contract():
    check_component(RBM)
    check_component(RBMCD)
    with pytest.raises(Exception, match="tied weights and sigmoid"):
        RBM.Params(tied=False)


def test_free_energy_by_hand():
    W = torch.tensor([[1.0, -1.0]])
    b, c = torch.tensor([0.5]), torch.tensor([0.2, -0.3])
    v = torch.tensor([[1.0, 0.0]])
    expected = -(0.2) - torch.log1p(torch.exp(torch.tensor(1.5)))
    assert float(free_energy(v, W, b, c)) == pytest.approx(float(expected))


def test_cd1_gradient_is_the_textbook_update():
    """∂/∂W of F(v0) − F(vk) = −(<p(h|v0) v0ᵀ> − <p(h|vk) vkᵀ>): the CD-1 rule."""
    ctx = aebench.testing.tiny_context(
        {
            **aebench.testing.TINY_SPEC,
            "model": {"name": "rbm", "layers": [8]},
            "schedule": {"name": "rbm-cd", "epochs": 1},
        },
        train=False,
    )
    x = ctx.splits["train"].rows(slice(0, 20))
    stage = Stage("rbm0", (0,), 1, "custom", 1, objective=cd_loss, options={"k": 1})
    state = ctx.generator.get_state()
    loss = stage_loss(ctx, stage, x, None)
    (gW,) = torch.autograd.grad(loss, ctx.model.weights[0])
    ctx.generator.set_state(state)  # replay the same Gibbs chain by hand
    W, b, c = ctx.model.weights[0].detach(), ctx.model.enc_bias[0].detach(), ctx.model.dec_bias[0].detach()
    h = torch.bernoulli(torch.sigmoid(x @ W.T + b), generator=ctx.generator)
    vk = torch.sigmoid(h @ W + c)
    positive = torch.sigmoid(x @ W.T + b).T @ x / len(x)
    negative = torch.sigmoid(vk @ W.T + b).T @ vk / len(x)
    torch.testing.assert_close(-gW, positive - negative, rtol=1e-4, atol=1e-6)


def test_rbm_and_autoencoder_pretraining_in_one_sweep(tmp_path):
    spec = aebench.Spec.from_dict(
        {
            "name": "rbm-vs-ae",
            "data": {"name": "digits"},
            "model": {"name": "rbm", "layers": [64, 32]},
            "corruption": {"name": "none"},
            "schedule": [{"name": "layerwise", "epochs": 8}, {"name": "finetune", "epochs": 15, "patience": 5}],
            "optimizer": {"name": "rmsprop", "lr": 0.005},
            "evaluate": {"recon": {"every": 0}},
            "sweep": {"schedule.0.name": ["layerwise", "rbm-cd"]},
        }
    )
    ds = aebench.run(spec, out=tmp_path / "o", progress=False)
    assert set(ds["status"].values.ravel()) == {"done"}
    assert list(ds["schedule.0.name"].values) == ["layerwise", "rbm-cd"]
    stages = ds["stage"].sel({"schedule.0.name": "rbm-cd"}).squeeze("seed").values.tolist()
    assert stages[:16] == ["rbm0"] * 8 + ["rbm1"] * 8 and "finetune" in stages
    err = ds["class_error"].sel(split="test").min("epoch").squeeze("seed")
    assert float(err.max()) < 0.3  # both pre-trainings lead to a working classifier (chance: 0.9)


def test_rbm_members_train_batched_and_each_equals_its_solo_run(tmp_path):
    raw = {
        "name": "rbm-seeds",
        "seeds": [0, 1, 2],
        "data": {"name": "digits", "subset": 300, "eval_subset": 100},
        "model": {"name": "rbm", "layers": [32, 16]},
        "corruption": {"name": "none"},
        "schedule": {"name": "rbm-cd", "epochs": 2, "k": 2},
        "optimizer": {"name": "rmsprop", "lr": 0.005, "batch_size": 50},
        "sweep": {"optimizer.lr": [0.005, 0.01]},
    }
    solo = aebench.run(aebench.Spec.from_dict(raw), out=tmp_path / "solo", progress=False)
    spec = aebench.Spec.from_dict({**raw, "ensemble": True})
    ens = aebench.run(spec, out=tmp_path / "ens", progress=False)
    for run in (tmp_path / "ens" / "runs").glob("run-*"):
        assert xr.open_dataset(run / "metrics.nc").attrs["ensemble_members"] == 6  # one batch: CD-k batches
    for name in ("loss", "recon_error", "recon_error_final"):
        xr.testing.assert_allclose(ens[name], solo[name], rtol=2e-4, atol=1e-5)
