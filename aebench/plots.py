"""Figures from results datasets (each function takes an ``xarray.Dataset``, returns a Figure).

Importing this module leaves matplotlib's backend alone: it is the caller's (a notebook's
inline backend; the ``aebench`` command chooses Agg, since it writes files).
"""

from __future__ import annotations

import os

import matplotlib
import matplotlib.lines
import matplotlib.pyplot as plt
import matplotlib.ticker
import pandas as pd
import seaborn as sns
import xarray as xr

#: resolution of saved raster figures (print), and of the copies shown on screen (the report's page)
PRINT_DPI = 300
SCREEN_DPI = 100
#: dimensions that are not a run's: a curve's x axis, a split, a depth, a layer
NOT_RUN_DIMS = ("epoch", "split", "depth", "seed", "layer")


def _sweep_dims(da: xr.DataArray) -> list[str]:
    return [d for d in da.dims if d not in NOT_RUN_DIMS]


def label_runs(df: pd.DataFrame, dims: list[str]) -> pd.Series:
    """One label per row of ``df``: its values of ``dims``, each named by its key (``schedule=joint, lr=0.01``)."""
    from aebench.tables import key_label

    if not dims:
        return pd.Series(["run"] * len(df), index=df.index)
    text = df[dims].apply(lambda col: col.map(_plain))
    if len(dims) == 1:
        return text[dims[0]]
    return text.apply(lambda row: ", ".join(f"{key_label(d, dims)}={row[d]}" for d in dims), axis=1)


def _plain(value) -> str:
    """A coordinate value as a label shows it: 2 for 2.0 (netCDF may keep whole numbers as floats)."""
    value = value.item() if hasattr(value, "item") else value
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def save_figure(fig: plt.Figure, path: str | os.PathLike, dpi: int = PRINT_DPI, formats=("png", "svg")) -> list:
    """Save ``fig`` as ``path.png`` (``dpi``, print resolution by default) and ``path.svg`` (vector), each
    written atomically; returns the paths written. ``path``'s own suffix, if any, is replaced."""
    from pathlib import Path

    from aebench.atomic import atomic_write

    stem = Path(path)
    stem = stem.with_suffix("") if stem.suffix in (".png", ".svg", ".pdf") else stem
    written = []
    for fmt in formats:
        target = stem.parent / f"{stem.name}.{fmt}"
        atomic_write(target, lambda p, fmt=fmt: fig.savefig(p, format=fmt, dpi=dpi, bbox_inches="tight"))
        written.append(target)
    return written


#: short y-axis names of the per-epoch results (the long_name attribute says the rest)
CURVE_LABELS = {
    "recon_error": "reconstruction error",
    "loss": "training loss",
    "recon_error_layer": "reconstruction error",
}


def _t95(values) -> tuple[float, float]:
    """The band of a curve over seeds: the 95 % t-interval of the seed mean (the tables' ±); none for one seed."""
    import numpy as np

    from aebench.evaluate.stats import t_interval

    mean, _, ci = t_interval(np.asarray(values, dtype=float))
    return (mean - ci, mean + ci) if np.isfinite(ci) else (mean, mean)


def _x_label(x: str) -> str:
    return "gradient steps" if x == "steps" else "epoch (all stages, in turn)" if x == "epoch" else x


def curve_frame(ds: xr.Dataset, var: str, splits: tuple[str, ...] = ("train", "test"), x: str = "epoch"):
    """``var`` per epoch as a long table (one row per run, epoch and split), with ``run`` (its sweep values) and
    ``steps`` (gradient steps so far) beside it: the data of :func:`curves`."""
    da = ds[var]
    if "split" in da.dims:
        da = da.sel(split=[s for s in splits if s in list(da["split"].values)])
    other = [d for d in da.dims if d not in ("epoch", "split", "seed") and d in NOT_RUN_DIMS]
    if other:
        raise ValueError(f"{var} also runs over {other}: select one value of each first (ds.sel(...))")
    df = da.to_dataframe(name=var).reset_index().dropna(subset=[var])
    if "steps" in ds and "epoch" in ds["steps"].dims:
        keys = [d for d in ds["steps"].dims]
        steps = ds["steps"].to_dataframe(name="steps").reset_index()[[*keys, "steps"]]
        df = df.merge(steps, on=keys, how="left")
    if x not in df:
        raise ValueError(f"x = {x!r}: the results have no {x} per epoch")
    return df


