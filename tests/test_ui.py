"""The Workbench, driven as a notebook user would (widgets, no browser)."""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import tomllib
import types
from html import unescape
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import torch
import xarray as xr
from conftest import TINY as CONFTEST_TINY
from conftest import make_distribution, pip_install_target
from pydantic import Field

import aebench
from aebench.components import Regularizer, RegularizerParams
from aebench.spec import Spec
from aebench.ui import Workbench
from aebench.ui.forms import ChoiceInput, ParamsForm

TINY = {**tomllib.loads(CONFTEST_TINY), "name": "ui"}
PRESETS = sorted((Path(__file__).parent.parent / "experiments").glob("*.toml"))


def test_pickers_are_filled_from_the_registry(tmp_path):
    wb = Workbench(TINY, out=tmp_path)
    reg = aebench.registry()
    real = {n for n in reg.names("dataset") if not reg.entry("dataset", n).example}
    assert set(wb.data.dropdown.options) == real
    assert set(wb.corruptions.items[0].dropdown.options) <= set(reg.names("corruption"))
    assert wb.spec.runs[0].model.params.layers == [32, 16]


def test_template_plugins_are_examples_hidden_unless_asked(tmp_path):
    reg = aebench.registry()
    assert reg.entry("model", "template-linear").example and not reg.entry("model", "stacked").example
    assert reg.as_dict()["kinds"]["dataset"][0].keys() >= {"example"}
    wb = Workbench(TINY, out=tmp_path)
    offered = [*wb.model.dropdown.options, *wb.data.dropdown.options, *wb.evaluators]
    assert offered and not any(n.startswith("template-") for n in offered)
    assert "template-linear" in Workbench(TINY, out=tmp_path, examples=True).model.dropdown.options
    # a spec that names an example still loads, with the example shown in its picker
    wb.set({"model": {"name": "template-linear", "layers": [4]}})
    assert wb.model.dropdown.value == "template-linear" and wb.spec.runs[0].model.name == "template-linear"


def test_choosing_values_and_forms_from_params(tmp_path):
    wb = Workbench(TINY, out=tmp_path)
    picker = wb.corruptions.items[0]
    picker.dropdown.value = "masking"
    level = picker.form.fields["level"].widget
    assert level.value == "0.25" and "Fraction" in level.tooltip and "1" in level.tooltip
    level.value = "0.4"
    wb.regularizers.add_button.click()
    wb.regularizers.items[0].dropdown.value = "contractive"
    wb.schedules.add_button.click()
    wb.schedules.items[1].dropdown.value = "finetune"
    spec = wb.spec.runs[0]
    assert (spec.corruptions[0].name, spec.corruptions[0].params.level) == ("masking", 0.4)
    assert spec.regularizers[0].name == "contractive"
    assert [s.name for s in spec.schedules] == ["joint", "finetune"]


def test_name_and_description_have_their_own_section(tmp_path):
    wb = Workbench({**TINY, "description": "a note"}, out=tmp_path)
    assert wb.compose.titles[0] == "experiment" and "data" not in wb.compose.titles[0]
    first = wb.compose.children[0].children
    assert wb.fields["name"].row in first and wb.fields["description"].row in first
    assert wb.data not in first
    wb.fields["description"].widget.value = "changed"
    assert wb.spec.raw["description"] == "changed"


def test_enumerated_params_are_dropdowns_also_when_a_list_is_allowed(tmp_path):
    wb = Workbench(TINY, out=tmp_path)
    activation = wb.model.form.fields["activation"]
    assert isinstance(activation, ChoiceInput) and isinstance(wb.model.form.fields["output_activation"], ChoiceInput)
    assert activation.dropdown.value == "sigmoid" and "relu" in activation.dropdown.options  # no quoted text
    activation.dropdown.value = "tanh"
    assert wb.spec.runs[0].model.params.activation == "tanh"
    wb.set({"model.activation": ["relu", "sigmoid"]})  # one unit type per layer
    activation = wb.model.form.fields["activation"]
    assert activation.dropdown.value == "list…" and activation.text.layout.display is None
    assert wb.spec.runs[0].model.params.activation == ["relu", "sigmoid"]


def test_number_fields_refuse_malformed_text_visibly(tmp_path):
    wb = Workbench(TINY, out=tmp_path)
    subset = wb.data.form.fields["subset"].widget
    subset.value = "12.5"  # a browser number box made this 125
    assert not wb.valid and "data.subset: '12.5' is not a whole number" in unescape(wb.data.form.error.value)
    assert wb.compose.titles[1] == "⚠ data (invalid)" and wb.compose.titles[2] == "model"
    lr = wb.optimizer.form.fields["lr"].widget
    lr.value = "fast"
    with pytest.raises(aebench.SpecError) as err:
        wb.launch()
    assert "data.subset" in str(err.value) and "optimizer.lr: 'fast' is not a number" in str(err.value)
    assert "[data]" in str(err.value) and "[optimizer]" in str(err.value)  # the sections are named
    assert "optimizer.lr" in wb.status.value and not wb.running and not list(tmp_path.iterdir())
    subset.value, lr.value = "120", "1e-2"
    assert wb.valid and wb.compose.titles[1] == "data"
    assert wb.spec.runs[0].data.params.subset == 120 and wb.spec.runs[0].optimizer.params.lr == 0.01


