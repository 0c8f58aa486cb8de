"""`aebench report DIR`: tables laid out like the papers' and the figures, as HTML and Markdown."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import xarray as xr

from aebench.engine.checkpoint import atomic_write, write_text
from aebench.errors import ResultsError
from aebench.evaluate.stats import scalar_metrics
from aebench.results import load_results
from aebench.tables import KNOWN, columns_of, compare_to_paper, format_table, paper_table

PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>{}</title><style>{}</style></head><body>{}</body></html>"
)
STYLE = (
    "body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
)


def metric_table(ds: xr.Dataset, var: str, rows: str | None = None) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of "mean ± CI (steps)" cells: rows = values of ``rows`` (e.g. data.name),
    columns = other sweep points.

    Built by ``aebench.tables.paper_table`` with every column named by the coordinate
    values it selects, so no cell can land under another's label.
    """
    title = KNOWN.get(var, (var,))[0]
    dims = [d for d in ds[var].dims if d != "seed" and d in ds.dims]
    dims = [d for d in dims if d != rows]
    columns = columns_of(ds, dims)
    if list(columns) == [""]:
        columns = {title: {}}
    table = format_table(paper_table(ds, var, columns, rows if rows in ds.dims else None))
    header = [rows if rows in ds.dims else "experiment", *table.columns]
    return header, [[str(i), *map(str, r)] for i, r in zip(table.index, table.values)]


def _with_derived(ds: xr.Dataset) -> xr.Dataset:
    if "recon_error_final" in ds:
        ds = ds.assign(recon_test=ds["recon_error_final"].sel(split="test", drop=True))
    return ds


def figures(ds: xr.Dataset) -> dict[str, object]:
    """Every figure that the results support, by file name."""
    from aebench import plots

    figs = {}
    makers = {
        "recon_curves": ("recon_error", lambda: plots.recon_curves(ds)),
        "svm_error": ("svm_error", lambda: plots.metric_bars(ds, "svm_error", "svm_error_ci")),
        "finetune_error": ("finetune_error", lambda: plots.metric_bars(ds, "finetune_error", "finetune_error_ci")),
        "parzen_ll": ("parzen_ll", lambda: plots.metric_bars(ds, "parzen_ll", "parzen_ll_se")),
        "filters": ("filters", lambda: plots.filter_grid(ds)),
        "samples": ("samples", lambda: plots.sample_grid(ds)),
        "trajectory": ("trajectory_outputs", lambda: plots.trajectory_scatter(ds)),
        "error_histogram": ("finetune_error", lambda: plots.error_histogram(ds, "finetune_error")),
    }
    for name, (var, make) in makers.items():
        if var in ds and np.isfinite(ds[var].values.astype(float)).any():
            try:
                figs[name] = make()
            except Exception as exc:  # a figure that cannot be drawn must not lose the report
                figs[name] = exc
    return figs


