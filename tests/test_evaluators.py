"""Evaluations (Zhou et al., Erhan et al.): each metric against a reference, and the report."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest
import torch
from conftest import tiny_toml, to_toml, write_spec

import aebench
from aebench.builtin.evaluators import Parzen, Svm
from aebench.engine.runner import RunOptions, Trainer, build_context
from aebench.evaluate.stats import binomial_ci, seed_summary, t_interval
from aebench.spec import Spec

ALL = """\
name = "all evaluators"
seeds = [0, 1]
data = {{ name = "mnist", subset = 1000, eval_subset = 300 }}
model = {{ name = "stacked", layers = [128, 64] }}
corruption = {{ name = "gaussian", level = 0.3 }}
schedule = {{ name = "joint", epochs = {epochs} }}
optimizer = {{ name = "rmsprop", lr = 0.005 }}
evaluate = {{ recon = {{}}, svm = {{ C = [0.1, 1.0] }}, finetune = {{ epochs = 5, patience = 2 }}, \
  parzen = {{ samples = 300, burn_in = 10, sigma = [0.1, 0.2, 0.3] }}, \
  samples = {{ chains = 2, steps = 4, burn_in = 2 }}, filters = {{ units = 16 }}, \
  trajectory = {{ probes = 10 }}, timing = {{}} }}

[sweep]
"schedule.name" = ["joint", "layerwise"]
"""


def test_binomial_ci_is_the_papers_plus_minus():
    assert binomial_ci(0.0148, 10000) == pytest.approx(0.00237, abs=1e-5)  # Zhou et al.: 1.48 ± 0.24 (%)
    assert binomial_ci(0.2284, 50000) == pytest.approx(1.96 * math.sqrt(0.2284 * 0.7716 / 50000), rel=1e-3)


def test_t_interval_by_hand():
    mean, sd, ci = t_interval(np.array([1.0, 2.0, 3.0]))
    assert (mean, sd) == (2.0, 1.0) and ci == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert math.isnan(t_interval(np.array([5.0]))[2])


def test_every_evaluator_into_results_and_the_report(tmp_path, cli):
    spec = write_spec(tmp_path, ALL.format(epochs=3))
    code, out, err = cli("run", spec, "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    ds = aebench.load_results(tmp_path / "out")
    for var in (
        "recon_error",
        "svm_error",
        "svm_error_ci",
        "svm_C",
        "finetune_error",
        "finetune_error_ci",
        "finetune_curve",
        "parzen_ll",
        "parzen_ll_se",
        "parzen_sigma",
        "samples",
        "samples_nearest",
        "filters",
        "trajectory_outputs",
        "stage_seconds",
        "stage_examples_per_second",
    ):
        assert var in ds, var
        assert ds[var].attrs.get("long_name"), var
    assert ds["samples"].dims[-4:] == ("chain", "step", "pixel_y", "pixel_x")
    assert ds["filters"].sizes["unit"] == 16 and ds["stage_seconds"].sizes["stage_name"] == 3  # joint, layer0, layer1
    assert (tmp_path / "out" / "runs" / "run-0000" / "samples.png").is_file()
    summary = seed_summary(ds)
    assert {"svm_error_mean", "svm_error_ci", "parzen_ll_mean", "finetune_error_std"} <= set(summary.data_vars)
    code, out, _ = cli("report", tmp_path / "out")
    assert code == 0
    page = (tmp_path / "out" / "report.html").read_text()
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Linear SVM test error (%)" in page and "Parzen test log-likelihood" in md
    assert page.count("data:image/png;base64,") >= 6
    svm_mean = float(ds["svm_error"].sel({"schedule.name": "joint"}).mean()) * 100
    assert f"{svm_mean:.2f} ±" in md  # the table shows the seed mean of the stored metric


def _trained(epochs: int):
    one = {**tomllib.loads(ALL.format(epochs=max(epochs, 1))), "seeds": [0]}
    text = to_toml({k: v for k, v in one.items() if k != "sweep"})
    ctx = build_context(Spec.from_text(text).runs[0], torch.device("cpu"))
    if epochs:
        Trainer(ctx, [], RunOptions(torch.device("cpu"), progress=False), None, aebench.registry()).run()
    ctx.model.eval()
    return ctx


@pytest.fixture(scope="module")
def contexts():
    return _trained(0), _trained(8)


def test_svm_matches_scikit_learn_and_training_helps(contexts):
    from sklearn.svm import LinearSVC

    untrained, trained = contexts
    res = Svm(Svm.Params(C=[0.1, 1.0])).evaluate(trained)
    f = {s: trained.features(s).numpy() for s in ("train", "valid", "test")}
    y = {s: trained.splits[s].y.numpy() for s in ("train", "valid", "test")}
    ref = LinearSVC(C=float(res["svm_C"]), max_iter=2000).fit(f["train"], y["train"])
    assert float(res["svm_error"]) == pytest.approx(float((ref.predict(f["test"]) != y["test"]).mean()))
    assert float(res["svm_error_ci"]) == pytest.approx(binomial_ci(float(res["svm_error"]), 300))
    worse = Svm(Svm.Params(C=[0.1, 1.0])).evaluate(untrained)
    assert float(worse["svm_error"]) > float(res["svm_error"])


def test_parzen_untrained_model_scores_worse(contexts):
    untrained, trained = contexts
    params = Parzen.Params(samples=300, burn_in=10, sigma=[0.1, 0.2, 0.3])
    good = Parzen(params).evaluate(trained)
    bad = Parzen(params).evaluate(untrained)
    assert float(good["parzen_ll"]) > float(bad["parzen_ll"]) + 10
    tried = good["parzen_valid_ll"]["sigma"].values
    assert float(good["parzen_sigma"]) in tried and {0.1, 0.2, 0.3} <= set(tried)
    assert tried.min() < float(good["parzen_sigma"]) < tried.max()
    assert float(good["parzen_ll"]) == pytest.approx(float(good["parzen_valid_ll"].max()), abs=60)


def test_model_selection_chooses_on_valid_and_reports_test():
    from aebench.evaluate.select import select_best

    # scheme x lr x seed x split: valid is best at lr=0.01 for joint, lr=0.1 for layerwise
    valid = np.array([[[5, 5], [1, 3], [9, 9]], [[7, 7], [8, 8], [2, 2]]], dtype=float)
    test = valid + 100 + np.arange(2)[None, None, :]
    data = np.stack([valid * 0, valid, test], axis=-1)
    ds = __import__("xarray").Dataset(
        {"recon_error_final": (("schedule.name", "optimizer.lr", "seed", "split"), data)},
        coords={
            "schedule.name": ["joint", "layerwise"],
            "optimizer.lr": [0.001, 0.01, 0.1],
            "seed": [0, 1],
            "split": ["train", "valid", "test"],
        },
    )
    sel = select_best(ds, over=["optimizer.lr"])
    assert list(sel["chosen_optimizer.lr"].values) == [0.01, 0.1]
    np.testing.assert_array_equal(sel["recon_error_final"].sel(split="test").values, [[101, 104], [102, 103]])


def test_report_works_on_partial_results(tmp_path, cli):
    text = """\
