"""The papers' protocols as presets (experiments/): they validate, follow the papers, start, and report."""

from __future__ import annotations

import copy
import tomllib

import pytest
from conftest import ROOT

import aebench
from aebench.reference import report_tables, resolve_reports

PRESETS = sorted((ROOT / "experiments").glob("*.toml"))
PAPER_SCALE = [p for p in PRESETS if "reduced" not in p.name]


def load_raw(path):
    raw = tomllib.loads(path.read_text())
    resolve_reports(raw, path.parent)
    return raw


def test_there_are_paper_and_reduced_presets_for_every_experiment():
    names = {p.stem for p in PRESETS}
    for base in ("zhou2015-dae", "zhou2015-cae", "zhou2015-ae-l2", "erhan2010-seeds"):
        assert base in names and f"{base}-reduced" in names


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_preset_validates_and_its_tables_match_the_published_numbers(path):
    spec = aebench.Spec.from_toml(path)
    assert spec.runs
    for table in report_tables(spec.raw):
        published = {(p.row, p.column) for p in table.published}
        assert published, f"{path.name}: {table.title} has no published numbers"
        assert set(table.columns) <= {c for _, c in published}, table.title
        runs = spec.runs[0]
        assert table.metric.split("_")[0] in {e.name for e in runs.evaluators}, table.metric


@pytest.mark.parametrize("path", PAPER_SCALE, ids=lambda p: p.stem)
def test_paper_scale_presets_use_the_papers_protocol(path):
    raw = load_raw(path)
    model = raw["model"]
    assert set(model["layers"]) == {1000} and model["tied"] and model["activation"] == "sigmoid"
    assert (
        raw["optimizer"]["name"] == "rmsprop"
        and raw["optimizer"]["decay"] == 0.9
        and raw["optimizer"]["batch_size"] == 100
    )
    if path.stem.startswith("zhou"):
        assert raw["schedule"]["epochs"] == 300 and raw["sweep"]["optimizer.lr"] == [0.001, 0.005, 0.01, 0.02]
        assert raw["evaluate"]["finetune"]["epochs"] == 1000 and "data.subset" not in raw["data"]
        assert len(raw["sweep"]["data.name"]) == 9
    if "parzen" in raw.get("evaluate", {}):
        assert raw["evaluate"]["parzen"]["samples"] == 10000
    if path.stem == "zhou2015-dae":
        assert raw["sweep"]["corruption.level"] == [0.1, 0.3, 0.5, 0.7, 0.9]
    if path.stem == "zhou2015-cae":
        assert raw["sweep"]["regularizers.0.weight"] == [0.01, 0.05, 0.15, 0.3, 0.6]
    if path.stem == "erhan2010-seeds":
        assert len(raw["seeds"]) == 400


def _one_epoch(raw: dict, subset: int | None = None) -> dict:
    """The preset's first run for one epoch (every stage), with only the reconstruction measured."""
    one = {k: v for k, v in raw.items() if k not in ("sweep", "report")}
    schedules = one["schedule"] if isinstance(one["schedule"], list) else [one["schedule"]]
    one["schedule"] = [{**s, "epochs": 1} for s in schedules]
    one["seeds"] = one["seeds"][:1]
    one["evaluate"] = {"recon": {"every": 0}}
    if subset:
        one["data"] = {**one["data"], "subset": subset, "eval_subset": 500}
    return one


def test_the_dae_preset_starts_on_cpu_at_paper_scale(tmp_path):
    """One run of the DAE preset (50k MNIST, 1000 units) for one epoch: runnable as written."""
    ds = aebench.run(
        aebench.Spec.from_dict(_one_epoch(load_raw(ROOT / "experiments" / "zhou2015-dae.toml"))),
        out=tmp_path / "one",
        progress=False,
    )
    assert str(ds["status"].item()) == "done"
    assert int(ds["steps"].max()) == 500  # 50,000 digits in batches of 100: the paper's split


@pytest.mark.parametrize("name", ["zhou2015-cae", "zhou2015-ae-l2", "erhan2010-seeds"])
def test_every_other_paper_scale_preset_starts(tmp_path, name):
    """The paper's widths and schedules, on 2,000 digits for one epoch of every stage."""
    ds = aebench.run(
        aebench.Spec.from_dict(_one_epoch(load_raw(ROOT / "experiments" / f"{name}.toml"), 2000)),
        out=tmp_path / name,
        progress=False,
    )
    assert set(ds["status"].values.ravel()) == {"done"}


def test_reduced_preset_report_prints_paper_beside_measured(tmp_path, cli):
    raw = load_raw(ROOT / "experiments" / "zhou2015-dae-reduced.toml")
    small = copy.deepcopy(raw)
    small["data"] = {"name": "mnist", "subset": 300, "eval_subset": 200}
    small["schedule"]["epochs"] = 1
    small["evaluate"] = {
        "recon": {"every": 0},
        "svm": {"C": [1.0], "max_iter": 100},
        "parzen": {"samples": 200, "burn_in": 5, "sigma": [0.2]},
        "finetune": {"epochs": 2, "patience": 1},
    }
    small["sweep"] = {
        "data.name": ["rect", "mnist"],
        "schedule.name": ["joint", "layerwise", "pretrain-joint", "pretrain-joint-reg"],
    }
    out = tmp_path / "reduced"
    ds = aebench.run(aebench.Spec.from_dict(small), out=out, progress=False)
    code, stdout, _ = cli("report", out)
    assert code == 0
    for table in report_tables(raw):
        assert table.title in stdout and "reduced CPU scale" in stdout
    # the Table II line for rect / DAE-2L carries the paper's 1.14 and the layer-wise run's own error
    layerwise = 100 * float(ds["svm_error"].sel({"data.name": "rect", "schedule.name": "layerwise"}).squeeze())
    joint = 100 * float(ds["svm_error"].sel({"data.name": "rect", "schedule.name": "joint"}).squeeze())
    line = next(ln for ln in stdout.splitlines() if "rect" in ln and "DAE-2L" in ln and "1.14 ± 0.09" in ln)
    assert f"{layerwise:.2f}" in line
    line = next(ln for ln in stdout.splitlines() if "rect" in ln and "DAE-2J " in ln + " " and "0.83 ± 0.08" in ln)
    assert f"{joint:.2f}" in line
