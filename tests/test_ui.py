"""The Workbench, driven as a notebook user would (widgets, no browser)."""

from __future__ import annotations

import tomllib
import types
from typing import Literal

import numpy as np
import pytest
import torch
from conftest import TINY as CONFTEST_TINY
from pydantic import Field

import aebench
from aebench.components import Regularizer, RegularizerParams
from aebench.ui import Workbench
from aebench.ui.forms import ParamsForm

TINY = {**tomllib.loads(CONFTEST_TINY), "name": "ui"}


def test_pickers_are_filled_from_the_registry(tmp_path):
    wb = Workbench(TINY, out=tmp_path)
    assert set(wb.data.dropdown.options) == set(aebench.registry().names("dataset"))
    assert set(wb.corruptions.items[0].dropdown.options) == set(aebench.registry().names("corruption"))
    assert set(wb.evaluators) == set(aebench.registry().names("evaluator"))
    assert wb.spec.runs[0].model.params.layers == [32, 16]


def test_choosing_values_and_forms_from_params(tmp_path):
    wb = Workbench(TINY, out=tmp_path)
    picker = wb.corruptions.items[0]
    picker.dropdown.value = "masking"
    level, _ = picker.form.fields["level"]
    assert level.value == 0.25 and "Fraction" in level.tooltip and "1" in level.tooltip
    level.value = 0.4
    wb.regularizers.add_button.click()
    wb.regularizers.items[0].dropdown.value = "contractive"
    wb.schedules.add_button.click()
    wb.schedules.items[1].dropdown.value = "finetune"
    spec = wb.spec.runs[0]
    assert (spec.corruptions[0].name, spec.corruptions[0].params.level) == ("masking", 0.4)
    assert spec.regularizers[0].name == "contractive"
    assert [s.name for s in spec.schedules] == ["joint", "finetune"]


def test_inline_validation_blocks_launch(tmp_path):
    wb = Workbench(TINY, out=tmp_path)
    level, _ = wb.corruptions.items[0].form.fields["level"]
    level.value = -1.0
    assert not wb.valid and "greater than or equal to 0" in wb.corruptions.items[0].form.error.value
    with pytest.raises(aebench.AebenchError, match="invalid values"):
        wb.launch()
    assert not wb.running and not list(tmp_path.glob("launch-*"))
    level.value = 0.1
    assert wb.valid


def test_form_for_a_third_party_params():
    class MyParams(RegularizerParams):
        rho: float = Field(0.05, gt=0, lt=1, description="target")
        mode: Literal["a", "b"] = "a"
        flag: bool = False
        sizes: list[int] = [1, 2]

    class Mine(Regularizer):
        name = "mine"
        summary = "third party"
        Params = MyParams

        def penalty(self, layer, h_in, h_out):
            return h_out.mean()

    mod = types.ModuleType("mine_plugin")
    mod.aebench_regularizers = aebench.hookimpl(lambda: [Mine])
    aebench.register_plugin(mod)
    try:
        wb = Workbench(TINY)
        assert "mine" in wb.regularizers.registry.names("regularizer")
        form = ParamsForm(MyParams)
        kinds = {n: type(w).__name__ for n, (w, _) in form.fields.items()}
        assert kinds == {
            "weight": "FloatText",
            "layers": "Text",
            "rho": "FloatText",
            "mode": "Dropdown",
            "flag": "Checkbox",
            "sizes": "Text",
        }
        form.set({"sizes": [3, 4], "mode": "b"})
        assert form.values() == {"sizes": [3, 4], "mode": "b"}
        form.fields["sizes"][0].value = "[3, oops]"
        assert not form.valid
    finally:
        from aebench import plugins

        plugins._EXTRA.clear()
        aebench.registry(refresh=True)


def test_launch_wait_results_and_live_view(tmp_path):
    wb = Workbench(TINY, out=tmp_path)
    wb.set({"sweep": {"schedule.name": ["joint", "layerwise"]}}, seeds=[0, 1])
    wb.launch()
    ds = wb.wait(timeout=300)
    assert ds is wb.results and set(ds["status"].values.ravel()) == {"done"}
    assert ds["recon_error"].dims[:2] == ("schedule.name", "seed")
    assert wb.overall.value == 4 and wb.run_bar.value == wb.run_bar.max
    assert "test recon error" in wb.table.value and wb.table.value.count("<tr>") == 5
    assert len(wb._curves) == 4 and bytes(wb.plot.value).startswith(b"\x89PNG")  # the live plot was drawn
    assert not wb.launch_button.disabled


