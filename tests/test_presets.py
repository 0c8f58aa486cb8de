"""The papers' protocols as presets (experiments/): they validate, follow the papers, start, and report."""

from __future__ import annotations

import copy
import math
import tomllib

import numpy as np
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
        if not published:  # a paper that shows its result as a figure only (Erhan et al.'s histograms) says so
            assert "no published numbers" in table.note, f"{path.name}: {table.title} has no published numbers"
            continue
        assert set(table.columns) <= {c for _, c in published}, table.title
        runs = spec.runs[0]
        assert table.metric.split("_")[0] in {e.name for e in runs.evaluators}, table.metric


@pytest.mark.parametrize("path", PAPER_SCALE, ids=lambda p: p.stem)
def test_paper_scale_presets_use_the_papers_protocol(path):
    raw = load_raw(path)
    model = raw["model"]
    assert set(model["layers"]) == {1000} and model["tied"] and model["activation"] == "sigmoid"
    if path.stem.startswith("zhou"):
        opt = raw["optimizer"]
        assert opt["name"] == "rmsprop" and opt["decay"] == 0.9 and opt["batch_size"] == 100
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
        # Erhan et al. trained by stochastic gradient descent with a constant learning rate
        assert raw["optimizer"]["name"] == "sgd" and raw["optimizer"].get("momentum", 0) == 0


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_every_preset_passes_its_preflight_as_shipped(path):
    """Every run of the file as it is: every data set loaded at the sizes it asks for."""
    from aebench.execution import preflight

    spec = aebench.Spec.from_toml(path)
    rows: dict = {}
    preflight(spec, rows)
    assert set(rows) == {run.data.name for run in spec.runs}
    subset = spec.raw["data"].get("subset")
    for sizes in rows.values():
        assert all(s["train"] == (subset or s["train"]) for s in sizes)


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_every_preset_trains_its_first_epoch_as_shipped(tmp_path, path):
    """The file as shipped, untouched: ``aebench run`` until the first epoch ends, then Stop."""
    import threading

    from aebench.engine.runner import RunInterrupted

    stop, seen = threading.Event(), []

    def first_epoch(run_id: str, metrics: dict) -> None:
        seen.append((run_id, metrics))
        stop.set()

    with pytest.raises(RunInterrupted):
        aebench.run(path, out=tmp_path / "out", progress=False, stop=stop, on_epoch=first_epoch)
    run_id, metrics = seen[0]
    assert metrics["epoch"] == 1 and math.isfinite(metrics["loss"]), metrics


def test_reduced_presets_have_three_seeds_or_more():
    for path in PRESETS:
        if "reduced" in path.stem:
            assert len(load_raw(path)["seeds"]) >= 3, path.name


@pytest.mark.parametrize("name", ["erhan2010-seeds", "erhan2010-seeds-reduced"])
def test_erhan_arms_have_the_same_supervised_budget(name):
    """The arms differ in pre-training only: the same supervised stage (cap, patience, lr), and the
    arm without pre-training trains nothing else."""
    spec = aebench.Spec.from_toml(ROOT / "experiments" / f"{name}.toml")
    reg = aebench.registry()
    arms: dict[str, list] = {}
    for run in spec.runs:
        n = len(run.model.params.layers)
        stages = [st for sched in run.schedules for st in sched.build(reg).stages(n)]
        arms.setdefault(run.point["schedule.0.name"], stages)
    assert set(arms) == {"layerwise", "none"}
    supervised = {arm: [st for st in stages if st.target == "labels"] for arm, stages in arms.items()}
    (pre,), (rnd,) = supervised["layerwise"], supervised["none"]
    assert (pre.epochs, pre.patience, pre.lr, pre.reinit) == (rnd.epochs, rnd.patience, rnd.lr, rnd.reinit)
    assert arms["none"] == [rnd]  # no other stage: nothing but the supervised budget
    assert all(st.target != "labels" for st in arms["layerwise"][:-1])


def test_erhan_arms_train_the_same_supervised_epochs_at_most(tmp_path):
    raw = load_raw(ROOT / "experiments" / "erhan2010-seeds-reduced.toml")
    raw.update(seeds=[0, 1], data={"name": "digits", "subset": 300, "eval_subset": 100})
    raw["schedule"] = [{"name": "layerwise", "epochs": 1}, {"name": "finetune", "epochs": 4, "patience": 50}]
    ds = aebench.run(aebench.Spec.from_dict(raw), out=tmp_path / "e", progress=False)
    stage = ds["stage"]
    for arm in ("layerwise", "none"):
        per_seed = stage.sel({"schedule.0.name": arm})
        assert ((per_seed == "finetune").sum("epoch") == 4).all()  # the cap, reached by both arms
    assert set(np.unique(stage.sel({"schedule.0.name": "none"}).values)) <= {"finetune", ""}


def test_reduced_preset_report_prints_paper_beside_measured(tmp_path, cli):
    raw = load_raw(ROOT / "experiments" / "zhou2015-dae-reduced.toml")
    small = copy.deepcopy(raw)
    small["data"] = {"name": "mnist", "subset": 300, "eval_subset": 200}
    small["seeds"] = [0]
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
        assert table.title in stdout and "Reduced CPU scale" in stdout
    # the Table II line for rect / DAE-2L carries the paper's 1.14 and the layer-wise run's own error
    layerwise = 100 * float(ds["svm_error"].sel({"data.name": "rect", "schedule.name": "layerwise"}).squeeze())
    joint = 100 * float(ds["svm_error"].sel({"data.name": "rect", "schedule.name": "joint"}).squeeze())
    line = next(ln for ln in stdout.splitlines() if "rect" in ln and "DAE-2L" in ln and "1.14 ± 0.09" in ln)
    assert f"{layerwise:.2f}" in line
    line = next(ln for ln in stdout.splitlines() if "rect" in ln and "DAE-2J " in ln + " " and "0.83 ± 0.08" in ln)
    assert f"{joint:.2f}" in line