def curves(
    ds: xr.Dataset,
    var: str = "recon_error",
    splits: tuple[str, ...] = ("train", "test"),
    x: str = "epoch",
    panels: str | None = "data.name",
    stages: bool = True,
    title: str | None = None,
) -> plt.Figure:
    """A per-epoch result, one panel per value of ``panels`` (each with its own y scale), one line per sweep
    point (mean over seeds, band: 95 % t-interval over seeds), ``splits`` as line styles, the legend outside.

    ``x = "steps"`` puts gradient steps on the x axis instead of epochs (layer-wise schedules count
    epochs per layer, so the two axes tell different stories). With ``stages``, a dotted line in
    the run's colour marks where its training stage changes (``layer0`` → ``layer1`` → ``joint``).
    Returns the Figure; its axes are seaborn line plots, to restyle as any matplotlib figure.
    """
    import numpy as np

    from aebench.tables import key_label, units_of

    df = curve_frame(ds, var, splits, x)
    dims = _sweep_dims(ds[var])
    panels = panels if panels in dims else None
    hue_dims = _named([d for d in dims if d != panels], ds)
    df["run"] = label_runs(df, hue_dims)
    runs = list(dict.fromkeys(df["run"]))
    palette = dict(zip(runs, sns.color_palette("deep" if len(runs) <= 10 else "husl", len(runs))))
    values = list(dict.fromkeys(df[panels])) if panels else [None]
    fig, axes = plt.subplots(
        1, len(values), figsize=(2.0 + 3.6 * len(values), 3.6), squeeze=False, layout="constrained"
    )
    styled = "split" in df and df["split"].nunique() > 1
    units = units_of(var, ds) or ds[var].attrs.get("units", "")
    for ax, value in zip(axes[0], values):
        part = df if value is None else df[df[panels] == value]
        sns.lineplot(
            data=part,
            x=x,
            y=var,
            hue="run",
            hue_order=runs,
            palette=palette,
            errorbar=_t95,
            ax=ax,
            style="split" if styled else None,
            style_order=list(splits) if styled else None,
        )
        lo, hi = part[var].min(), part[var].max()
        if lo > 0 and hi / lo > 30:  # an untrained stack beside a trained one: a log axis keeps both readable
            ax.set_yscale("log")
        if stages and "stage" in ds:
            sub = ds if value is None else ds.sel({panels: value})
            mark_stages(ax, sub, x=x, dims=hue_dims, palette=palette)
        if value is not None:
            ax.set_title(f"{key_label(panels)} = {value}", fontsize=10)
        ax.set_xlabel(_x_label(x))
        ax.set_ylabel(f"{CURVE_LABELS.get(var, var.replace('_', ' '))}" + (f" ({units})" if units else ""))
        if x == "epoch":
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    handles, labels = axes[0][0].get_legend_handles_labels()
    if stages and "stage" in ds:
        handles.append(matplotlib.lines.Line2D([], [], color="0.4", ls=":", lw=1))
        labels.append("stage boundary")
    fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)
    n = int(np.max(ds[var].notnull().sum("seed").values)) if "seed" in ds[var].dims else 1
    band = "band: 95 % t-interval over seeds" if n > 1 else "one seed: no band"
    import textwrap

    fig.suptitle("\n".join(textwrap.wrap(title or ds.attrs.get("title", ""), _chars(fig, 10))), fontsize=10)
    fig.supxlabel(f"lines: mean over {n} seed{'s' if n != 1 else ''}; {band}", fontsize=7)
    return fig


def _named(dims: list[str], ds: xr.Dataset) -> list[str]:
    """A zip sweep's or ``[[runs]]``' ``point`` replaced by the keys swept along it (runs named by value)."""
    if "point" not in dims:
        return dims
    along = [str(c) for c in ds.coords if ds[c].dims == ("point",) and c != "point"]
    return [d for d in dims if d != "point"] + along if along else dims