def test_inline_validation_blocks_launch(tmp_path):
    wb = Workbench(TINY, out=tmp_path)
    level = wb.corruptions.items[0].form.fields["level"].widget
    level.value = "-1.0"
    assert not wb.valid and "greater than or equal to 0" in wb.corruptions.items[0].form.error.value
    with pytest.raises(aebench.SpecError, match=r"corruption.level = -1.0: .*\[corruption\]"):
        wb.launch()
    assert wb.compose.titles[3] == "⚠ corruption (invalid)"
    assert not wb.running and not list(tmp_path.iterdir())
    level.value = "0.1"
    assert wb.valid


def test_set_errors_like_the_cli(tmp_path):
    wb = Workbench(TINY, out=tmp_path)
    before = wb.spec_dict()
    with pytest.raises(aebench.SpecError, match=r"model.layer: unknown key \(did you mean 'layers'\?\)"):
        wb.set({"model.layer": [3]})
    with pytest.raises(aebench.SpecError, match=r"optimizer.lr = 'fast'"):
        wb.set({"optimizer.lr": "fast"})
    with pytest.raises(aebench.SpecError, match=r"unknown key \(did you mean 'seeds'\?\)"):
        wb.set(seed=[1])
    with pytest.raises(aebench.SpecError, match="data.name = 'mnsit'.*'mnist'"):
        wb.set({"data.name": "mnsit"})
    assert wb.spec_dict() == before  # nothing changed
    wb.set({"model.layers": [24]}, seeds=[0, 1])
    assert wb.get("model.layers") == [24] and wb.spec.raw["seeds"] == [0, 1]


def test_form_for_a_third_party_params(in_process_plugin):
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
    in_process_plugin(mod)
    wb = Workbench(TINY)
    assert "mine" in wb.regularizers.registry.names("regularizer")
    form = ParamsForm(MyParams)
    kinds = {n: type(f).__name__ for n, f in form.fields.items()}
    assert kinds == {
        "weight": "NumberInput",
        "layers": "JsonInput",
        "rho": "NumberInput",
        "mode": "ChoiceInput",
        "flag": "CheckInput",
        "sizes": "JsonInput",
    }
    form.set({"sizes": [3, 4], "mode": "b"})
    assert form.values() == {"sizes": [3, 4], "mode": "b"}
    form.fields["sizes"].widget.value = "[3, oops]"
    assert not form.validate()


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_every_preset_round_trips_through_the_workbench(tmp_path, preset):
    wb = Workbench(preset, out=tmp_path)
    exported = wb.export_spec(tmp_path / "exported.toml")
    shipped, again = Spec.from_toml(preset), Spec.from_toml(exported)
    assert set(tomllib.loads(exported.read_text())) == set(tomllib.loads(preset.read_text()))
    assert again.raw == shipped.raw  # description, [[report]] (published rows embedded), sweeps: all kept
    assert [r.to_json() for r in again.runs] == [r.to_json() for r in shipped.runs]
    # evaluators run in the spec's order: the same order, run by run
    assert [[e.name for e in r.evaluators] for r in again.runs] == [
        [e.name for e in r.evaluators] for r in shipped.runs
    ]


def test_keys_without_a_widget_pass_through_unchanged(tmp_path):
    text = (
        CONFTEST_TINY
        + 'description = "kept"\ncompile = false\n'
        + '[[runs]]\nschedule = [{ name = "layerwise", epochs = 1 }, { name = "finetune", epochs = 2 }]\n'
        + '[[runs]]\nschedule = { name = "alpha", epochs = 1 }\n'
        + '[[report]]\ntitle = "T"\nmetric = "recon_error_final"\ncolumns = { J = { "schedule.name" = "joint" } }\n'
    )
    path = tmp_path / "spec.toml"
    path.write_text(text)
    wb = Workbench(path, out=tmp_path)
    assert "[[runs]] (2 entries)" in wb.kept.value and "[[report]] (1 entry)" in wb.kept.value
    wb.set({"model.layers": [24]})  # an edit elsewhere keeps them too
    out = tomllib.loads(wb.export_spec(tmp_path / "out.toml").read_text())
    src = tomllib.loads(text)
    assert set(out) == set(src) and out["runs"] == src["runs"] and out["report"] == src["report"]
    assert out["compile"] is False and out["description"] == "kept" and out["model"]["layers"] == [24]


