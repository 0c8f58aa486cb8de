"""The plug-in core: registry, real third-party distributions, conflicts, broken plug-ins."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from conftest import FIXTURES, make_distribution, pip_install_target, run_aebench, tiny_toml

import aebench
from aebench.components import BASES
from aebench.errors import PluginError
from aebench.plugins import build_registry

BUILTINS = {
    "model": {"stacked"},
    "callback": {"early-stopping", "divergence", "checkpoint"},
    "corruption": {"none", "gaussian", "masking", "salt-pepper", "code-noise"},
    "regularizer": {"weight-l2", "weight-l1", "activity-l1", "kl-sparsity", "contractive"},
    "schedule": {
        "joint",
        "layerwise",
        "layerwise-input",
        "pretrain-joint",
        "pretrain-joint-reg",
        "alpha",
        "finetune",
        "supervised",
        "hybrid",
    },
    "dataset": {"mnist", "digits"},
    "evaluator": {"recon"},
    "optimizer": {"sgd", "rmsprop", "adam", "adamw", "adadelta"},
    "executor": {"local", "process", "dask"},
}


def test_registry_lists_every_builtin_by_kind():
    reg = aebench.registry()
    assert reg.kinds()[:9] == [
        "model",
        "corruption",
        "regularizer",
        "schedule",
        "dataset",
        "evaluator",
        "optimizer",
        "executor",
        "callback",
    ]
    for kind, names in BUILTINS.items():
        assert names <= set(reg.names(kind)), kind
        for name in names:
            cls = reg.get(kind, name)
            assert issubclass(cls, BASES[kind]) and cls.name == name and cls.summary
            assert reg.entry(kind, name).dist == "aebench"


def test_unknown_name_suggests_close_matches():
    with pytest.raises(PluginError, match=r"unknown corruption 'gausian'.*Did you mean 'gaussian'"):
        aebench.registry().get("corruption", "gausian")
    with pytest.raises(PluginError, match="unknown kind"):
        aebench.registry().names("optimiser")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The fixture distribution installed for real into a private site folder."""
    target = tmp_path_factory.mktemp("site")
    pip_install_target(FIXTURES / "aebench-fixture-plugin", target)
    assert list(target.glob("aebench_fixture_plugin-*.dist-info"))
    return target


def test_third_party_plugin_is_listed_validated_and_runs(site, tmp_path):
    listing = run_aebench(["plugins", "--json"], pythonpath=site)
    assert listing.returncode == 0, listing.stderr
    corruptions = {c["name"]: c for c in json.loads(listing.stdout)["kinds"]["corruption"]}
    assert corruptions["flip"]["distribution"] == "aebench-fixture-plugin"
    assert corruptions["flip"]["params"]["properties"]["level"]["maximum"] == 1

    spec = tmp_path / "flip.toml"
    spec.write_text(tiny_toml({"corruption.name": "flip"}))
    assert run_aebench(["validate", spec], pythonpath=site).returncode == 0
    # Without the distribution on the path the name is unknown: proof the entry point did it.
    missing = run_aebench(["validate", spec])
    assert missing.returncode == 2 and "unknown corruption 'flip'" in missing.stderr
    done = run_aebench(["run", spec, "--out", tmp_path / "out", "--quiet"], pythonpath=site)
    assert done.returncode == 0, done.stderr
    ds = aebench.load_results(tmp_path / "out")
    assert str(ds["status"].item()) == "done" and "flip" in ds.attrs["spec"]


def test_duplicate_names_are_a_conflict_naming_both_distributions(site, tmp_path):
    proj = make_distribution(
        tmp_path,
        "aebench-shadow",
        "aebench_shadow",
        """
        from aebench import hookimpl
        from aebench.components import Corruption

        class Flip(Corruption):
            name = "flip"
            summary = "another flip"

            def __call__(self, h, generator):
                return h

        @hookimpl
        def aebench_corruptions():
            return [Flip]
        """,
    )
    pip_install_target(proj, site.parent / "shadow")
    path = f"{site}:{site.parent / 'shadow'}"
    listing = run_aebench(["plugins", "--json"], pythonpath=Path(path))
    data = json.loads(listing.stdout)
    assert {"kind": "corruption", "name": "flip", "distributions": ["aebench-fixture-plugin", "aebench-shadow"]} in [
        {**c, "distributions": sorted(c["distributions"])} for c in data["conflicts"]
    ]
    assert "flip" not in [c["name"] for c in data["kinds"]["corruption"]]
    spec = tmp_path / "flip.toml"
    spec.write_text(tiny_toml(corruption={"name": "flip"}))
    res = run_aebench(["validate", spec], pythonpath=Path(path))
    assert res.returncode == 2
    assert "aebench-fixture-plugin" in res.stderr and "aebench-shadow" in res.stderr and "Traceback" not in res.stderr


