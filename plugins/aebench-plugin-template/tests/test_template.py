"""The template's components pass aebench's contract suite and run from a spec."""

import pytest

import aebench
from aebench.testing import check_component

KINDS = {
    "model": "template-linear",
    "corruption": "template-uniform",
    "regularizer": "template-max-norm",
    "schedule": "template-top-down",
    "dataset": "template-blobs",
    "evaluator": "template-code-stats",
}


@pytest.mark.parametrize("kind,name", KINDS.items())
def test_installed_and_passes_the_contract(kind, name):
    entry = aebench.registry().entry(kind, name)
    assert entry.dist == "aebench-plugin-template"  # found through the entry point
    check_component(entry.cls)


def test_runs_from_a_spec(tmp_path):
    spec = aebench.Spec.from_dict(
        {
            "name": "template",
            "data": {"name": "template-blobs"},
            "model": {"name": "template-linear", "layers": [4]},
            "corruption": {"name": "template-uniform", "level": 0.1},
            "regularizers": [{"name": "template-max-norm", "weight": 0.01}],
            "schedule": {"name": "template-top-down", "epochs": 2},
            "evaluate": {"recon": {}, "template-code-stats": {}},
        }
    )
    ds = aebench.run(spec, out=tmp_path / "o", progress=False)
    assert str(ds["status"].item()) == "done" and "code_saturated" in ds


def test_declares_how_its_results_are_reported():
    from aebench.tables import metric_info, title_of

    assert title_of("code_saturated") == "Saturated top-layer units (%)"
    assert metric_info("code_saturated").scale == 100 and metric_info("code_mean").summary is False