def test_launch_wait_results_and_live_view(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    wb = Workbench(TINY)
    wb.set({"sweep": {"schedule.name": ["joint", "layerwise"]}}, seeds=[0, 1])
    wb.launch()
    assert wb.out == Path("aebench-runs/ui-1")  # beside the notebook, not in /tmp
    ds = wb.wait(timeout=300)
    assert ds is wb.results and set(ds["status"].values.ravel()) == {"done"}
    assert ds["recon_error"].dims[:2] == ("schedule.name", "seed")
    assert wb.overall.value == 4 and "4 of 4 runs finished" in wb.overall_text.value
    assert set(wb.run_bars) == {"run-0000", "run-0001", "run-0002", "run-0003"}
    assert all(b.value == b.max for b in wb.run_bars.values())
    rows = [r.children for r in wb.progress_box.children]
    assert "schedule=layerwise, seed 1" in rows[3][0].value and "done" in rows[3][2].value
    assert "test recon error" in wb.table.value and wb.table.value.count("<tr>") == 5
    assert "schedule=joint, seed 1" == wb._labels["run-0001"]  # legends by sweep point (as the report) and seed
    assert len(wb._curves) == 4 and bytes(wb.plot.value).startswith(b"\x89PNG")  # the live plot was drawn
    assert wb.plot.layout.display is None and not wb.launch_button.disabled and wb.resume_button.disabled
    wb.launch()
    assert wb.out == Path("aebench-runs/ui-2") and wb.table.value == ""  # a new launch starts clean
    wb.wait(timeout=300)


def test_progress_reports_rate_and_eta_per_member_of_an_ensemble(tmp_path):
    wb = Workbench({**TINY, "schedule": {"name": "joint", "epochs": 4}}, out=tmp_path)
    wb.set(seeds=[0, 1], ensemble=True)
    seen = []
    real = wb._progress

    def spy(run_id, epoch, total):
        real(run_id, epoch, total)
        seen.append((run_id, epoch, wb._bar_rows[run_id].children[2].value, wb.overall_text.value))

    wb._progress = spy
    wb.launch()
    wb.wait(timeout=300)
    assert {r for r, *_ in seen} == {"run-0000", "run-0001"}  # each member has its bar while the batch trains
    run, epoch, text, overall = seen[-1]
    assert epoch == 4 and text.startswith("epoch 4/4 · ") and "s/epoch" in text
    assert any("ETA" in t for _, e, t, _ in seen if e == 2) and "elapsed" in overall


def test_stop_then_resume_continues_the_same_folder_and_curve(tmp_path, in_process_plugin):
    wb = Workbench({**TINY, "schedule": {"name": "joint", "epochs": 8}}, out=tmp_path)
    stopper = types.SimpleNamespace()

    @aebench.hookimpl
    def aebench_on_epoch_end(run, epoch, metrics):
        if epoch == 3 and not getattr(stopper, "done", False):
            stopper.done = True
            wb.stop()  # as the Stop button does, in the middle of the run

    stopper.aebench_on_epoch_end = aebench_on_epoch_end
    in_process_plugin(stopper)
    wb.launch()
    wb.wait(timeout=120)
    folder = wb.out
    status = json.loads((folder / "runs" / "run-0000" / "status.json").read_text())
    assert status["status"] == "interrupted" and "Resume" in wb.status.value
    assert not wb.resume_button.disabled and sorted(wb.curve("run-0000")) == [1, 2, 3]
    assert wb._bar_rows["run-0000"].children[2].value == "stopped at epoch 3; Resume continues"
    assert "--resume" not in wb.table.value + wb.status.value and "Resume" in wb.table.value
    assert "Resume will continue 1 interrupted run" in wb.resume_note.value
    wb.resume_button.click()
    wb.wait(timeout=120)
    assert wb.out == folder and [p.name for p in tmp_path.iterdir()] == ["ui-1"]  # not a new launch-N
    assert json.loads((folder / "runs" / "run-0000" / "status.json").read_text())["status"] == "done"
    assert sorted(wb.curve("run-0000")) == list(range(1, 9))  # the curve went on from epoch 4
    assert wb._bar_rows["run-0000"].children[2].value == "done · resumed at epoch 4"
    assert list(wb.results["recon_error"].epoch.values) == list(range(1, 9))
    assert wb.resume_button.disabled and "done: 1 of 1" in wb.status.value


def test_resume_in_a_new_workbench_finds_the_stopped_folder(tmp_path):
    spec = {**TINY, "schedule": {"name": "joint", "epochs": 2}}
    with pytest.raises(aebench.AebenchError, match="nothing to resume"):
        Workbench(spec, out=tmp_path).launch(resume=True)
    first = Workbench(spec, out=tmp_path)
    first.launch()
    first.wait(timeout=120)
    again = Workbench(spec, out=tmp_path)  # a new kernel: the newest ui-N folder is the one to continue
    again.launch(resume=True)
    again.wait(timeout=120)
    assert again.out == tmp_path / "ui-1" and str(again.results["status"].item()) == "done"


def test_a_failed_runs_reason_is_shown_in_the_widgets(tmp_path):
    spec = {
        **TINY,
        "model": {"name": "stacked", "layers": [32, 16], "activation": "linear", "output_activation": "linear"},
        "optimizer": {"name": "sgd", "lr": 0.01, "batch_size": 50},
    }
    spec["model"]["loss"] = "squared-error"
    wb = Workbench(spec, out=tmp_path)
    wb.set({"sweep": {"optimizer.lr": [0.01, 1e6]}})
    wb.launch()
    wb.wait(timeout=300)
    reason = json.loads((wb.out / "runs" / "run-0001" / "status.json").read_text())["reason"]
    assert "diverged" in reason
    assert "failed" in wb.table.value and "diverged" in wb.table.value  # in the results table
    assert "diverged" in wb._bar_rows["run-0001"].children[2].value  # beside its progress bar
    assert "1 failed" in wb.status.value and "1 failed" in wb.overall_text.value
    assert wb._labels["run-0001"] == "lr=1e+06" and not wb.resume_button.disabled


def test_a_dead_worker_is_a_failed_run_with_its_reason(tmp_path, tmp_path_factory):
    """Issue 22: a process worker that dies marks its run failed; the Workbench says why."""
    dying = "import os\nimport aebench\n\n@aebench.hookimpl\ndef aebench_on_epoch_end(run, epoch, metrics):\n"
    dying += "    if run.spec.seed == 1:\n        os._exit(3)\n"
    root = tmp_path_factory.mktemp("dying-ui")
    pip_install_target(make_distribution(root, "aebench-dying-ui", "aebench_dying_ui", dying), root / "site")
    site = str(root / "site")
    sys.path.insert(0, site)  # spawned workers get the parent's sys.path, so they load the plug-in
    importlib.invalidate_caches()
    aebench.registry(refresh=True)
    try:
        wb = Workbench({**TINY, "seeds": [0, 1]}, out=tmp_path)
        wb.executor.value = "process"
        with pytest.warns(UserWarning, match="worker process died: exit 3"):  # as the CLI says it, once
            wb.launch()
            wb.wait(timeout=300)
        assert "worker process died: exit 3" in wb.table.value and "1 failed" in wb.status.value
        assert "Traceback" not in wb.status.value + wb.table.value
    finally:  # this process must not keep a plug-in that ends it
        sys.path.remove(site)
        importlib.invalidate_caches()
        aebench.registry(refresh=True)
        assert "aebench_dying_ui" not in {
            i.plugin_name for i in aebench.registry().manager.hook.aebench_on_epoch_end.get_hookimpls()
        }


def test_stop_reaches_process_workers_from_the_launch_thread(tmp_path):
    """The Workbench launches from its own thread: the process executor must neither set signal
    handlers there (Python refuses) nor ignore Stop; its workers mark their run interrupted."""
    wb = Workbench({**TINY, "schedule": {"name": "joint", "epochs": 100_000}}, out=tmp_path)
    wb.executor.value = "process"
    wb.launch()
    status = tmp_path / "ui-1" / "runs" / "run-0000" / "status.json"
    deadline = time.monotonic() + 240
    while not (status.is_file() and json.loads(status.read_text()).get("pid")) and time.monotonic() < deadline:
        time.sleep(0.5)
    wb.stop()
    wb.wait(timeout=240)
    assert json.loads(status.read_text())["status"] == "interrupted", wb.status.value
    assert "Resume" in wb.status.value and "Traceback" not in wb.status.value


@pytest.mark.parametrize(
    "where", ["out root is a file", "out root cannot be created", "data cache is a file", "HOME=/proc"]
)
def test_file_system_and_cache_errors_are_one_message_in_the_status(tmp_path, monkeypatch, where):
    """Issue 22: file-system errors and an unusable data cache: one message naming the path."""
    spec, out = TINY, tmp_path / "runs"
    if where == "out root is a file":
        out.write_text("x")
        named = str(out)
    elif where == "out root cannot be created":
        out, named = Path("/proc/aebench-runs"), "/proc/aebench-runs"
    else:
        if where == "HOME=/proc":  # the default cache folder ~/.cache/aebench cannot be created
            monkeypatch.delenv("AEBENCH_DATA", raising=False)
            monkeypatch.setenv("HOME", "/proc")
        else:
            (tmp_path / "afile").write_text("x")
            monkeypatch.setenv("AEBENCH_DATA", str(tmp_path / "afile"))
        spec = {**TINY, "data": {"name": "rect", "subset": 100, "eval_subset": 50}}
        named = "set AEBENCH_DATA to a folder"
    wb = Workbench(spec, out=out)
    wb.launch_button.click()  # as the user does: no exception escapes into the notebook
    wb._thread and wb._thread.join(60)
    message = wb.status.value
    assert named in message and "Traceback" not in message and message.count("<span") == 1, message
    assert not wb.launch_button.disabled and not wb.running


def test_report_link_is_served_by_jupyter_or_shown_inline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    wb = Workbench(TINY)
    with pytest.raises(aebench.AebenchError, match="no results yet"):
        wb.open_report()
    wb.launch()
    wb.wait(timeout=120)
    assert not wb.report_button.disabled
    # outside a Jupyter server: the report inline, figures embedded
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "rt"))
    wb.open_report()
    assert "<h1>ui</h1>" in wb.report_link.value and "href" not in wb.report_link.value
    # inside one (what JupyterLab writes for its kernels): a files/ URL relative to its root
    (tmp_path / "rt").mkdir()
    info = {"pid": os.getpid(), "root_dir": str(tmp_path.parent), "base_url": "/lab-base/", "url": "http://x/"}
    (tmp_path / "rt" / "jpserver-1.json").write_text(json.dumps(info))
    monkeypatch.setenv("JPY_PARENT_PID", str(os.getpid()))
    wb.report_button.click()
    assert f"href='/lab-base/files/{tmp_path.name}/aebench-runs/ui-1/report.html'" in wb.report_link.value


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
    assert wb.fields["ensemble"].widget.value and wb.spec.raw["ensemble"] is True
    from aebench.options import PRECISIONS

    precision = wb.fields["precision"]
    assert tuple(precision.dropdown.options) == PRECISIONS
    precision.dropdown.value = "bfloat16"
    assert wb.spec.runs[0].precision == "bfloat16"
    precision.dropdown.value = "float32"
    wb.launch()
    ds = wb.wait(timeout=300)
    assert set(ds["status"].values.ravel()) == {"done"}
    assert xr.open_dataset(wb.out / "runs" / "run-0000" / "metrics.nc").attrs["ensemble_members"] == 2
    # the live plot got every member's curves, with numbers (it showed NaN for ensembles before)
    assert set(wb._curves) == {"run-0000", "run-0001"}
    curves = [wb.curve(r) for r in wb._curves]
    assert all(np.isfinite(list(c.values())).all() and len(c) == 2 for c in curves)


