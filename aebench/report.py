"""`aebench report DIR`: tables laid out like the papers' and the figures, as HTML and Markdown."""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from aebench.atomic import atomic_write, write_text
from aebench.errors import ResultsError
from aebench.evaluate.stats import scalar_metrics
from aebench.results import load_results
from aebench.tables import KNOWN, columns_of, compare_to_paper, format_table, interval_kind, paper_table

PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>{}</title><style>{}</style></head><body>{}</body></html>"
)
STYLE = (
    "body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
)


def metric_table(ds: xr.Dataset, var: str, rows: str | None = None) -> tuple[list[str], list[list[str]], str]:
    """(header, rows, what the ± is) of "mean ± CI (steps)" cells: rows = values of ``rows`` (e.g. data.name),
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
    measured = paper_table(ds, var, columns, rows if rows in ds.dims else None)
    table = format_table(measured)
    header = [rows if rows in ds.dims else "experiment", *table.columns]
    return header, [[str(i), *map(str, r)] for i, r in zip(table.index, table.values)], interval_kind(measured)


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
    import matplotlib.pyplot as plt

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
    for heading, items in (
        ("Failed runs", _failed(ds)),
        ("Runs that did not converge (left out of every table)", _unconverged(ds)),
    ):
        if items:
            md += [f"## {heading}", "", *[f"- {r}" for r in items], ""]
            body += [f"<h2>{heading}</h2><ul>", *[f"<li>{html.escape(r)}</li>" for r in items], "</ul>"]
    metrics = [m for m in KNOWN if m in ds] + [
        m
        for m in scalar_metrics(ds)
        if m not in KNOWN and not m.endswith(("_ci", "_se", "_C", "_sigma", "_at_edge")) and m != "converged"
    ]
    for var in metrics:
        header, table, kind = metric_table(ds, var, rows)
        name = KNOWN.get(var, (var,))[0]
        md += [f"## {name}", "", f"*Every sweep point; {kind}.*", "", *_md_table(header, table), ""]
        body += [f"<h2>{html.escape(name)}</h2>", f"<p><em>Every sweep point; {html.escape(kind)}.</em></p>"]
        body.append(_html_table(header, table))
    sections = paper_sections(ds)
    if not sections:  # one selection rule per report: the [[report]] tables' own, else this one
        sections = [s for s in [_selection(ds, rows)] if s]
    for sec in [*_flag_sections(ds), *sections]:
        md += sec.markdown()
        body += sec.html()
    for fname, fig in figures(ds).items():
        if isinstance(fig, Exception):
            md += [f"*(figure {fname} could not be drawn: {fig})*", ""]
            continue
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)  # written to a file: in a notebook it must not also show up inline
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


@dataclass
class Section:
    """One part of the report: a title, notes (each a sentence or two) and tables (caption, header, rows)."""

    title: str
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)

    def markdown(self) -> list[str]:
        md = [f"## {self.title}", ""] + [line for n in self.notes for line in (f"*{n}*", "")]
        for caption, header, rows in self.tables:
            md += ([f"**{caption}**", ""] if caption else []) + _md_table(header, rows) + [""]
        return md

    def html(self) -> list[str]:
        body = [f"<h2>{html.escape(self.title)}</h2>"] + [f"<p><em>{html.escape(n)}</em></p>" for n in self.notes]
        for caption, header, rows in self.tables:
            body += ([f"<h3>{html.escape(caption)}</h3>"] if caption else []) + [_html_table(header, rows)]
        return body

    def text(self) -> list[str]:
        lines = [self.title, *[f"  ({n})" for n in self.notes]]
        for caption, header, rows in self.tables:
            lines += [f"  {caption}"] if caption else []
            widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
            lines += ["  " + "  ".join(str(c).rjust(w) for c, w in zip(line, widths)) for line in (header, *rows)]
        return lines


def paper_sections(ds: xr.Dataset) -> list[Section]:
    """A section per ``[[report]]`` table of the results' spec: paper vs measured per cell, the values
    chosen on validation, and each column against the baseline seed by seed.

    One selection rule per table (its ``by``, or the metric's own validation measure): every
    part of the section uses the same chosen runs, and the notes say which rule, what the ±
    is and how the runs were set up (written from the spec, so it cannot drift).
    ``z`` is the difference in units of the combined 95 % half-width (see
    ``aebench.tables.compare_to_paper``). A table that cannot be built says why in its note.
    """
    import tomllib

    from aebench.reference import report_tables

    try:
        raw = tomllib.loads(ds.attrs.get("spec", ""))
        tables = report_tables(raw)
    except Exception:  # a results file from before [[report]], or a spec that no longer validates
        return []
    runs = _runs_of(ds)
    return [_paper_section(ds, raw, runs, k, entry) for k, entry in enumerate(tables)]


def _paper_section(ds: xr.Dataset, raw: dict, runs: list, k: int, entry) -> Section:
    import pandas as pd

    from aebench.reference import open_choices, protocol_note
    from aebench.tables import format_paired, interval_kind, paired_table

    sec = Section(f"Paper vs measured: {entry.title or f'{entry.metric} (report table {k + 1})'}")
    sec.notes += [entry.note] if entry.note else []
    try:
        rows = entry.rows if entry.rows in ds.coords else {str(_spec_value(raw, entry.rows)): {}}
        columns = {label: _unswept(raw, ds, where) for label, where in entry.columns.items()}
        chosen, rule = _chosen(ds, entry)
        measured = paper_table(chosen, entry.metric, columns, rows)
    except (KeyError, ValueError) as exc:
        sec.notes.append(f"This table cannot be built from these results: {exc}")
        return sec
    sec.notes.append(rule)
    sec.notes.append(f"Measured: {interval_kind(measured)}.")
    published = pd.DataFrame([p.model_dump() for p in entry.published] if isinstance(entry.published, list) else [])
    if entry.ci_factor != 1:
        sec.notes.append(
            f"Paper: its ± is read as a standard error and multiplied by {entry.ci_factor:g} to a 95 % half-width; "
            "the paper does not say what its ± is, so this is an assumption."
        )
    elif not published.empty:
        sec.notes.append("Paper: its ± as a 95 % interval (the paper's own words).")
    if runs:
        sec.notes.append(protocol_note(runs, json.loads(ds.attrs.get("data_rows", "{}") or "{}")))
        sec.notes += [n for n in [open_choices(runs)] if n]
    if published.empty:
        sec.notes.append("No published numbers embedded: load the spec from its file.")
        cells = format_table(measured)
        sec.tables.append(
            ("", PAPER_HEADER, [[str(r), c, "", v, "", ""] for r, vs in cells.iterrows() for c, v in vs.items()])
        )
    else:
        published["ci"] = published["ci"] * entry.ci_factor
        sec.tables.append(("", PAPER_HEADER, _paper_rows(compare_to_paper(measured, published), measured)))
    if chosen is not ds:
        sec.tables.append(_chosen_table(chosen, entry, columns, rows))
    if len(columns) > 1 and (measured.xs("n", axis=1, level="stat") > 1).any().any():
        base = entry.baseline_column
        diff = format_paired(paired_table(chosen, entry.metric, columns, base, rows))
        caption = (
            f"Each column minus {base}, seed by seed: mean ± 95 % t-interval of the paired differences "
            "(* where the interval excludes 0)"
        )
        sec.tables.append((caption, ["row", *diff.columns], [[str(i), *map(str, r)] for i, r in diff.iterrows()]))
    return sec


def _paper_rows(cmp, measured) -> list[list[str]]:
    out = []
    for r in cmp.itertuples():
        dropped = measured.loc[r.row, (r.column, "dropped")] if (r.column, "dropped") in measured.columns else 0
        shown = "not converged" if dropped and not np.isfinite(r.measured) else _pm(r.measured, r.measured_ci)
        out.append(
            [
                r.row,
                r.column,
                _pm(r.paper, r.paper_ci),
                shown,
                f"{r.difference:+.2f}" if np.isfinite(r.difference) else "n/a",
                f"{r.z:+.1f}" if np.isfinite(r.z) else "n/a",
            ]
        )
    return out


def _chosen_table(chosen: xr.Dataset, entry, columns: dict, rows) -> tuple[str, list[str], list[list[str]]]:
    """The hyper-parameters each cell was chosen with (the same choice as every other part of the section)."""
    from aebench.tables import _row_selections, select

    axes = [v for v in chosen.data_vars if v.startswith("chosen_")]
    out = []
    for rlabel, rwhere in _row_selections(chosen, rows).items():
        part = select(chosen, rwhere)
        cells = []
        for where in columns.values():
            try:
                cell = select(part, where)
                cells.append(", ".join(f"{a[7:]} = {_plain(cell[a])}" for a in axes))
            except KeyError:
                cells.append("n/a")
        out.append([rlabel, *cells])
    return ("Chosen on validation (every cell above uses these runs)", ["row", *columns], out)


def _plain(da: xr.DataArray) -> str:
    values = list(dict.fromkeys(np.ravel(da.values).tolist()))
    return str(values[0]) if len(values) == 1 else str(values)


def _runs_of(ds: xr.Dataset) -> list:
    """The runs of the results' spec, resolved (defaults included), or [] when it no longer resolves."""
    from aebench.spec import Spec

    try:
        return Spec.from_text(ds.attrs.get("spec", "")).runs
    except Exception:
        return []


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


def _chosen(ds: xr.Dataset, entry) -> tuple[xr.Dataset, str]:
    """The results with ``entry.select``'s axes chosen on validation (the paper's protocol), and the rule in words."""
    from aebench.evaluate.select import select_best

    over = [d for d in entry.select if d in ds.dims]
    if not over:
        return ds, "No hyper-parameter axis to choose: every cell is the runs it names."
    by, minimize, words = criterion(ds, entry.metric, entry.by)
    own = KNOWN.get(entry.metric, (None, None, 1))[1]
    keep = [entry.metric, "steps", "converged", *([own[0]] if own else [])]
    chosen = select_best(ds, over=over, by=by, report=[v for v in keep if v in ds], minimize=minimize)
    rule = (
        f"Selection rule: {', '.join(over)} chosen per cell on {words} (seed mean); every part of this "
        "section shows the runs so chosen."
    )
    return chosen.assign_attrs(ds.attrs), rule


#: validation criteria a ``[[report]]`` table's ``by`` may name: variable -> (reduce, lower is better, in words)
CRITERIA = {
    "recon_error_final": (lambda da: da.sel(split="valid", drop=True), True, "validation reconstruction error"),
    "svm_valid_error": (lambda da: da.min("C"), True, "linear SVM validation error (best C)"),
    "parzen_valid_ll": (lambda da: da.max("sigma"), False, "Parzen validation log-likelihood (best σ)"),
    "finetune_valid_error": (None, True, "fine-tuned validation error (best epoch)"),
    "class_error": (
        lambda da: da.sel(split="valid", drop=True).min("epoch"),
        True,
        "supervised validation error (best epoch)",
    ),
}
DEFAULT_CRITERION = {
    "svm_error": "svm_valid_error",
    "parzen_ll": "parzen_valid_ll",
    "finetune_error": "finetune_valid_error",
}


def criterion(ds: xr.Dataset, metric: str, by: str = "") -> tuple[xr.DataArray, bool, str]:
    """The validation measure that chooses hyper-parameters for ``metric``, whether lower is better, and its name."""
    name = by or DEFAULT_CRITERION.get(metric, "recon_error_final")
    if name == "finetune_valid_error":
        if "finetune_curve" not in ds:
            raise KeyError("by = 'finetune_valid_error' needs the finetune evaluator's results")
        return ds["finetune_curve"].sel(split="valid", drop=True).min("finetune_epoch"), True, CRITERIA[name][2]
    if name in CRITERIA:
        if name not in ds:
            if by:
                raise KeyError(f"by = {by!r}: the results have no {name}")
            name = "recon_error_final"
        reduce, minimize, words = CRITERIA[name]
        return reduce(ds[name]), minimize, words
    if name not in ds:
        raise KeyError(f"by = {name!r}: no such result variable")
    da = ds[name].sel(split="valid", drop=True) if "split" in ds[name].dims else ds[name]
    minimize = not (name.endswith("_ll") or name.startswith("parzen"))
    return da, minimize, f"validation {name} ({'lower' if minimize else 'higher'} is better)"


SCHEME_DIMS = ("schedule.name", "data.name", "model.layers", "point")


def _selection(ds: xr.Dataset, rows: str | None) -> Section | None:
    """Without ``[[report]]`` tables: the paper's protocol on every hyper-parameter axis, by one declared rule."""
    from aebench.evaluate.select import select_best

    over = [d for d in ds["status"].dims if d not in (*SCHEME_DIMS, "seed")]
    if not over or "recon_error_final" not in ds:
        return None
    report = [m for m in ("recon_test", "svm_error", "finetune_error", "parzen_ll") if m in ds]
    keep = [*report, "steps", "converged", *(KNOWN[m][1][0] for m in report if KNOWN[m][1] and KNOWN[m][1][0] in ds)]
    sel = select_best(ds, over=over, by="recon_error_final", report=[v for v in keep if v in ds])
    sec = Section(
        "Chosen on validation, reported on test",
        [f"Selection rule: {', '.join(over)} chosen by validation reconstruction error (seed mean), for every metric."],
    )
    for var in report:
        header, table, kind = metric_table(sel.assign_attrs(ds.attrs), var, rows)
        sec.tables.append((f"{KNOWN.get(var, (var,))[0]}; {kind}", header, table))
    chosen = [[k, ", ".join(str(v) for v in np.ravel(sel[f"chosen_{k}"].values))] for k in over]
    sec.tables.append(("Chosen values", ["axis", "chosen"], chosen))
    return sec


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


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


def _unconverged(ds: xr.Dataset) -> list[str]:
    if "converged" not in ds:
        return []
    bad = (ds["converged"] == 0).stack(run=ds["converged"].dims) if ds["converged"].dims else None
    if bad is None or not bool(bad.any()):
        return []
    reason = ds["reason"].stack(run=ds["reason"].dims)
    return [
        ", ".join(f"{d} = {bad[d].values[k]}" for d in ds["converged"].dims) + f": {reason.values[k]}"
        for k in np.flatnonzero(bad.values)
    ]


def _flag_sections(ds: xr.Dataset) -> list[Section]:
    """Estimates stopped at the edge of what was tried (a limit, not an optimum), named run by run."""
    out = []
    for var, what in (("parzen_sigma_at_edge", "Parzen σ"), ("svm_C_at_edge", "SVM C")):
        if var not in ds or not bool((ds[var] == 1).any()):
            continue
        flag = ds[var].stack(run=ds[var].dims)
        hits = np.flatnonzero(flag.values == 1)
        chosen = ds[var.replace("_at_edge", "")].stack(run=ds[var].dims)
        rows = [
            [", ".join(f"{d} = {flag[d].values[k]}" for d in ds[var].dims), f"{float(chosen.values[k]):g}"]
            for k in hits
        ]
        out.append(
            Section(
                f"{what} at the edge of what was tried",
                [
                    f"{len(hits)} run(s) chose the smallest or largest {what} tried: "
                    "their number is a limit, not an optimum."
                ],
                [("", ["run", f"chosen {what}"], rows)],
            )
        )
    return out


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
