"""Reports that survive a trimmed spec: warned before it starts (and by validate), a left-out table said in
words, the Spec section names the published file, the run summary keeps its width."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import tomli_w
from conftest import TINY, edit, write_spec

import aebench
from aebench.report import summary

REPORT = """
seeds = [0, 1]
[sweep]
"schedule.name" = ["joint", "layerwise"]

[[report]]
title = "SVM table"
metric = "svm_error"
rows = "data.name"
published = "pub.csv"
columns = { J = { "schedule.name" = "joint" }, L = { "schedule.name" = "layerwise" } }

[[report]]
title = "Recon table"
metric = "recon_test"
rows = "data.name"
published = "pub.csv"
columns = { J = { "schedule.name" = "joint" }, U = { "schedule.name" = "pretrain-joint" } }
"""


def trimmed(tmp_path):
    (tmp_path / "pub.csv").write_text("row,column,value,ci\ndigits,J,10.0,1.0\ndigits,L,11.0,1.0\ndigits,U,9.0,1.0\n")
    return write_spec(tmp_path, edit(TINY, "seeds = [0]\n", "") + REPORT)


def test_validate_and_run_warn_before_anything_starts(cli, tmp_path):
    spec = trimmed(tmp_path)
    code, out, _ = cli("validate", spec)
    assert code == 0
    assert (
        "warning: [[report]] table 'SVM table' will be left out of the report: its metric svm_error (Linear SVM "
        "test error) is written by the svm evaluator, which this spec does not run (it runs recon)." in out
    )
    assert (
        "warning: [[report]] table 'Recon table' will be left out of the report: its column U selects "
        "schedule.name = pretrain-joint, which no run of this spec has (they have joint, layerwise)." in out
    )
    code, out, err = cli("run", spec, "--out", tmp_path / "out", "--quiet")
    assert code == 0
    assert err.count("aebench: warning: [[report]] table") == 2
    code, _, _ = cli("report", tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "This table is left out: its metric svm_error (Linear SVM test error) is written by the svm evaluator" in md
    assert "This table is left out: its column U selects schedule.name = pretrain-joint" in md
    assert "np.str_" not in md and "[np." not in md


def test_the_preset_as_shipped_has_no_gap_and_a_trimmed_one_names_each(cli, tmp_path):
    spec = aebench.Spec.from_toml("zhou2015-dae-reduced")
    from aebench.reference import report_gaps

    assert report_gaps(spec.raw, spec.runs) == []
    raw = copy.deepcopy(spec.raw)  # the case: untick parzen and finetune
    del raw["evaluate"]["parzen"], raw["evaluate"]["finetune"]
    path = tmp_path / "trimmed.toml"
    path.write_text(tomli_w.dumps(raw))
    code, out, _ = cli("validate", path)
    warned = [line for line in out.splitlines() if line.startswith("warning:")]
    assert code == 0 and len(warned) == 2
    assert "parzen evaluator" in warned[0] and "finetune evaluator" in warned[1]


def test_the_spec_section_names_the_published_file(cli, tmp_path):
    spec = trimmed(tmp_path)
    cli("run", spec, "--out", tmp_path / "out", "--quiet")
    cli("report", tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    shown = md[md.index("## Spec") :]
    assert 'published = "pub.csv"' in shown and "published_rows = 3" in shown
    assert "value = 10.0" not in shown and "row =" not in shown
    # the results still carry the numbers themselves
    assert "value = 10.0" in aebench.load_results(tmp_path / "out").attrs["spec"]


@pytest.mark.filterwarnings("ignore:.*will be left out")
def test_a_run_folder_of_the_spec_before_published_from_still_resumes(tmp_path):
    """Results written before the file name was kept are still this spec's own (resume is not refused)."""
    spec = trimmed(tmp_path)
    out = tmp_path / "out"
    aebench.run(spec, out=out, progress=False)
    saved = (out / "spec.toml").read_text()
    (out / "spec.toml").write_text("\n".join(ln for ln in saved.splitlines() if "published_from" not in ln))
    ds = aebench.run(spec, out=out, progress=False, resume=True)
    assert set(np.ravel(ds["status"].values)) == {"done"}


def test_the_summary_keeps_its_width_when_a_cell_leaves_runs_out(tmp_path):
    spec = write_spec(tmp_path, edit(TINY, "seeds = [0]", "seeds = [0, 1, 2]"))
    ds = aebench.run(spec, out=tmp_path / "out", progress=False)
    plain = summary(ds)
    flagged = ds.copy()
    flagged["converged"] = xr_like(ds["status"], [1, 0, 1])
    lines = summary(flagged)
    columns = len(lines[0].split()) - 1
    assert len(lines[0]) <= len(plain[0]) + 2 * columns  # each column no wider than its mark
    assert lines[1].split()[-1] == "*" and "not converged" not in lines[1]
    assert lines[-1] == "* a cell without the runs that did not converge (1 in all; the report lists them)"


def xr_like(da, values):
    return da.copy(data=np.asarray(values).reshape(da.shape))