def test_numbers_keep_their_spelling_through_the_form(tmp_path):
    spec = {**TINY, "corruption": {"name": "gaussian", "level": 1}, "optimizer": {"name": "sgd", "lr": 1e-3}}
    wb = Workbench(spec, out=tmp_path)
    assert wb.corruptions.items[0].form.fields["level"].widget.value == "1"
    raw = wb.spec_dict()
    assert raw["corruption"]["level"] == 1 and isinstance(raw["corruption"]["level"], int)
    assert [r.to_json() for r in wb.spec.runs] == [r.to_json() for r in Spec.from_dict(spec).runs]


def test_evaluator_params_have_a_form_while_ticked(tmp_path):
    wb = Workbench(TINY, out=tmp_path)
    parzen = wb.evaluator_forms["parzen"]
    panel = wb.inputs["evaluate"].panels["parzen"]  # its settings under its own name and summary
    assert parzen in panel.children and "<b>parzen</b>" in panel.children[0].value
    assert aebench.registry().get("evaluator", "parzen").summary in unescape(panel.children[0].value)
    assert panel.layout.display == "none" and "evaluate" not in wb.spec.raw  # the default: recon only
    wb.evaluators["parzen"].value = True
    assert panel.layout.display is None and wb.spec.raw["evaluate"]["parzen"] == {}
    samples = parzen.fields["samples"].widget
    samples.value = "500"
    assert wb.spec.raw["evaluate"]["parzen"] == {"samples": 500}
    samples.value = "many"
    assert not wb.valid and wb.compose.titles[7] == "⚠ evaluate (invalid)"
    assert "evaluate.parzen.samples: 'many' is not a whole number" in wb.problems()[7]


