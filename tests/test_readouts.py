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
    ahead,
    excludes_zero,
    format_paired,
    format_table,
    holm,
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
    flat = search_optimum(lambda c: 0.2, [0.1, 1.0, 10.0], maximize=False, factor=10, max_extend=2)
    # a plateau that still reaches both ends after every step allowed is a limit, not an optimum
    assert flat.values == [1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1000.0] and flat.at_edge and "ties" in flat.why


def test_a_tie_that_includes_the_edge_extends_the_search():
    """The issue's case: validation error 0.16 at both C = 0.001 and 0.01, the two lowest tried."""

    def error(c):
        return 0.3 if c < 5e-4 else 0.16 if c <= 0.011 else 0.2 + c / 100

    found = search_optimum(error, [0.1, 1.0, 10.0], maximize=False, factor=10.0, max_extend=4)
    assert found.values[:3] == pytest.approx([1e-4, 1e-3, 1e-2])  # past the tie, until the score worsens
    assert found.best_score == 0.16 and not found.at_edge
    to_bound = search_optimum(error, [0.1, 1.0], maximize=False, factor=10.0, bounds=(1e-3, 1e3))
    assert to_bound.values[0] == pytest.approx(1e-3) and to_bound.at_edge and "bound" in to_bound.why
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


def test_a_failed_fine_tuning_is_flagged_and_left_out_of_its_own_cells_only():
    ds = _finetuned({"a": [0.02, 0.03, 0.04, 0.42], "b": [0.30, 0.32, 0.35, 0.33]})
    ds["parzen_ll"] = ds["finetune_error"] * 0 - 100.0 - ds["seed"]  # the run's other results: fine
    ds = flag_unconverged(ds)
    assert "converged" not in ds  # no supervised training of the run's own: nothing judges the whole run
    flags = ds["finetune_converged"]
    assert flags.sel({"data.name": "a", "seed": 3}).item() == 0
    assert int((flags == 0).sum()) == 1  # b's runs are all high, but alike: peers, not failures
    reason = str(ds["reason"].sel({"data.name": "a", "seed": 3}).item())
    assert reason.startswith("not converged") and "0.420" in reason
    table = paper_table(ds, "finetune_error", {"all": {}})
    assert table.loc["a", ("all", "n")] == 3 and table.loc["a", ("all", "dropped")] == 1
    assert table.loc["a", ("all", "mean")] == pytest.approx(0.41)  # the three converged runs only
    assert "[1 not converged, left out]" in format_table(table).loc["a", "all"]
    parzen = paper_table(ds, "parzen_ll", {"all": {}})  # the failed fine-tuning leaves Parzen alone
    assert parzen.loc["a", ("all", "n")] == 4 and parzen.loc["a", ("all", "dropped")] == 0
    pair = paired_difference(ds, "finetune_error", {"data.name": "a"}, {"data.name": "b"})
    assert pair["n"] == 3  # seed 3 leaves the pairing of its own cell
    assert paired_difference(ds, "parzen_ll", {"data.name": "a"}, {"data.name": "b"})["n"] == 4
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


def test_holm_adjustment_is_the_hand_computed_step_down_and_ignores_nan():
    # sorted 0.005, 0.01, 0.03, 0.04 -> ×4, ×3, ×2, ×1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    got = holm(np.array([0.01, 0.04, math.nan, 0.03, 0.005]))
    assert got[[0, 1, 3, 4]] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and math.isnan(got[2])
    assert holm(np.array([0.2, 0.4])) == pytest.approx([0.4, 0.4])  # 0.2×2, then max(0.4×1, 0.4): monotone
    assert holm(np.array([0.9, 0.8])) == pytest.approx([1.0, 1.0])  # 0.8×2 capped at 1
    assert np.isnan(holm(np.array([math.nan]))).all()


def test_paired_tables_star_only_what_survives_holm_over_the_whole_table():
    """Three rows: one clear difference, two borderline ones (p < 0.05 alone, not after ×3 / ×2)."""
    rng = np.random.default_rng(0)
    seeds = np.arange(4)
    base = rng.normal(0, 1, (3, 4))
    shift = np.array([[5.0, 5.1, 4.9, 5.0], [1.0, 2.2, 1.4, 0.6], [1.0, 2.3, 1.3, 0.5]])
    ds = xr.Dataset(
        {"parzen_ll": (("data.name", "schedule.name", "seed"), np.stack([base, base + shift], axis=1))},
        coords={"data.name": ["a", "b", "c"], "schedule.name": ["layerwise", "joint"], "seed": seeds},
    )
    cols = {"L": {"schedule.name": "layerwise"}, "J": {"schedule.name": "joint"}}
    diff = paired_table(ds, "parzen_ll", cols, baseline="L")
    p = diff[("J − L", "p")]
    assert (p < 0.05).all()  # each alone would be starred by its own interval
    assert (excludes_zero(diff)["J − L"] == 1).all()
    assert diff.attrs["comparisons"] == 3
    assert diff[("J − L", "p_holm")].to_numpy() == pytest.approx(holm(p.to_numpy()))
    assert ahead(diff)["J − L"].to_dict() == {"a": 1, "b": 0, "c": 0}
    shown = format_paired(diff)
    assert shown.loc["a", "J − L"].endswith("*") and not shown.loc["b", "J − L"].endswith("*")
    assert "Holm" in shown.attrs["note"] and "3 comparisons" in shown.attrs["note"]


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
    assert (
        "## Runs that did not converge" in md and "seed = 3 (only its finetune_* results left out): not converged" in md
    )
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
    assert len(list((tmp_path / "r" / "report_files").glob("chosen_svm_error-*.png"))) == 1  # a figure per table


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


