"""Paper-style tables from a results Dataset, keyed by coordinate *values*, never positions.

A column is named by the coordinates it selects::

    paper_table(ds, "svm_error", {"DAE-2L": {"schedule.name": "layerwise"},
                                  "DAE-2J": {"schedule.name": "joint"}})

so reordering, sorting or subsetting a sweep axis cannot swap two columns: each cell is
looked up by the values it is labelled with. Works for grid axes (dimensions) and for zip
sweeps / ``[[runs]]`` lists (coordinates along ``point``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from aebench.evaluate.flags import counts
from aebench.evaluate.stats import t_interval
from aebench.hookspecs import REPORT_DECLARATIONS, Criterion, Estimate, Figure, Metric
from aebench.results import _coord  # the merge's own encoding of list values as coordinates

STATS = ("mean", "ci", "n", "steps", "dropped", "lo", "hi")

#: what aebench's core itself writes into every run (not any evaluator's): declared the same way
SUPERVISED = Criterion("class_error", words="supervised validation error (best epoch)", best_over=("epoch",))
CORE_REPORTS: tuple[Metric | Criterion | Figure, ...] = (
    Metric("train_seconds", title="Training time", units="s", spread="range"),
    SUPERVISED,
    # a schedule that ends in supervised training (Erhan et al.'s fine-tuning): its test error at the
    # best validation epoch (results.supervised_test_error), the paper's main result, with its seed histogram
    Metric("class_test_error", title="Fine-tuned test error", units="%", scale=100, criterion=SUPERVISED),
    Figure(
        "class_test_error_histogram",
        needs="class_test_error",
        draw="aebench.plots:supervised_error_histogram",
        title="Fine-tuned test error over seeds (one count per seed)",
    ),
)


@dataclass
class Declared:
    """Every evaluator's report declarations (``Evaluator.reports``, see :func:`aebench.hookspecs.aebench_evaluators`),
    in registry order (built-ins first): the first declaration of a variable or criterion name wins."""

    metrics: dict[str, Metric] = field(default_factory=dict)
    criteria: dict[str, Criterion] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    #: the evaluator that declared each metric ("" for the core's)
    owner: dict[str, str] = field(default_factory=dict)

    def add(self, item: object, owner: str = "") -> None:
        if isinstance(item, Metric):
            self.owner.setdefault(item.var, owner)
            self.metrics.setdefault(item.var, item)
            if item.criterion is not None:
                self.criteria.setdefault(item.criterion.name, item.criterion)
        elif isinstance(item, Criterion):
            self.criteria.setdefault(item.name, item)
        elif isinstance(item, Figure):
            self.figures.append(item)

    @property
    def auxiliary(self) -> set[str]:
        """Variables named as an interval or an estimate: shown beside their metric, not as tables."""
        out: set[str] = set()
        for m in self.metrics.values():
            out |= {m.interval} if m.interval else set()
            out |= {v for e in m.estimates for v in (e.var, e.at_edge)}
            out |= {m.reference} if m.reference else set()
        return out

    @property
    def estimates(self) -> list[Estimate]:
        return list(dict.fromkeys(e for m in self.metrics.values() for e in m.estimates))

    def default_criterion(self, ds: xr.Dataset | None = None) -> Criterion | None:
        """The criterion declared ``default=True`` (whose variable ``ds`` holds, when given)."""
        return next(
            (c for c in self.criteria.values() if c.default and (ds is None or c.var in ds)),
            None,
        )


def declared(reg: Any = None) -> Declared:
    """The report declarations of every registered evaluator (``reports``) and of the core (``CORE_REPORTS``)."""
    from aebench.plugins import registry

    reg = reg or registry()
    out = Declared()
    for name in reg.names("evaluator"):
        try:
            cls = reg.get("evaluator", name)
        except Exception:  # a name two plug-ins claim: neither's declarations are trusted
            continue
        for item in getattr(cls, "reports", ()) or ():
            if isinstance(item, REPORT_DECLARATIONS):
                out.add(item, name)
    for item in CORE_REPORTS:
        out.add(item)
    return out


def metric_info(var: str, ds: xr.Dataset | None = None) -> Metric:
    """How ``var`` is reported: its evaluator's :class:`~aebench.hookspecs.Metric`, or a plain one
    (titled by the variable's ``long_name`` in ``ds``, its own units, scale 1, no interval of its own)."""
    found = declared().metrics.get(var)
    if found is not None:
        return found
    if not var:  # a table without a variable (built by hand): plain numbers
        return Metric("value")
    attrs = ds[var].attrs if ds is not None and var in ds else {}
    units = str(attrs.get("units", ""))
    return Metric(var, title=str(attrs.get("long_name", var)), units="" if units == "1" else units)


def with_derived(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with every declared metric that is read from another variable (``source`` at ``where``) added."""
    for m in declared().metrics.values():
        if m.source and m.source in ds and m.var not in ds:
            try:
                ds = ds.assign({m.var: ds[m.source].sel(dict(m.where), drop=True)})
            except (KeyError, ValueError):
                continue
    return ds


def title_of(var: str, ds: xr.Dataset | None = None) -> str:
    """The metric's title with its displayed units: "Linear SVM test error (%)"."""
    m = metric_info(var, ds)
    units = units_of(var, ds)
    return f"{m.title} ({units})" if units and f"({units})" not in m.title else m.title


def units_of(var: str, ds: xr.Dataset | None = None) -> str:
    """The units ``var`` is shown in: its declared ``Metric.units``, else its ``units`` attribute ("" for 1)."""
    units = metric_info(var, ds).units or (str(ds[var].attrs.get("units", "")) if ds is not None and var in ds else "")
    return "" if units == "1" else units


def relabel(ds: xr.Dataset, coord: str, mapping: Mapping[Any, Any], name: str | None = None) -> xr.Dataset:
    """Rename the *values* of ``coord`` by ``mapping`` (old value -> new label), optionally renaming the coordinate.

    Looked up by value, so it is right whatever order the axis has; a value missing from
    ``mapping`` keeps its name, a mapping key absent from the axis is an error.
    """
    values = [v.item() if hasattr(v, "item") else v for v in ds[coord].values]
    missing = [k for k in mapping if k not in values]
    if missing:
        raise KeyError(f"relabel: {coord} has no value {missing[0]!r} (it has {values})")
    ds = ds.assign_coords({coord: (ds[coord].dims, [mapping.get(v, v) for v in values])})
    return ds.rename({coord: name}) if name else ds


def select(ds: xr.Dataset | xr.DataArray, where: Mapping[str, Any]) -> xr.Dataset | xr.DataArray:
    """The part of ``ds`` whose coordinates equal ``where``'s values (dimensions or coordinates along ``point``).

    Conditions on coordinates along one dimension (a zip sweep's ``point``) are combined:
    the points where all of them hold are kept, and a single point is squeezed away.
    """
    along: dict[str, Any] = {}
    for key, value in where.items():
        if key not in ds.coords:
            raise KeyError(f"no coordinate {key!r} in the results (they have {sorted(map(str, ds.coords))})")
        coord, want = ds[key], _coord(value)
        if key in ds.dims:
            if want not in list(coord.values):
                raise KeyError(f"{key} has no value {want!r} (it has {', '.join(map(str, coord.values.tolist()))})")
            ds = ds.sel({key: want})
        elif coord.ndim == 0:
            if coord.item() != want:
                raise KeyError(f"{key} is {coord.item()!r} here, not {want!r}")
        else:
            along[key] = want
    if along:
        dims = {ds[k].dims for k in along}
        if len(dims) != 1 or len(next(iter(dims))) != 1:
            raise KeyError(f"coordinates {sorted(along)} do not share one dimension")
        (dim,) = next(iter(dims))
        mask = np.ones(ds.sizes[dim], dtype=bool)
        for key, want in along.items():
            mask &= np.asarray(ds[key].values == want)
        hits = np.flatnonzero(mask)
        if len(hits) == 0:
            raise KeyError(f"no point has {', '.join(f'{k} = {v!r}' for k, v in along.items())}")
        ds = ds.isel({dim: hits})
        if len(hits) == 1:
            ds = ds.squeeze(dim)
    return ds


def cell_stats(ds: xr.Dataset, var: str, level: float = 0.95) -> dict[str, float]:
    """mean, 95 % half-width, seeds, mean gradient steps and runs left out of one cell (``ds`` already selected).

    Over several seeds the interval is the t-interval of the seed mean; with one seed it is
    the metric's own interval as its evaluator declares it (``Metric.interval``: a binomial
    CI of an error, 1.96 × standard error of a log-likelihood), which covers test sampling
    only (see :func:`interval_kind`). Runs whose flags covering ``var`` are 0
    (:func:`aebench.evaluate.flags.counts`: ``converged`` for every variable,
    ``finetune_converged`` for the finetune evaluator's) are left out and counted in ``dropped``.
    """
    da = ds[var]
    extra = [d for d in da.dims if d != "seed"]
    if extra:
        raise ValueError(f"the cell for {var} still has axes {extra}: name a value for each in the column or row")
    values = np.atleast_1d(da.values.astype(float))
    dropped = 0
    ok = counts(ds, var)
    if ok is not None:
        bad = np.atleast_1d((~ok).values) & np.isfinite(values)
        dropped = int(bad.sum())
        values = np.where(bad, np.nan, values)
    mean, _, ci = t_interval(values, level)
    n = int(np.isfinite(values).sum())
    own = metric_info(var)
    if n == 1 and own.interval and own.interval in ds:
        ci = float(np.nanmean(np.atleast_1d(ds[own.interval].values.astype(float)))) * own.interval_factor
    lo, hi = mean - ci, mean + ci
    if own.spread == "range" and n > 1:  # a duration: median and range, never an interval below zero
        finite = values[np.isfinite(values)]
        mean, ci, lo, hi = float(np.median(finite)), math.nan, float(finite.min()), float(finite.max())
    steps = math.nan
    if "steps" in ds:
        s = ds["steps"].max("epoch") if "epoch" in ds["steps"].dims else ds["steps"]
        steps = (
            float(np.nanmean(np.atleast_1d(s.values.astype(float))))
            if np.isfinite(s.values.astype(float)).any()
            else math.nan
        )
    return {"mean": mean, "ci": ci, "n": n, "steps": steps, "dropped": dropped, "lo": lo, "hi": hi}


def interval_kind(table: pd.DataFrame) -> str:
    """What the ± of a :func:`paper_table` is, in words (the same text in terminal, report and notebook).

    Over several seeds: the t-interval of the seed mean. With one seed: the metric's own
    interval as its evaluator declares it (``Metric.interval_words``), which covers test
    sampling only, or no interval at all.
    """
    level = f"{table.attrs.get('level', 0.95):.0%}"
    ns = sorted({int(n) for n in table.xs("n", axis=1, level="stat").values.ravel() if n > 0})
    if not ns:
        return "no finished runs"
    own = metric_info(table.attrs.get("var", ""))
    if own.spread == "range" and ns != [1]:
        several = [n for n in ns if n > 1]
        seeds = f"{several[0]}" if len(several) == 1 else f"{several[0]}–{several[-1]}"
        return f"median (min–max) over {seeds} seeds" + ("; cells of one seed: the value alone" if 1 in ns else "")
    single = table.xs("n", axis=1, level="stat").values.astype(float) == 1
    ci = table.xs("ci", axis=1, level="stat").values.astype(float)
    has_own = bool(own.interval) and bool(np.isfinite(ci[single]).any())  # a one-seed cell that has one
    what = f" ({own.interval_words})" if own.interval_words else ""
    one = (
        f"the metric's own {level} interval from one seed{what}: test sampling only, it says nothing "
        "about how much the result moves with the seed"
        if has_own
        else "one seed: no interval (a single run says nothing about how much the result moves with the seed)"
    )
    if ns == [1]:
        return f"± is {one}" if has_own else one
    several = [n for n in ns if n > 1]
    seeds = f"{several[0]}" if len(several) == 1 else f"{several[0]}–{several[-1]}"
    text = f"mean ± {level} t-interval over {seeds} seeds"
    return f"{text}; cells with {one}" if 1 in ns else text


def paired_difference(
    ds: xr.Dataset, var: str, a: Mapping[str, Any], b: Mapping[str, Any], level: float = 0.95
) -> dict[str, float]:
    """``a − b`` seed by seed (same seeds, a paired comparison): mean, t-interval half-width, pairs and p-value.

    ``a`` and ``b`` select one cell each (as :func:`select`). Seeds where either run has no
    value, or did not converge, are left out. With fewer than two pairs the interval is NaN:
    one seed says nothing about whether the schemes differ.
    """
    from scipy import stats

    def per_seed(where: Mapping[str, Any]) -> xr.DataArray:
        part = select(ds, where)
        da = part[var]
        ok = counts(part, var)
        if ok is not None:
            da = da.where(ok)
        extra = [d for d in da.dims if d != "seed"]
        if extra:
            raise ValueError(f"the cell for {var} still has axes {extra}: name a value for each")
        return da if "seed" in da.dims else da.expand_dims(seed=[0])

    x, y = xr.align(per_seed(a), per_seed(b), join="inner")
    diff = (x - y).values.astype(float)
    diff = diff[np.isfinite(diff)]
    mean, _, ci = t_interval(diff, level)
    p = float(stats.ttest_1samp(diff, 0.0).pvalue) if len(diff) > 1 and np.ptp(diff) > 0 else math.nan
    return {"mean": mean, "ci": ci, "n": int(len(diff)), "p": p}


def paired_table(
    ds: xr.Dataset,
    var: str,
    columns: Mapping[str, Mapping[str, Any]],
    baseline: str,
    rows: str | Mapping[str, Mapping[str, Any]] | None = "data.name",
    level: float = 0.95,
) -> pd.DataFrame:
    """Every column minus ``baseline``, seed by seed, per row: columns ``(label − baseline, stat)``
    with stat in :data:`PAIRED_STATS` (mean, ci, n, p, p_holm). ``p_holm`` is ``p`` adjusted by Holm's
    method over every comparison of the table (all rows and columns, ``attrs["comparisons"]``);
    :func:`ahead` says which differences survive it and which side is ahead."""
    if baseline not in columns:
        raise KeyError(f"baseline column {baseline!r} is not one of {list(columns)}")
    row_sel = _row_selections(ds, rows)
    data = {}
    for rlabel, rwhere in row_sel.items():
        part = select(ds, rwhere)
        cells = {}
        for label, where in columns.items():
            if label == baseline:
                continue
            d = paired_difference(part, var, where, columns[baseline], level)
            for stat, value in d.items():
                cells[(f"{label} − {baseline}", stat)] = value
        data[rlabel] = cells
    frame = pd.DataFrame.from_dict(data, orient="index")
    frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["difference", "stat"])
    frame = _with_holm(frame)
    frame.attrs = {"var": var, "level": level, "baseline": baseline, "comparisons": comparisons(frame)}
    return frame


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of p-values (NaN entries are not comparisons and stay NaN).

    The k-th smallest of m p-values becomes max over j <= k of min(1, (m − j + 1) p_(j)): a family
    of m comparisons then has at most ``1 − level`` chance of any false star, whatever their
    dependence (Holm 1979; ``statsmodels``' ``multipletests(method="holm")`` gives the same).
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return out
    order = np.argsort(p[ok])
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[ok][order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    out[ok] = adjusted
    return out


def _with_holm(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``p_holm`` to every difference: p adjusted over all comparisons of the table (rows × columns)."""
    p = frame.xs("p", axis=1, level="stat")
    adjusted = pd.DataFrame(holm(p.values.ravel()).reshape(p.shape), index=p.index, columns=p.columns)
    for label in p.columns:
        frame[(label, "p_holm")] = adjusted[label]
    order = [(label, stat) for label in dict.fromkeys(frame.columns.get_level_values(0)) for stat in PAIRED_STATS]
    return frame[order]


#: the statistics of each difference in a :func:`paired_table`
PAIRED_STATS = ("mean", "ci", "n", "p", "p_holm")


def comparisons(diff: pd.DataFrame) -> int:
    """How many comparisons a :func:`paired_table` makes: the differences with a p-value (the Holm family)."""
    return int(np.isfinite(diff.xs("p", axis=1, level="stat").values.astype(float)).sum())


def excludes_zero(diff: pd.DataFrame) -> pd.DataFrame:
    """+1 / −1 where a :func:`paired_table` interval lies wholly above / below 0, else 0 (unadjusted)."""
    mean = diff.xs("mean", axis=1, level="stat")
    ci = diff.xs("ci", axis=1, level="stat")
    return (np.sign(mean) * ((mean.abs() > ci) & np.isfinite(ci))).astype(int)


def ahead(diff: pd.DataFrame, level: float | None = None) -> pd.DataFrame:
    """+1 / −1 where a :func:`paired_table` difference survives Holm's adjustment over the whole table
    (``p_holm < 1 − level``) and which side is ahead, else 0: what the tables star."""
    alpha = 1 - (diff.attrs.get("level", 0.95) if level is None else level)
    mean = diff.xs("mean", axis=1, level="stat")
    p = diff.xs("p_holm", axis=1, level="stat")
    return (np.sign(mean) * (p < alpha)).astype(int)


def multiplicity_note(diff: pd.DataFrame) -> str:
    """The words under a paired table: what * means and how many comparisons it was adjusted for."""
    level = diff.attrs.get("level", 0.95)
    k = comparisons(diff)
    return (
        f"* : the difference survives Holm's adjustment for the {k} comparison{'s' if k != 1 else ''} of this "
        f"table (adjusted p < {1 - level:.2g}); ± is the unadjusted {level:.0%} t-interval of the paired mean"
    )


def paper_table(
    ds: xr.Dataset,
    var: str,
    columns: Mapping[str, Mapping[str, Any]],
    rows: str | Mapping[str, Mapping[str, Any]] | None = "data.name",
    level: float = 0.95,
    reference: bool = True,
) -> pd.DataFrame:
    """One row per value of ``rows`` (a coordinate, or labels -> selections), one column group per label of ``columns``.

    With ``reference`` (and a metric that declares one, ``Metric.reference``) a last column holds the
    reference measure of the same rows, e.g. "raw pixels" beside the SVM on learned features.

    The result has two column levels, ``(label, stat)`` with stat in mean, ci, n, steps
    (mean gradient steps of the runs in the cell) and dropped (runs left out as not
    converged), in the metric's own units: use
    ``format_table`` for "mean ± ci" text in the papers' units.
    """
    row_sel = _row_selections(ds, rows)
    data = {}
    for rlabel, rwhere in row_sel.items():
        part = select(ds, rwhere)
        data[rlabel] = {
            (clabel, stat): value
            for clabel, cwhere in columns.items()
            for stat, value in cell_stats(select(part, cwhere), var, level).items()
        }
        if reference:
            data[rlabel].update(_reference_cell(part, var))
    frame = pd.DataFrame.from_dict(data, orient="index")
    frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["column", "stat"])
    frame.index.name = rows if isinstance(rows, str) else "row"
    frame.attrs = {"var": var, "level": level}
    return frame


def _reference_cell(part: xr.Dataset, var: str) -> dict[tuple[str, str], float]:
    """The metric's declared ``reference`` (e.g. the SVM on raw pixels) for one row, as one more column.

    It does not depend on the run (the same split for every seed and scheme), so its ± is its own
    interval (test sampling), and ``n`` is 1: one measurement, however many runs repeat it."""
    m = metric_info(var)
    if not m.reference or m.reference not in part:
        return {}
    values = np.unique(np.atleast_1d(part[m.reference].values.astype(float)))
    values = values[np.isfinite(values)]
    if not len(values):
        return {}
    own = metric_info(m.reference)
    ci = math.nan
    if own.interval and own.interval in part:
        ci = float(np.nanmean(np.atleast_1d(part[own.interval].values.astype(float)))) * own.interval_factor
    label = m.reference_words or m.reference
    mean = float(values.mean())
    cell = {"mean": mean, "ci": ci, "n": 1, "steps": math.nan, "dropped": 0, "lo": mean - ci, "hi": mean + ci}
    return {(label, stat): cell[stat] for stat in STATS}


def _row_selections(ds: xr.Dataset, rows: str | Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    if rows is None or (isinstance(rows, str) and rows not in ds.coords):
        return {ds.attrs.get("title", "all"): {}}
    if isinstance(rows, str):
        return {str(v): {rows: v.item() if hasattr(v, "item") else v} for v in _unique(ds[rows].values)}
    return {str(k): dict(v) for k, v in rows.items()}


def _unique(values: np.ndarray) -> list:
    return list(dict.fromkeys(values.tolist()))


def format_table(table: pd.DataFrame, scale: float | None = None, digits: int = 2, steps: bool = True) -> pd.DataFrame:
    """ "mean ± ci" strings (× ``scale``, by default the metric's: 100 for error rates), with the gradient steps."""
    var = table.attrs.get("var", "")
    scale = metric_info(var).scale if scale is None else scale
    out = {}
    for label in dict.fromkeys(table.columns.get_level_values(0)):
        cells = []
        for _, row in table[label].iterrows():
            dropped = int(row.get("dropped", 0) or 0)
            text = _cell(row["mean"] * scale, row["ci"] * scale, digits)
            if metric_info(var).spread == "range" and np.isfinite(row["mean"]) and np.isfinite(row.get("lo", np.nan)):
                text = (
                    f"{row['mean'] * scale:.{digits}f} ({row['lo'] * scale:.{digits}f}–{row['hi'] * scale:.{digits}f})"
                )
            if dropped and not np.isfinite(row["mean"]):
                text = "not converged"
            elif dropped:
                text += f" [{dropped} not converged, left out]"
            if steps and np.isfinite(row["steps"]):
                text += f" ({_steps(row['steps'])} steps)"
            cells.append(text)
        out[label] = cells
    return pd.DataFrame(out, index=table.index)


def _cell(mean: float, ci: float, digits: int = 2) -> str:
    if not np.isfinite(mean):
        return "failed"
    return f"{mean:.{digits}f} ± {ci:.{digits}f}" if np.isfinite(ci) else f"{mean:.{digits}f}"


def _steps(n: float) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else f"{n:.0f}"


def format_paired(diff: pd.DataFrame, scale: float | None = None, digits: int = 2) -> pd.DataFrame:
    """ "mean ± ci (n pairs)" strings of a :func:`paired_table`, starred where the difference survives
    Holm's adjustment over the table (:func:`ahead`; :func:`multiplicity_note` says so in words)."""
    var = diff.attrs.get("var", "")
    scale = metric_info(var).scale if scale is None else scale
    starred = ahead(diff) != 0
    out = {}
    for label in dict.fromkeys(diff.columns.get_level_values(0)):
        cells = []
        for rlabel, row in diff[label].iterrows():
            text = _cell(row["mean"] * scale, row["ci"] * scale, digits) + f" ({int(row['n'])} pairs)"
            if starred.loc[rlabel, label]:
                text += " *"
            cells.append(text)
        out[label] = cells
    frame = pd.DataFrame(out, index=diff.index)
    frame.attrs = {"note": multiplicity_note(diff)}
    return frame


def key_label(key: str, keys: list[str] | None = None) -> str:
    """A sweep key as a column header names it: ``schedule.name`` -> ``schedule``, ``optimizer.lr`` -> ``lr``;
    the whole dotted key where the short name would be ambiguous among ``keys``."""
    parts = key.split(".")
    if parts[-1] == "name" and len(parts) > 1:
        parts = parts[:-1]
    short = ".".join(p for p in parts[-1:])
    if parts[-1].isdigit() and len(parts) > 1:  # schedule.0.name -> schedule.0
        short = ".".join(parts[-2:])
    others = [k for k in (keys or []) if k != key]
    if any(key_label(k) == short for k in others):
        return key
    return short


def columns_of(ds: xr.Dataset, dims: list[str]) -> dict[str, dict[str, Any]]:
    """Every combination of ``dims``' values as a labelled column, in the axes' own order.

    Each label names its keys: ``"schedule=joint, lr=0.1"`` (see :func:`key_label`); a zip
    sweep's or ``[[runs]]``' ``point`` is named by the values swept along it.
    """
    if not dims:
        return {"": {}}
    import itertools

    axes = [[(d, v.item() if hasattr(v, "item") else v) for v in _unique(ds[d].values)] for d in dims]
    along_point = [c for c in ds.coords if c != "point" and ds[c].dims == ("point",)]
    keys = [*[d for d in dims if d != "point"], *along_point]

    def label(d: str, v: Any) -> str:
        if d == "point" and along_point:  # a zip sweep / [[runs]]: name the point by its swept values
            return ", ".join(f"{key_label(c, keys)}={ds[c].sel(point=v).item()}" for c in along_point)
        return f"{key_label(d, keys)}={v}"

    return {", ".join(label(d, v) for d, v in combo): dict(combo) for combo in itertools.product(*axes)}


def compare_to_paper(measured: pd.DataFrame, published: pd.DataFrame, scale: float | None = None) -> pd.DataFrame:
    """Published vs measured per cell, with the difference in units of the combined 95 % half-width.

    ``published`` has columns row, column, value, ci in the papers' units (percent for
    errors). ``z = (measured − paper) / sqrt(ci_measured² + ci_paper²)``: |z| > 1 means
    the two 95 % intervals' combined width does not cover the difference.
    """
    var = measured.attrs.get("var", "")
    scale = metric_info(var).scale if scale is None else scale
    out = []
    for rec in published.itertuples(index=False):
        row, col = str(rec.row), str(rec.column)
        if row not in measured.index or (col, "mean") not in measured.columns:
            continue
        m, c = measured.loc[row, (col, "mean")] * scale, measured.loc[row, (col, "ci")] * scale
        pci = float(rec.ci) if pd.notna(rec.ci) else 0.0
        width = math.sqrt((c if np.isfinite(c) else 0.0) ** 2 + pci**2)
        z = (m - float(rec.value)) / width if width > 0 and np.isfinite(m) else math.nan
        out.append(
            {
                "row": row,
                "column": col,
                "paper": float(rec.value),
                "paper_ci": pci,
                "measured": m,
                "measured_ci": c,
                "difference": m - float(rec.value),
                "z": z,
            }
        )
    return pd.DataFrame(
        out, columns=["row", "column", "paper", "paper_ci", "measured", "measured_ci", "difference", "z"]
    )


__all__ = [
    "CORE_REPORTS",
    "Declared",
    "declared",
    "metric_info",
    "with_derived",
    "title_of",
    "units_of",
    "key_label",
    "paper_table",
    "format_table",
    "select",
    "relabel",
    "columns_of",
    "compare_to_paper",
    "cell_stats",
    "interval_kind",
    "paired_difference",
    "paired_table",
    "excludes_zero",
    "ahead",
    "holm",
    "comparisons",
    "multiplicity_note",
    "format_paired",
]
