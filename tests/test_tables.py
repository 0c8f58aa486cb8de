"""Name-keyed tables: a column is found by the coordinate values it names, whatever the axis order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import edit, write_spec

import aebench
from aebench.tables import compare_to_paper, format_table, paper_table, relabel, select

SCHEMES = ["layerwise", "joint", "pretrain-joint", "pretrain-joint-reg"]


def fake_results(order=SCHEMES) -> xr.Dataset:
    """svm_error = a distinct, recognisable value per (data set, scheme, seed)."""
    data = ["mnist", "rect"]
    code = {s: k for k, s in enumerate(SCHEMES)}
    err = np.array([[[0.01 * (10 * d + code[s]) + 0.001 * seed for seed in range(3)] for s in order] for d in range(2)])
    steps = np.array([[[1000.0 * (2 if s == "layerwise" else 1)] * 3 for s in order] for _ in data])
    return xr.Dataset(
        {
            "svm_error": (("data.name", "schedule.name", "seed"), err),
            "steps": (("data.name", "schedule.name", "seed"), steps),
        },
        coords={"data.name": data, "schedule.name": list(order), "seed": [0, 1, 2]},
    )


COLUMNS = {
    "DAE-2L": {"schedule.name": "layerwise"},
    "DAE-2J": {"schedule.name": "joint"},
    "DAE-2U": {"schedule.name": "pretrain-joint"},
    "DAE-2UJ": {"schedule.name": "pretrain-joint-reg"},
}


def test_columns_are_found_by_value_whatever_the_axis_order():
    straight = paper_table(fake_results(), "svm_error", COLUMNS)
    for order in (sorted(SCHEMES), SCHEMES[::-1], [SCHEMES[1], SCHEMES[3], SCHEMES[0], SCHEMES[2]]):
        swapped = paper_table(fake_results(order), "svm_error", COLUMNS)
        pd.testing.assert_frame_equal(straight, swapped)
    # the values are the ones planted: data set d, scheme code c, mean over seeds 0..2
    assert straight.loc["rect", ("DAE-2J", "mean")] == pytest.approx(0.01 * (10 + 1) + 0.001)
    assert straight.loc["mnist", ("DAE-2L", "mean")] == pytest.approx(0.001)
    assert straight.loc["mnist", ("DAE-2L", "steps")] == 2000 and straight.loc["mnist", ("DAE-2J", "steps")] == 1000
    assert straight.loc["mnist", ("DAE-2J", "n")] == 3


def test_reordered_axis_gives_the_same_table_and_a_positional_relabel_would_not():
    ds = fake_results(sorted(SCHEMES))  # the alphabetical order that fooled tutorial 03
    by_position = ds.assign_coords({"schedule.name": ["DAE-2L", "DAE-2J", "DAE-2U", "DAE-2UJ"]})
    wrong = float(by_position["svm_error"].sel({"data.name": "mnist", "schedule.name": "DAE-2J"}).mean())
    right = paper_table(ds, "svm_error", COLUMNS).loc["mnist", ("DAE-2J", "mean")]
    assert wrong != pytest.approx(right)  # the old relabel put layer-wise's numbers under J
    named = relabel(ds, "schedule.name", {"layerwise": "DAE-2L", "joint": "DAE-2J"})
    assert float(named["svm_error"].sel({"data.name": "mnist", "schedule.name": "DAE-2J"}).mean()) == pytest.approx(
        right
    )
    with pytest.raises(KeyError, match="no value 'jointt'"):
        relabel(ds, "schedule.name", {"jointt": "J"})


def test_a_cell_with_an_axis_left_over_is_an_error_not_a_silent_mean():
    ds = fake_results().expand_dims({"optimizer.lr": [0.01, 0.001]})
    with pytest.raises(ValueError, match="optimizer.lr"):
        paper_table(ds, "svm_error", COLUMNS)
    table = paper_table(ds, "svm_error", {k: {**v, "optimizer.lr": 0.01} for k, v in COLUMNS.items()})
    assert table.loc["mnist", ("DAE-2UJ", "mean")] == pytest.approx(0.03 + 0.001)


def test_format_and_compare_to_paper():
    table = paper_table(fake_results(), "svm_error", COLUMNS)
    text = format_table(table)
    assert text.loc["rect", "DAE-2J"].startswith("11.10 ± ") and text.loc["rect", "DAE-2J"].endswith("(1.0k steps)")
    published = pd.DataFrame([{"row": "rect", "column": "DAE-2J", "value": 11.0, "ci": 0.1}])
    cmp = compare_to_paper(table, published)
    ci = table.loc["rect", ("DAE-2J", "ci")] * 100
    assert cmp.loc[0, "difference"] == pytest.approx(0.1)
    assert cmp.loc[0, "z"] == pytest.approx(0.1 / np.hypot(ci, 0.1))


def test_select_on_point_coordinates():
    ds = xr.Dataset(
        {"v": (("point", "seed"), [[1.0], [2.0], [3.0]])},
        coords={"point": [0, 1, 2], "seed": [0], "schedule.name": ("point", ["joint", "layerwise", "joint"])},
    )
    assert select(ds, {"schedule.name": "layerwise"})["v"].item() == 2.0
    assert select(ds, {"schedule.name": "joint"}).sizes["point"] == 2


def test_merged_results_keep_the_spec_sweep_order(tmp_path):
    spec = aebench.Spec.from_text(
        """