# ---------------------------------------------------------------- generated from the registry (#26 item 5)
def test_form_sections_and_models_follow_the_spec_model_and_registry(tmp_path, in_process_plugin, monkeypatch):
    """A third-party component appears in its picker, in the typed model and in sweeps; a new
    component key on the spec model gets its own section with pickers, exported and validated,
    with no edit in aebench/ui."""
    import aebench.spec as spec_module

    class MineParams(RegularizerParams):
        rho: float = Field(0.05, gt=0, lt=1, description="target activation of the mine regularizer")

    class Mine(Regularizer):
        name = "mine"
        summary = "third party"
        Params = MineParams

        def penalty(self, layer, h_in, h_out):
            return h_out.mean()

    mod = types.ModuleType("mine_plugin2")
    mod.aebench_regularizers = aebench.hookimpl(lambda: [Mine])
    in_process_plugin(mod)
    typed = spec_module.typed_spec_model()
    base = {**TINY, "regularizers": [{"name": "mine", "rho": 0.1}]}
    assert typed.model_validate(base).regularizers[0].rho == 0.1  # one model per kind and name
    with pytest.raises(ValueError, match="regularizers.0.mine.rho"):
        typed.model_validate({**TINY, "regularizers": [{"name": "mine", "rho": 2}]})
    with pytest.raises(ValueError, match="does not match any of the expected tags"):
        typed.model_validate({**TINY, "data": {"name": "mnsit"}})

    # a new spec section: a field on the spec model, nothing else
    class Extended(spec_module.SpecModel):
        extras: spec_module.ComponentTable = spec_module.components(
            "regularizer", "list", [], "Test-only section of extra penalties."
        )
        # declared as the callback kind's key is on its branch: no kind named, read from the key
        corruptions: spec_module.ComponentTable = Field([], description="Test-only untagged list.")
        ghosts: spec_module.ComponentTable = spec_module.components("ghost", "list", [], "A kind nobody installed.")

    monkeypatch.setattr(spec_module, "SpecModel", Extended)
    monkeypatch.setattr("aebench.ui.workbench.SpecModel", Extended)
    wb = Workbench(TINY, out=tmp_path)
    assert (
        "extras" in wb.compose.titles
        and "Test-only section" in wb.compose.children[wb.compose.titles.index("extras")].children[0].value
    )
    wb.set({"extras": [{"name": "mine", "rho": 0.2}]})
    assert wb.inputs["extras"].list.items[0].dropdown.value == "mine"
    assert wb.spec_dict()["extras"] == [{"name": "mine", "rho": 0.2}]
    assert "extras.0.rho" in wb.sweepable_keys()
    assert "ghosts" not in wb.compose.titles  # nothing to pick: no section, and a loaded value is kept
    assert Workbench({**TINY, "ghosts": [{"name": "boo"}]}, out=tmp_path).spec_dict()["ghosts"] == [{"name": "boo"}]
    slot = spec_module.component_slots()["corruptions"]
    assert (slot.kind, slot.shape) == ("corruption", "list") and "corruptions" in wb.compose.titles
    wb.inputs["extras"].list.items[0].form.fields["rho"].widget.value = "3"
    assert not wb.valid and wb.compose.titles[wb.sections.index("extras")] == "⚠ extras (invalid)"


