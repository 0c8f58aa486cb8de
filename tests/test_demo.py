"""`make demo`'s experiment, at reduced size: results.nc, a PNG and the printed table."""

from __future__ import annotations

import aebench
from aebench.demo import demo_spec


def test_demo_spec_is_the_documented_experiment():
    run = aebench.Spec.from_text(demo_spec()).runs
    assert [r.schedules[0].name for r in run] == ["joint", "joint", "layerwise", "layerwise"]
    m = run[0].model.params
    assert m.layers == [1000, 1000] and m.tied and m.loss == "cross-entropy"
    assert run[0].corruptions[0].name == "gaussian" and run[0].optimizer.name == "rmsprop"


def test_demo_quick_writes_results_plot_and_table(cli, tmp_path):
    code, out, err = cli("demo", "--quick", "--quiet", "--out", tmp_path / "demo")
    assert code == 0, err
    assert (tmp_path / "demo" / "results.nc").is_file()
    png = (tmp_path / "demo" / "recon_curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["scheme", "train", "valid", "test"]
    assert lines[1].startswith("joint") and lines[2].startswith("layerwise") and "nats per example" in lines[3]
    ds = aebench.load_results(tmp_path / "demo")
    assert set(ds["status"].values.ravel()) == {"done"}
