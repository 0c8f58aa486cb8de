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

from aebench.atomic import write_text
from aebench.errors import ResultsError
from aebench.evaluate.flags import counts, flag_vars
from aebench.evaluate.stats import scalar_metrics
from aebench.names import figure_file
from aebench.plugins import describe_exception
from aebench.results import load_results
from aebench.tables import (
    columns_of,
    compare_to_paper,
    declared,
    format_table,
    interval_kind,
    key_label,
    metric_info,
    paper_table,
    title_of,
    units_of,
    with_derived,
)

#: the name space of the evaluators' own figures (``Figure.name``), apart from the report's table figures
FIGURE_KEY = "figure:"

PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>{}</title><style>{}</style></head><body>{}</body></html>"
)
STYLE = (
    "body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse;margin:6px 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}caption{caption-side:top;text-align:left;"
    "font-style:italic;padding:2px 0}img{max-width:100%}figure{margin:8px 0}"
)


def metric_frame(ds: xr.Dataset, var: str, rows: str | None = None):
    """The :func:`aebench.tables.paper_table` of ``var`` over every sweep point: rows = values of ``rows``
    (e.g. data.name), one column per other sweep point, each named by its keys (``schedule=joint, lr=0.1``)."""
    dims = [d for d in ds[var].dims if d != "seed" and d in ds.dims and d != rows]
    columns = columns_of(ds, dims)
    if list(columns) == [""]:
        columns = {title_of(var, ds): {}}
    return paper_table(ds, var, columns, rows if rows in ds.dims else None)


def metric_table(ds: xr.Dataset, var: str, rows: str | None = None) -> tuple[list[str], list[list[str]], str]:
    """(header, rows, what the ± is) of "mean ± CI (steps)" cells: rows = values of ``rows`` (e.g. data.name),
    columns = other sweep points.

    Built by ``aebench.tables.paper_table`` with every column named by the coordinate
    values it selects, so no cell can land under another's label.
    """
    measured = metric_frame(ds, var, rows)
    table = format_table(measured)
    header = [key_label(rows) if rows in ds.dims else "experiment", *table.columns]
    return header, [[str(i), *map(str, r)] for i, r in zip(table.index, table.values)], interval_kind(measured)


def _with_derived(ds: xr.Dataset) -> xr.Dataset:
    return with_derived(ds)


def table_metrics(ds: xr.Dataset) -> list[str]:
    """The scalar results that get a table: every declared metric the results hold, in declaration
    order, then any other scalar result that no declaration names as an interval or estimate."""
    decl = declared()
    skip = decl.auxiliary | {"converged", *flag_vars(ds)}  # the core's flags, listed in their own section
    scalars = set(scalar_metrics(ds))
    order = _evaluate_order(ds)  # the spec's own order of evaluators; the core's metrics last
    first = sorted(
        (m for m in decl.metrics if m in scalars),
        key=lambda m: order.get(decl.owner.get(m, ""), len(order)),
    )
    return first + [m for m in scalar_metrics(ds) if m not in decl.metrics and m not in skip]


def _evaluate_order(ds: xr.Dataset) -> dict[str, int]:
    import tomllib

    try:
        evaluate = tomllib.loads(ds.attrs.get("spec", "")).get("evaluate", {})
    except (tomllib.TOMLDecodeError, TypeError):
        return {}
    return {name: k for k, name in enumerate(evaluate)} if isinstance(evaluate, dict) else {}


def figures(ds: xr.Dataset) -> dict[str, object]:
    """Every figure that the evaluators declare (``Figure``) and the results support, by file name."""
    figs = {}
    for fig in declared().figures:
        if fig.name in figs or fig.needs not in ds:
            continue
        values = ds[fig.needs].values
        if values.dtype.kind in "fiu" and not np.isfinite(values.astype(float)).any():
            continue
        try:
            figs[fig.name] = fig.function()(ds)
        except Exception as exc:  # a figure that cannot be drawn must not lose the report
            figs[fig.name] = exc
    return figs


