"""Results: per-run folders, the merged dataset's dims and attributes, atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr
from conftest import tiny_toml, write_spec

import aebench
from aebench.atomic import atomic_write
from aebench.execution.output import OutputLock


def test_run_folder_and_merged_dataset(tmp_path):
    spec = write_spec(tmp_path, tiny_toml(seeds=[0, 1], sweep={"schedule.name": ["joint", "layerwise"]}))
    ds = aebench.run(spec, out=tmp_path / "out", progress=False)
    runs = sorted((tmp_path / "out" / "runs").iterdir())
    assert [r.name for r in runs] == ["run-0000", "run-0001", "run-0002", "run-0003"]
    for r in runs:
        assert {p.name for p in r.iterdir()} >= {"spec.json", "status.json", "metrics.nc", "checkpoint.pt"}
        assert json.loads((r / "status.json").read_text())["status"] == "done"
        torch.load(r / "checkpoint.pt", weights_only=True)  # loads safely
    assert ds["recon_error"].dims == ("schedule.name", "seed", "epoch", "split")
    assert list(ds["schedule.name"].values) == ["joint", "layerwise"] and list(ds["seed"].values) == [0, 1]
    assert list(ds["split"].values) == ["train", "valid", "test"]
    # layer-wise trains 2 epochs per layer: 4 epochs; joint has 2 (the rest NaN)
    assert ds["stage"].sel({"schedule.name": "layerwise", "seed": 0}).values.tolist() == [
        "layer0",
        "layer0",
        "layer1",
        "layer1",
    ]
    assert np.isnan(ds["recon_error"].sel({"schedule.name": "joint"}).sel(epoch=3)).all()
    assert ds["steps"].sel({"schedule.name": "layerwise", "seed": 0}).values.tolist() == [
        6,
        12,
        18,
        24,
    ]  # 300 rows / 50
    for name in ("recon_error", "recon_error_final", "train_seconds", "status", "loss"):
        assert ds[name].attrs["long_name"] and "units" in ds[name].attrs, name
    assert ds["recon_error"].attrs["units"] == "nats per example"
    assert ds.attrs["torch_version"] == torch.__version__ and ds.attrs["aebench_version"] == aebench.__version__
    assert ds.attrs["device"] == "cpu" and "digits" in json.loads(ds.attrs["data_checksums"])
    assert aebench.Spec.from_text(ds.attrs["spec"]).raw == aebench.Spec.from_toml(spec).raw
    on_disk = aebench.load_results(tmp_path / "out")
    xr.testing.assert_allclose(on_disk["recon_error"], ds["recon_error"])


def test_layerwise_curve_is_measured_through_the_whole_stack(tmp_path):
    spec = write_spec(tmp_path, tiny_toml({"schedule.name": "layerwise"}))
    ds = aebench.run(spec, out=tmp_path / "out", progress=False)
    by_depth = ds["recon_error_layer"].squeeze("seed")
    # While layer 0 trains, layer 1 is still random: the whole stack is far worse than depth 1.
    first = by_depth.sel(epoch=1, split="test")
    assert float(first.sel(depth=2)) > float(first.sel(depth=1))
    np.testing.assert_allclose(ds["recon_error"].squeeze("seed").values, by_depth.sel(depth=2).values)


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    path = tmp_path / "results.nc"
    path.write_bytes(b"old")

    def boom(p):
        p.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(path, boom)
    assert path.read_bytes() == b"old" and list(tmp_path.iterdir()) == [path]


def test_second_run_on_one_folder_is_refused(tmp_path, tiny_spec):
    with OutputLock(tmp_path / "out"):
        with pytest.raises(aebench.ResultsError, match="in use by another aebench run"):
            aebench.run(tiny_spec, out=tmp_path / "out", progress=False)


def test_corrupt_results_file_is_a_clear_error(tmp_path, cli):
    (tmp_path / "results.nc").write_bytes(b"not netcdf")
    with pytest.raises(aebench.ResultsError, match="cannot be read"):
        aebench.load_results(tmp_path)


def test_load_model_gives_back_the_trained_network(tmp_path, tiny_spec):
    ds = aebench.run(tiny_spec, out=tmp_path / "out", progress=False)
    model, data = aebench.load_model(tmp_path / "out" / "runs" / "run-0000")
    x = torch.from_numpy(data.test.x[:100]).float() * data.scale
    with torch.no_grad():
        err = float(model.reconstruction_loss(x, model.decode(model.encode(x), activate=False), 0))
    assert err == pytest.approx(float(ds["recon_error_final"].sel(split="test").squeeze()), rel=1e-5)
    with pytest.raises(aebench.ResultsError, match="not a run folder"):
        aebench.load_model(tmp_path)
