"""The maths of the built-ins, each against an independent reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import tiny_toml

from aebench.builtin.corruptions import CodeNoise, Gaussian, Masking, NoCorruption, SaltPepper
from aebench.builtin.regularizers import ActivityL1, Contractive, KLSparsity, WeightL1, WeightL2
from aebench.components import LayerView
from aebench.functional import contractive_penalty, kl_sparsity, parzen_log_likelihood, parzen_window
from aebench.models import Stacked


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "linear"])
def test_contractive_penalty_matches_autograd_jacobian(activation):
    g = torch.Generator().manual_seed(0)
    W = torch.randn(7, 5, generator=g, dtype=torch.float64)
    b = torch.randn(7, generator=g, dtype=torch.float64)
    x = torch.rand(4, 5, generator=g, dtype=torch.float64)
    f = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "linear": lambda a: a}[activation]
    expected = torch.stack(
        [torch.autograd.functional.jacobian(lambda v: f(W @ v + b), xi).pow(2).sum() for xi in x]
    ).mean()
    got = contractive_penalty(f(x @ W.T + b), W, activation=activation)
    assert abs(float(got - expected)) < 1e-6 * max(1.0, float(expected))


def test_kl_sparsity_by_hand():
    h = torch.tensor([[0.2, 0.9], [0.4, 0.5]], dtype=torch.float64)  # batch means 0.3, 0.7
    rho = 0.1

    def kl(q):
        return rho * math.log(rho / q) + (1 - rho) * math.log((1 - rho) / (1 - q))

    assert float(kl_sparsity(h, rho)) == pytest.approx(kl(0.3) + kl(0.7), rel=1e-12)


def _view(W, act="sigmoid", Wd=None):
    return LayerView(0, W, torch.zeros(W.shape[0]), act, W.T if Wd is None else Wd)


def test_weight_and_activity_penalties_by_hand():
    W = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    h = torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    assert float(WeightL2(WeightL2.Params()).penalty(_view(W), None, h)) == pytest.approx(1 + 4 + 0.25)
    assert float(WeightL1(WeightL1.Params()).penalty(_view(W), None, h)) == pytest.approx(3.5)
    untied = _view(W, Wd=torch.ones(2, 2))
    assert float(WeightL2(WeightL2.Params()).penalty(untied, None, h)) == pytest.approx(5.25 + 4)
    assert float(ActivityL1(ActivityL1.Params()).penalty(_view(W), None, h)) == pytest.approx((1.5 + 2) / 2)
    hs = torch.sigmoid(torch.randn(3, 2))
    assert float(Contractive(Contractive.Params()).penalty(_view(W), None, hs)) == pytest.approx(
        float(contractive_penalty(hs, W))
    )
    assert float(KLSparsity(KLSparsity.Params(rho=0.2)).penalty(_view(W), None, hs)) == pytest.approx(
        float(kl_sparsity(hs, 0.2))
    )


def test_corruptions_match_their_parameters():
    g = torch.Generator().manual_seed(1)
    x = torch.full((400, 500), 0.5)
    noise = Gaussian(Gaussian.Params(level=0.3))(x, g) - x
    assert float(noise.mean()) == pytest.approx(0.0, abs=3e-3) and float(noise.std()) == pytest.approx(0.3, rel=0.01)
    masked = Masking(Masking.Params(level=0.25))(torch.ones(400, 500), g)
    assert float((masked == 0).float().mean()) == pytest.approx(0.25, abs=0.005)
    sp = SaltPepper(SaltPepper.Params(level=0.2))(x, g)
    assert float((sp != 0.5).float().mean()) == pytest.approx(0.2, abs=0.005)
    assert float((sp == 1).float().mean()) == pytest.approx(0.1, abs=0.005)
    assert torch.equal(NoCorruption(NoCorruption.Params())(x, g), x)
    code = CodeNoise(CodeNoise.Params(level=4.0))
    assert float((code(torch.zeros(400, 500), g)).std()) == pytest.approx(4.0, rel=0.01)
    assert code.applies_to(2, 3) and not code.applies_to(0, 3)


def test_corruption_is_reproducible_from_the_run_generator():
    c = Gaussian(Gaussian.Params(level=1.0))
    x = torch.zeros(10, 10)
    a = c(x, torch.Generator().manual_seed(5))
    b = c(x, torch.Generator().manual_seed(5))
    torch.manual_seed(0)  # the global RNG plays no part
    assert torch.equal(a, b) and not torch.equal(a, c(x, torch.Generator().manual_seed(6)))


def test_sigmoid_init_uses_the_x4_glorot_range():
    g = torch.Generator().manual_seed(0)
    m = Stacked(Stacked.Params(layers=[1000]), 784, g)
    r = 4 * math.sqrt(6 / (784 + 1000))
    w = m.weights[0].detach()
    assert float(w.abs().max()) <= r and float(w.abs().max()) > 0.99 * r
    assert float(w.var()) == pytest.approx(r * r / 3, rel=0.02)
    lin = Stacked(
        Stacked.Params(layers=[1000], activation="linear", output_activation="linear", loss="squared-error"), 784, g
    )
    assert float(lin.weights[0].detach().abs().max()) <= math.sqrt(6 / 1784)


def test_parzen_matches_scikit_learn_kde():
    from sklearn.neighbors import KernelDensity

    rng = np.random.default_rng(0)
    samples = rng.random((300, 20))
    x = rng.random((50, 20))
    sigma = 0.3
    kde = KernelDensity(bandwidth=sigma, kernel="gaussian", leaf_size=1000).fit(samples)  # exact tree
    expected = kde.score_samples(x)
    got = parzen_log_likelihood(torch.from_numpy(samples), torch.from_numpy(x), sigma, batch_size=64).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize("max_bytes", [256 * 2**20, 0], ids=["distances kept", "recomputed"])
def test_parzen_window_for_a_sigma_search_is_bit_for_bit_the_direct_computation(max_bytes):
    """The σ search's window (squared distances once) gives exactly what each direct call gives,
    with ragged blocks of rows and samples, kept or (over its memory cap) recomputed; and both
    match the textbook formula written out on its own."""
    rng = np.random.default_rng(1)
    samples, x = torch.from_numpy(rng.random((130, 12))), torch.from_numpy(rng.random((70, 12)))
    window = parzen_window(samples, x, batch_size=32, max_bytes=max_bytes)
    for sigma in (0.05, 0.3, 2.0, 0.3):
        assert torch.equal(window(sigma), parzen_log_likelihood(samples, x, sigma, batch_size=32))
        d2 = torch.cdist(x, samples).pow(2)
        textbook = torch.logsumexp(-d2 / (2 * sigma**2), 1) - math.log(130) - 6 * math.log(2 * math.pi * sigma**2)
        torch.testing.assert_close(window(sigma), textbook, rtol=1e-9, atol=1e-9)


def test_linear_autoencoder_reaches_the_pca_error(tmp_path):
    """An undercomplete linear AE with squared error spans the PCA subspace (digits, 10 dims)."""
    from sklearn.decomposition import PCA

    import aebench

    text = """