def summary(ds: xr.Dataset) -> list[str]:
    """Terminal lines: per cell (sweep point), the main metrics "mean ± interval", and what each ± is.

    The same tables and the same words as the report (``aebench.tables``), so the ± means
    one thing in the terminal, the report and a notebook.
    """
    import pandas as pd

    ds = with_derived(ds)
    decl = declared()
    metrics = [m for m in table_metrics(ds) if decl.metrics.get(m) is None or decl.metrics[m].summary]
    if not metrics:
        return []
    cols, names, kinds = {}, [], {}
    marks: list[int] = []  # runs left out of a cell, each such cell marked "*" instead of a long note
    for var in metrics:
        dims = [d for d in ds[var].dims if d != "seed" and d in ds.dims]
        cells = columns_of(ds, dims)
        if list(cells) == [""]:
            cells = {"all runs": {}}
        frame = paper_table(ds, var, cells, rows=None, reference=False)  # a summary row per run point only
        cols[var] = format_table(frame, steps=False).iloc[0].map(lambda c: _mark(c, marks))
        names.append(f"{var}: {title_of(var, ds)}")
        kinds[var] = interval_kind(frame)
    table = pd.DataFrame(cols)
    header = ["cell", *table.columns]
    rows = [[str(i), *map(str, r)] for i, r in zip(table.index, table.values)]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = [
        "  ".join(str(c).ljust(w) if k == 0 else str(c).rjust(w) for k, (c, w) in enumerate(zip(line, widths)))
        for line in (header, *rows)
    ]
    n = int((ds["converged"] == 0).sum()) if "converged" in ds else sum(marks)
    left = [f"* a cell without the runs that did not converge ({n} in all; the report lists them)"]
    return [*lines, *names, *_said(kinds), *(left if marks else [])]


def _mark(cell: str, marks: list[int]) -> str:
    """A summary cell keeps its width: "[N not converged, left out]" becomes a "*" said once under the table."""
    import re

    found = re.search(r" \[(\d+) not converged, left out\]", cell)
    if not found:
        return cell
    marks.append(int(found.group(1)))
    return cell.replace(found.group(0), " *")


def _said(kinds: dict[str, str]) -> list[str]:
    """What each cell's ± (or range) is: one line for one kind of ±, else one per metric; ranges by name."""
    ranges = {var: kind for var, kind in kinds.items() if kind.startswith("median")}
    pm = {var: kind for var, kind in kinds.items() if var not in ranges}
    if len(set(pm.values())) == 1:
        said = [f"every ±: {next(iter(pm.values()))}"]
    else:
        said = [f"± of {var}: {kind}" for var, kind in pm.items()]
    return said + [f"{var}: {kind}" for var, kind in ranges.items()]


def write_report(out: str | Path) -> tuple[Path, Path]:
    """Write ``out/report.html`` and ``out/report.md`` (figures in ``out/report_files/``)."""
    out = Path(out)
    ds = with_derived(require(load_results(out), out))
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
        ("Runs that did not converge (each says which of its results are left out)", _unconverged(ds)),
    ):
        if items:
            md += [f"## {heading}", "", *[f"- {r}" for r in items], ""]
            body += [f"<h2>{heading}</h2><ul>", *[f"<li>{html.escape(r)}</li>" for r in items], "</ul>"]
    decl = declared()
    titles = {f.name: f.title or f.name for f in decl.figures}
    drawn = figures(ds)
    # The paper's tables lead (the result the spec was written for), each with its own figures
    # (a fine-tuned error's seed histogram under its table); then every sweep point, metric by metric.
    sections = paper_sections(ds)
    for sec in sections:
        for f in decl.figures:
            if sec.metric and f.needs == sec.metric and f.name in drawn:
                sec.figures.append((f"{FIGURE_KEY}{f.name}", drawn.pop(f.name)))
                sec.captions[f"{FIGURE_KEY}{f.name}"] = titles[f.name]
        md += sec.markdown()
        body += sec.html()
        _emit_figures(sec, files, md, body)
    for var in table_metrics(ds):
        try:
            sec = _metric_section(ds, var, rows)
        except Exception as exc:  # a plug-in's declaration must not lose the rest of the report
            sec = Section(title_of(var, ds), [f"The table of {var} could not be built: {describe_exception(exc)}"])
        md += sec.markdown()
        body += sec.html()
        _emit_figures(sec, files, md, body)
    # one selection rule per report: the [[report]] tables' own, else this one
    later = [] if sections else [s for s in [_selection(ds, rows)] if s]
    for sec in [*_flag_sections(ds), *later]:
        md += sec.markdown()
        body += sec.html()
        _emit_figures(sec, files, md, body)
    # a plug-in's figure in its own name space: one named like a table's figure ("table_x") keeps its file
    titles = {f"{FIGURE_KEY}{name}": title for name, title in titles.items()}
    own = Section("Figures", figures=[(f"{FIGURE_KEY}{name}", fig) for name, fig in drawn.items()])
    own.captions = titles
    if own.figures:
        md += ["## Figures", ""]
        body.append("<h2>Figures</h2>")
        _emit_figures(own, files, md, body)
    spec_text = spec_for_reading(ds.attrs.get("spec", ""))
    md += ["## Spec", "", "```toml", spec_text, "```"]
    body.append(f"<h2>Spec</h2><pre>{html.escape(spec_text)}</pre>")
    page = PAGE.format(html.escape(title), STYLE, "\n".join(body))
    write_text(out / "report.html", page)
    write_text(out / "report.md", "\n".join(md))
    return out / "report.html", out / "report.md"