def write_report(out: str | Path) -> tuple[Path, Path]:
    """Write ``out/report.html`` and ``out/report.md`` (figures in ``out/report_files/``)."""
    out = Path(out)
    ds = _with_derived(load_results(out))
    rows = "data.name" if "data.name" in ds.dims else None
    files = out / "report_files"
    if files.is_symlink():
        raise ResultsError(f"{files} is a symbolic link; aebench writes only inside {out} and will not follow it.")
    files.mkdir(exist_ok=True)
    title = ds.attrs.get("title", out.name)
    md = [f"# {title}", "", _status_line(ds), ""]
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(_status_line(ds))}</p>"]
    failed = _failed(ds)
    if failed:
        md += ["## Failed runs", "", *[f"- {r}" for r in failed], ""]
        body += ["<h2>Failed runs</h2><ul>", *[f"<li>{html.escape(r)}</li>" for r in failed], "</ul>"]
    metrics = [m for m in KNOWN if m in ds] + [
        m for m in scalar_metrics(ds) if m not in KNOWN and not m.endswith(("_ci", "_se", "_C", "_sigma"))
    ]
    for var in metrics:
        header, table = metric_table(ds, var, rows)
        name = KNOWN.get(var, (var,))[0]
        md += [f"## {name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        md += ["| " + " | ".join(r) + " |" for r in table] + [""]
        body += [f"<h2>{html.escape(name)}</h2>", _html_table(header, table)]
    for title_, note, header, table in paper_sections(ds):
        md += [f"## Paper vs measured: {title_}", ""] + ([f"*{note}*", ""] if note else [])
        md += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        md += ["| " + " | ".join(r) + " |" for r in table] + [""]
        body += [f"<h2>Paper vs measured: {html.escape(title_)}</h2>"] + (
            [f"<p><em>{html.escape(note)}</em></p>"] if note else []
        )
        body.append(_html_table(header, table))
    selection = _selection(ds, rows)
    if selection:
        md += ["## Chosen on validation, reported on test", "", *selection, ""]
        body += ["<h2>Chosen on validation, reported on test</h2><pre>", html.escape("\n".join(selection)), "</pre>"]
    for fname, fig in figures(ds).items():
        if isinstance(fig, Exception):
            md += [f"*(figure {fname} could not be drawn: {fig})*", ""]
            continue
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        data = buf.getvalue()
        atomic_write(files / f"{fname}.png", lambda p, data=data: p.write_bytes(data))
        md += [f"![{fname}](report_files/{fname}.png)", ""]
        png = base64.b64encode(buf.getvalue()).decode()
        body.append(f'<h3>{fname}</h3><img alt="{fname}" src="data:image/png;base64,{png}">')
    md += ["## Spec", "", "```toml", ds.attrs.get("spec", ""), "```"]
    body.append(f"<h2>Spec</h2><pre>{html.escape(ds.attrs.get('spec', ''))}</pre>")
    page = PAGE.format(html.escape(title), STYLE, "\n".join(body))
    write_text(out / "report.html", page)
    write_text(out / "report.md", "\n".join(md))
    return out / "report.html", out / "report.md"


PAPER_HEADER = ["row", "column", "paper", "measured", "difference", "z (CI units)"]


def paper_sections(ds: xr.Dataset) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """(title, note, header, rows) for every ``[[report]]`` table of the results' spec: paper vs measured per cell.

    ``z`` is the difference in units of the combined 95 % half-width (see
    ``aebench.tables.compare_to_paper``). A table that cannot be built says why in its note.
    """
    import tomllib

    import pandas as pd

    from aebench.reference import report_tables

    try:
        raw = tomllib.loads(ds.attrs.get("spec", ""))
        tables = report_tables(raw)
    except Exception:  # a results file from before [[report]], or a spec that no longer validates
        return []
    out = []
    for k, entry in enumerate(tables):
        title = entry.title or f"{entry.metric} (report table {k + 1})"
        try:
            rows = entry.rows if entry.rows in ds.coords else {str(_spec_value(raw, entry.rows)): {}}
            columns = {label: _unswept(raw, ds, where) for label, where in entry.columns.items()}
            measured = paper_table(_chosen(ds, entry), entry.metric, columns, rows)
        except (KeyError, ValueError) as exc:
            out.append(
                (
                    title,
                    (entry.note + " " if entry.note else "") + f"(cannot be built from these results: {exc})",
                    PAPER_HEADER,
                    [],
                )
            )
            continue
        published = pd.DataFrame([p.model_dump() for p in entry.published] if isinstance(entry.published, list) else [])
        if not published.empty:
            published["ci"] = published["ci"] * entry.ci_factor
        note = entry.note
        if published.empty:
            note = (note + " " if note else "") + "(no published numbers embedded: load the spec from its file.)"
            rows = [
                [str(r), c, "", cell, "", ""]
                for r, cells in format_table(measured).iterrows()
                for c, cell in cells.items()
            ]
            out.append((title, note, PAPER_HEADER, rows))
            continue
        cmp = compare_to_paper(measured, published)
        rows = [
            [
                r.row,
                r.column,
                _pm(r.paper, r.paper_ci),
                _pm(r.measured, r.measured_ci),
                f"{r.difference:+.2f}",
                f"{r.z:+.1f}" if np.isfinite(r.z) else "n/a",
            ]
            for r in cmp.itertuples()
        ]
        out.append((title, note, PAPER_HEADER, rows))
    return out


def _unswept(raw: dict, ds: xr.Dataset, where: dict) -> dict:
    """``where`` without the keys that are not swept but hold the named value in the spec itself."""
    return {k: v for k, v in where.items() if k in ds.coords or _spec_value(raw, k) != v}


def _spec_value(raw: dict, dotted: str) -> object:
    """The spec's value at a dotted key (a row axis that was not swept has one value)."""
    from aebench.spec import get_dotted

    return get_dotted(raw, dotted)


def _pm(value: float, ci: float) -> str:
    if not np.isfinite(value):
        return "failed"
    return f"{value:.2f} ± {ci:.2f}" if np.isfinite(ci) and ci > 0 else f"{value:.2f}"


def _chosen(ds: xr.Dataset, entry) -> xr.Dataset:
    """The results with ``entry.select``'s axes chosen on validation (the paper's protocol)."""
    from aebench.evaluate.select import select_best

    over = [d for d in entry.select if d in ds.dims]
    if not over:
        return ds
    by, minimize = _criterion(ds, entry.metric, entry.by)
    own = KNOWN.get(entry.metric, (None, None, 1))[1]
    keep = [entry.metric, "steps", *([own[0]] if own else [])]
    return select_best(ds, over=over, by=by, report=[v for v in keep if v in ds], minimize=minimize)


def _criterion(ds: xr.Dataset, metric: str, by: str = "") -> tuple[xr.DataArray, bool]:
    """The validation measure that chooses hyper-parameters for ``metric`` (and whether lower is better)."""
    if by:
        return ds[by], not by.startswith("parzen")
    if metric == "svm_error" and "svm_valid_error" in ds:
        return ds["svm_valid_error"].min("C"), True
    if metric == "parzen_ll" and "parzen_valid_ll" in ds:
        return ds["parzen_valid_ll"].max("sigma"), False
    if metric == "finetune_error" and "finetune_curve" in ds:
        return ds["finetune_curve"].sel(split="valid").min("finetune_epoch"), True
    return ds["recon_error_final"], True


SCHEME_DIMS = ("schedule.name", "data.name", "model.layers", "point")


def _selection(ds: xr.Dataset, rows: str | None) -> list[str]:
    """The paper's protocol on every hyper-parameter axis (sweep axes other than schemes/data)."""
    from aebench.evaluate.select import select_best

    over = [d for d in ds["status"].dims if d not in (*SCHEME_DIMS, "seed")]
    if not over or "recon_error_final" not in ds:
        return []
    report = [m for m in ("recon_test", "svm_error", "finetune_error", "parzen_ll") if m in ds]
    sel = select_best(ds, over=over, by="recon_error_final", report=report)
    lines = [f"hyper-parameters {', '.join(over)} chosen by validation reconstruction error"]
    for var in report:
        header, table = metric_table(sel.assign_attrs(ds.attrs), var, rows)
        lines += [f"{KNOWN.get(var, (var,))[0]}: " + "; ".join(f"{h} = {c}" for h, c in zip(header[1:], table[0][1:]))]
    for k in over:
        lines.append(f"chosen {k}: " + ", ".join(str(v) for v in np.ravel(sel[f"chosen_{k}"].values)))
    return lines


def _status_line(ds: xr.Dataset) -> str:
    st = [str(s) for s in ds["status"].values.ravel()]
    return (
        f"{st.count('done')} of {len(st)} runs done; aebench {ds.attrs.get('aebench_version')}, "
        f"torch {ds.attrs.get('torch_version')}, device {ds.attrs.get('device')}, {ds.attrs.get('created', '')}."
    )


def _failed(ds: xr.Dataset) -> list[str]:
    out = []
    st = ds["status"].stack(run=ds["status"].dims) if ds["status"].dims else ds["status"].expand_dims(run=[0])
    reason = ds["reason"].stack(run=ds["reason"].dims) if ds["reason"].dims else ds["reason"].expand_dims(run=[0])
    for k in range(st.sizes["run"]):
        if str(st.values[k]) != "done":
            where = ", ".join(f"{d} = {st[d].values[k]}" for d in ds["status"].dims) or "the run"
            out.append(f"{where}: {st.values[k]} — {reason.values[k]}")
    return out


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
