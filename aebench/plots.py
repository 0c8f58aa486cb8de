"""Figures from results datasets (each function takes an ``xarray.Dataset``, returns a Figure).

Importing this module leaves matplotlib's backend alone: it is the caller's (a notebook's
inline backend; the ``aebench`` command chooses Agg, since it writes files).
"""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import pandas as pd
import seaborn as sns
import xarray as xr


def _sweep_dims(da: xr.DataArray) -> list[str]:
    return [d for d in da.dims if d not in ("epoch", "split", "depth", "seed", "layer")]


def label_runs(df: pd.DataFrame, dims: list[str]) -> pd.Series:
    if not dims:
        return pd.Series(["run"] * len(df), index=df.index)
    return df[dims].astype(str).agg(", ".join, axis=1) if len(dims) > 1 else df[dims[0]].astype(str)


def recon_curves(ds: xr.Dataset, splits: tuple[str, ...] = ("train", "test")) -> plt.Figure:
    """Reconstruction error per epoch, one line per sweep point, a band over seeds (Zhou et al. Fig. 3)."""
    da = ds["recon_error"].sel(split=list(splits))
    df = da.to_dataframe().reset_index().dropna(subset=["recon_error"])
    dims = _sweep_dims(da)
    df["scheme"] = label_runs(df, dims)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    sns.lineplot(data=df, x="epoch", y="recon_error", hue="scheme", style="split", errorbar=("ci", 95), ax=ax)
    # While a lower layer trains layer-wise, the whole stack includes untrained layers and its
    # error is huge; clip the axis so the converged parts stay readable, and say so.
    lo, hi = float(df["recon_error"].min()), float(df["recon_error"].max())
    if hi > 3 * lo > 0:
        ax.set_ylim(0.95 * lo, 2 * lo)
        ax.text(
            0.01,
            0.98,
            "axis clipped: untrained upper layers during layer-wise stages",
            transform=ax.transAxes,
            fontsize=7,
            va="top",
        )
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel(f"reconstruction error ({da.attrs.get('units', '')})")
    ax.set_title(ds.attrs.get("title", "reconstruction error"))
    fig.tight_layout()
    return fig


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
    ax.set_title("\n".join(textwrap.wrap(title or info.title, int(11 * fig.get_figwidth()))), fontsize=9)
    if interval:
        fig.text(0.01, 0.01, "\n".join(textwrap.wrap(f"error bars: {interval}", 110)), fontsize=7, va="bottom")
    fig.tight_layout(rect=(0, 0.07 if interval else 0, 1, 1))
    return fig


def _published(published: pd.DataFrame | None, row: str, column: str) -> tuple[float, float] | None:
    if published is None or published.empty:
        return None
    hit = published[(published["row"].astype(str) == row) & (published["column"].astype(str) == column)]
    if not len(hit):
        return None
    ci = hit["ci"].iloc[0] if "ci" in hit else None
    return float(hit["value"].iloc[0]), float(ci) if pd.notna(ci) else 0.0


def error_histogram(ds: xr.Dataset, var: str = "finetune_error", by: str | None = None) -> plt.Figure:
    """Histogram of a test error over seeds, one colour per value of ``by`` (Erhan et al. Fig. 1)."""
    df = ds[var].to_dataframe().reset_index().dropna(subset=[var])
    dims = [d for d in ds[var].dims if d != "seed"]
    by = by or (dims[0] if dims else None)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    sns.histplot(data=df, x=var, hue=by, element="step", ax=ax)
    ax.set_xlabel(ds[var].attrs.get("long_name", var))
    fig.tight_layout()
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
    fig.tight_layout()
    return fig
