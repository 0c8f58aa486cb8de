"""Published numbers beside a spec: the ``[[report]]`` tables of a preset.

A preset (``experiments/``) says which paper table its runs reproduce::

    [[report]]
    title = "Table II: linear SVM on top-layer features (DAE)"
    metric = "svm_error"
    published = "zhou2015-table2.csv"      # beside the spec: row, column, value, ci
    rows = "data.name"
    select = ["optimizer.lr", "corruption.level"]   # chosen on validation first
    note = "reduced scale: 5k training rows, 256 units, 10 epochs"
    columns = { "DAE-2L" = { "schedule.name" = "layerwise" }, "DAE-2J" = { "schedule.name" = "joint" } }

``Spec.from_toml`` reads ``published`` relative to the spec file and embeds its rows, so a
results folder carries the paper's numbers with it and ``aebench report`` prints them
next to the measured ones.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aebench.errors import SpecError


class PublishedValue(BaseModel):
    """One published cell, in the paper's units (percent for error rates)."""

    model_config = ConfigDict(extra="forbid")
    row: str
    column: str
    value: float = Field(allow_inf_nan=False)
    ci: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="The ± as published; the table's ci_factor says how it is read as a 95 % half-width.",
    )


class ReportTable(BaseModel):
    """A paper table that a spec's runs reproduce (one ``[[report]]`` entry)."""

    model_config = ConfigDict(extra="forbid")
    title: str = ""
    metric: str = Field(min_length=1, description="Result variable of every cell (a scalar per run).")
    columns: dict[str, dict[str, Any]] = Field(
        min_length=1, description="Column label -> coordinate values it selects."
    )
    rows: str = Field("data.name", description="Coordinate whose values are the table's rows.")
    select: list[str] = Field(default_factory=list, description="Sweep axes chosen on validation before tabulating.")
    by: str = Field(
        "",
        description=(
            "Validation criterion of `select`, the one rule for every part of the report that shows this table's "
            "cells: the name of a validation criterion an evaluator declares (aebench.report.criteria()) or a "
            "result variable (default: the metric's own declared criterion, else the one declared as the default)."
        ),
    )
    baseline: str = Field(
        "", description="Column the others are compared with, seed by seed (default: the first column)."
    )
    published: str | list[PublishedValue] = Field(
        default_factory=list, description="CSV file beside the spec (row,column,value,ci) or its rows."
    )
    note: str = Field("", description="How this reproduction deviates from the paper's protocol.")
    ci_factor: float = Field(
        1.0,
        gt=0,
        allow_inf_nan=False,
        description="Turns the published ± into a 95 % half-width (1.96 for a standard error).",
    )

    @field_validator("columns")
    @classmethod
    def _columns_select(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for label, where in v.items():
            if not isinstance(where, dict) or not where:
                raise ValueError(f"column {label!r} must be a table of coordinate = value")
        return v

    @model_validator(mode="after")
    def _baseline_is_a_column(self) -> ReportTable:
        if self.baseline and self.baseline not in self.columns:
            raise ValueError(f"baseline {self.baseline!r} is not a column (columns: {', '.join(self.columns)})")
        return self

    @property
    def baseline_column(self) -> str:
        return self.baseline or next(iter(self.columns))


def read_published(path: Path) -> list[dict[str, Any]]:
    """The rows of a published-numbers CSV (header row,column,value,ci)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"published numbers {path} cannot be read ({exc.strerror or exc}).") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or not {"row", "column", "value"} <= set(rows[0]):
        raise SpecError(f"published numbers {path}: need a header with row, column, value (and ci).")
    out = []
    for k, r in enumerate(rows, start=2):
        try:
            value = float(r["value"])
            ci = float(r["ci"]) if r.get("ci") not in (None, "") else None
        except ValueError:
            raise SpecError(f"published numbers {path}, line {k}: value/ci must be numbers, got {r}.") from None
        if not math.isfinite(value) or (ci is not None and not math.isfinite(ci)):
            raise SpecError(f"published numbers {path}, line {k}: value/ci must be finite.")
        out.append({"row": r["row"], "column": r["column"], "value": value, **({"ci": ci} if ci is not None else {})})
    return out


def resolve_reports(raw: dict[str, Any], base: Path | None) -> None:
    """Embed each ``[[report]]``'s ``published`` file (relative to ``base``) into ``raw`` in place."""
    for entry in raw.get("report", []) if isinstance(raw.get("report"), list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("published"), str):
            path = Path(entry["published"])
            if not path.is_absolute() and base is not None:
                path = base / path
            entry["published"] = read_published(path)


def check_reports(raw: dict[str, Any]) -> list[str]:
    """Field-level problems of the ``report`` key (empty when it is absent or valid)."""
    if "report" not in raw:
        return []
    tables = raw["report"]
    if not isinstance(tables, list):
        return [f"report = {tables!r}: must be an array of tables ([[report]])"]
    problems = []
    for k, entry in enumerate(tables):
        try:
            ReportTable.model_validate(entry)
        except ValidationError as exc:
            for e in exc.errors():
                loc = ".".join(str(p) for p in ("report", k, *e["loc"]))
                problems.append(f"{loc}: {e['msg']}")
    return problems


def report_tables(raw: dict[str, Any]) -> list[ReportTable]:
    return [ReportTable.model_validate(e) for e in raw.get("report", [])] if isinstance(raw.get("report"), list) else []


# ------------------------------------------------------------------ protocol notes
#: keys a protocol note lists (dotted, as resolved per run), in reading order
PROTOCOL_KEYS = (
    "seed",
    "model.layers",
    "model.activation",
    "model.tied",
    "model.loss",
    "schedule.name",
    "schedule.epochs",
    "schedule.patience",
    "corruption.name",
    "corruption.level",
    "regularizers.name",
    "regularizers.weight",
    "optimizer.name",
    "optimizer.lr",
    "optimizer.batch_size",
)


def run_values(runs: list) -> dict[str, list[Any]]:
    """Every value each key takes over ``runs`` (resolved: defaults included), in order of first appearance."""
    seen: dict[str, list[Any]] = {}

    def add(key: str, value: Any) -> None:
        values = seen.setdefault(key, [])
        if value not in values:
            values.append(value)

    for run in runs:
        add("seed", run.seed)
        add("data.name", run.data.name)
        for where, comps in (
            ("model", [run.model]),
            ("corruption", run.corruptions),
            ("regularizers", run.regularizers),
            ("schedule", run.schedules),
            ("optimizer", [run.optimizer]),
        ):
            for comp in comps:
                add(f"{where}.name", comp.name)
                for k, v in comp.params.model_dump().items():
                    add(f"{where}.{k}", v)
        for ev in run.evaluators:
            for k, v in ev.params.model_dump().items():
                add(f"evaluate.{ev.name}.{k}", v)
    return seen


def _show(values: list[Any]) -> str:
    text = [str(v) for v in values if v is not None]
    if not text:
        return "default"
    return text[0] if len(text) == 1 else "{" + ", ".join(text) + "}"


def protocol_note(runs: list, data_rows: dict[str, list[dict[str, int]]]) -> str:
    """What ran, written from the runs themselves (so it cannot drift from the spec): sizes, grids, budgets."""
    values = run_values(runs)
    sizes = []
    for name in values.get("data.name", []):
        for r in data_rows.get(name, []):
            sizes.append(f"{name} {r['train']:,}/{r['valid']:,}/{r['test']:,}")
    parts = [f"{len(values['seed'])} seed(s)"]
    if sizes:
        parts.append("rows train/valid/test: " + ", ".join(sizes))
    parts += [f"{k} = {_show(values[k])}" for k in PROTOCOL_KEYS[1:] if k in values]
    return "As run: " + "; ".join(parts) + "."


def _provenance(runs: list, reg) -> list[str]:
    """Each data set's own :meth:`~aebench.components.Dataset.provenance`, data sets that say
    the same thing named together ("mnist-bg-rand, rect regenerated by ...")."""
    by_text: dict[str, list[str]] = {}
    for data in {(r.data.name, r.data.params.model_dump_json()): r.data for r in runs}.values():
        try:
            text = data.build(reg).provenance()
        except Exception:  # a plug-in's data set gone or broken since the runs: nothing to say for it
            continue
        if isinstance(text, str) and text and data.name not in by_text.setdefault(text, []):
            by_text[text].append(data.name)
    return [f"{', '.join(names)} {text}" for text, names in by_text.items()]


def open_choices(runs: list) -> str:
    """The protocol details that the papers do not give, and what these runs chose for each: every
    evaluator's :class:`aebench.hookspecs.Note` (from the values its Params took), then the data sets."""
    from aebench.hookspecs import Note
    from aebench.plugins import registry

    v = run_values(runs)
    out = []
    reg = registry()
    for name in dict.fromkeys(ev.name for run in runs for ev in run.evaluators):
        try:
            cls = reg.get("evaluator", name)
        except Exception:  # gone or in conflict since the runs were made: nothing to say for it
            continue
        prefix = f"evaluate.{name}."
        values = {k[len(prefix) :]: _show(vs) for k, vs in v.items() if k.startswith(prefix)}
        for note in (n for n in getattr(cls, "reports", ()) or () if isinstance(n, Note)):
            try:
                text = note.describe(values)
            except Exception:  # a plug-in's note must not lose the report
                continue
            out += [text] if isinstance(text, str) and text else []
    out += _provenance(runs, reg)
    return ("Left open by the paper, chosen here: " + "; ".join(out) + ".") if out else ""