def test_plugin_that_fails_to_import_is_isolated(tmp_path):
    proj = make_distribution(tmp_path, "aebench-broken", "aebench_broken", "raise ImportError('needs libfoo')\n")
    target = tmp_path / "site"
    pip_install_target(proj, target)
    res = run_aebench(["plugins", "--json"], pythonpath=target)
    assert res.returncode == 0
    data = json.loads(res.stdout)
    assert data["broken"] == [
        {"plugin": "aebench_broken", "distribution": "aebench-broken", "error": "ImportError: needs libfoo"}
    ]
    assert {c["name"] for c in data["kinds"]["corruption"]} >= BUILTINS["corruption"]  # the rest loaded
    text = run_aebench(["plugins"], pythonpath=target)
    assert "BROKEN plug-in 'aebench_broken'" in text.stdout and "needs libfoo" in text.stderr  # the warning


def test_hook_that_raises_or_returns_junk_is_isolated():
    import types

    bad = types.ModuleType("bad_plugin")
    bad.aebench_models = aebench.hookimpl(lambda: 1 / 0)
    junk = types.ModuleType("junk_plugin")
    junk.aebench_datasets = aebench.hookimpl(lambda: [object])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg = build_registry(extra_plugins=[bad, junk])
    assert {b.plugin for b in reg.broken} == {"bad_plugin", "junk_plugin"}
    assert "ZeroDivisionError" in [b for b in reg.broken if b.plugin == "bad_plugin"][0].error
    assert any("bad_plugin" in str(w.message) for w in caught)
    assert "stacked" in reg.names("model") and "mnist" in reg.names("dataset")


def test_every_hook_is_called(tmp_path, tiny_spec):
    """Each hookspec reaches a plug-in: component hooks by registration, callbacks by a run."""
    import types

    from aebench import hookspecs
    from aebench.components import Evaluator

    calls: list[str] = []

    class Probe(Evaluator):
        name = "probe"
        summary = "records that it was asked"

    mod = types.ModuleType("probe_plugin")
    mod.aebench_evaluators = aebench.hookimpl(lambda: [Probe])
    mod.aebench_on_run_start = aebench.hookimpl(lambda run: calls.append(f"start {run.run_id}"))
    mod.aebench_on_epoch_end = aebench.hookimpl(
        lambda run, epoch, metrics: calls.append(f"epoch {epoch} {sorted(metrics)}")
    )
    mod.aebench_on_run_end = aebench.hookimpl(lambda run, result: calls.append(f"end {result is not None}"))
    ready: list = []
    mod.aebench_registry_ready = aebench.hookimpl(lambda registry: ready.append(registry))
    reg = aebench.register_plugin(mod)
    try:
        assert reg.entry("evaluator", "probe").plugin == "probe_plugin"
        assert ready and ready[-1] is reg
        assert set(hookspecs.KIND_HOOKS.values()) | {
            "aebench_on_run_start",
            "aebench_on_epoch_end",
            "aebench_on_run_end",
            "aebench_registry_ready",
        } == {n for n in dir(hookspecs) if n.startswith("aebench_")}
        aebench.run(tiny_spec, out=tmp_path / "o", progress=False)
    finally:
        from aebench import plugins

        plugins._EXTRA.clear()
        aebench.registry(refresh=True)
    assert calls[0] == "start run-0000" and calls[-1] == "end True"
    assert calls[1].startswith("epoch 1 ") and "recon_error/test" in calls[1] and "loss" in calls[1]
    assert len(calls) == 4


PROBE_REPORTED = (
    tiny_toml(evaluate={"recon": {"every": 0}, "probe-score": {}}, sweep={"optimizer.lr": [0.01, 0.02]})
    + """

[[report]]
title = "Probe table"
metric = "probe_score"
rows = "data.name"
select = ["optimizer.lr"]
[report.columns]
"joint" = { "schedule.name" = "joint" }
"""
)


