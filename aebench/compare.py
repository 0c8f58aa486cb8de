"""Several launches as one Dataset (``aebench.open_results``), and ``aebench compare``'s report.

Launches are combined along a new ``launch`` dimension, labelled by folder name. Every other
coordinate is aligned *by value*: a learning rate of 0.01 in one launch meets 0.01 in the
other, whatever its position, and a cell one launch did not run is NaN (``status``
"missing"). A key that some launches sweep and others hold fixed becomes a dimension of
every launch (the fixed ones at their spec's value). A key no launch sweeps but the launches
set differently (``optimizer.lr = 0.01`` here, ``0.001`` there) becomes a coordinate along
``launch``, so a table or a plot can name it. Launches that cannot be aligned by value are
refused with the reason (:class:`aebench.ResultsError`): a grid beside a zip or ``[[runs]]``
list, a coordinate holding text in one and numbers in another, a variable in other units or
over other dimensions.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from aebench.errors import ResultsError
from aebench.results import load_results

#: spec keys that are not compared between launches (names, text, how runs are made or reported)
NOT_COMPARED = ("name", "description", "seeds", "sweep", "runs", "report")
#: coordinates along ``launch`` that every combined Dataset has
LAUNCH_COORDS = ("launch_path", "launch_spec", "launch_created")
_MISSING = object()


def open_results(dirs: Iterable[str | Path], labels: Iterable[str] | None = None) -> xr.Dataset:
    """Combine the results of several launches (folders, or their ``results.nc``) along ``launch``.

    ``labels`` name the launches (default: each folder's name, with its parent's when two
    are alike). Besides the launches' variables, the Dataset has ``launch_path``,
    ``launch_spec`` (each spec's TOML text) and ``launch_created`` along ``launch``, and a
    coordinate along ``launch`` for every spec key the launches set differently without
    sweeping it. Attributes every launch shares are kept.
    """
    paths = [Path(d) for d in dirs]
    if not paths:
        raise ResultsError("open_results needs at least one results folder.")
    folders = [p.parent if p.is_file() else p for p in paths]
    names = list(labels) if labels is not None else _labels(folders)
    if len(names) != len(paths) or len(set(names)) != len(names):
        raise ResultsError(f"labels {names!r}: give one distinct label per launch ({len(paths)}).")
    parts = [load_results(p) for p in paths]
    raws = [_spec_of(ds, p) for ds, p in zip(parts, folders)]
    zipped = ["point" in ds.dims for ds in parts]
    if any(zipped) and not all(zipped):
        grid = [n for n, z in zip(names, zipped) if not z]
        other = [n for n, z in zip(names, zipped) if z]
        raise ResultsError(
            f"launches {', '.join(other)} list their runs as points (a zip sweep or [[runs]]) and "
            f"{', '.join(grid)} as a grid: their cells cannot be matched by value. Compare launches of one kind."
        )
    swept = _unique(k for ds in parts for k in _sweep_dims(ds))
    if all(zipped):
        parts = [_label_points(ds, raw, swept, name) for ds, raw, name in zip(parts, raws, names)]
    else:
        parts = [_add_axes(ds, raw, swept, name) for ds, raw, name in zip(parts, raws, names)]
    _check_alignable(parts, names)
    order = {d: _unique(v for ds in parts if d in ds.coords for v in ds[d].values.tolist()) for d in swept}
    if all(zipped):
        order = {"point": _unique(v for ds in parts for v in ds["point"].values.tolist())}
    order["seed"] = _unique(v for ds in parts for v in ds["seed"].values.tolist())
    for ds in parts:
        ds.attrs.pop("result_bytes", None)
    combined = xr.concat(
        parts,
        dim="launch",
        join="outer",
        combine_attrs="drop_conflicts",
        data_vars="all",
        coords="different",
        compat="equals",
    )
    combined = combined.assign_coords(launch=np.array(names, dtype=str))
    combined = combined.reindex({d: v for d, v in order.items() if d in combined.dims})
    for name in ("status", "reason", "stage"):
        if name in combined:
            combined[name] = _fill(combined[name], "missing" if name == "status" else "")
    created = [ds.attrs.get("created", "") for ds in parts]
    combined = combined.assign_coords(
        launch_path=("launch", [str(f.resolve()) for f in folders]),
        launch_spec=("launch", [ds.attrs.get("spec", "") for ds in parts]),
        launch_created=("launch", [str(c) for c in created]),
    )
    for key, values in _differing(raws, set(swept)).items():
        combined = combined.assign_coords({key: ("launch", values)})
    for drop in ("spec", "title", "created"):  # per launch: in the launch_* coordinates, not one attribute
        combined.attrs.pop(drop, None)
    combined.attrs["title"] = " vs ".join(names)
    return combined


def _labels(folders: list[Path]) -> list[str]:
    names = [f.resolve().name for f in folders]
    if len(set(names)) == len(names):
        return names
    longer = [f"{f.resolve().parent.name}/{f.resolve().name}" for f in folders]
    if len(set(longer)) == len(longer):
        return longer
    return [str(f) for f in folders]


def _spec_of(ds: xr.Dataset, where: Path) -> dict[str, Any]:
    try:
        raw = tomllib.loads(ds.attrs.get("spec", ""))
    except (tomllib.TOMLDecodeError, TypeError):
        raise ResultsError(f"{where}: its results carry no readable spec; it cannot be compared by value.") from None
    return raw


def _sweep_dims(ds: xr.Dataset) -> list[str]:
    """The launch's sweep axes: the dimensions of ``status`` other than ``seed`` (and ``point``)."""
    if "point" in ds.dims:
        return [str(c) for c in ds.coords if ds[c].dims == ("point",) and c != "point"]
    return [str(d) for d in ds["status"].dims if d != "seed"]


def spec_value(raw: dict[str, Any], key: str) -> Any:
    """The value a spec gives a dotted key: as written, else its plug-in's default (resolved through the
    registry); ``_MISSING`` when neither names it."""
    from aebench.spec import get_dotted

    value = get_dotted(raw, key, _MISSING)
    if value is not _MISSING:
        return value
    return get_dotted(_resolved(raw), key, _MISSING)


def _resolved(raw: dict[str, Any]) -> dict[str, Any]:
    """The spec's first run with every component table written out in full (its ``Params`` defaults)."""
    from aebench.spec import Spec

    try:
        run = Spec.from_dict(raw).runs[0]
    except Exception:
        return raw

    def table(c) -> dict[str, Any]:
        return {"name": c.name, **c.params.model_dump()}

    def shaped(key: str, comps: list) -> Any:
        return [table(c) for c in comps] if isinstance(raw.get(key), list) or len(comps) != 1 else table(comps[0])

    return {
        **raw,
        "data": table(run.data),
        "model": table(run.model),
        "corruption": shaped("corruption", run.corruptions),
        "regularizers": [table(c) for c in run.regularizers],
        "schedule": shaped("schedule", run.schedules),
        "optimizer": table(run.optimizer),  # a component since optimizers became a kind (branch kinds)
        "evaluate": {c.name: c.params.model_dump() for c in run.evaluators},
        "precision": run.precision,
    }


def _coord_value(value: Any) -> Any:
    from aebench.results import _coord

    return _coord(value)


def _add_axes(ds: xr.Dataset, raw: dict, swept: list[str], name: str) -> xr.Dataset:
    """A grid launch with every other launch's sweep axes as its own, of length one at its spec's value."""
    ds = ds.copy()
    for key in swept:
        if key in ds.dims:
            continue
        value = spec_value(raw, key)
        if value is _MISSING:
            raise ResultsError(
                f"launch {name} has no value for {key!r}, which another launch sweeps: its cells cannot be placed."
            )
        per_run = [v for v in ds.data_vars if "seed" in ds[v].dims]
        expanded = {v: ds[v].expand_dims({key: [_coord_value(value)]}) for v in per_run}
        ds = ds.assign(expanded)
    return ds


def _label_points(ds: xr.Dataset, raw: dict, keys: list[str], name: str) -> xr.Dataset:
    """A zip or ``[[runs]]`` launch with its ``point`` dimension labelled by its values of ``keys`` (so two
    launches' points meet by value, never by position)."""
    from aebench.tables import key_label

    ds = ds.copy()
    for key in keys:
        if key not in ds.coords:
            value = spec_value(raw, key)
            if value is _MISSING:
                raise ResultsError(f"launch {name} has no value for {key!r}, which another launch sweeps.")
            ds = ds.assign_coords({key: ("point", [_coord_value(value)] * ds.sizes["point"])})
    labels = [
        ", ".join(f"{key_label(k, keys)}={_show(ds[k].values[i])}" for k in keys) for i in range(ds.sizes["point"])
    ]
    return ds.assign_coords(point=labels)


def _show(value: Any) -> str:
    """A coordinate value as a label shows it: ``2`` for 2.0 (netCDF may store whole numbers as floats)."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _check_alignable(parts: list[xr.Dataset], names: list[str]) -> None:
    """Refuse, with the reason, what cannot be matched by value."""
    seen: dict[str, tuple[str, str]] = {}
    for ds, name in zip(parts, names):
        for c in ds.coords:
            kind = "text" if ds[c].dtype.kind in "USO" else "numbers" if ds[c].dtype.kind in "iufb" else "other"
            if c in seen and seen[c][0] != kind:
                raise ResultsError(
                    f"coordinate {c!r} holds {seen[c][0]} in launch {seen[c][1]} and {kind} in launch {name}: "
                    "its values cannot be matched."
                )
            seen.setdefault(str(c), (kind, name))
    units: dict[str, tuple[Any, tuple, str]] = {}
    for ds, name in zip(parts, names):
        for v in ds.data_vars:
            u = ds[v].attrs.get("units")
            dims = tuple(sorted(str(d) for d in ds[v].dims))
            if v in units:
                u0, dims0, first = units[v]
                if u0 is not None and u is not None and u0 != u:
                    raise ResultsError(f"{v} is in {u0} in launch {first} and in {u} in launch {name}.")
                if dims0 != dims:
                    raise ResultsError(
                        f"{v} is over ({', '.join(dims0)}) in launch {first} and over ({', '.join(dims)}) in "
                        f"launch {name}: it cannot be aligned."
                    )
            else:
                units[str(v)] = (u, dims, name)


def _differing(raws: list[dict], swept: set[str]) -> dict[str, list]:
    """Dotted keys (leaves of the specs' tables) that the launches set differently, none of them swept."""
    flat = [_flatten({k: v for k, v in raw.items() if k not in NOT_COMPARED}) for raw in raws]
    keys = _unique(k for f in flat for k in f if k not in swept)
    out = {}
    for key in keys:
        values = [f[key] if key in f else spec_value(raw, key) for f, raw in zip(flat, raws)]
        values = ["" if v is _MISSING else _coord_value(v) for v in values]
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1:
            kinds = {type(v) for v in values}
            out[key] = values if len(kinds) == 1 or kinds <= {int, float} else [str(v) for v in values]
    return out


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Leaves of nested tables as dotted keys (list entries by index: ``schedule.0.name``)."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, f"{key}."))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for i, x in enumerate(v):
                out.update(_flatten(x, f"{key}.{i}."))
        else:
            out[key] = v
    return out


def _unique(values) -> list:
    return list(dict.fromkeys(values))


def _fill(da: xr.DataArray, fill: str) -> xr.DataArray:
    values = np.array([v if isinstance(v, str) else fill for v in da.values.ravel()], dtype=object)
    return da.copy(data=values.reshape(da.shape).astype(str))


__all__ = ["open_results", "spec_value", "write_compare"]


# ------------------------------------------------------------------ the compare report
#: what ``aebench compare`` writes in its folder
COMPARE_FILES = ("compare.html", "compare.md", "combined.nc")
COMPARE_FOLDER = "compare_files"


def write_compare(
    dirs: Iterable[str | Path], out: str | Path, labels: Iterable[str] | None = None
) -> tuple[Path, Path]:
    """``aebench compare``: the launches side by side in ``out/compare.html`` and ``compare.md`` (figures in
    ``out/compare_files/``, PNG at print resolution and SVG), and their combined Dataset in ``combined.nc``.

    One section lists the launches (folder, when, runs done, tags and note, and the spec keys they set
    differently); then per metric one table with a row per launch and a column per sweep point (the
    report's cells and ± words) with its bars, and the curves of every launch overlaid.
    """
    import html

    from aebench.catalogue import info as launch_info
    from aebench.plots import curves
    from aebench.report import PAGE, STYLE, Section, _bars, _emit_figures, table_metrics
    from aebench.results import write_netcdf
    from aebench.tables import columns_of, format_table, interval_kind, paper_table, title_of, units_of, with_derived

    folders = [Path(d) for d in dirs]
    if len(folders) < 2:
        raise ResultsError("aebench compare needs at least two results folders.")
    ds = with_derived(open_results(folders, labels))
    out = Path(out)
    _prepare(out)
    title = f"Comparison: {ds.attrs.get('title', '')}"
    md = [f"# {title}", ""]
    body = [f"<h1>{html.escape(title)}</h1>"]
    rows = []
    for name, folder in zip(ds["launch"].values.tolist(), folders):
        try:
            x = launch_info(folder)
            said = [
                x.started.replace("T", " ")[:16],
                f"{x.done} of {x.runs}",
                " ".join(f"#{t}" for t in x.tags),
                x.note,
            ]
        except ResultsError:
            said = ["", "", "", ""]
        rows.append([name, str(folder), *said])
    launches = Section("Launches", tables=[("", ["launch", "folder", "started (UTC)", "done", "tags", "note"], rows)])
    keys = [str(c) for c in ds.coords if ds[c].dims == ("launch",) and c not in ("launch", *LAUNCH_COORDS)]
    if keys:
        launches.tables.append(
            (
                "Set differently, not swept",
                ["launch", *keys],
                [[n, *(str(ds[k].sel(launch=n).item()) for k in keys)] for n in ds["launch"].values.tolist()],
            )
        )
    files = out / COMPARE_FOLDER
    files.mkdir(exist_ok=True)
    sections = [launches]
    for var in table_metrics(ds):
        dims = [d for d in ds[var].dims if d not in ("seed", "launch") and d in ds.dims]
        columns = columns_of(ds, dims)
        if list(columns) == [""]:
            columns = {title_of(var, ds): {}}
        frame = paper_table(ds, var, columns, rows="launch")
        table = format_table(frame)
        kind = interval_kind(frame)
        sec = Section(
            title_of(var, ds),
            tables=[
                (
                    f"One row per launch; {kind}.",
                    ["launch", *table.columns],
                    [[str(i), *map(str, r)] for i, r in table.iterrows()],
                )
            ],
        )
        sec.figures.append((f"table_{var}", _bars(frame, title_of(var, ds), kind, ylabel=units_of(var, ds))))
        sections.append(sec)
    curves_sec = Section("Curves, every launch overlaid")
    for var, x in (("recon_error", "epoch"), ("recon_error", "steps")):
        if var in ds and "epoch" in ds[var].dims:
            try:
                fig = curves(ds, var, x=x)
            except Exception as exc:  # a figure that cannot be drawn must not lose the comparison
                fig = exc
            curves_sec.figures.append((f"curves_{var}_{x}", fig))
    if curves_sec.figures:
        sections.append(curves_sec)
    for sec in sections:
        md += sec.markdown()
        body += sec.html()
        _emit_figures(sec, files, md, body)
    text_md = "\n".join(md).replace("report_files/", f"{COMPARE_FOLDER}/")
    text_html = PAGE.format(html.escape(title), STYLE, "\n".join(body)).replace("report_files/", f"{COMPARE_FOLDER}/")
    from aebench.atomic import write_text

    write_text(out / "compare.html", text_html)
    write_text(out / "compare.md", text_md)
    write_netcdf(ds, out / "combined.nc")
    return out / "compare.html", out / "compare.md"


def _prepare(out: Path) -> None:
    """``out`` is new, or a folder of an earlier comparison: refuse anything else, and links anywhere in it."""
    from aebench.outdir import check_own

    if out.exists() and not out.is_dir():
        raise ResultsError(f"--out {out} is a file, not a folder; choose a folder.")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in (*COMPARE_FILES, COMPARE_FOLDER))
        if foreign:
            raise ResultsError(
                f"{out} already holds files that aebench compare did not write ({', '.join(foreign[:5])}); "
                "choose an empty or new --out."
            )
    out.mkdir(parents=True, exist_ok=True)
    for name in COMPARE_FILES:
        check_own(out, out / name)
    check_own(out, out / COMPARE_FOLDER, "folder")
    if (out / COMPARE_FOLDER).is_dir():
        for p in (out / COMPARE_FOLDER).iterdir():
            check_own(out, p)