def test_a_failed_fine_tuning_does_not_choose_the_learning_rate_nor_join_the_histogram():
    """Table V's issue: a failed run's validation error must not steer the lr chosen for its cell."""
    from types import SimpleNamespace

    from aebench.plots import error_histogram
    from aebench.report import _chosen

    lr = [0.01, 0.1]
    parts = []
    for k, value in enumerate(lr):
        # at lr 0.1 one run failed (training error 0.9, validation 0.95); its peers are better than lr 0.01's
        train = [0.05, 0.05, 0.05, 0.05] if k == 0 else [0.02, 0.02, 0.02, 0.90]
        part = _finetuned({"a": train})
        if k == 1:  # better validation than lr 0.01's 0.4 for the three good runs, 0.95 for the failed one
            part["finetune_curve"].loc[{"seed": [0, 1, 2], "split": "valid"}] = [0.4, 0.3, 0.4]
            part["finetune_curve"].loc[{"seed": 3, "split": "valid"}] = 0.95
        parts.append(part.expand_dims({"optimizer.lr": [value]}))
    ds = flag_unconverged(xr.concat(parts, "optimizer.lr"))
    assert int((ds["finetune_converged"] == 0).sum()) == 1
    entry = SimpleNamespace(select=["optimizer.lr"], metric="finetune_error", by="")
    chosen, _ = _chosen(ds, entry)
    assert float(chosen["chosen_optimizer.lr"].sel({"data.name": "a"})) == 0.1  # the failed run did not count
    import seaborn as sns

    drawn = []
    real = sns.histplot
    sns.histplot = lambda data, **kw: drawn.append(data) or real(data=data, **kw)
    try:
        error_histogram(ds.sel({"optimizer.lr": 0.1}), by="data.name")
    finally:
        sns.histplot = real
    assert sorted(drawn[0]["seed"]) == [0, 1, 2]  # the failed run (seed 3) is not drawn


ERHAN_LIKE = {
    "name": "erhan-like",
    "seeds": [0, 1, 2],
    "ensemble": True,
    "data": {"name": "digits", "subset": 300, "eval_subset": 100},
    "model": {"name": "stacked", "layers": [16, 16]},
    "corruption": {"name": "masking", "level": 0.2},
    "schedule": [{"name": "layerwise", "epochs": 1}, {"name": "finetune", "epochs": 3, "patience": 2}],
    "optimizer": {"name": "sgd", "lr": 0.5, "batch_size": 50},
    "evaluate": {"recon": {"every": 0}},
    "sweep": {"schedule.0.name": ["layerwise", "none"], "optimizer.lr": [0.1, 0.5]},
    "report": [
        {
            "title": "Fine-tuned test error per arm",
            "metric": "class_test_error",
            "baseline": "random init",
            "select": ["optimizer.lr"],
            "columns": {"pre-trained": {"schedule.0.name": "layerwise"}, "random init": {"schedule.0.name": "none"}},
        }
    ],
}


def test_the_erhan_report_leads_with_fine_tuned_test_error_and_never_chooses_an_arm(tmp_path):
    from aebench.report import write_report

    ds = aebench.run(aebench.Spec.from_dict(ERHAN_LIKE), out=tmp_path / "e", progress=False)
    valid = ds["class_error"].sel(split="valid")
    best = valid.fillna(np.inf).argmin("epoch")
    expected = ds["class_error"].sel(split="test").isel(epoch=best)
    np.testing.assert_allclose(ds["class_test_error"].values, expected.values)  # test error at best valid epoch
    _, md_path = write_report(tmp_path / "e")
    sections = [line for line in md_path.read_text().splitlines() if line.startswith("## ")]
    assert sections[0] == "## Fine-tuned test error per arm"  # the paper's result first, no paper column
    first = md_path.read_text().split("\n## ")[1]
    assert "pre-trained − random init" in first and "Holm" in first  # the paired difference
    assert "report_files/class_test_error_histogram-" in first  # the seed histogram under its table
    assert "optimizer.lr chosen per cell" in first and "schedule.0.name chosen" not in md_path.read_text()


def test_a_report_table_may_not_choose_an_axis_it_compares():
    from aebench.errors import SpecError

    bad = {**ERHAN_LIKE, "report": [{**ERHAN_LIKE["report"][0], "select": ["schedule.0.name"]}]}
    with pytest.raises(SpecError, match="select names schedule.0.name, which the table compares"):
        aebench.Spec.from_dict(bad)


def test_without_report_tables_only_hyper_parameters_are_chosen():
    from aebench.report import hyper_parameter_axes

    status = xr.DataArray(
        np.full((2, 2, 2, 1), "done"), dims=("schedule.0.name", "optimizer.lr", "corruption.name", "seed")
    )
    assert hyper_parameter_axes(xr.Dataset({"status": status})) == ["optimizer.lr"]