def _probe_plugin():
    """A third party's evaluator that declares its report metadata and nothing else: no core edit."""
    import types

    import matplotlib.pyplot as plt
    import xarray as xr
    from pydantic import Field

    from aebench.components import Evaluator, Params
    from aebench.hookspecs import Criterion, Figure, Metric, Note

    def probe_figure(ds):
        fig, ax = plt.subplots()
        ax.plot(ds["probe_score"].values.ravel())
        return fig

    class ProbeParams(Params):
        knobs: list[int] = Field([0, 1], description="Knob values tried.")

    class ProbeScore(Evaluator):
        name = "probe-score"
        Params = ProbeParams
        summary = "A score that is 10 × the learning rate; its validation twin prefers the smaller one."
        reports = (
            Metric(
                "probe_score",
                title="Probe score",
                units="%",
                scale=100,
                higher_is_better=True,
                interval="probe_score_ci",
                interval_factor=2.0,
                interval_words="twice the probe's own spread",
                criterion=Criterion("probe_valid", words="validation probe score (best knob)", best_over=("knob",)),
            ),
            Figure("probe_figure", needs="probe_score", draw=probe_figure, title="The probe's own figure"),
            Note(lambda values: f"probe knob grid {values['knobs']}"),
        )

        def evaluate(self, ctx):
            lr = ctx.spec.optimizer.params.lr
            return {
                "probe_score": xr.DataArray(10 * lr, attrs={"long_name": "probe", "units": "1"}),
                "probe_score_ci": xr.DataArray(0.025, attrs={"long_name": "spread", "units": "1"}),
                # lower is better (the default): the smaller lr wins, whatever the probe_score says
                "probe_valid": xr.DataArray([lr, lr + 1], dims="knob", coords={"knob": [0, 1]}),
            }

    mod = types.ModuleType("probe_report_plugin")
    mod.aebench_evaluators = aebench.hookimpl(lambda: [ProbeScore])
    return mod


def test_a_plugin_evaluator_reports_like_a_builtin(tmp_path, cli):
    """Title, interval, selection rule and figures come from the plug-in's declarations alone."""
    from aebench import plugins

    aebench.register_plugin(_probe_plugin())
    try:
        out = tmp_path / "o"
        aebench.run(aebench.Spec.from_text(PROBE_REPORTED), out=out, progress=False)
        code, stdout, err = cli("report", out)
    finally:
        plugins._EXTRA.clear()
        aebench.registry(refresh=True)
    assert code == 0, err
    md = (out / "report.md").read_text()
    # its own titled table, in its units, with its own interval (one seed: the declared one, × 2, in words)
    assert "## Probe score (%)" in md
    assert "| lr=0.01 | lr=0.02 |" in md.replace("experiment | ", "")
    assert "10.00 ± 5.00" in md and "20.00 ± 5.00" in md
    assert "the metric's own 95% interval from one seed (twice the probe's own spread)" in md
    # the [[report]] table chose lr by the plug-in's criterion (lower probe_valid: 0.01), not by reconstruction
    assert "optimizer.lr chosen per cell on validation probe score (best knob)" in md
    assert "Left open by the paper, chosen here: probe knob grid [0, 1]; " in md  # its own Note (then the optimizer)
    section = md[md.index("## Probe table") :]  # no published numbers: measured only, no "Paper vs"
    section = section.split("\n## ")[0]  # the [[report]] section alone (it leads the report)
    assert "10.00 ± 5.00" in section and "| lr=0.01 |" in section and "20.00" not in section
    # a figure per table and its own declared figure, beside the report and in the HTML
    files = {p.name.rsplit("-", 1)[0] for p in (out / "report_files").iterdir()}  # slug-<hash>.png
    assert {"table_probe_score", "report_1_probe_score", "probe_figure"} <= files
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 3 and "The probe&#x27;s own figure" in page
    assert "<h2>Probe score (%)</h2>" in page and "<caption>" in page