name = "order"
seeds = [3, 1]
data = { name = "digits", subset = 100, eval_subset = 50 }
model = { name = "stacked", layers = [8] }
schedule = { name = "joint", epochs = 1 }
evaluate = { recon = { every = 0 } }
[sweep]
"schedule.name" = ["layerwise", "joint"]
"data.subset" = [100, 60]
"""
    )
    ds = aebench.run(spec, out=tmp_path / "o", progress=False)
    assert list(ds["schedule.name"].values) == ["layerwise", "joint"]
    assert list(ds["data.subset"].values) == [100, 60] and list(ds["seed"].values) == [3, 1]
    saved = aebench.load_results(tmp_path / "o")
    assert list(saved["schedule.name"].values) == ["layerwise", "joint"]


def test_report_prints_paper_beside_measured(tmp_path, cli):
    (tmp_path / "paper.csv").write_text("row,column,value,ci\ndigits,J,40.0,1.0\ndigits,L,30.0,1.0\n")
    path = write_spec(
        tmp_path,
        """
        name = "preset"
        data = { name = "digits", subset = 100, eval_subset = 50 }
        model = { name = "stacked", layers = [8] }
        schedule = { name = "joint", epochs = 1 }
        evaluate = { recon = { every = 0 }, svm = { C = [1.0], max_iter = 50 } }
        [sweep]
        "schedule.name" = ["layerwise", "joint"]
        [[report]]
        title = "toy table"
        metric = "svm_error"
        rows = "data.name"
        published = "paper.csv"
        note = "reduced: one epoch"
        columns = { J = { "schedule.name" = "joint" }, L = { "schedule.name" = "layerwise" } }
        """,
    )
    out = tmp_path / "res"
    assert cli("run", path, "--out", out)[0] == 0
    code, stdout, _ = cli("report", out)
    assert code == 0 and "toy table" in stdout and "reduced: one epoch" in stdout
    ds = aebench.load_results(out)
    j = 100 * float(ds["svm_error"].sel({"schedule.name": "joint"}).squeeze())
    line = next(ln for ln in stdout.splitlines() if " J " in f" {ln} " and "40.00" in ln)
    assert f"{j:.2f}" in line  # the joint run's own error sits beside the paper's J value
    md = (out / "report.md").read_text()
    assert "Paper vs measured: toy table" in md and "30.00 ± 1.00" in md


def test_report_spec_errors_name_the_field(tmp_path, cli):
    bad = write_spec(
        tmp_path,
        """
        name = "x"
        data = { name = "digits" }
        model = { name = "stacked", layers = [8] }
        schedule = { name = "joint", epochs = 1 }
        [[report]]
        metric = "svm_error"
        published = "nowhere.csv"
        columns = { J = { "schedule.name" = "joint" } }
        """,
    )
    code, _, err = cli("validate", bad)
    assert code == 2 and "nowhere.csv" in err and "Traceback" not in err
    bad.write_text(edit(bad.read_text(), 'published = "nowhere.csv"', "colums = 1"))
    code, _, err = cli("validate", bad)
    assert code == 2 and "report.0.colums" in err


def test_no_notebook_relabels_a_results_axis_by_position():
    """The bug class of tutorial 03: `assign_coords({"schedule.name": [...labels...]})` on sweep results."""
    import json
    import re

    from conftest import ROOT

    pattern = re.compile(r"assign_coords\(\s*\{\s*[\"'][\w.]+[\"']\s*:\s*\[")
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] == "code":
                assert not pattern.search("".join(cell["source"])), f"{nb.name} relabels an axis by position"
