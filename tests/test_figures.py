"""Figures to keep and curves that do not mislead: print-resolution PNG and SVG in reports, curves per data
set with their own scale and the legend outside, stage changes marked, a gradient-step axis, units; timing
as median and range, never an interval below zero."""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

import aebench
from aebench import plots
from aebench.report import summary, write_report
from aebench.tables import interval_kind, paper_table

SPEC = """\
name = "figs"
seeds = [0, 1, 2]
data = { name = "digits", subset = 200, eval_subset = 60 }
model = { name = "stacked", layers = [16, 8] }
schedule = { name = "joint", epochs = 2 }
optimizer = { name = "rmsprop", lr = 0.01, batch_size = 50 }
evaluate = { recon = {}, timing = {} }
[sweep]
"schedule.name" = ["joint", "layerwise"]
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("figs")
    (root / "spec.toml").write_text(SPEC)
    out = root / "out"
    ds = aebench.run(root / "spec.toml", out=out, progress=False)
    return out, ds


def two_data_sets(ds: xr.Dataset) -> xr.Dataset:
    """The real results as if run on two data sets of very different scales (the Fig. 3 case: MNIST's
    hundreds of nats beside rect's ten)."""
    parts = []
    for name, factor in (("big", 20.0), ("small", 0.5)):
        part = ds.copy()
        part["recon_error"] = ds["recon_error"] * factor
        parts.append(part.expand_dims({"data.name": [name]}))
    both = xr.concat(parts, "data.name", data_vars="all", coords="different", compat="equals", join="outer")
    return both.assign({"stage": ds["stage"], "steps": ds["steps"]}).assign_attrs(ds.attrs)


def test_report_keeps_every_figure_as_print_png_and_svg(results):
    from PIL import Image

    out, _ = results
    html_path, md_path = write_report(out)
    files = out / "report_files"
    pngs = sorted(files.glob("*.png"))
    # file names are a slug plus a short hash of the full name (collision-free)
    assert {p.stem.rsplit("-", 1)[0] for p in pngs} >= {
        "table_recon_test",
        "table_train_seconds",
        "recon_curves",
        "recon_curves_steps",
    }
    for png in pngs:
        dpi = Image.open(png).info["dpi"]
        assert dpi == pytest.approx((300, 300), abs=0.5), png.name
        svg = png.with_suffix(".svg").read_text()
        assert "<svg" in svg, png.name
    page = html_path.read_text()
    curves = next(p.stem for p in pngs if p.stem.rsplit("-", 1)[0] == "recon_curves")
    assert f'href="report_files/{curves}.svg">SVG</a>' in page and "PNG 300 dpi" in page
    assert f"(report_files/{curves}.svg)" in md_path.read_text()


def test_save_figure_writes_what_it_says(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    written = plots.save_figure(fig, tmp_path / "mine.png", dpi=150)
    assert [p.name for p in written] == ["mine.png", "mine.svg"]
    from PIL import Image

    assert Image.open(tmp_path / "mine.png").info["dpi"] == pytest.approx((150, 150), abs=0.5)
    plt.close(fig)


def test_curves_have_a_panel_per_data_set_each_with_its_own_scale(results):
    _, ds = results
    both = two_data_sets(ds)
    fig = plots.recon_curves(both)
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["data = big", "data = small"]
    for ax, name in zip(axes, ("big", "small")):
        values = both["recon_error"].sel({"data.name": name, "split": ["train", "test"]})
        mean = values.mean("seed")
        lo, hi = ax.get_ylim()
        assert lo <= float(mean.min()) and float(mean.max()) <= hi  # every mean curve is inside its panel
        assert hi < 3 * float(values.max())  # and the panel is scaled to its own data, not the other set's
        assert ax.get_legend() is None and "nats per example" in ax.get_ylabel()
    (legend,) = fig.legends  # one legend, outside the panels
    fig.canvas.draw()
    right = max(ax.get_window_extent().x1 for ax in axes)
    assert legend.get_window_extent().x0 >= right
    texts = [t.get_text() for t in legend.get_texts()]
    assert {"joint", "layerwise", "train", "test", "stage boundary"} <= set(texts)
    plt.close(fig)


def test_stage_boundaries_are_where_the_stage_changes(results):
    _, ds = results
    found = plots.stage_boundaries(ds)
    # independent: epochs per stage from the results' stage(epoch) of each run
    stage = ds["stage"].sel({"schedule.name": "layerwise", "seed": 0}).values.astype(str)
    first_layer1 = int(ds["epoch"].values[list(stage).index("layer1")])
    assert found.to_dict("records") == [{"schedule.name": "layerwise", "at": first_layer1 - 0.5, "stage": "layer1"}]
    by_steps = plots.stage_boundaries(ds, x="steps")
    steps_before = float(ds["steps"].sel({"schedule.name": "layerwise", "seed": 0, "epoch": first_layer1 - 1}))
    assert by_steps["at"].tolist() == [steps_before]
    fig = plots.recon_curves(ds, x="steps")
    (ax,) = fig.axes
    vlines = [ln for ln in ax.lines if len(set(ln.get_xdata())) == 1 and ln.get_linestyle() == ":"]
    assert [float(ln.get_xdata()[0]) for ln in vlines] == [steps_before]
    assert ax.get_xlabel() == "gradient steps"
    joint = ds["steps"].sel({"schedule.name": "joint", "seed": 0}).dropna("epoch").values
    xs = {tuple(ln.get_xdata()) for ln in ax.lines}
    assert tuple(joint) in xs  # the joint run's line is drawn at its own gradient steps
    plt.close(fig)


def test_timing_is_a_median_and_range_never_an_interval_below_zero(results):
    _, ds = results
    lines = summary(ds)
    secs = ds["train_seconds"].sel({"schedule.name": "joint"}).values
    expected = f"{np.median(secs):.2f} ({secs.min():.2f}–{secs.max():.2f})"
    joint = next(line for line in lines if line.startswith("schedule=joint "))
    assert joint.rstrip().endswith(expected)
    assert "train_seconds: median (min–max) over 3 seeds" in lines
    assert "every ±: mean ± 95% t-interval over 3 seeds" in lines  # the other metrics keep their ±
    frame = paper_table(ds, "train_seconds", {"joint": {"schedule.name": "joint"}}, rows=None)
    assert interval_kind(frame) == "median (min–max) over 3 seeds"
    fig = plots.table_bars(frame, interval=interval_kind(frame))
    (ax,) = fig.axes
    (seg,) = ax.collections[0].get_segments()  # the bar's one error bar
    assert seg[:, 1].min() == pytest.approx(secs.min()) and seg[:, 1].max() == pytest.approx(secs.max())
    assert any("bars: median; error bars: min–max over 3 seeds" in t.get_text() for t in fig.texts)
    plt.close(fig)


def test_titles_and_notes_wrap_inside_the_figure(results):
    _, ds = results
    from aebench.tables import with_derived

    frame = paper_table(with_derived(ds), "recon_test", {"joint": {"schedule.name": "joint"}}, rows=None)
    long = "Test reconstruction error through the whole stack, after every stage of a long schedule " * 2
    fig = plots.table_bars(frame, title=long, interval=interval_kind(frame) + "; " + long)
    fig.canvas.draw()
    width = fig.get_window_extent().width
    for text in [fig.axes[0].title, *fig.texts]:
        box = text.get_window_extent()
        assert box.x0 >= 0 and box.x1 <= width + 1, text.get_text()[:40]
    assert re.sub(r"\s+", " ", fig.axes[0].get_title()) == long.strip()
    plt.close(fig)


def test_zip_sweeps_are_named_by_their_values_and_their_stages_marked(tmp_path):
    spec = tmp_path / "zip.toml"
    spec.write_text(
        SPEC.replace("seeds = [0, 1, 2]", "seeds = [0]").replace(
            '[sweep]\n"schedule.name" = ["joint", "layerwise"]',
            '[sweep]\nmode = "zip"\n"schedule.name" = ["joint", "layerwise"]\n"schedule.epochs" = [2, 1]',
        )
    )
    ds = aebench.run(spec, out=tmp_path / "out", progress=False)
    found = plots.stage_boundaries(ds)
    assert found.to_dict("records") == [
        {"schedule.name": "layerwise", "schedule.epochs": 1, "at": 1.5, "stage": "layer1"}
    ]
    fig = plots.recon_curves(ds)
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "schedule=joint, epochs=2" in texts and "schedule=layerwise, epochs=1" in texts
    assert fig.get_supxlabel() == "lines: mean over 1 seed; one seed: no band"
    plt.close(fig)
