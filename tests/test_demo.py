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
    # it says the width it trains (it once said 1000 units and trained 64), and so does its spec
    assert lines[0].startswith("demo: ") and "2 tied sigmoid layers of 64 units" in lines[0]
    assert lines[1].split()[:4] == ["scheme", "train", "valid", "test"]
    assert lines[2].startswith("joint") and lines[3].startswith("layerwise") and "nats per example" in lines[4]
    # the ± is the report's: a t-interval over the two seeds, said in the same words
    assert "mean ± 95% t-interval over 2 seeds" in lines[4] and "std" not in out
    assert "aebench report" in out
    ds = aebench.load_results(tmp_path / "demo")
    assert set(ds["status"].values.ravel()) == {"done"}
    assert "layers of 64 units" in ds.attrs["spec"]