def test_every_field_shows_its_description_in_the_page(tmp_path):
    wb = Workbench(TINY, out=tmp_path)
    forms = [wb.data.form, wb.model.form, wb.optimizer.form, *wb.evaluator_forms.values()]
    forms += [p.form for p in wb.corruptions.items + wb.schedules.items]
    checked = 0
    for form in forms:
        for name, inp in form.fields.items():
            info = form.params_cls.model_fields[name]
            if info.description:
                assert inp.row.children[0] is inp.widget
                assert info.description in unescape(inp.row.children[1].value), name
                checked += 1
    assert checked > 30
    for key, inp in wb.fields.items():  # the spec's own keys too
        assert aebench.spec.SpecModel.model_fields[key].description in unescape(inp.row.children[1].value)


def test_the_form_says_how_many_runs_launch_starts(tmp_path):
    wb = Workbench(TINY, out=tmp_path)
    assert "Launch will start <b>1 run</b> (1 sweep point × 1 seed)" in wb.run_count.value
    wb.set({"sweep": {"schedule.name": ["joint", "layerwise"], "corruption.level": [0.1, 0.2, 0.3]}}, seeds=[0, 1])
    assert "<b>12 runs</b> (6 sweep points × 2 seeds)" in wb.run_count.value
    wb.sweep_mode.value = "zip"
    assert "the sweep cannot be read" in wb.run_count.value  # lists of different lengths
    wb.sweep_rows.value = 'schedule.name = ["joint", "layerwise"]\ncorruption.level = [0.1, 0.2]'
    assert "<b>4 runs</b> (2 sweep points × 2 seeds)" in wb.run_count.value
    assert len(wb.spec.runs) == 4


# ---------------------------------------------------------------- honest live views (#27 items 3, 5, 8)
def test_overall_eta_counts_batched_members(tmp_path, monkeypatch):
    """Three members of one batch, 4 epochs each, one epoch a second: after epoch 2 the overall
    ETA is 2 s, as each member's (it counted every fresh run's first epoch as done beforehand)."""
    clock = [100.0]
    monkeypatch.setattr("aebench.ui.workbench.time.monotonic", lambda: clock[0])
    wb = Workbench({**TINY, "seeds": [0, 1, 2]}, out=tmp_path)
    spec = wb.spec
    wb._launched, wb._labels = spec, {r.run_id: r.run_id for r in spec.runs}
    wb._rows = {r.run_id: {"status": "pending"} for r in spec.runs}
    wb._started = clock[0]
    for epoch in (1, 2):
        clock[0] += 1.0
        for r in spec.runs:
            wb._epoch(r.run_id, {"epoch": epoch, "total_epochs": 4, "recon_error/valid": 1.0, "steps": epoch})
    assert "50%" in wb.overall_text.value and "ETA 0:02" in wb.overall_text.value, wb.overall_text.value
    assert all("ETA 0:02" in row.children[2].value for row in wb._bar_rows.values())


def test_a_diverging_member_shows_its_reason_while_its_batch_runs(tmp_path):
    spec = {
        **TINY,
        "model": {"name": "stacked", "layers": [32, 16], "activation": "linear", "output_activation": "linear"},
        "schedule": {"name": "joint", "epochs": 4},
        "optimizer": {"name": "sgd", "lr": 0.01, "batch_size": 50},
        "ensemble": True,
    }
    spec["model"]["loss"] = "squared-error"
    wb = Workbench(spec, out=tmp_path)
    wb.set({"sweep": {"optimizer.lr": [0.01, 1e6]}})
    seen = []
    real = wb._epoch

    def spy(run_id, metrics):
        real(run_id, metrics)
        if run_id == "run-0000" and metrics.get("epoch") == 2:  # the batch still trains its other member
            row = wb._bar_rows.get("run-0001")
            seen.append((wb._rows["run-0001"].get("status"), row and row.children[2].value, wb.table.value))

    wb._epoch = spy
    wb.launch()
    wb.wait(timeout=300)
    status, text, table = seen[0]
    assert status == "failed" and "diverged" in text and "diverged" in table, seen
    assert xr.open_dataset(wb.out / "runs" / "run-0000" / "metrics.nc").attrs["ensemble_members"] == 2
    assert "diverged" in str(wb.results["reason"].sel({"optimizer.lr": 1e6}).item())
    # Resume says what it would do: rerun the failed member from the start, keep the done one
    assert not wb.resume_button.disabled
    assert "Resume will rerun 1 failed run from the start; 1 done run kept" in unescape(wb.resume_note.value)


def test_live_plot_any_variable_with_units_steps_axis_stage_marks_and_save(tmp_path):
    wb = Workbench({**TINY, "schedule": {"name": "layerwise", "epochs": 2}}, out=tmp_path)
    wb.launch()
    wb.wait(timeout=300)
    options = dict((v, label) for label, v in wb.plot_var.options)
    assert {"recon_error", "loss"} <= set(options)
    units = aebench.load_results(wb.out)["recon_error"].attrs["units"]
    assert options["recon_error"] == f"recon_error ({units})"
    fig = wb.figure("recon_error", "epoch")
    ax = fig.axes[0]
    assert ax.get_ylabel() == f"recon_error ({units})" and ax.get_xlabel() == "epoch (all stages)"
    stage_marks = [t.get_text() for t in ax.texts]
    assert len(stage_marks) == 1, stage_marks  # layer 0 for 2 epochs, then layer 1: one change, named
    steps = wb.figure("recon_error", "gradient steps").axes[0]
    assert steps.get_xlabel() == "gradient steps"
    assert max(steps.lines[0].get_xdata()) == int(wb.results["steps"].max())  # gradient steps, not epochs
    wb.plot_var.value = "loss"
    assert "training objective" in wb.figure().axes[0].get_title(loc="left")
    svg = wb.save_figure(fmt="svg")
    png = wb.save_figure(fmt="png")
    assert svg == wb.out / "figures" / "loss-by-epoch.svg" and "<svg" in svg.read_text()[:500]
    assert png.read_bytes().startswith(b"\x89PNG") and "saved" in wb.save_note.value
    # a finished launch has nothing to resume: the button says so and is off
    assert wb.resume_button.disabled and "nothing to resume" in wb.resume_button.tooltip