def spec_for_reading(text: str) -> str:
    """The results' spec as the report shows it: each ``[[report]]`` table's embedded published rows replaced
    by the name of the file they came from (they are in results.nc; a CSV inline is screens long)."""
    import tomllib

    import tomli_w

    try:
        raw = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, TypeError):
        return text
    report = raw.get("report")
    if not isinstance(report, list) or not any(
        isinstance(e, dict) and isinstance(e.get("published"), list) for e in report
    ):
        return text
    for entry in report:
        if isinstance(entry, dict) and isinstance(entry.get("published"), list):
            rows = len(entry["published"])
            entry["published"] = entry.pop("published_from", "") or f"({rows} published values, embedded)"
            entry["published_rows"] = rows
    note = "# [[report]] published: the file each table's published values were read from (embedded in results.nc)\n"
    return note + tomli_w.dumps(raw)


#: what every results file of ``aebench run`` holds, and the report reads
REQUIRED = ("status", "reason")


def require(ds: xr.Dataset, out: Path) -> xr.Dataset:
    """``ds``, if it holds what a report needs; else one :class:`ResultsError` naming the file and what it lacks."""
    lacks = [v for v in REQUIRED if v not in ds.variables]
    if lacks:
        where = out / "results.nc" if out.is_dir() else out
        raise ResultsError(
            f"{where} lacks the variable{'s' if len(lacks) > 1 else ''} {', '.join(lacks)} that every results file of "
            "`aebench run` holds: it was not written by aebench, or was edited; run the spec again (or with --resume) "
            "to write it anew."
        )
    return ds


def _metric_section(ds: xr.Dataset, var: str, rows: str | None) -> Section:
    """A metric's table over every sweep point, with its bar figure."""
    measured = metric_frame(ds, var, rows)
    table = format_table(measured)
    header = [key_label(rows) if rows in ds.dims else "experiment", *table.columns]
    cells = [[str(i), *map(str, r)] for i, r in zip(table.index, table.values)]
    caption = f"Every sweep point; {interval_kind(measured)}."
    sec = Section(title_of(var, ds), tables=[(caption, header, cells)])
    if metric_info(var, ds).figure == "bars":
        fig = _bars(measured, title_of(var, ds), interval_kind(measured), ylabel=units_of(var, ds))
        sec.figures.append((f"table_{var}", fig))
    return sec


def _bars(measured, title: str, kind: str, published=None, ylabel: str | None = None):
    from aebench.plots import table_bars

    try:
        return table_bars(measured, title=title, interval=kind, published=published, ylabel=ylabel)
    except Exception as exc:  # a figure that cannot be drawn must not lose the report
        return exc