name = "pca"
data = { name = "digits" }
model = { name = "stacked", layers = [10], tied = false, activation = "linear", output_activation = "linear", \
  loss = "squared-error" }
schedule = { name = "joint", epochs = 150 }
optimizer = { name = "adam", lr = 0.005, batch_size = 100 }
"""
    ds = aebench.run(aebench.Spec.from_text(text), out=tmp_path / "o", progress=False)
    ae_err = float(ds["recon_error_final"].sel(split="train").squeeze())
    d = aebench.registry().get("dataset", "digits")().load()
    x = d.train.x * d.scale
    pca = PCA(10).fit(x)
    pca_err = float(((x - pca.inverse_transform(pca.transform(x))) ** 2).sum(1).mean())
    assert pca_err <= ae_err < 1.05 * pca_err, (ae_err, pca_err)


def test_corruption_is_off_at_evaluation_time():
    """The recon evaluator sees the clean input: the corruption level does not change it."""
    from aebench.builtin.evaluators import Recon
    from aebench.engine.runner import build_context
    from aebench.spec import Spec

    values = []
    for level in (0.0, 5.0):
        ctx = build_context(Spec.from_text(tiny_toml({"corruption.level": level})).runs[0], torch.device("cpu"))
        with torch.no_grad():
            values.append(Recon(Recon.Params()).measure(ctx)["recon_error"].values)
    np.testing.assert_array_equal(values[0], values[1])


def test_code_noise_acts_on_the_top_pre_activation_only():
    """Huge code noise saturates the top code during training (semantic hashing) but not layer 1."""
    from aebench.engine.runner import build_context
    from aebench.engine.stage import StageLoss
    from aebench.spec import Spec

    text = tiny_toml(corruption={"name": "code-noise", "level": 100.0})
    ctx = build_context(Spec.from_text(text).runs[0], torch.device("cpu"))
    seen = {}
    original = ctx.model.encode_layer

    def spy(i, h, noise=None):
        out = original(i, h, noise)
        seen[i] = (noise is not None, out.detach())
        return out

    ctx.model.encode_layer = spy
    x = ctx.splits["train"].rows(slice(0, 50))
    StageLoss(ctx, ctx.stages[0])(x, ctx.splits["train"].y[:50])
    assert seen[0][0] is False and seen[1][0] is True
    top = seen[1][1]
    assert float(((top < 0.01) | (top > 0.99)).float().mean()) > 0.95  # binary codes
