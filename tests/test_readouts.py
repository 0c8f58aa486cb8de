"""Readouts a reviewer can trust: optima inside what was tried, chains that must move to score,
failures flagged, intervals over seeds and paired differences, one selection rule per table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from conftest import edit
from scipy import stats

import aebench
from aebench.builtin.evaluators import Parzen, ParzenParams, linear_svm_errors
from aebench.evaluate.flags import flag_unconverged
from aebench.evaluate.search import search_optimum
from aebench.tables import (
    excludes_zero,
    format_table,
    interval_kind,
    paired_difference,
    paired_table,
    paper_table,
)
from aebench.testing import tiny_context


# ---------------------------------------------------------------------- the search
def test_search_leaves_the_grid_until_the_optimum_is_interior():
    calls = []

    def score(s):  # peaked at 0.4, as the 256-256 DAE: the default grid stops at 0.3
        calls.append(s)
        return -((math.log(s) - math.log(0.4)) ** 2)

    found = search_optimum(score, [0.05, 0.1, 0.2, 0.3], maximize=True, factor=1.5, refine=3)
    assert not found.at_edge and found.values[0] < found.best < found.values[-1]
    assert found.best == pytest.approx(0.4, rel=0.08)
    assert found.values == sorted(set(calls)) and found.scores == [score(v) for v in found.values]


def test_search_flags_an_optimum_at_its_bound_and_minimizes():
    found = search_optimum(lambda c: 1 / c, [0.1, 1.0], maximize=False, bounds=(1e-3, 50.0), factor=10)
    assert found.best == 50.0 and found.at_edge and "bound" in found.why
    flat = search_optimum(lambda c: 0.2, [0.1, 1.0, 10.0], maximize=False)
    assert flat.best == 1.0 and not flat.at_edge  # a plateau is not an edge: ties go to the middle
    one = search_optimum(lambda c: -((math.log10(c) - 1) ** 2), [1e-2], maximize=True, factor=10)
    assert one.best == 10.0 and not one.at_edge  # a one-value grid is searched on both sides
    with pytest.raises(ValueError):
        search_optimum(lambda c: 0.0, [0.0, 1.0])


def test_svm_C_search_extends_past_the_grid_and_matches_scikit_learn():
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 5))
    y = (x[:, 0] + 0.3 * x[:, 1] > 0).astype(int)
    train, valid, test = (x[:300], y[:300]), (x[300:450], y[300:450]), (x[450:], y[450:])
    found, test_err = linear_svm_errors(train, valid, test, [1e-5, 1e-4], search=True)
    assert found.values[-1] > 1e-4 and not found.at_edge  # a tiny C underfits: the search goes up
    for C, err in zip(found.values, found.scores):
        ref = LinearSVC(C=C, max_iter=2000).fit(*train)
        assert err == pytest.approx(float((ref.predict(valid[0]) != valid[1]).mean()))
    ref = LinearSVC(C=found.best, max_iter=2000).fit(*train)
    assert test_err == pytest.approx(float((ref.predict(test[0]) != test[1]).mean()))


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    return tiny_context()


def test_parzen_with_default_settings_chooses_sigma_strictly_inside_what_it_tried(trained):
    out = Parzen(ParzenParams()).evaluate(trained)
    tried = out["parzen_valid_ll"]["sigma"].values
    assert tried.min() < out["parzen_sigma"].item() < tried.max()
    assert out["parzen_sigma_at_edge"].item() == 0.0
    best = out["parzen_valid_ll"].sel(sigma=out["parzen_sigma"].item()).item()
    assert best == out["parzen_valid_ll"].max().item()
    assert out["parzen_sample_distance"].item() > 0 and out["parzen_test_distance"].item() > 0


class _Stalled(torch.nn.Module):
    """A chain that never moves: reconstruction = input, corruption = nothing."""

    n_layers = 1

    def encode(self, x, upto=None):
        return x

    def decode(self, h, start=None, activate=True):
        return h


def test_a_chain_that_stalls_cannot_score_well_when_it_starts_from_noise(trained, monkeypatch):
    import copy

    import aebench.evaluate.chain as chain

    ctx = copy.copy(trained)
    ctx.model = _Stalled()
    monkeypatch.setattr(chain, "input_corruption", lambda ctx: lambda x, g: x)
    small = {"samples": 500, "chains": 50, "burn_in": 10, "search": False, "sigma": [0.1, 0.2, 0.3, 0.5]}
    ctx.generator = torch.Generator().manual_seed(0)
    from_train = Parzen(ParzenParams(start="train", **small)).evaluate(ctx)
    ctx.generator = torch.Generator().manual_seed(0)
    from_noise = Parzen(ParzenParams(**small)).evaluate(ctx)
    # started on training rows, the stalled chain's samples are training rows: it scores
    # like a Parzen window on the training set, and its distance measure shows the copy
    assert from_train["parzen_sample_distance"].item() < 1e-6 < from_train["parzen_test_distance"].item()
    # started from shuffled pixels it stays noise, and scores far worse
    assert from_noise["parzen_ll"].item() < from_train["parzen_ll"].item() - 20
    assert from_noise["parzen_sample_distance"].item() > from_noise["parzen_test_distance"].item()


# ---------------------------------------------------------------- failures flagged
def _finetuned(train_errors: dict[str, list[float]]) -> xr.Dataset:
    """A results set with a finetune curve per (data set, seed): training error at the best epoch given."""
    names = list(train_errors)
    seeds = list(range(len(train_errors[names[0]])))
    curve = np.zeros((len(names), len(seeds), 3, 3))
    for i, name in enumerate(names):
        for j, e in enumerate(train_errors[name]):
            curve[i, j, :, 0] = [e + 0.1, e, e + 0.2]  # epoch 2 has the best validation error
            curve[i, j, :, 1] = [0.5, 0.4, 0.5]
            curve[i, j, :, 2] = curve[i, j, :, 1] + 0.01
    dims = ("data.name", "seed")
    return xr.Dataset(
        {
            "finetune_curve": (("data.name", "seed", "finetune_epoch", "split"), curve),
            "finetune_error": (dims, curve[:, :, 1, 2]),
            "status": (dims, np.full((len(names), len(seeds)), "done")),
            "reason": (dims, np.full((len(names), len(seeds)), "")),
        },
        coords={"data.name": names, "seed": seeds, "finetune_epoch": [1, 2, 3], "split": ["train", "valid", "test"]},
    )


def test_a_run_that_did_not_train_is_flagged_and_left_out_of_the_tables():
    ds = flag_unconverged(_finetuned({"a": [0.02, 0.03, 0.04, 0.42], "b": [0.30, 0.32, 0.35, 0.33]}))
    flags = ds["converged"]
    assert flags.sel({"data.name": "a", "seed": 3}).item() == 0
    assert int((flags == 0).sum()) == 1  # b's runs are all high, but alike: peers, not failures
    reason = str(ds["reason"].sel({"data.name": "a", "seed": 3}).item())
    assert reason.startswith("not converged") and "0.420" in reason
    table = paper_table(ds, "finetune_error", {"all": {}})
    assert table.loc["a", ("all", "n")] == 3 and table.loc["a", ("all", "dropped")] == 1
    assert table.loc["a", ("all", "mean")] == pytest.approx(0.41)  # the three converged runs only
    assert "[1 not converged, left out]" in format_table(table).loc["a", "all"]
    alone = paper_table(ds.sel(seed=[3]), "finetune_error", {"all": {}})
    assert format_table(alone, steps=False).loc["a", "all"] == "not converged"


# ------------------------------------------------------------ intervals over seeds
def _two_schemes(seed_order=(0, 1, 2, 3, 4)) -> xr.Dataset:
    rng = np.random.default_rng(1)
    base = rng.normal(size=5)
    values = np.stack([base + rng.normal(0.3, 0.2, 5), base])  # J = L + 0.3 ± noise, seed effects shared
    ds = xr.Dataset(
        {"parzen_ll": (("schedule.name", "seed"), values)},
        coords={"schedule.name": ["joint", "layerwise"], "seed": [0, 1, 2, 3, 4]},
    )
    return ds.sel(seed=list(seed_order))


def test_paired_difference_is_scipy_paired_t_and_pairs_by_seed_value():
    ds = _two_schemes()
    j, lw = ds["parzen_ll"].sel({"schedule.name": "joint"}), ds["parzen_ll"].sel({"schedule.name": "layerwise"})
    d = (j - lw).values
    got = paired_difference(ds, "parzen_ll", {"schedule.name": "joint"}, {"schedule.name": "layerwise"})
    assert got["mean"] == pytest.approx(d.mean())
    assert got["ci"] == pytest.approx(stats.t.ppf(0.975, 4) * d.std(ddof=1) / math.sqrt(5))
    assert got["p"] == pytest.approx(stats.ttest_rel(j.values, lw.values).pvalue)
    # the layer-wise runs listed in another seed order pair with the same seeds
    shuffled = xr.concat(
        [ds.sel({"schedule.name": ["joint"]}), ds.sel({"schedule.name": ["layerwise"], "seed": [4, 2, 0, 3, 1]})],
        "schedule.name",
        join="outer",
    )
    again = paired_difference(shuffled, "parzen_ll", {"schedule.name": "joint"}, {"schedule.name": "layerwise"})
    assert again["mean"] == pytest.approx(got["mean"]) and again["ci"] == pytest.approx(got["ci"])
    # the unpaired interval of the two means is wider: the paired one removes the shared seed effect
    assert got["ci"] < math.hypot(*(stats.sem(v) * stats.t.ppf(0.975, 4) for v in (j.values, lw.values)))


def test_paired_table_marks_intervals_that_exclude_zero_and_interval_kind_says_what_the_pm_is():
    cols = {"L": {"schedule.name": "layerwise"}, "J": {"schedule.name": "joint"}}
    diff = paired_table(_two_schemes(), "parzen_ll", cols, baseline="L", rows=None)
    assert list(diff.columns.get_level_values(0).unique()) == ["J − L"]
    assert excludes_zero(diff).iloc[0, 0] == 1
    assert "t-interval over 5 seeds" in interval_kind(paper_table(_two_schemes(), "parzen_ll", cols, rows=None))
    bare = paper_table(_two_schemes().sel(seed=[0]), "parzen_ll", cols, rows=None)
    assert interval_kind(bare).startswith("one seed: no interval")  # no parzen_ll_se: no ± to explain
    with_se = _two_schemes().sel(seed=[0]).assign(parzen_ll_se=lambda d: 0 * d["parzen_ll"] + 0.5)
    one = paper_table(with_se, "parzen_ll", cols, rows=None)
    assert one[("J", "ci")].item() == pytest.approx(1.96 * 0.5)  # the factor the Parzen evaluator declares
    kind = interval_kind(one)
    assert "one seed" in kind and "test sampling" in kind and "standard error over the test rows" in kind
    mixed = paper_table(
        _two_schemes()
        .assign(parzen_ll_se=lambda d: 0 * d["parzen_ll"] + 0.5)
        .where(lambda d: (d["schedule.name"] == "joint") | (d.seed == 0)),
        "parzen_ll",
        cols,
        rows=None,
    )
    assert interval_kind(mixed).startswith("mean ± 95% t-interval over 5 seeds; cells with the metric's own")
    bare_mixed = paper_table(
        _two_schemes().where(lambda d: (d["schedule.name"] == "joint") | (d.seed == 0)), "parzen_ll", cols, rows=None
    )
    assert interval_kind(bare_mixed).endswith(
        "cells with one seed: no interval (a single run says nothing about how much the result moves with the seed)"
    )
    single = paired_difference(_two_schemes().sel(seed=[0]), "parzen_ll", cols["J"], cols["L"])
    assert single["n"] == 1 and math.isnan(single["ci"])


# --------------------------------------------------------- one selection rule per table
REPORTED = """
name = "one-rule"
seeds = [0, 1]
data = { name = "digits", subset = 300, eval_subset = 100 }
model = { name = "stacked", layers = [16] }
corruption = { name = "gaussian", level = 0.2 }
schedule = { name = "joint", epochs = 2 }
optimizer = { name = "rmsprop", lr = 0.01, batch_size = 50 }
evaluate = { recon = { every = 0 }, svm = { C = [0.1, 1.0], max_iter = 200 } }
ensemble = true