def _emit_figures(sec: Section, files: Path, md: list[str], body: list[str]) -> None:
    """Save ``sec``'s figures in ``files`` and show them in the Markdown and the HTML (after its tables)."""
    import matplotlib.pyplot as plt

    from aebench.plots import PRINT_DPI, SCREEN_DPI, save_figure

    for name, fig in sec.figures:
        shown = name.removeprefix(FIGURE_KEY)
        fname = figure_file(name, shown)  # a slug plus a hash of the whole name: two names, two files
        caption = sec.captions.get(name, "")
        drawn, buf = fig, io.BytesIO()
        if not isinstance(drawn, Exception):
            try:  # a plug-in's draw may return anything: only a Figure that saves is shown
                if not callable(getattr(drawn, "savefig", None)):
                    raise TypeError(f"its draw returned {type(drawn).__name__}, not a matplotlib Figure")
                drawn.savefig(buf, format="png", dpi=SCREEN_DPI, bbox_inches="tight")  # the page's copy
                save_figure(drawn, files / fname)  # the files to keep: PNG at print resolution and SVG
            except Exception as exc:
                fig = exc
            finally:
                if isinstance(drawn, plt.Figure):
                    plt.close(drawn)  # written to a file: in a notebook it must not also show up inline
        if isinstance(fig, Exception):
            why = describe_exception(fig)
            md += [f"*(figure {shown} could not be drawn: {why})*", ""]
            body.append(f"<p><em>(figure {html.escape(shown)} could not be drawn: {html.escape(why)})</em></p>")
            continue
        md += ([f"**{caption}**", ""] if caption else []) + [
            f"![{fname}](report_files/{fname}.png)",
            "",
            f"[PNG {PRINT_DPI} dpi](report_files/{fname}.png) · [SVG](report_files/{fname}.svg)",
            "",
        ]
        png = base64.b64encode(buf.getvalue()).decode()
        keep = (
            f'<a href="report_files/{html.escape(fname)}.png">PNG {PRINT_DPI} dpi</a> · '
            f'<a href="report_files/{html.escape(fname)}.svg">SVG</a>'
        )
        cap = f"<figcaption>{html.escape(caption)}{' — ' if caption else ''}{keep}</figcaption>"
        body.append(f'<figure><img alt="{html.escape(fname)}" src="data:image/png;base64,{png}">{cap}</figure>')


PAPER_HEADER = ["row", "column", "paper", "measured", "difference", "z (CI units)"]


@dataclass
class Section:
    """One part of the report: a title, notes (each a sentence or two) and tables (caption, header, rows)."""

    title: str
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)
    #: (file name, matplotlib figure or the exception that stopped it), shown after the tables
    figures: list[tuple[str, object]] = field(default_factory=list)
    captions: dict[str, str] = field(default_factory=dict)
    #: the metric a ``[[report]]`` section tabulates ("" for others): its declared figures join it
    metric: str = ""

    def markdown(self) -> list[str]:
        md = [f"## {self.title}", ""] + [line for n in self.notes for line in (f"*{n}*", "")]
        for caption, header, rows in self.tables:
            md += ([f"**{caption}**", ""] if caption else []) + _md_table(header, rows) + [""]
        return md

    def html(self) -> list[str]:
        body = [f"<h2>{html.escape(self.title)}</h2>"] + [f"<p><em>{html.escape(n)}</em></p>" for n in self.notes]
        for caption, header, rows in self.tables:
            body.append(_html_table(header, rows, caption))
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

    from aebench.reference import open_choices, protocol_note, table_gap
    from aebench.tables import format_paired, interval_kind, paired_table

    has_paper = bool(entry.published)  # a CSV (embedded when the spec was read from its file) or rows
    title = entry.title or f"{entry.metric} (report table {k + 1})"
    sec = Section(f"Paper vs measured: {title}" if has_paper else title, metric=entry.metric)
    sec.notes += [entry.note] if entry.note else []
    gap = table_gap(entry, runs) if runs else ""
    if not gap and entry.metric not in ds:
        gap = f"its metric {entry.metric} is not in these results"
    if gap:  # a trimmed spec: say which table is left out and why, in words
        sec.notes.append(f"This table is left out: {gap}.")
        return sec
    try:
        rows = entry.rows if entry.rows in ds.coords else {str(_spec_value(raw, entry.rows)): {}}
        columns = {label: _unswept(raw, ds, where) for label, where in entry.columns.items()}
        chosen, rule = _chosen(ds, entry)
        measured = paper_table(chosen, entry.metric, columns, rows)
        measured.attrs["title"] = title_of(entry.metric, ds)
    except (KeyError, ValueError) as exc:
        why = exc.args[0] if exc.args else type(exc).__name__  # str(KeyError) would add quotes
        sec.notes.append(f"This table is left out: it cannot be built from these results ({why}).")
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
    if published.empty and not has_paper:  # the table states no published numbers: measured only
        cells = format_table(measured)
        header = [key_label(entry.rows) if entry.rows in ds.coords else "experiment", *cells.columns]
        sec.tables.append(("", header, [[str(r), *map(str, vs)] for r, vs in cells.iterrows()]))
    elif published.empty:
        sec.notes.append("No published numbers embedded: load the spec from its file.")
        cells = format_table(measured)
        sec.tables.append(
            ("", PAPER_HEADER, [[str(r), c, "", v, "", ""] for r, vs in cells.iterrows() for c, v in vs.items()])
        )
    else:
        published["ci"] = published["ci"] * entry.ci_factor
        sec.tables.append(("", PAPER_HEADER, _paper_rows(compare_to_paper(measured, published), measured)))
    if metric_info(entry.metric, ds).figure == "bars":
        name = f"report_{k + 1}_{entry.metric}"
        fig = _bars(measured, sec.title, interval_kind(measured), published, title_of(entry.metric, ds))
        sec.figures.append((name, fig))
        sec.captions[name] = "Measured (error bars: the ± of the table above)" + (
            "; the paper's values as black marks, with its ± as read above" if not published.empty else ""
        )
    if chosen is not ds:
        sec.tables.append(_chosen_table(chosen, entry, columns, rows))
    if len(columns) > 1 and (measured.xs("n", axis=1, level="stat") > 1).any().any():
        base = entry.baseline_column
        diff = format_paired(paired_table(chosen, entry.metric, columns, base, rows))
        caption = f"Each column minus {base}, seed by seed ({diff.attrs['note']})"
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
    axes = [v[7:] for v in chosen.data_vars if v.startswith("chosen_")]
    return (
        "Chosen on validation (every cell above uses these runs)",
        ["row", *columns],
        _chosen_rows(chosen, axes, rows, columns),
    )