def stage_boundaries(ds: xr.Dataset, x: str = "epoch", dims: list[str] | None = None) -> pd.DataFrame:
    """Where each run's training stage changes: one row per sweep point and change, with ``at`` (on the x
    axis: half an epoch before the new stage's first epoch, or the gradient steps done before it) and
    ``stage`` (the new stage's name). Read from the results' ``stage(epoch)``; seeds agree, the first is used."""
    st = ds["stage"]
    dims = _named(_sweep_dims(st), ds) if dims is None else dims
    df = st.to_dataframe(name="stage").reset_index()
    if "steps" in ds and "steps" not in df:
        keys = list(ds["steps"].dims)
        steps = ds["steps"].to_dataframe(name="steps").reset_index()[[*keys, "steps"]]
        df = df.merge(steps, on=keys, how="left")
    df = df[df["stage"].astype(str) != ""]
    rows = []
    for key, run in df.groupby([*dims, "seed"] if dims else ["seed"], sort=False):
        key = key if isinstance(key, tuple) else (key,)
        run = run.sort_values("epoch")
        changed = run["stage"].astype(str).ne(run["stage"].astype(str).shift()).to_numpy().copy()
        changed[0] = False
        for k in map(int, changed.nonzero()[0]):
            at = run["epoch"].iloc[k] - 0.5 if x == "epoch" else run[x].iloc[k - 1]
            rows.append({**dict(zip([*dims, "seed"], key)), "at": float(at), "stage": str(run["stage"].iloc[k])})
    out = pd.DataFrame(rows, columns=[*dims, "seed", "at", "stage"])
    return out.drop_duplicates(subset=[*dims, "at", "stage"]).drop(columns="seed").reset_index(drop=True)


def mark_stages(ax, ds: xr.Dataset, x: str = "epoch", dims: list[str] | None = None, palette=None) -> None:
    """Dotted vertical lines where each run's training stage changes (see :func:`stage_boundaries`), in the
    run's colour from ``palette`` (its label -> colour) or grey, named by the new stage at the top."""
    import matplotlib.transforms as mtransforms

    found = stage_boundaries(ds, x, dims)
    dims = _named(_sweep_dims(ds["stage"]), ds) if dims is None else dims
    if found.empty:
        return
    found["run"] = label_runs(found, dims)
    top = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    named = set()
    for row in found.itertuples():
        color = (palette or {}).get(row.run, "0.4")
        ax.axvline(row.at, color=color, ls=":", lw=1, alpha=0.9)
        if (row.at, row.stage) not in named:  # one name per place, whatever the number of runs there
            ax.text(
                row.at, 0.99, f" {row.stage}", transform=top, rotation=90, va="top", ha="left", fontsize=6, color="0.3"
            )
            named.add((row.at, row.stage))


def recon_curves(
    ds: xr.Dataset, splits: tuple[str, ...] = ("train", "test"), x: str = "epoch", stages: bool = True
) -> plt.Figure:
    """Reconstruction error per epoch as in Zhou et al. Fig. 3: one panel per data set with its own y scale,
    one line per scheme, train and test as line styles, stage changes marked, the legend outside
    (:func:`curves`; ``x = "steps"`` for gradient steps)."""
    return curves(ds, "recon_error", splits, x=x, stages=stages)


def recon_curves_by_steps(ds: xr.Dataset) -> plt.Figure:
    """:func:`recon_curves` against gradient steps (equal budgets: layer-wise takes more steps per epoch count)."""
    return recon_curves(ds, x="steps")