[sweep]
"schedule.name" = ["layerwise", "joint"]
"optimizer.lr" = [0.001, 0.03]

[[report]]
title = "SVM by reconstruction"
metric = "svm_error"
by = "recon_error_final"
select = ["optimizer.lr"]
rows = "data.name"
published = [
  { row = "digits", column = "L", value = 5.0, ci = 1.0 },
  { row = "digits", column = "J", value = 4.0, ci = 1.0 },
]
[report.columns]
"L" = { "schedule.name" = "layerwise" }
"J" = { "schedule.name" = "joint" }
"""


def test_report_uses_the_tables_declared_rule_everywhere(tmp_path, cli):
    from aebench.evaluate.select import select_best

    out = tmp_path / "out"
    ds = aebench.run(aebench.Spec.from_text(REPORTED), out=out, progress=False)
    code, stdout, _ = cli("report", out)
    assert code == 0
    md = (out / "report.md").read_text()
    assert "optimizer.lr chosen per cell on validation reconstruction error" in md
    assert "Chosen on validation, reported on test" not in md  # no second rule in the same report
    assert "t-interval over 2 seeds" in md and "As run: 2 seed(s)" in md and "digits 300/100/100" in md
    # the SVM evaluator's own Note says the choice the paper leaves open (the core knows no evaluator)
    assert "Left open by the paper, chosen here: linear SVM C grid [0.1, 1.0] (extended by decades" in md
    sel = select_best(ds, over=["optimizer.lr"], by="recon_error_final", report=["svm_error"])
    for label, scheme in (("L", "layerwise"), ("J", "joint")):
        chosen = sel["chosen_optimizer.lr"].sel({"schedule.name": scheme}).item()
        line = next(ln for ln in md.splitlines() if ln.startswith(f"| digits | {label} |"))
        mean = 100 * float(sel["svm_error"].sel({"schedule.name": scheme}).mean())
        assert f"{mean:.2f} ±" in line, (line, mean)
        assert f"| lr={chosen} |" in md  # the chosen table names the key
    assert "Each column minus L, seed by seed" in md and "(2 pairs)" in md
    assert "SVM by reconstruction" in stdout and "Selection rule" in stdout


def test_report_tables_name_a_baseline_among_their_columns():
    from aebench.errors import SpecError

    bad = edit(REPORTED, 'by = "recon_error_final"', 'by = "recon_error_final"\nbaseline = "X"')
    with pytest.raises(SpecError, match="baseline"):
        aebench.Spec.from_text(bad)


def test_report_lists_estimates_at_the_edge_and_unconverged_runs(tmp_path):
    from aebench.report import write_report
    from aebench.results import write_results

    ds = flag_unconverged(_finetuned({"a": [0.02, 0.03, 0.04, 0.42]}))
    ds["svm_C"] = (("data.name", "seed"), np.array([[10.0, 1.0, 1.0, 1.0]]))
    ds["svm_C_at_edge"] = (("data.name", "seed"), np.array([[1.0, 0.0, 0.0, 0.0]]))
    ds.attrs = {"title": "flags", "spec": "", "aebench_version": "x", "torch_version": "x", "device": "cpu"}
    (tmp_path / "r").mkdir()
    write_results(ds, tmp_path / "r")
    _, md_path = write_report(tmp_path / "r")
    md = md_path.read_text()
    assert "## Runs that did not converge" in md and "seed = 3: not converged" in md
    assert "## SVM C at the edge of what was tried" in md and "| data.name = a, seed = 0 | 10 |" in md


def test_interval_words_are_the_same_in_the_table_helpers_and_the_report():
    frame = pd.DataFrame(
        {("x", "mean"): [1.0], ("x", "ci"): [0.1], ("x", "n"): [3], ("x", "steps"): [1.0], ("x", "dropped"): [0]}
    )
    frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["column", "stat"])
    frame.attrs = {"level": 0.95}
    assert interval_kind(frame) == "mean ± 95% t-interval over 3 seeds"


def test_without_report_tables_the_chosen_values_are_a_table_named_by_keys(tmp_path):
    """The one "Chosen on validation" section: each cell's chosen value in its own table cell, not a list."""
    from aebench.report import write_report
    from aebench.results import write_results

    lrs, schemes = [0.001, 0.01], ["joint", "layerwise"]
    # validation reconstruction: joint is best at 0.01, layer-wise at 0.001 (seed means)
    valid = np.array([[[30.0, 31.0], [20.0, 21.0]], [[10.0, 11.0], [40.0, 41.0]]])  # scheme, lr, seed
    recon = np.stack([valid + 1, valid, valid + 2], axis=-1)  # split: train, valid, test
    dims = ("schedule.name", "optimizer.lr", "seed")
    ds = xr.Dataset(
        {
            "recon_error_final": ((*dims, "split"), recon, {"units": "nats per example"}),
            "svm_error": (dims, np.full((2, 2, 2), 0.1) + np.arange(2)[None, :, None] / 10),
            "status": (dims, np.full((2, 2, 2), "done")),
            "reason": (dims, np.full((2, 2, 2), "")),
        },
        coords={"schedule.name": schemes, "optimizer.lr": lrs, "seed": [0, 1], "split": ["train", "valid", "test"]},
    )
    ds.attrs = {"title": "exp", "spec": "", "aebench_version": "x", "torch_version": "x", "device": "cpu"}
    (tmp_path / "r").mkdir()
    write_results(ds, tmp_path / "r")
    html_path, md_path = write_report(tmp_path / "r")
    md = md_path.read_text()
    section = md[md.index("## Chosen on validation, reported on test") :]
    assert "optimizer.lr chosen by validation reconstruction error (seed mean)" in section
    assert "| experiment | schedule=joint | schedule=layerwise |" in section
    assert "| exp | lr=0.01 | lr=0.001 |" in section
    # the test reconstruction of the chosen runs: joint at 0.01 (20.5 + 2), layer-wise at 0.001 (10.5 + 2)
    assert "22.50 ± " in section and "12.50 ± " in section
    page = html_path.read_text()
    assert "<caption>Chosen values (every table above uses these runs)</caption>" in page
    assert "<td>lr=0.01</td><td>lr=0.001</td>" in page and "<pre>optimizer" not in page
    assert (tmp_path / "r" / "report_files" / "chosen_svm_error.png").is_file()  # a figure per table


def test_each_data_set_says_where_its_rows_come_from(tmp_path):
    """The report's open choices take a data set's provenance from the data set (no name list in
    the core): regenerated variation sets say so, original files (MNIST, .amat) say nothing."""
    from aebench.reference import open_choices

    def runs(data: str) -> list:
        text = f'name = "p"\ndata = {data}\nmodel = {{ name = "stacked", layers = [8] }}\n'
        return aebench.Spec.from_text(text + 'schedule = { name = "joint", epochs = 1 }\n').runs

    regenerated = runs('{ name = "rect" }') + runs('{ name = "convex" }')
    assert "rect, convex regenerated by aebench's recipes, not the original files" in open_choices(regenerated)
    assert "regenerated" not in open_choices(runs('{ name = "mnist" }'))
    assert "regenerated" not in open_choices(runs('{ name = "rect", source = "amat", path = "/nowhere" }'))