def test_stop_mid_run_is_resumable(tmp_path):
    wb = Workbench({**TINY, "schedule": {"name": "joint", "epochs": 400}}, out=tmp_path)
    wb.launch()
    import time

    deadline = time.time() + 60
    while wb.run_bar.value < 2 and time.time() < deadline:
        time.sleep(0.05)
    wb.stop()
    wb.wait(timeout=60)
    assert not wb.running and "stopped" in wb.status.value
    status = (wb.out / "runs" / "run-0000" / "status.json").read_text()
    assert '"interrupted"' in status and (wb.out / "runs" / "run-0000" / "checkpoint.pt").exists()


def test_exported_spec_round_trips_and_gives_the_same_results(tmp_path, cli):
    wb = Workbench(TINY, out=tmp_path / "wb")
    wb.set({"model.layers": [24], "corruption.level": 0.15})
    path = wb.export_spec(tmp_path / "exported.toml")
    wb.launch(out=tmp_path / "wb-run")
    ui = wb.wait(timeout=300)
    code, _, err = cli("run", path, "--out", tmp_path / "cli-run", "--quiet")
    assert code == 0, err
    from_cli = aebench.load_results(tmp_path / "cli-run")
    assert (ui["recon_error"].values == from_cli["recon_error"].values).all()
    other = Workbench(out=tmp_path / "other")
    other.load_spec(path)
    assert other.spec.raw == wb.spec.raw


def test_load_of_a_bad_spec_changes_nothing(tmp_path):
    wb = Workbench(TINY, out=tmp_path)
    before = wb.spec_dict()
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "x"\ndata = { name = "nope" }\nmodel = { name = "stacked" }\nschedule = { name = "joint" }\n'
    )
    with pytest.raises(aebench.SpecError, match="data.name = 'nope'"):
        wb.load_spec(bad)
    assert wb.spec_dict() == before


def test_device_choices_reflect_the_machine(tmp_path):
    wb = Workbench(TINY, out=tmp_path)
    assert ("cuda" in wb.device.options) == torch.cuda.is_available()
    assert "schedule.epochs" in wb.sweepable_keys() and "optimizer.lr" in wb.sweepable_keys()


def test_sweep_builder_adds_any_parameter(tmp_path):
    wb = Workbench(TINY, out=tmp_path)
    assert "corruption.level" in wb.sweep_key.options
    wb.sweep_key.value = "corruption.level"
    wb.sweep_values.value = "[0.1, 0.4]"
    wb._sweep_adder.children[2].click()
    wb.add_sweep_axis("schedule.name", ["joint", "alpha"])
    spec = wb.spec
    assert spec.sweep_dims() == ["corruption.level", "schedule.name"] and len(spec.runs) == 4


def test_ensemble_and_precision_from_the_workbench(tmp_path):
    wb = Workbench(TINY, out=tmp_path)
    wb.set(seeds=[0, 1], ensemble=True)
    assert wb.ensemble.value and wb.spec.raw["ensemble"] is True
    from aebench.options import EXECUTORS, PRECISIONS

    assert tuple(wb.precision.options) == PRECISIONS and tuple(wb.executor.options) == EXECUTORS
    wb.precision.value = "bfloat16"
    assert wb.spec.runs[0].precision == "bfloat16"
    wb.precision.value = "float32"
    wb.launch()
    ds = wb.wait(timeout=300)
    assert set(ds["status"].values.ravel()) == {"done"}
    import xarray as xr

    assert xr.open_dataset(wb.out / "runs" / "run-0000" / "metrics.nc").attrs["ensemble_members"] == 2
    # the live plot got every member's curves, with numbers (it showed NaN for ensembles before)
    assert set(wb._curves) == {"run-0000", "run-0001"}
    assert all(np.isfinite(c["valid"]).all() and len(c["valid"]) == 2 for c in wb._curves.values())