# ---------------------------------------------------------------- catalogue and compare (#27 items 1, 2)
def test_note_and_tags_go_with_the_launch_and_compare_overlays_launches(tmp_path):
    from aebench import catalogue

    wb = Workbench(TINY, out=tmp_path)
    wb.note.value, wb.tags.value = "the paper's lr", "baseline, lr"
    wb.launch()
    wb.wait(timeout=300)
    first = wb.out
    assert catalogue.notes(first) == catalogue.Notes("the paper's lr", ("baseline", "lr"))
    wb.set({"optimizer.lr": 0.05})
    wb.note.value, wb.tags.value = "", ""
    wb.launch()
    wb.wait(timeout=300)
    assert catalogue.notes(wb.out) == catalogue.Notes()  # an empty note writes nothing
    found = wb.refresh_launches()
    assert found == [first, wb.out]
    assert "baseline, lr" in wb.compare_pick.options[0][0] and "1/1 done" in wb.compare_pick.options[1][0]
    wb.compare_pick.value = tuple(str(p) for p in found)
    ds = wb.compare_launches()
    assert list(ds["launch"].values) == ["ui-1", "ui-2"]
    assert wb.compare_var.value == "recon_error"
    labels = [label for label, v in wb.compare_var.options if v == "recon_error"]
    units = ds["recon_error"].attrs["units"]
    assert labels == [f"recon_error ({units})"]
    ax = wb.compare_figure().axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "launch=ui-1, lr=0.01" in legend and "launch=ui-2, lr=0.05" in legend, legend
    for launch in ("ui-1", "ui-2"):  # each launch's curve is its own results' valid curve
        line = next(ln for ln in ax.lines if ln.get_label().startswith(f"launch={launch}"))
        valid = ax.lines[ax.lines.index(line) + 1]
        expected = aebench.load_results(tmp_path / launch)["recon_error"].sel(split="valid").squeeze().values
        assert np.allclose(valid.get_ydata(), expected)
    assert units in ax.get_ylabel()
    table = wb.compare_table.value
    assert "ui-1" in table and "ui-2" in table and "optimizer.lr" in table and "0.05" in table
    assert "missing" not in table  # the cells a launch never ran are left out
    svg = wb.save_compare(fmt="svg")
    assert svg.suffix == ".svg" and "<svg" in svg.read_text()[:500]


def test_a_plugin_evaluators_per_epoch_metric_can_be_watched_live(tmp_path, in_process_plugin):
    from aebench.components import Evaluator
    from aebench.hookspecs import Metric

    class CodeMean(Evaluator):
        name = "code-mean"
        summary = "mean activation of the top code, per epoch"
        reports = (Metric("code_mean", title="Mean code activation", units="%", scale=100),)

        def on_epoch(self, ctx, epoch):
            x = ctx.splits["valid"].rows(torch.arange(50, device=ctx.device))
            return {"code_mean": xr.DataArray(float(ctx.model.encode(x).mean()), attrs={"units": "1"})}

    mod = types.ModuleType("code_mean_plugin")
    mod.aebench_evaluators = aebench.hookimpl(lambda: [CodeMean])
    in_process_plugin(mod)
    wb = Workbench(TINY, out=tmp_path)
    wb.evaluators["code-mean"].value = True
    wb.launch()
    wb.wait(timeout=300)
    assert ("code_mean (%)", "code_mean") in wb.plot_var.options, wb.table.value  # chosen in the page, with its units
    wb.plot_var.value = "code_mean"
    ax = wb.figure().axes[0]
    assert ax.get_ylabel() == "code_mean (%)" and ax.get_title(loc="left") == "Mean code activation"
    live = [v * 100 for v in wb.curve("run-0000", "code_mean", None).values()]
    assert len(live) == 2 and np.allclose(ax.lines[0].get_ydata(), live) and 0 < min(live) and max(live) < 100


def test_overall_eta_gives_no_credit_for_a_member_that_failed_early(tmp_path, monkeypatch):
    """Two members of a batch, 10 epochs, one diverges in epoch 1: the ETA is the survivor's."""
    clock = [0.0]
    monkeypatch.setattr("aebench.ui.workbench.time.monotonic", lambda: clock[0])
    wb = Workbench({**TINY, "seeds": [0, 1]}, out=tmp_path)
    spec = wb.spec
    wb._launched, wb._labels = spec, {r.run_id: r.run_id for r in spec.runs}
    wb._rows = {r.run_id: {"status": "pending"} for r in spec.runs}
    wb._epoch("run-0001", {"failure": "training diverged", "epoch": 1})
    for epoch in (1, 2):
        clock[0] += 2.0
        wb._epoch("run-0000", {"epoch": epoch, "total_epochs": 10, "recon_error/valid": 1.0, "steps": epoch})
    assert "(1 failed)" in wb.overall_text.value and "ETA 0:16" in wb.overall_text.value, wb.overall_text.value
    assert "ETA 0:16" in wb._bar_rows["run-0000"].children[2].value


