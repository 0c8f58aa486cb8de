"""Exploring across launches: the catalogue (``aebench ls``/``tag``, ``aebench.catalogue``) and
``aebench.open_results`` (launches combined along ``launch``, aligned by value)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import aebench
from aebench import catalogue

BASE = """\
name = "cmp"
seeds = [0, 1]
data = {{ name = "digits", subset = 200, eval_subset = 60 }}
model = {{ name = "stacked", layers = [16, 8] }}
schedule = {{ name = "joint", epochs = 2 }}
optimizer = {{ name = "rmsprop", lr = {lr}, batch_size = 50 }}
evaluate = {{ recon = {{}}, timing = {{}} }}
{sweep}
"""


def launch(root: Path, folder: str, lr: float = 0.01, sweep: str = "") -> Path:
    spec = root / f"{folder}.toml"
    spec.write_text(BASE.format(lr=lr, sweep=sweep))
    aebench.run(spec, out=root / "launches" / folder, progress=False)
    return root / "launches" / folder


@pytest.fixture(scope="module")
def launches(tmp_path_factory) -> dict[str, Path]:
    """Four small real launches: two learning rates over one schedule axis, one lr sweep, one zip."""
    root = tmp_path_factory.mktemp("explore")
    axis = '[sweep]\n"schedule.name" = ["joint", "layerwise"]'
    return {
        "root": root,
        "A": launch(root, "A", 0.01, axis),
        "B": launch(root, "B", 0.001, axis),
        "C": launch(root, "C", 0.01, '[sweep]\n"optimizer.lr" = [0.01, 0.03]'),
        "Z": launch(
            root,
            "Z",
            0.01,
            '[sweep]\nmode = "zip"\n"schedule.name" = ["joint", "layerwise"]\n"schedule.epochs" = [2, 1]',
        ),
    }


# ------------------------------------------------------------------- catalogue
def test_ls_lists_every_launch_with_counts_sweep_and_fingerprint(launches, cli):
    root = launches["root"]
    code, out, _ = cli("ls", root)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["launch", "started"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"launches/A", "launches/B", "launches/C", "launches/Z"}
    assert "schedule.name" in rows["launches/A"] and "optimizer.lr" in rows["launches/C"]
    code, out, _ = cli("ls", root, "--json")
    found = {Path(x["path"]).name: x for x in json.loads(out)}
    a = found["A"]
    assert (a["runs"], a["done"], a["failed"], a["interrupted"], a["not_started"]) == (4, 4, 0, 0, 0)
    assert a["sweep"] == ["schedule.name"] and a["seeds"] == [0, 1] and a["active"] is False
    # the fingerprint is the experiment's: A and B differ (lr); a renamed copy of A's spec would not
    assert a["fingerprint"] != found["B"]["fingerprint"] and len(a["fingerprint"]) == 8
    raw = {**catalogue.tomllib.loads((launches["A"] / "spec.toml").read_text())}
    assert catalogue.fingerprint({**raw, "name": "other", "description": "x"}) == a["fingerprint"]


def test_ls_counts_failed_and_interrupted_runs_and_the_runs_not_started(launches, tmp_path):
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(launches["A"], copy)
    st = copy / "runs" / "run-0001" / "status.json"
    st.write_text(json.dumps({**json.loads(st.read_text()), "status": "failed", "reason": "diverged"}))
    st = copy / "runs" / "run-0002" / "status.json"
    st.write_text(json.dumps({**json.loads(st.read_text()), "status": "running"}))  # its process is gone
    shutil.rmtree(copy / "runs" / "run-0003")
    x = catalogue.info(copy)
    assert (x.runs, x.done, x.failed, x.interrupted, x.running, x.not_started) == (4, 1, 1, 1, 0, 1)


def test_a_launch_whose_lock_is_held_is_listed_as_running(launches, tmp_path):
    import shutil

    from aebench.execution.output import OutputLock

    copy = tmp_path / "held"
    shutil.copytree(launches["A"], copy)
    st = copy / "runs" / "run-0000" / "status.json"
    st.write_text(json.dumps({**json.loads(st.read_text()), "status": "running"}))
    with OutputLock(copy):
        x = catalogue.info(copy)
        assert x.active and x.running == 1 and x.interrupted == 0
    assert not catalogue.info(copy).active


def test_tags_and_note_are_kept_in_the_folder_and_filter_ls(launches, cli, tmp_path):
    import shutil

    copy = tmp_path / "tagged"
    shutil.copytree(launches["B"], copy)
    code, out, _ = cli("tag", copy, "slow-lr", "baseline", "--note", "lr 0.001: the paper's smallest")
    assert code == 0 and "slow-lr, baseline" in out
    code, out, _ = cli("tag", copy, "--remove", "baseline")
    assert code == 0
    saved = json.loads((copy / catalogue.NOTES_FILE).read_text())
    assert saved == {"note": "lr 0.001: the paper's smallest", "tags": ["slow-lr"]}
    assert catalogue.notes(copy) == catalogue.Notes("lr 0.001: the paper's smallest", ("slow-lr",))
    code, out, _ = cli("ls", tmp_path, "--tag", "slow-lr")
    assert "tagged" in out and "#slow-lr" in out and "lr 0.001" in out
    code, out, _ = cli("ls", tmp_path, "--tag", "nothing")
    assert "no launches" in out
    # aebench's own file: a resume of the launch is not refused because of it, and a link there is refused
    (copy / catalogue.NOTES_FILE).unlink()
    os.symlink(tmp_path / "elsewhere.json", copy / catalogue.NOTES_FILE)
    code, _, err = cli("tag", copy, "x")
    assert code == 2 and "symbolic link" in err and not (tmp_path / "elsewhere.json").exists()


def test_tag_refuses_what_is_not_a_launch_and_bad_tags(launches, cli, tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text("name = 'x'")
    code, _, err = cli("tag", spec, "x")
    assert code == 2 and "spec file" in err and "run it first" in err
    code, _, err = cli("tag", tmp_path, "x")
    assert code == 2 and "not a results folder" in err
    code, _, err = cli("tag", launches["A"], "two words")
    assert code == 2 and "one word" in err


def test_a_tagged_folder_still_resumes(launches, tmp_path):
    """notes.json is one of aebench's own files: prepare_out does not take the folder for someone else's."""
    spec = launches["root"] / "A.toml"
    out = tmp_path / "again"
    aebench.run(spec, out=out, progress=False)
    catalogue.tag(out, add=["kept"])
    ds = aebench.run(spec, out=out, progress=False, resume=True)
    assert set(np.ravel(ds["status"].values)) == {"done"}
    assert catalogue.notes(out).tags == ("kept",)


# ---------------------------------------------------------------- open_results
def test_open_results_combines_launches_along_launch_by_value(launches):
    ds = aebench.open_results([launches["A"], launches["B"]])
    assert list(ds["launch"].values) == ["A", "B"]
    assert ds["optimizer.lr"].dims == ("launch",)  # set differently, swept by neither: named along launch
    assert ds["optimizer.lr"].sel(launch="B").item() == pytest.approx(0.001)
    assert list(ds["schedule.name"].values) == ["joint", "layerwise"]
    for name in ("A", "B"):
        alone = aebench.load_results(launches[name])
        for var in ("recon_error", "train_seconds"):
            xr.testing.assert_allclose(
                ds[var].sel(launch=name, drop=True).dropna("epoch", how="all")
                if "epoch" in ds[var].dims
                else ds[var].sel(launch=name, drop=True),
                alone[var].transpose(*[d for d in ds[var].dims if d != "launch"]),
            )
    assert ds["launch_spec"].sel(launch="B").item() == aebench.load_results(launches["B"]).attrs["spec"]
    ds.to_netcdf(launches["root"] / "combined.nc")  # a combined Dataset is a valid netCDF file


def test_a_swept_key_becomes_an_axis_of_every_launch_at_its_own_value(launches):
    ds = aebench.open_results([launches["A"], launches["C"]])
    assert list(ds["optimizer.lr"].values) == [0.01, 0.03]
    assert list(ds["schedule.name"].values) == ["joint", "layerwise"]
    st = ds["status"]
    assert set(np.ravel(st.sel(launch="A", **{"optimizer.lr": 0.01}).values)) == {"done"}
    assert set(np.ravel(st.sel(launch="A", **{"optimizer.lr": 0.03}).values)) == {"missing"}
    assert set(np.ravel(st.sel(launch="C", **{"schedule.name": "layerwise"}).values)) == {"missing"}
    c = aebench.load_results(launches["C"])
    got = ds["train_seconds"].sel(launch="C", **{"schedule.name": "joint"}, drop=True)
    xr.testing.assert_allclose(got, c["train_seconds"].transpose(*got.dims))
    # C's joint lr=0.01 cell and A's are different runs of one setting: both kept, by launch
    assert np.isfinite(ds["train_seconds"].sel(**{"optimizer.lr": 0.01, "schedule.name": "joint"})).all()


def test_incompatible_launches_are_refused_with_the_reason(launches, tmp_path):
    with pytest.raises(aebench.ResultsError, match="grid"):
        aebench.open_results([launches["A"], launches["Z"]])
    # a variable in other units cannot be put beside another
    odd = tmp_path / "odd"
    ds = aebench.load_results(launches["B"])
    ds["train_seconds"].attrs["units"] = "min"
    odd.mkdir()
    ds.to_netcdf(odd / "results.nc")
    with pytest.raises(aebench.ResultsError, match="train_seconds is in s in launch A and in min"):
        aebench.open_results([launches["A"], odd])
    with pytest.raises(aebench.ResultsError, match="no results file"):
        aebench.open_results([launches["A"], tmp_path / "nothing"])


def test_zip_launches_meet_by_their_points_values(launches):
    ds = aebench.open_results([launches["Z"], launches["Z"]], labels=["Z1", "Z2"])
    assert list(ds["point"].values) == ["schedule=joint, epochs=2", "schedule=layerwise, epochs=1"]
    xr.testing.assert_equal(
        ds["recon_error"].sel(launch="Z1", drop=True), ds["recon_error"].sel(launch="Z2", drop=True)
    )


# --------------------------------------------------------------------- compare
def test_compare_writes_tables_side_by_side_and_curves_overlaid(launches, cli, tmp_path):
    from aebench.report import metric_table
    from aebench.tables import with_derived

    out = tmp_path / "cmp"
    code, stdout, err = cli("compare", launches["A"], launches["B"], "--out", out)
    assert code == 0, err
    md = (out / "compare.md").read_text()
    assert "| A | 0.01 |" in md and "| B | 0.001 |" in md  # what the launches set differently
    rows = {}
    for line in md[md.index("## Test reconstruction error") :].splitlines():
        if line.startswith(("| A |", "| B |")):
            rows.setdefault(line.split("|")[1].strip(), line.split("|")[2:4])
    for name in ("A", "B"):  # each launch's row holds exactly its own report's cells
        header, table, _ = metric_table(with_derived(aebench.load_results(launches[name])), "recon_test")
        assert [c.strip() for c in rows[name]] == table[0][1:3], name
    files = {p.name for p in (out / "compare_files").iterdir()}
    # file names are a slug plus a short hash of the full name (collision-free)
    stems = {f.rsplit("-", 1)[0] + "." + f.rsplit(".", 1)[1] for f in files}
    assert {"curves_recon_error_epoch.svg", "curves_recon_error_steps.png", "table_recon_test.svg"} <= stems
    epoch_svg = next(f for f in files if f.startswith("curves_recon_error_epoch-") and f.endswith(".svg"))
    assert "launch=A, schedule=joint" in (out / "compare_files" / epoch_svg).read_text()
    combined = xr.open_dataset(out / "combined.nc")
    assert list(combined["launch"].values) == ["A", "B"]
    combined.close()
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("mine")
    code, _, err = cli("compare", launches["A"], launches["B"], "--out", tmp_path / "theirs")
    assert code == 2 and "did not write" in err
    code, _, err = cli("compare", launches["A"], launches["root"] / "A.toml", "--out", out)
    assert code == 2 and "run it first" in err
