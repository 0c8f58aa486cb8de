"""Figures from results datasets (each function takes an ``xarray.Dataset``, returns a Figure)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are written to files or shown inline; no GUI toolkit needed

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
import xarray as xr  # noqa: E402


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
    ax.set_ylabel(f"reconstruction error ({da.attrs.get('units', '')})")
    ax.set_title(ds.attrs.get("title", "reconstruction error"))
    fig.tight_layout()
    return fig