def test_a_third_party_component_of_every_kind_in_the_workbench(tmp_path, in_process_plugin):
    """The kit of tests/test_third_party.py (one component of every kind, one file each), in
    process: each is in its picker with its summary and its fields' descriptions, the spec that
    uses them all round-trips and runs from the form, and the evaluator's per-epoch metric is
    offered in the live plot with its units."""
    import textwrap

    from test_third_party import FILES, KINDS, SPEC

    for module, source in FILES.items():
        mod = types.ModuleType(module)
        exec(textwrap.dedent(source), mod.__dict__)
        in_process_plugin(mod)
    reg = aebench.registry()
    text = SPEC + 'callbacks = [{ name = "tpk-tally" }]\n'  # callbacks are chosen per experiment
    wb = Workbench(tomllib.loads(text), out=tmp_path)
    by_kind = {slot.kind: key for key, slot in wb.slots.items()}
    for kind, (_module, name) in KINDS.items():
        if kind == "executor":  # not a spec key: the run section's choice
            assert name in wb.executor.options
            continue
        w = wb.inputs[by_kind[kind]]
        if kind == "evaluator":
            assert w.boxes[name].value and reg.get(kind, name).summary in unescape(w.panels[name].children[0].value)
            continue
        picker = w.picker if hasattr(w, "picker") else w.list.items[0]
        assert picker.dropdown.value == name and reg.get(kind, name).summary in unescape(picker.summary.value)
        for field, inp in picker.form.fields.items():  # every field's description is on the page
            description = picker.form.params_cls.model_fields[field].description or ""
            assert description in unescape(inp.row.children[1].value), (kind, field)
    assert "Fraction of units flipped." in unescape(wb.corruptions.items[0].form.fields["level"].row.children[1].value)
    shipped = Spec.from_toml(_written(tmp_path, text))
    assert [r.to_json() for r in wb.spec.runs] == [r.to_json() for r in shipped.runs]
    wb.set(seeds=[0])
    wb.launch()
    wb.wait(timeout=300)
    assert str(wb.results["status"].item()) == "done", wb.table.value
    assert ("code_mean", "code_mean") in wb.plot_var.options  # its units are "1": a pure number
    wb.plot_var.value = "code_mean"
    ax = wb.figure().axes[0]
    declared = aebench.tables.declared().metrics.get("code_mean")  # another plug-in may declare the name first
    title = declared.title if declared else "mean top-code activation on the validation split"
    assert ax.get_title(loc="left") == title and ax.get_ylabel() == "code_mean"
    assert len(ax.lines[0].get_ydata()) == 4 and [t.get_text() for t in ax.texts] == ["all"]  # two stages, marked


def _written(folder: Path, text: str) -> Path:
    path = folder / "third-party.toml"
    path.write_text(text)
    return path


def test_the_executor_is_picked_with_its_own_options(tmp_path):
    wb = Workbench(TINY, out=tmp_path)
    reg = aebench.registry()
    assert set(wb.executor.options) == set(reg.names("executor")) and wb.executor.value == "local"
    wb.executor.value = "process"
    fields = wb.executor_picker.form.fields
    assert set(fields) == set(reg.get("executor", "process").Params.model_fields)
    name = next(iter(fields))
    description = reg.get("executor", "process").Params.model_fields[name].description or ""
    assert description in unescape(fields[name].row.children[1].value)
    if "workers" in fields:
        fields["workers"].widget.value = "two"
        assert not wb.valid and wb.compose.titles[-1].startswith("⚠ sweep, seeds, device")
        fields["workers"].widget.value = "1"
        assert wb.valid and wb.executor_picker.table() == {"name": "process", "workers": 1}


def test_compare_of_a_sweep_and_a_single_launch_and_its_errors_beside_it(tmp_path):
    """A launch without a sweep beside one sweeping the learning rate: aligned by value (the
    plain one at its own lr); a refused comparison says why beside the Compare button."""
    first = Workbench({**TINY, "name": "plain"}, out=tmp_path)
    first.launch()
    first.wait(timeout=300)
    wb = Workbench({**TINY, "name": "swept"}, out=tmp_path)
    wb.set({"sweep": {"optimizer.lr": [0.02, 0.05]}})
    wb.launch()
    wb.wait(timeout=300)
    ds = wb.compare_launches([first.out, wb.out])
    assert list(ds["optimizer.lr"].values) == [0.01, 0.02, 0.05]
    legend = [t.get_text() for t in wb.compare_figure().axes[0].get_legend().get_texts()]
    assert {"launch=plain-1, lr=0.01", "launch=swept-1, lr=0.02", "launch=swept-1, lr=0.05"} <= set(legend), legend
    table = wb.compare_table.value
    assert table.count("<td>done</td>") == 3 and "missing" not in table
    wb.compare_pick.options = [("nothing", str(tmp_path / "nowhere"))]
    wb.compare_pick.value = (str(tmp_path / "nowhere"),)
    wb.compare.children[0].children[1].children[2].click()  # Compare
    assert "nowhere" in wb.compare_note.value and "<span" in wb.compare_note.value
