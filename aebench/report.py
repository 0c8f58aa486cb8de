"""`aebench report DIR`: tables laid out like the papers' and the figures, as HTML and Markdown."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import xarray as xr

from aebench.evaluate.stats import scalar_metrics, seed_summary
from aebench.results import load_results

#: metric -> (title, its own CI variable, value format); percent for error rates
KNOWN = {
    "svm_error": ("Linear SVM test error (%)", "svm_error_ci", 100),
    "finetune_error": ("Fine-tuned test error (%)", "finetune_error_ci", 100),
    "parzen_ll": ("Parzen test log-likelihood (nats)", "parzen_ll_se", 1),
    "recon_test": ("Test reconstruction error (whole stack)", None, 1),
    "train_seconds": ("Training time (s)", None, 1),
}


def metric_table(ds: xr.Dataset, var: str, rows: str | None = None) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of "mean ± CI" cells: rows = values of ``rows`` (e.g. data.name), columns = other sweep points.

    Over several seeds the interval is the 95 % t-interval of the seed mean; with one seed
    it is the metric's own interval (binomial CI of an error, standard error of a
    log-likelihood), as in the papers' tables.
    """
    title, own_ci, scale = KNOWN.get(var, (var, None, 1))
    summ = seed_summary(ds[[var]])
    mean, ci = summ[f"{var}_mean"], summ[f"{var}_ci"]
    if own_ci and own_ci in ds and ds.sizes.get("seed", 1) == 1:
        ci = ds[own_ci].mean("seed")
    dims = list(mean.dims)
    row_dim = rows if rows in dims else None
    col_dims = [d for d in dims if d != row_dim]
    row_values = list(mean[row_dim].values) if row_dim else [ds.attrs.get("title", "")]
    stacked = mean.stack(col=col_dims) if col_dims else mean.expand_dims(col=[0])
    cis = ci.stack(col=col_dims) if col_dims else ci.expand_dims(col=[0])
    cols = [", ".join(str(v) for v in (c if isinstance(c, tuple) else (c,))) for c in stacked["col"].values] if col_dims else [title]
    body = []
    for rv in row_values:
        m = stacked.sel({row_dim: rv}) if row_dim else stacked
        c = cis.sel({row_dim: rv}) if row_dim else cis
        cells = [_cell(float(a) * scale, float(b) * scale) for a, b in zip(m.values.ravel(), c.values.ravel())]
        body.append([str(rv), *cells])
    return [row_dim or "experiment", *cols], body


def _cell(mean: float, ci: float) -> str:
    if not np.isfinite(mean):
        return "failed"
    return f"{mean:.2f} ± {ci:.2f}" if np.isfinite(ci) else f"{mean:.2f}"


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
    files.mkdir(exist_ok=True)
    title = ds.attrs.get("title", out.name)
    md = [f"# {title}", "", _status_line(ds), ""]
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(_status_line(ds))}</p>"]
    failed = _failed(ds)
    if failed:
        md += ["## Failed runs", "", *[f"- {r}" for r in failed], ""]
        body += ["<h2>Failed runs</h2><ul>", *[f"<li>{html.escape(r)}</li>" for r in failed], "</ul>"]
    metrics = [m for m in KNOWN if m in ds] + [m for m in scalar_metrics(ds) if m not in KNOWN and not m.endswith(("_ci", "_se", "_C", "_sigma"))]
    for var in metrics:
        header, table = metric_table(ds, var, rows)
        name = KNOWN.get(var, (var,))[0]
        md += [f"## {name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        md += ["| " + " | ".join(r) + " |" for r in table] + [""]
        body += [f"<h2>{html.escape(name)}</h2>", _html_table(header, table)]
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
        (files / f"{fname}.png").write_bytes(buf.getvalue())
        md += [f"![{fname}](report_files/{fname}.png)", ""]
        body.append(f'<h3>{fname}</h3><img alt="{fname}" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">')
    md += ["## Spec", "", "```toml", ds.attrs.get("spec", ""), "```"]
    body.append(f"<h2>Spec</h2><pre>{html.escape(ds.attrs.get('spec', ''))}</pre>")
    page = "<!doctype html><html><head><meta charset='utf-8'><title>{}</title><style>{}</style></head><body>{}</body></html>".format(
        html.escape(title), "body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}", "\n".join(body)
    )
    (out / "report.html").write_text(page)
    (out / "report.md").write_text("\n".join(md))
    return out / "report.html", out / "report.md"


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
