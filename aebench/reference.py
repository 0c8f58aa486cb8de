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
    published_from: str = Field(
        "", description="The file `published` was read from (set when a spec file's CSV is embedded)."
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

    @model_validator(mode="after")
    def _select_is_not_compared(self) -> ReportTable:
        # An axis the columns or rows compare is the question, not a hyper-parameter: choosing it on
        # validation would "choose" one arm of the comparison (layer-wise over none, say).
        compared = {self.rows} | {key for where in self.columns.values() for key in where}
        both = [axis for axis in self.select if axis in compared]
        if both:
            raise ValueError(
                f"select names {', '.join(both)}, which the table compares (its columns or rows): "
                "only hyper-parameter axes are chosen on validation"
            )
        return self

    @property
    def baseline_column(self) -> str:
        return self.baseline or next(iter(self.columns))


#: the largest published-numbers file read (a paper's tables are a few KiB; /dev/zero is endless)
PUBLISHED_LIMIT = 4 * 1024 * 1024


def _read_regular(path: Path, limit: int = PUBLISHED_LIMIT) -> str:
    """The text of ``path``, which must be a regular file of at most ``limit`` bytes: a device, a FIFO
    (opened without waiting for a writer) or a folder is refused, never read."""
    import os
    import stat

    from aebench.outdir import what_is

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise SpecError(f"published numbers {path} cannot be read ({exc.strerror or exc}).") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise SpecError(f"published numbers {path} is {what_is(mode)}, not a plain file: name a CSV file.")
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise SpecError(
            f"published numbers {path} is larger than {limit // 2**20} MiB: name a CSV of the paper's table."
        )
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise SpecError(f"published numbers {path} is not a UTF-8 text file.") from None


def read_published(path: Path) -> list[dict[str, Any]]:
    """The rows of a published-numbers CSV (header row,column,value,ci)."""
    text = _read_regular(path)
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:
        raise SpecError(f"published numbers {path} is not a readable CSV ({exc}).") from None
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
            entry["published_from"] = entry["published"]  # the file's name, for the report's Spec section
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


#: the longest note one evaluator's ``Note`` may add to a report (longer ones are cut, and say so)
NOTE_LIMIT = 1000


def _bounded(text: str) -> str:
    return text if len(text) <= NOTE_LIMIT else text[:NOTE_LIMIT] + "… (cut)"


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
                if not isinstance(text, str):
                    raise TypeError(f"it returned {type(text).__name__}, not text")
            except Exception as exc:  # a plug-in's note must not lose the report: it is named instead
                from aebench.plugins import describe_exception

                text = f"(a note of evaluator {name!r} could not be written: {describe_exception(exc)})"
            out += [_bounded(text)] if text else []
    out += _provenance(runs, reg)
    out += _optimizer_choice(v)
    return ("Left open by the paper, chosen here: " + "; ".join(out) + ".") if out else ""


def _optimizer_choice(values: dict[str, list[Any]]) -> list[str]:
    """The optimizer and every setting it ran with: the papers name a method and a rate at most, and
    the same optimizer trains every stage, the supervised fine-tuning included."""
    settings = {k.split(".", 1)[1]: _show(vs) for k, vs in values.items() if k.startswith("optimizer.")}
    name = settings.pop("name", "")
    if not name and not settings:
        return []
    listed = ", ".join(f"{k} {v}" for k, v in settings.items())
    return [f"optimizer {name} ({listed}) for every stage and for the finetune evaluator's training"]


# ------------------------------------------------------------------ tables these runs cannot fill
def table_gap(table: ReportTable, runs: list) -> str:
    """Why ``runs`` cannot fill ``table`` (in words, no Python reprs), or "": the evaluator that writes its
    metric is not run, or a column selects a value that no run has (a trimmed spec)."""
    from aebench.spec import get_dotted
    from aebench.tables import declared

    decl = declared()
    ran = list(dict.fromkeys(e.name for r in runs for e in r.evaluators))
    owner = decl.owner.get(table.metric)
    if table.metric in decl.metrics and owner and owner not in ran:
        return (
            f"its metric {table.metric} ({decl.metrics[table.metric].title}) is written by the {owner} evaluator, "
            f"which this spec does not run (it runs {', '.join(ran) or 'no evaluator'})"
        )
    resolved = run_values(runs)
    for label, where in table.columns.items():
        for key, want in where.items():
            have = list(resolved.get(key, []))
            have += [v for r in runs for v in [get_dotted(r.raw, key, None)] if v is not None and v not in have]
            if have and not any(_same(v, want) for v in have):
                return (
                    f"its column {label} selects {key} = {want}, which no run of this spec has "
                    f"(they have {', '.join(map(str, have))})"
                )
    return ""


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def report_gaps(raw: dict[str, Any], runs: list) -> list[str]:
    """One sentence per ``[[report]]`` table that ``runs`` cannot fill (``validate`` and ``run`` say them
    before anything starts; the report says the same in the table's place)."""
    try:
        tables = report_tables(raw)
    except ValidationError:  # already a spec error of its own
        return []
    out = []
    for k, table in enumerate(tables):
        why = table_gap(table, runs)
        if why:
            name = f"'{table.title}'" if table.title else f"{k + 1} ({table.metric})"
            out.append(f"[[report]] table {name} will be left out of the report: {why}")
    return out