name = "partial"
data = { name = "digits", subset = 300, eval_subset = 100 }
model = { name = "stacked", layers = [16], activation = "linear", output_activation = "linear", loss = "squared-error" }
schedule = { name = "joint", epochs = 2 }
optimizer = { name = "sgd", lr = 0.01 }
evaluate = { recon = {}, svm = { C = [1.0] } }
[sweep]
"optimizer.lr" = [0.01, 1e6]
"""
    code, _, _ = cli("run", write_spec(tmp_path, text), "--out", tmp_path / "out", "--quiet")
    assert code == 1
    code, out, _ = cli("report", tmp_path / "out")
    assert code == 0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "1 of 2 runs done" in md and "## Failed runs" in md and "diverged" in md
    assert "optimizer.lr = 1000000.0, seed = 0: failed" in md
    svm = md.split("## Linear SVM test error (%)")[1].splitlines()
    header = next(line for line in svm if line.startswith("| experiment"))
    svm_row = svm[6]
    # the failed run's cell, then the raw-pixel baseline of the same split (the same for both runs)
    assert header.endswith("| raw pixels |") and svm_row.startswith("| partial | ")
    assert svm_row.split("|")[-3].strip() == "failed" and "±" in svm_row.split("|")[-2]


def test_finetune_evaluator_leaves_later_evaluators_unchanged(tmp_path):
    """Fine-tuning draws from its own generator: a Parzen chain after it sees the same stream."""
    parzen = {"parzen": {"samples": 100, "burn_in": 2, "sigma": [0.2]}}
    recon = {"recon": {"every": 0}}
    with_ft = aebench.Spec.from_text(
        tiny_toml({"schedule.epochs": 1}, evaluate={**recon, "finetune": {"epochs": 2}, **parzen})
    )
    without = aebench.Spec.from_text(tiny_toml({"schedule.epochs": 1}, evaluate={**recon, **parzen}))
    a = aebench.run(with_ft, out=tmp_path / "a", progress=False)
    b = aebench.run(without, out=tmp_path / "b", progress=False)
    assert "finetune_error" in a and float(a["parzen_ll"].item()) == float(b["parzen_ll"].item())


def test_protocol_defaults_are_the_papers():
    reg = aebench.registry()
    assert reg.get("evaluator", "parzen").Params().samples == 10000
    assert reg.get("evaluator", "parzen").Params().chains == 1
    assert reg.get("evaluator", "finetune").Params().epochs == 1000


def test_recon_error_final_is_measured_on_the_final_weights_after_early_stopping(tmp_path):
    """Early stopping restores the best epoch's weights after the last epoch: the final error
    must be theirs, not the last epoch's cached measurement."""
    import torch

    schedule = [{"name": "joint", "epochs": 1}, {"name": "finetune", "epochs": 12, "patience": 2}]
    text = tiny_toml({"optimizer.lr": 0.02}, schedule=schedule)
    ds = aebench.run(write_spec(tmp_path, text), out=tmp_path / "o", progress=False)
    err = ds["class_error"].sel(split="valid").squeeze("seed")
    assert int(err.argmin("epoch")) + 1 < int(err.notnull().sum())  # it stopped after its best epoch
    model, data = aebench.load_model(tmp_path / "o" / "runs" / "run-0000")
    x = torch.from_numpy(data.test.x[:100]).float() * data.scale  # eval_subset = 100
    with torch.no_grad():
        fresh = float(model.reconstruction_loss(x, model.decode(model.encode(x), activate=False), 0))
    final = float(ds["recon_error_final"].sel(split="test").squeeze())
    assert abs(final - fresh) < 1e-3 * abs(fresh), (final, fresh)
    last_epoch = float(ds["recon_error"].sel(split="test").squeeze().dropna("epoch")[-1])
    assert abs(final - last_epoch) > 1e-3  # and it is not the last epoch's number