def _chosen_rows(chosen: xr.Dataset, axes: list[str], rows, columns: dict) -> list[list[str]]:
    """One row per row label, one cell per column: ``key=value`` of every axis chosen there."""
    from aebench.tables import _row_selections, select

    out = []
    for rlabel, rwhere in _row_selections(chosen, rows).items():
        part = select(chosen, rwhere)
        cells = []
        for where in columns.values():
            try:
                cell = select(part, where)
                cells.append(", ".join(f"{key_label(a, axes)}={_plain(cell[f'chosen_{a}'])}" for a in axes))
            except KeyError:
                cells.append("n/a")
        out.append([rlabel, *cells])
    return out


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
    own = metric_info(entry.metric, ds).interval
    keep = [entry.metric, "steps", *flag_vars(ds), *([own] if own else [])]
    ok = counts(ds, entry.metric)  # a run left out of the cell is left out of choosing it too
    by = by if ok is None else by.where(ok)
    chosen = select_best(ds, over=over, by=by, report=[v for v in keep if v in ds], minimize=minimize)
    rule = (
        f"Selection rule: {', '.join(over)} chosen per cell on {words} (seed mean); every part of this "
        "section shows the runs so chosen."
    )
    return chosen.assign_attrs(ds.attrs), rule


def criteria() -> dict[str, object]:
    """Every validation criterion a ``[[report]]`` table's ``by`` may name, as the evaluators declare them."""
    return dict(declared().criteria)


def criterion(ds: xr.Dataset, metric: str, by: str = "") -> tuple[xr.DataArray, bool, str]:
    """The validation measure that chooses hyper-parameters for ``metric``, whether lower is better, and its name.

    ``by`` names a declared :class:`aebench.hookspecs.Criterion` or a result variable; without it,
    the metric's own declared criterion, else the one declared ``default`` (validation reconstruction).
    """
    decl = declared()
    own = metric_info(metric, ds).criterion
    fallback = decl.default_criterion(ds)
    name = by or (own.name if own else (fallback.name if fallback else ""))
    if not name:
        raise KeyError(f"{metric} declares no validation criterion and none is declared as the default: name `by`")
    crit = decl.criteria.get(name)
    if crit is not None and crit.var not in ds:
        if by:
            raise KeyError(f"by = {by!r}: the results have no {crit.var}")
        if fallback is None:
            raise KeyError(f"the results have no {crit.var} to choose {metric} on: name `by`")
        crit = fallback
    if crit is None:
        if name not in ds:
            raise KeyError(f"by = {name!r}: no such result variable")
        da = ds[name]
        best_over = tuple(d for d in da.dims if d not in ds.dims and d not in ("split", "seed"))
        declared_metric = decl.metrics.get(name)
        higher = bool(declared_metric and declared_metric.higher_is_better)
        words = f"validation {name} ({'higher' if higher else 'lower'} is better)"
        crit_da = da.sel(split="valid", drop=True) if "split" in da.dims else da
        return _best(crit_da, best_over, higher), not higher, words
    da = ds[crit.var]
    if crit.split and "split" in da.dims:
        da = da.sel(split=crit.split, drop=True)
    return _best(da, crit.best_over, crit.higher_is_better), not crit.higher_is_better, crit.words or crit.name