def test_a_wrong_report_declaration_fails_where_it_is_made():
    """Checked when the plug-in's module defines it (so an entry-point plug-in is listed as broken)."""
    from aebench.hookspecs import Criterion, Figure, Metric

    with pytest.raises(TypeError, match="Metric.scale must be a positive number"):
        Metric("x", scale=0)
    with pytest.raises(TypeError, match="Metric.figure"):
        Metric("x", figure="pie")
    with pytest.raises(TypeError, match="Metric.criterion must be a Criterion"):
        Metric("x", criterion="valid_x")
    with pytest.raises(TypeError, match="Figure.draw"):
        Figure("f", needs="x", draw="not a path")
    with pytest.raises(TypeError, match="Criterion.var must be a non-empty string"):
        Criterion("")
    assert Criterion("valid_x").name == "valid_x" and Metric("x").title == "x"


def _report_plugin(plugin: str, reports):
    """Register a plug-in with one evaluator whose ``reports`` is built by ``reports()`` while the
    plug-in hands over its classes; return the registry and the plug-in's ``broken`` entry."""
    import types

    from aebench.components import Evaluator

    def evaluators():
        class Reporting(Evaluator):
            name = "reporting"
            summary = "an evaluator with a report declaration under test"

        Reporting.reports = reports()
        return [Reporting]

    mod = types.ModuleType(plugin)
    mod.aebench_evaluators = aebench.hookimpl(evaluators)
    with pytest.warns(Warning, match=plugin):
        reg = build_registry(extra_plugins=[mod])
    (broken,) = [b for b in reg.broken if b.plugin == plugin]
    return reg, broken


def test_a_broken_declaration_lists_the_plugin_as_broken():
    """A declaration that fails while the plug-in hands over its classes: the plug-in is broken, the rest load."""
    from aebench.hookspecs import Metric

    reg, broken = _report_plugin("bad_report_plugin", lambda: (Metric("bad", scale=0),))
    assert "Metric.scale must be a positive number" in broken.error and "svm" in reg.names("evaluator")


def test_reports_holding_something_else_list_the_plugin_as_broken():
    """A ``reports`` item that is not a declaration (a bare variable name, say) would be ignored, and the
    plug-in's results go unreported without a word: the plug-in is listed as broken instead."""
    reg, broken = _report_plugin("loose_report_plugin", lambda: ("loose_error",))
    assert "Reporting.reports must hold Metric" in broken.error and "'loose_error'" in broken.error
    assert "reporting" not in reg.names("evaluator") and "svm" in reg.names("evaluator")


def test_the_report_core_names_no_evaluators_variable():
    """What the report knows about an evaluator comes from its declarations: no built-in evaluator's variable,
    criterion or figure is spelled in the report, the tables, the reference notes or the CLI (docstrings aside)."""
    import ast
    import re

    from aebench.tables import declared

    decl = declared()
    names = set(decl.metrics) | decl.auxiliary | {f.name for f in decl.figures} | {f.needs for f in decl.figures}
    names |= {c.var for c in decl.criteria.values()} | set(decl.criteria)
    names -= {"train_seconds", "class_error", "class_test_error", "class_test_error_histogram"}  # tables.CORE_REPORTS
    assert {"svm_error", "parzen_ll_se", "svm_valid_error", "svm_C_at_edge", "recon_curves"} <= names
    for module in ("report", "tables", "reference", "cli"):
        tree = ast.parse((Path(aebench.__file__).parent / f"{module}.py").read_text())
        docs = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        words = {
            word
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
            for word in re.findall(r"\w+", n.value)
        }
        assert not words & names, (module, sorted(words & names))


def test_a_notebook_plugin_class_with_staticmethod_hookimpls_registers_every_hook(in_process_plugin):
    """Tutorial 05's style: a class whose hookimpls are marked staticmethods (pluggy reads the marker
    statically, from the staticmethod): its component hook and its callback hook both register."""
    from aebench.components import Corruption

    class Same(Corruption):
        name = "staticmethod-same"
        summary = "Leaves the input as it is."

        def __call__(self, h, generator):
            return h

    class Plugin:
        aebench_corruptions = aebench.hookimpl(staticmethod(lambda: [Same]))
        aebench_on_epoch_end = aebench.hookimpl(staticmethod(lambda run, epoch, metrics: None))

    in_process_plugin(Plugin)
    reg = aebench.registry()
    assert reg.get("corruption", "staticmethod-same") is Same
    impls = [i.plugin_name for i in reg.manager.hook.aebench_on_epoch_end.get_hookimpls()]
    assert any("Plugin" in n for n in impls), impls