def _tile(images, nrow: int, pad: int = 1):
    """Tile an array (n, h, w) into one image with ``nrow`` images per row."""
    import numpy as np

    n, h, w = images.shape
    ncol = min(nrow, n)
    rows = -(-n // ncol)
    canvas = np.full((rows * (h + pad) + pad, ncol * (w + pad) + pad), np.nan)
    for k in range(n):
        r, c = divmod(k, ncol)
        canvas[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = images[k]
    return canvas


def _first_run(da: xr.DataArray) -> xr.DataArray:
    extra = [d for d in da.dims if d not in ("unit", "chain", "step", "pixel_y", "pixel_x")]
    return da.isel({d: 0 for d in extra}) if extra else da


def filter_grid(ds: xr.Dataset, per_row: int = 10) -> plt.Figure:
    """First-layer filters of one run as a grid of images (each scaled to its own range)."""
    import numpy as np

    f = _first_run(ds["filters"]).values
    lo = np.nanmin(f, axis=(1, 2), keepdims=True)
    hi = np.nanmax(f, axis=(1, 2), keepdims=True)
    fig, ax = plt.subplots(figsize=(6, 6 * (-(-len(f) // per_row)) / per_row))
    ax.imshow(_tile((f - lo) / np.maximum(hi - lo, 1e-12), per_row), cmap="gray")
    ax.set_axis_off()
    ax.set_title("first-layer filters")
    fig.tight_layout()
    return fig


def sample_grid(ds: xr.Dataset) -> plt.Figure:
    """Consecutive chain samples (rows = chains), the nearest training image in the last column."""
    import numpy as np

    s = _first_run(ds["samples"]).values  # chain, step, y, x
    near = _first_run(ds["samples_nearest"]).values
    chains, steps = s.shape[:2]
    images = np.concatenate([s, near[:, None]], axis=1).reshape(-1, *s.shape[2:])
    fig, ax = plt.subplots(figsize=(0.6 * (steps + 1), 0.6 * chains + 0.4))
    ax.imshow(_tile(images, steps + 1), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title("Markov chain samples | nearest training image", fontsize=9)
    fig.tight_layout()
    return fig


def metric_bars(ds: xr.Dataset, var: str, ci_var: str | None = None) -> plt.Figure:
    """Bars of a scalar metric per sweep point with the report's ± (:func:`aebench.tables.interval_kind`):
    the 95 % t-interval over seeds, or with one seed the metric's own declared interval.

    ``ci_var`` is kept for old callers and ignored: the evaluator's ``Metric.interval`` says it.
    """
    from aebench.tables import columns_of, interval_kind, paper_table, title_of

    dims = [d for d in ds[var].dims if d != "seed" and d in ds.dims]
    columns = columns_of(ds, dims)
    frame = paper_table(ds, var, columns if list(columns) != [""] else {var: {}}, rows=None)
    return table_bars(frame, title=title_of(var, ds), interval=interval_kind(frame))


def table_bars(
    table: pd.DataFrame,
    title: str = "",
    interval: str = "",
    published: pd.DataFrame | None = None,
    ylabel: str | None = None,
) -> plt.Figure:
    """Bars of an :func:`aebench.tables.paper_table` with its own ± as error bars (the report's figure per table).

    One group per row, one bar per column, in the metric's displayed units (its declared
    ``scale``); ``interval`` (:func:`aebench.tables.interval_kind`) is written under the
    axis so the figure says what its bars' ± is. ``published`` (row, column, value, ci in
    the displayed units) adds the paper's values as black marks with their ±.
    """
    import textwrap

    import numpy as np

    from aebench.tables import metric_info

    info = metric_info(table.attrs.get("var", ""))
    labels = list(dict.fromkeys(table.columns.get_level_values(0)))
    rows = [str(r) for r in table.index]
    grouped = len(rows) > 1 or published is not None and not published.empty
    width = 0.8 / max(len(labels), 1) if grouped else 0.7
    n_bars = len(rows) * len(labels)
    fig, ax = plt.subplots(figsize=(min(14, max(4.5, 1.0 + 0.6 * n_bars)), 4.0))
    colors = sns.color_palette("deep", len(labels))
    x = np.arange(len(rows))
    marked = False
    for k, label in enumerate(labels):
        mean = table[(label, "mean")].to_numpy(float) * info.scale
        ci = table[(label, "ci")].to_numpy(float) * info.scale
        err = np.where(np.isfinite(ci), ci, 0)
        if (label, "lo") in table:  # the cell's own bounds: a t-interval, or a range (median, min–max)
            lo = table[(label, "lo")].to_numpy(float) * info.scale
            hi = table[(label, "hi")].to_numpy(float) * info.scale
            err = np.vstack([np.where(np.isfinite(lo), mean - lo, 0), np.where(np.isfinite(hi), hi - mean, 0)])
        pos = x - 0.4 + width * (k + 0.5) if grouped else np.array([k])
        ax.bar(pos, mean, width, yerr=err, capsize=3, color=colors[k], ecolor="0.35", label=label)
        for j, row in enumerate(rows):
            hit = _published(published, row, label)
            if hit is not None:  # beside the bar's own error bar, so the two intervals can be told apart
                at, tag = pos[j] + width * 0.3, None if marked else "paper"
                ax.errorbar(at, hit[0], yerr=hit[1], fmt="D", color="black", ms=4, capsize=2, label=tag)
                marked = True
    if grouped:
        ax.set_xticks(x, rows)
        if len(labels) > 1 or marked:
            ax.legend(fontsize=7, ncol=min(len(labels) + marked, 3), loc="best")
    else:  # one row: the columns name the bars themselves
        tilt = len(labels) > 3
        ax.set_xticks(np.arange(len(labels)), labels, rotation=20 if tilt else 0, ha="right" if tilt else "center")
    ax.set_ylabel(ylabel if ylabel is not None else info.units)
    ax.set_title("\n".join(textwrap.wrap(title or info.title, _chars(fig, 9))), fontsize=9)
    if interval:
        said = (
            f"bars: median; error bars: min–max {interval.removeprefix('median (min–max) ')}"
            if interval.startswith("median")
            else f"error bars: {interval}"
        )
        note = textwrap.wrap(said, _chars(fig, 7))
        fig.text(0.01, 0.01, "\n".join(note), fontsize=7, va="bottom")
        fig.tight_layout(rect=(0, 0.035 * len(note) + 0.02, 1, 1))
    else:
        fig.tight_layout()
    return fig


def _chars(fig: plt.Figure, fontsize: float) -> int:
    """How many characters of text at ``fontsize`` fit on one line of ``fig`` (a sans-serif character is about
    0.6 em wide), so titles and notes wrap instead of running off the figure."""
    return max(20, int(fig.get_figwidth() * 72 / (0.6 * fontsize)) - 4)


def _published(published: pd.DataFrame | None, row: str, column: str) -> tuple[float, float] | None:
    if published is None or published.empty:
        return None
    hit = published[(published["row"].astype(str) == row) & (published["column"].astype(str) == column)]
    if not len(hit):
        return None
    ci = hit["ci"].iloc[0] if "ci" in hit else None
    return float(hit["value"].iloc[0]), float(ci) if pd.notna(ci) else 0.0


def error_histogram(ds: xr.Dataset, var: str = "finetune_error", by: str | None = None) -> plt.Figure:
    """Histogram of a test error over seeds, one colour per value of ``by`` (Erhan et al. Fig. 1).

    Runs whose flags leave ``var`` out (:func:`aebench.evaluate.flags.counts`) are not drawn."""
    from aebench.evaluate.flags import counts

    ok = counts(ds, var)
    da = ds[var] if ok is None else ds[var].where(ok)
    df = da.to_dataframe(name=var).reset_index().dropna(subset=[var])
    dims = [d for d in ds[var].dims if d != "seed"]
    by = by or (dims[0] if dims else None)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    sns.histplot(data=df, x=var, hue=by, element="step", ax=ax)
    units = ds[var].attrs.get("units", "")
    units = "fraction" if units == "1" else units
    ax.set_xlabel(ds[var].attrs.get("long_name", var) + (f" ({units})" if units else ""))
    ax.set_ylabel("seeds")
    fig.tight_layout()
    return fig


def supervised_error_histogram(ds: xr.Dataset) -> plt.Figure:
    """The seed histogram of the run's own fine-tuned test error (``class_test_error``), per arm."""
    fig = error_histogram(ds, "class_test_error")
    fig.axes[0].set_xlabel("fine-tuned test error (fraction of test examples)")
    return fig


def trajectory_embedding(ds: xr.Dataset, method: str = "isomap", n_neighbors: int = 10) -> pd.DataFrame:
    """Embed every run's per-epoch outputs jointly in 2-D (all runs share one embedding)."""
    import numpy as np
    from sklearn.manifold import TSNE, Isomap

    da = ds["trajectory_outputs"]
    df = da.to_dataframe().reset_index().dropna(subset=["trajectory_outputs"])
    keys = [d for d in da.dims if d != "output_unit"]
    wide = df.pivot_table(index=keys, columns="output_unit", values="trajectory_outputs").dropna()
    x = wide.to_numpy()
    if method == "tsne":
        xy = TSNE(2, perplexity=min(30, max(2, len(x) // 4)), random_state=0, init="pca").fit_transform(x)
    else:
        xy = Isomap(n_neighbors=min(n_neighbors, len(x) - 1), n_components=2).fit_transform(x)
    out = wide.index.to_frame(index=False)
    out["x"], out["y"] = np.asarray(xy[:, 0]), np.asarray(xy[:, 1])
    return out


def trajectory_scatter(ds: xr.Dataset, method: str = "isomap") -> plt.Figure:
    """Function-space trajectories: one point per run and epoch, coloured by scheme, sized by epoch."""
    df = trajectory_embedding(ds, method)
    dims = [c for c in df.columns if c not in ("epoch", "seed", "x", "y")]
    df["scheme"] = label_runs(df, dims)
    fig, ax = plt.subplots(figsize=(6, 5))
    sns.scatterplot(data=df, x="x", y="y", hue="scheme", size="epoch", alpha=0.7, ax=ax)
    ax.set_title(f"function-space trajectories ({method})")
    ax.set_xlabel(f"{method} component 1 (no units: an embedding)")
    ax.set_ylabel(f"{method} component 2")
    fig.tight_layout()
    return fig