def _best(da: xr.DataArray, over: tuple[str, ...], higher: bool) -> xr.DataArray:
    over = tuple(d for d in over if d in da.dims)
    if not over:
        return da
    return da.max(over) if higher else da.min(over)


SCHEME_DIMS = ("schedule.name", "data.name", "model.layers", "point")


def hyper_parameter_axes(ds: xr.Dataset) -> list[str]:
    """Sweep axes that are hyper-parameters (chosen on validation when no ``[[report]]`` table says what is
    compared): never the seed, nor an axis that picks a component or a scheme (``*.name``, like
    ``schedule.0.name``), the data, the widths or the run points: those are what a report compares."""
    return [d for d in ds["status"].dims if d not in (*SCHEME_DIMS, "seed") and not d.endswith(".name")]


def _selection(ds: xr.Dataset, rows: str | None) -> Section | None:
    """Without ``[[report]]`` tables: the paper's protocol on every hyper-parameter axis, by one declared rule
    (the criterion an evaluator declares ``default``: validation reconstruction for the built-ins)."""
    from aebench.evaluate.select import select_best

    decl = declared()
    rule = decl.default_criterion(ds)
    over = hyper_parameter_axes(ds)
    if not over or rule is None:
        return None
    by, minimize, words = criterion(ds, "", rule.name)
    report = [m for m in table_metrics(ds) if m in decl.metrics]
    keep = [*report, "steps", *flag_vars(ds), *(decl.metrics[m].interval for m in report if decl.metrics[m].interval)]
    sel = select_best(ds, over=over, by=by, report=[v for v in keep if v in ds], minimize=minimize)
    sel = sel.assign_attrs(ds.attrs)
    sec = Section(
        "Chosen on validation, reported on test",
        [f"Selection rule: {', '.join(over)} chosen by {words} (seed mean), for every metric."],
    )
    for var in report:
        header, table, kind = metric_table(sel, var, rows)
        sec.tables.append((f"{title_of(var, ds)}; {kind}", header, table))
        if metric_info(var, ds).figure == "bars":
            name = f"chosen_{var}"
            sec.figures.append((name, _bars(metric_frame(sel, var, rows), title_of(var, ds), kind)))
            sec.captions[name] = f"{title_of(var, ds)}, chosen on validation ({kind})"
    dims = [d for d in sel[f"chosen_{over[0]}"].dims if d != rows]
    columns = columns_of(sel, dims)
    if list(columns) == [""]:
        columns = {"chosen": {}}
    sec.tables.append(
        (
            "Chosen values (every table above uses these runs)",
            [key_label(rows) if rows in sel.dims else "experiment", *columns],
            _chosen_rows(sel, over, rows if rows in sel.dims else None, columns),
        )
    )
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
    """Run by run, each convergence flag that is 0 and what it leaves out (its reason says why)."""
    out = []
    for flag in flag_vars(ds):
        covers = ds[flag].attrs.get("covers", "")
        bad = (ds[flag] == 0).stack(run=ds[flag].dims) if ds[flag].dims else None
        if bad is None or not bool(bad.any()):
            continue
        reason = ds["reason"].stack(run=ds["reason"].dims)
        left_out = f"only its {covers}* results left out" if covers else "left out of every table"
        out += [
            ", ".join(f"{d} = {bad[d].values[k]}" for d in ds[flag].dims) + f" ({left_out}): {reason.values[k]}"
            for k in np.flatnonzero(bad.values)
        ]
    return out


def _flag_sections(ds: xr.Dataset) -> list[Section]:
    """Estimates stopped at the edge of what was tried (a limit, not an optimum), named run by run."""
    out = []
    for est in declared().estimates:
        var, what = est.at_edge, est.what
        if var not in ds or not bool((ds[var] == 1).any()):
            continue
        flag = ds[var].stack(run=ds[var].dims)
        hits = np.flatnonzero(flag.values == 1)
        chosen = ds[est.var].stack(run=ds[var].dims) if est.var in ds else None
        rows = [
            [
                ", ".join(f"{d} = {flag[d].values[k]}" for d in ds[var].dims),
                f"{float(chosen.values[k]):g}" if chosen is not None else "n/a",
            ]
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


def _html_table(header: list[str], rows: list[list[str]], caption: str = "") -> str:
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
