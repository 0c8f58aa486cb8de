"""Experiment spec: TOML <-> validated models (DESIGN §4).

A spec names one plug-in per role and its params; ``[sweep]`` and ``seeds`` multiply it
into runs. Every problem is a :class:`SpecError` whose message names the field, the bad
value and, for plug-in names and keys, the close matches.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictStr,
    Tag,
    ValidationError,
    create_model,
    field_validator,
)
from pydantic_core import PydanticUndefined

from aebench.errors import PluginError, SpecError
from aebench.options import PRECISIONS, Precision  # noqa: F401  (PRECISIONS: re-exported)
from aebench.plugins import Registry, registry
from aebench.reference import check_reports, resolve_reports

#: a component table ``{ name = "...", **params }``, or a list of them; validated against the
#: registry (the named plug-in's ``Params``) by :func:`resolve`, run by run
ComponentTable = Any
#: how a top-level key holds its components: one table, one or a list (chained / per layer), a
#: list, a table keyed by component name (``evaluate``), or one table or just its name
SHAPES = ("table", "table-or-list", "list", "by-name", "table-or-name")


def components(kind: str, shape: str, default: Any = PydanticUndefined, description: str = "") -> Any:
    """A top-level field that holds components of ``kind`` (a registry kind) in ``shape``: the
    Workbench gives it a section with pickers and :func:`typed_spec_model` types it from the
    registry, so a new section needs only this field."""
    assert shape in SHAPES, shape
    return Field(default, description=description, json_schema_extra={"kind": kind, "shape": shape})


class SpecModel(BaseModel):
    """The top level of a spec: every key, its type and its default (DESIGN §4).

    The CLI, the Workbench and ``load_model`` read keys, defaults and options from here;
    component tables are checked against the plug-ins' ``Params`` by :func:`resolve`.
    """

    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(min_length=1, description="Experiment name.")
    description: StrictStr = Field("", description="Free text shown in reports.")
    seeds: list[Any] = Field([0], description="One run per seed (innermost sweep axis).")
    data: ComponentTable = components("dataset", "table", description="The data set: { name = ..., **params }.")
    model: ComponentTable = components("model", "table", description="The autoencoder: { name = ..., **params }.")
    corruption: ComponentTable = components(
        "corruption", "table-or-list", {"name": "none"}, "Corruption process(es); a list is one per layer input."
    )
    regularizers: ComponentTable = components("regularizer", "list", [], "Per-layer regularizers.")
    schedule: ComponentTable = components(
        "schedule", "table-or-list", description="Training schedule(s); a list chains their stages."
    )
    optimizer: ComponentTable = components(
        "optimizer", "table-or-name", {"name": "rmsprop"}, "The optimizer of every stage (a table, or its name)."
    )
    evaluate: ComponentTable = components(
        "evaluator", "by-name", {"recon": {}}, "Evaluators by name, each with its params; they run in this order."
    )
    sweep: dict[str, Any] = Field({}, description="Dotted key -> list of values; mode = grid | zip.")
    runs: list[Any] | None = Field(None, description="Explicit [[runs]] overrides, one run per entry.")
    precision: Precision = Field("float32", description="Mixed precision, opt-in.")
    ensemble: StrictBool = Field(False, description="Train runs that share shapes as one batch of members.")
    compile: StrictBool = Field(
        False, description="Run each training step under torch.compile (on CUDA with CUDA graphs: reduce-overhead)."
    )
    report: list[Any] | None = Field(None, description="[[report]] paper tables (aebench.reference).")
    callbacks: ComponentTable = Field(
        [],
        description=(
            "Callbacks for each run: [{ name = ..., **params }] (loggers, stopping rules); the default ones "
            "(early-stopping, divergence, checkpoint) are on unless listed here with their own params."
        ),
    )

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[Any]) -> list[Any]:
        ok = all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**63 for x in seeds)
        if not (seeds and ok):
            raise ValueError("must be a non-empty list of integers from 0 to 2^63 - 1")
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds repeat")
        return seeds


TOP_KEYS = set(SpecModel.model_fields)
#: keys every run gets when the spec leaves them out
DEFAULTS: dict[str, Any] = {
    k: f.default
    for k, f in SpecModel.model_fields.items()
    if k in ("seeds", "corruption", "regularizers", "optimizer", "evaluate")
}
REQUIRED = tuple(k for k, f in SpecModel.model_fields.items() if f.is_required())
#: spec keys that are not part of a run (how runs are made and executed, and reports)
NOT_RUN_KEYS = ("sweep", "runs", "seeds", "ensemble", "compile", "report")
#: run keys that every run of one experiment shares (results are merged under one name)
SAME_FOR_ALL_RUNS = ("name",)


@dataclass(frozen=True)
class Slot:
    """A top-level key that holds components (DESIGN §10 "Typed component tables"): which kind,
    in which shape, and the ``Params`` model of every name the registry holds for it."""

    key: str
    kind: str
    shape: str
    description: str
    models: dict[str, type[BaseModel]]  # name -> Params (the table's fields besides ``name``)
    summaries: dict[str, str]
    examples: frozenset[str]


def _kind_models(kind: str, reg: Registry) -> tuple[dict[str, type[BaseModel]], dict[str, str], frozenset[str]]:
    if kind in reg.kinds():
        models, summaries, examples = {}, {}, set()
        for name in reg.names(kind):
            try:
                entry = reg.entry(kind, name)
            except PluginError:  # a name two plug-ins claim cannot be chosen
                continue
            models[name], summaries[name] = entry.cls.Params, entry.cls.summary
            if entry.example:
                examples.add(name)
        return models, summaries, frozenset(examples)
    return {}, {}, frozenset()


def kind_slot(kind: str, reg: Registry | None = None, key: str | None = None, description: str = "") -> Slot:
    """The components of one registry kind as a :class:`Slot` that no spec key holds (the
    Workbench's executor: chosen per launch, not written into the spec)."""
    models, summaries, examples = _kind_models(kind, reg or registry())
    return Slot(key or kind, kind, "table", description, models, summaries, examples)


def component_slots(reg: Registry | None = None) -> dict[str, Slot]:
    """Every top-level key of :class:`SpecModel` that holds components, in the model's order.

    Declared with :func:`components`; a component-table field declared without it whose key
    names a registry kind (``callback`` or ``callbacks``) is read as one too (a list when its
    default is a list, else one table)."""
    reg = reg or registry()
    out = {}
    for key, f in SpecModel.model_fields.items():
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        kind, shape = extra.get("kind"), extra.get("shape")
        if kind is None and f.annotation is ComponentTable and key not in ("runs", "report"):
            kind = next((k for k in reg.kinds() if key in (k, f"{k}s")), None)
            default = None if f.is_required() else f.get_default(call_default_factory=True)
            shape = "list" if isinstance(default, list) else "table"
        if kind is None:
            continue
        models, summaries, examples = _kind_models(str(kind), reg)
        out[key] = Slot(key, str(kind), str(shape), f.description or "", models, summaries, examples)
    return out


def _named(slot: Slot, name: str, params: type[BaseModel]) -> type[BaseModel]:
    """``params`` with ``name`` fixed to ``name``: one model per kind and name."""
    return create_model(f"{slot.kind}:{name}", __base__=params, name=(Literal[name], name))


def _name_of(value: Any) -> Any:
    return value.get("name") if isinstance(value, dict) else getattr(value, "name", None)


def typed_spec_model(reg: Registry | None = None) -> type[BaseModel]:
    """:class:`SpecModel` with every component field typed from the registry: a table is a
    union of one model per name (discriminated by ``name``), a list a list of them, and a
    by-name table (``evaluate``) one optional field per name. What the Workbench builds its
    form from; every preset validates against it (tests/test_ui.py)."""
    fields: dict[str, Any] = {}
    for key, slot in component_slots(reg).items():
        named = [Annotated[_named(slot, n, p), Tag(n)] for n, p in slot.models.items()]
        if not named:
            continue
        one: Any = Annotated[Union[tuple(named)], Discriminator(_name_of)]  # noqa: UP007
        if slot.shape == "by-name":
            table = create_model(
                f"{slot.key}:by-name",
                __config__=ConfigDict(extra="forbid"),
                **{n: (p | None, None) for n, p in slot.models.items()},
            )
            annotation: Any = table
        elif slot.shape == "list":
            annotation = list[one]
        elif slot.shape == "table-or-list":
            annotation = Union[one, list[one]]  # noqa: UP007
        elif slot.shape == "table-or-name":
            annotation = Union[one, Literal[tuple(slot.models)]]  # noqa: UP007
        else:
            annotation = one
        f = SpecModel.model_fields[key]
        fields[key] = (annotation, Field(... if f.is_required() else f.get_default(), description=f.description))
    return create_model("TypedSpecModel", __base__=SpecModel, **fields)


@dataclass(frozen=True)
class ComponentSpec:
    """A validated ``{name = ..., **params}`` table for one plug-in."""

    kind: str
    name: str
    params: BaseModel

    def cls(self, reg: Registry | None = None) -> type:
        return (reg or registry()).get(self.kind, self.name)

    def build(self, reg: Registry | None = None) -> Any:
        return self.cls(reg)(self.params)


@dataclass
class RunSpec:
    """One run: a fully resolved spec with one seed and one sweep point."""

    index: int
    seed: int
    point: dict[str, Any]
    raw: dict[str, Any]
    data: ComponentSpec
    model: ComponentSpec
    corruptions: list[ComponentSpec]
    regularizers: list[ComponentSpec]
    schedules: list[ComponentSpec]
    optimizer: ComponentSpec
    evaluators: list[ComponentSpec]
    precision: str = "float32"
    callbacks: list[ComponentSpec] = field(default_factory=list)  # the spec's, after the default ones

    @property
    def run_id(self) -> str:
        return f"run-{self.index:04d}"

    def to_json(self) -> str:
        return json.dumps({"seed": self.seed, "point": self.point, "spec": self.raw}, indent=2, sort_keys=True)

    def digest(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


@dataclass
class Spec:
    """A validated experiment spec (``aebench.Spec.from_toml(path)``)."""

    raw: dict[str, Any]
    source: str = "<spec>"
    runs: list[RunSpec] = field(default_factory=list)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_toml(cls, path: str | Path, reg: Registry | None = None) -> Spec:
        """Read and validate a spec file, or a preset by name (``zhou2015-dae-reduced``: a file of
        ``aebench.presets``); a path that exists, relative to the current folder, comes first."""
        path = Path(path)
        if path.is_dir():
            inside = path / "spec.toml"
            hint = f"; it holds a spec: {inside}" if inside.is_file() else "; name a .toml file"
            raise SpecError(f"{path} is a folder, not a spec file{hint}.")
        if not path.exists():
            path = _preset_or_missing(path)
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"spec file {path} is not valid TOML: {exc}.") from None
        except UnicodeDecodeError:
            raise SpecError(f"spec file {path} is not a UTF-8 text file.") from None
        except OSError as exc:
            raise SpecError(f"spec file {path} cannot be read ({exc.strerror or exc}).") from None
        unread = []  # a published file that cannot be read is one problem among the spec's others
        try:
            resolve_reports(data, path.parent)
        except SpecError as exc:
            unread = [f"report.published: {str(exc).rstrip('.')}"]
        try:
            spec = cls.from_dict(data, source=str(path), reg=reg)
        except SpecError as exc:
            _raise([*unread, *getattr(exc, "problems", [str(exc)])], str(path))
        _raise(unread, str(path))
        return spec

    @classmethod
    def from_text(cls, text: str, source: str = "<spec>", reg: Registry | None = None) -> Spec:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"{source} is not valid TOML: {exc}.") from None
        return cls.from_dict(data, source=source, reg=reg)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<spec>", reg: Registry | None = None) -> Spec:
        reg = reg or registry()
        raw = copy.deepcopy(data)
        # Every problem at once: the top level's, the sweep's and every run's, in one message
        # (a missing `name` must not hide a mistyped model key).
        problems = _top_level_problems(raw)
        runs: list[RunSpec] = []
        try:
            expanded = expand(_expandable(raw), source)
        except SpecError as exc:
            problems += [p for p in getattr(exc, "problems", [str(exc)]) if p not in problems]
            expanded = []
        # one message per problem, not one per sweep point: a problem every run shares names no point
        found: dict[str, list[str]] = {}
        for i, (point, seed, run_raw) in enumerate(expanded):
            try:
                runs.append(resolve(run_raw, i, seed, point, reg, source))
            except SpecError as exc:
                for problem in getattr(exc, "problems", [str(exc)]):
                    found.setdefault(problem.removeprefix(_point_label(point)), []).append(problem)
        swept = sweep_keys(raw) if isinstance(raw.get("sweep", {}), dict) else []
        for bare, where in found.items():
            everywhere = len(where) == len(expanded)
            first = _in_sweep(where[0], swept, raw)
            problems += [_in_sweep(bare, swept, raw)] if everywhere else [first] if first not in problems else []
        _raise(problems, source)
        return cls(raw=raw, source=source, runs=runs)

    # ------------------------------------------------------------------------ output
    @property
    def name(self) -> str:
        return str(self.raw["name"])

    def to_toml(self) -> str:
        return tomli_w.dumps(self.raw)

    def sweep_dims(self) -> list[str]:
        return sweep_keys(self.raw)


def _preset_or_missing(path: Path) -> Path:
    """The preset named ``path`` (no folder in it), or a SpecError saying that neither a file nor a preset
    has that name, with the close preset names."""
    from aebench import presets

    found = presets.path(str(path))
    if found is not None:
        return found
    close = presets.close_to(str(path)) if len(path.parts) == 1 else []
    if close:
        raise SpecError(f"spec file {path} does not exist; did you mean the preset {' or '.join(map(repr, close))}?")
    listed = " (nor a preset: `aebench presets` lists them)" if len(path.parts) == 1 else ""
    raise SpecError(f"spec file {path} does not exist{listed}.")


# ---------------------------------------------------------------------- validation
def _top_level_problems(raw: dict[str, Any]) -> list[str]:
    """Every problem of the typed top level and the ``[[report]]`` tables (not raised: collected)."""
    try:
        SpecModel.model_validate(raw)
        problems = []
    except ValidationError as exc:
        problems = [_describe(e, "", SpecModel) for e in exc.errors()]
    problems += check_reports(raw)
    if raw.get("ensemble") is True and raw.get("precision") == "float16":
        problems.append(
            'precision = "float16" with ensemble = true: ensembles train in float32 or bfloat16 '
            "(float16 needs loss scaling per run); use bfloat16 or train the runs apart"
        )
    return problems


def _expandable(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with what cannot be expanded into runs set aside (its problem is already collected):
    unusable seeds become one seed, so the runs' own problems can still be found."""
    seeds = raw.get("seeds", [0])
    if isinstance(seeds, list) and seeds and all(isinstance(x, int) and not isinstance(x, bool) for x in seeds):
        return raw
    return {**raw, "seeds": [0]}


def _top_problems(raw: dict[str, Any], keys: set[str]) -> list[str]:
    """The typed top level's complaints about ``keys`` of one run."""
    try:
        SpecModel.model_validate(raw)
    except ValidationError as exc:
        return [_describe(e, "", SpecModel) for e in exc.errors() if e["loc"] and e["loc"][0] in keys]
    return []


def _raise(problems: list[str], source: str) -> None:
    if problems:
        err = SpecError(f"invalid spec {source}: " + "; ".join(problems) + ".")
        err.problems = list(problems)  # so that callers can gather every problem into one message
        raise err


def _component(kind: str, where: str, table: Any, reg: Registry) -> ComponentSpec:
    if not isinstance(table, dict):
        raise _FieldError(f'{where} = {table!r}: must be a table like {{ name = "..." }}')
    if "name" not in table:
        raise _FieldError(f"{where}.name is required (one of: {', '.join(reg.names(kind))})")
    name = table["name"]
    try:
        cls = reg.get(kind, name)
    except PluginError as exc:
        raise _FieldError(f"{where}.name = {name!r}: {exc}") from None
    params = {k: v for k, v in table.items() if k != "name"}
    return ComponentSpec(kind, name, _validate(cls.Params, params, where))


def _validate(model: type[BaseModel], params: dict[str, Any], where: str) -> BaseModel:
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise _FieldError("; ".join(_describe(e, where, model) for e in exc.errors())) from None


def _describe(err: dict[str, Any], where: str, model: type[BaseModel]) -> str:
    loc = ".".join(str(p) for p in (where, *err["loc"]) if p != "")
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        key = str(err["loc"][-1])
        allowed = sorted({*model.model_fields, *(["name"] if where else [])})  # a component table has its name
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{loc}: unknown key{hint}; allowed: {', '.join(allowed) or '(none)'}"
    if err["type"] == "missing":
        return f"{loc} is required"
    return f"{loc} = {_show(err.get('input'))}: {msg}"


def _in_sweep(problem: str, keys: list[str], raw: dict[str, Any]) -> str:
    """An unknown key that a ``[sweep]`` (or ``[[runs]]``) key put there is that key's problem: say where it is
    written and the close match as the whole dotted key (``schedule.nmae`` -> did you mean "schedule.name"?)."""
    for key in keys:
        at = problem.find(f"{key}: unknown key")
        if at < 0 or (at and not problem[:at].endswith(": ")):
            continue
        parent, _, last = key.rpartition(".")
        rest = problem[at + len(key) + 2 :]
        close = re.search(r"did you mean '([^']+)'", rest)
        allowed = rest.split("allowed: ", 1)[-1]
        where = "[sweep]" if key in raw.get("sweep", {}) else "[[runs]]"
        hint = f' (did you mean "{parent}.{close.group(1)}"?)' if close else ""
        return f'{problem[:at]}{where} key "{key}": {parent} has no key {last!r}{hint}; its keys: {allowed}'
    return problem


def _show(value: Any) -> str:
    """A value as the spec would spell it: ``true``/``false`` for booleans, also inside lists."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value)


class _FieldError(Exception):
    pass


def resolve(raw: dict[str, Any], index: int, seed: int, point: dict[str, Any], reg: Registry, source: str) -> RunSpec:
    """Validate one expanded run against the plug-ins' ``Params``."""
    raw = {**DEFAULTS, **raw}
    problems: list[str] = []
    prefix = _point_label(point)

    def attempt(fn, *args):
        try:
            return fn(*args)
        except _FieldError as exc:
            problems.append(f"{prefix}{exc}")
            return None

    def listed(kind: str, key: str, value: Any, per_layer: bool) -> list[ComponentSpec]:
        tables = value if isinstance(value, list) else [value]
        out = []
        for i, table in enumerate(tables):
            where = f"{key}[{i}]" if isinstance(value, list) else key
            if per_layer and isinstance(value, list) and isinstance(table, dict) and "layers" not in table:
                table = {**table, "layers": [i]}  # a list of corruptions: entry i is layer input i
            c = attempt(_component, kind, where, table, reg)
            if c is not None:
                out.append(c)
        return out

    if point:  # a swept top-level key (precision, ...) gets the checks the spec's own value got
        problems += [f"{prefix}{p}" for p in _top_problems(raw, {k.split(".")[0] for k in point})]
    # a required table left out is the top level's problem (already collected): its run checks the rest
    data = attempt(_component, "dataset", "data", raw["data"], reg) if "data" in raw else None
    model = attempt(_component, "model", "model", raw["model"], reg) if "model" in raw else None
    corruptions = listed("corruption", "corruption", raw["corruption"], per_layer=True)
    if not isinstance(raw["regularizers"], list):
        problems.append(f"{prefix}regularizers = {raw['regularizers']!r}: must be a list of tables")
        regularizers = []
    else:
        regularizers = listed("regularizer", "regularizers", raw["regularizers"], per_layer=False)
    if raw.get("schedule") == []:
        problems.append(f"{prefix}schedule = []: name at least one schedule")
    schedules = listed("schedule", "schedule", raw["schedule"], per_layer=False) if "schedule" in raw else []
    if model is not None:
        problems += [f"{prefix}{p}" for p in _layer_problems(model, corruptions, regularizers, raw)]
    opt_table = raw["optimizer"] if isinstance(raw["optimizer"], dict) else {"name": raw["optimizer"]}
    optimizer = attempt(_component, "optimizer", "optimizer", opt_table, reg)
    evaluators = []
    if not isinstance(raw["evaluate"], dict):
        problems.append(f"{prefix}evaluate = {raw['evaluate']!r}: must be a table of evaluator names")
    else:
        for name, params in raw["evaluate"].items():
            table = {"name": name, **(params if isinstance(params, dict) else {"_": params})}
            c = attempt(_component, "evaluator", f"evaluate.{name}", table, reg)
            if c is not None:
                evaluators.append(c)
    callbacks = _callbacks(raw.get("callbacks", []), reg, attempt, problems, prefix)
    _raise(problems, source)
    run_raw = {k: v for k, v in raw.items() if k not in NOT_RUN_KEYS}
    return RunSpec(
        index=index,
        seed=seed,
        point=point,
        raw=run_raw,
        data=data,
        model=model,
        corruptions=corruptions,
        regularizers=regularizers,
        schedules=schedules,
        optimizer=optimizer,
        evaluators=evaluators,
        precision=raw.get("precision", "float32"),
        callbacks=callbacks,
    )


def _callbacks(value: Any, reg: Registry, attempt: Any, problems: list[str], prefix: str) -> list[ComponentSpec]:
    """The run's callbacks: the registry's default ones (``default = True``) the spec does not
    list, with their default Params, then the spec's, in its order."""
    if not isinstance(value, list):
        problems.append(f'{prefix}callbacks = {value!r}: must be a list of tables like {{ name = "..." }}')
        return []
    found = [attempt(_component, "callback", f"callbacks[{i}]", table, reg) for i, table in enumerate(value)]
    listed = [c for c in found if c is not None]
    names = {c.name for c in listed}
    defaults = [
        ComponentSpec("callback", e.name, e.cls.Params()) for e in reg.defaults("callback") if e.name not in names
    ]
    return defaults + listed


def _layer_problems(
    model: ComponentSpec, corruptions: list[ComponentSpec], regularizers: list[ComponentSpec], raw: dict
) -> list[str]:
    """``layers`` entries that name no layer of the model (a silently ignored index is a wrong experiment)."""
    sizes = getattr(model.params, "layers", None)
    if not isinstance(sizes, list):
        return []
    n = len(sizes)
    out = []
    for key, comps in (("corruption", corruptions), ("regularizers", regularizers)):
        for k, c in enumerate(comps):
            layers = getattr(c.params, "layers", None) or []
            bad = [i for i in layers if not 0 <= i < n]
            if bad:
                where = f"{key}[{k}].layers" if isinstance(raw.get(key), list) else f"{key}.layers"
                out.append(
                    f"{where} = {layers}: the model has {n} layer{'s' if n != 1 else ''} "
                    f"(indices 0 to {n - 1}); {bad} names none"
                )
    return out


def _point_label(point: dict[str, Any]) -> str:
    if not point:
        return ""
    return "in sweep point " + ", ".join(f"{k} = {_show(v)}" for k, v in point.items()) + ": "


# --------------------------------------------------------------------------- sweeps
def sweep_keys(raw: dict[str, Any]) -> list[str]:
    sweep = raw.get("sweep", {})
    keys = [k for k in sweep if k != "mode"]
    if raw.get("runs"):
        keys = list(dict.fromkeys(keys + [k for run in raw["runs"] for k in _flatten(run)]))
    return keys


def sweep_points(raw: dict[str, Any], source: str = "<spec>") -> list[dict[str, Any]]:
    """The sweep's points (dotted key -> value), in run order; ``[{}]`` without a sweep."""
    sweep = raw.get("sweep", {})
    runs = raw.get("runs")
    if not isinstance(sweep, dict):
        _raise([f"sweep = {sweep!r}: must be a table of dotted keys"], source)
    mode = sweep.get("mode", "grid")
    axes = {k: v for k, v in sweep.items() if k != "mode"}
    problems = []
    if mode not in ("grid", "zip"):
        problems.append(f"sweep.mode = {mode!r}: must be 'grid' or 'zip'")
    for key, values in axes.items():
        if not (isinstance(values, list) and values):
            problems.append(f"sweep.{json.dumps(key)} = {values!r}: must be a non-empty list of values")
        else:
            problems += _axis_problems(f"sweep.{json.dumps(key)}", key)
    if mode == "zip" and len({len(v) for v in axes.values() if isinstance(v, list)}) > 1:
        lengths = {k: len(v) for k, v in axes.items()}
        problems.append(f"sweep.mode = 'zip' needs lists of one length, got {lengths}")
    if runs is not None and not (isinstance(runs, list) and all(isinstance(r, dict) for r in runs)):
        problems.append(f"runs = {runs!r}: must be an array of tables ([[runs]])")
    elif runs == []:
        problems.append("runs = []: an empty list would run nothing; leave runs out, or add [[runs]] tables")
    elif runs:
        for k, entry in enumerate(runs):
            problems += [p for key in _flatten(entry) for p in _axis_problems(f"runs[{k}].{key}", key)]
    if mode == "grid":  # a zip may repeat a value on one axis: its rows are what must differ
        problems += [p for key, values in axes.items() if isinstance(values, list) for p in _repeats(key, values)]
    _raise(problems, source)
    keys = list(axes)
    if mode == "zip":
        points = [dict(zip(keys, values)) for values in zip(*axes.values())]
    else:
        points = [dict(zip(keys, values)) for values in itertools.product(*axes.values())]
    if runs:
        points = [{**p, **_flatten(r)} for r in runs for p in points]
    _raise(_repeated_points(points, mode, bool(runs) and not axes), source)
    return points or [{}]


def _canonical(value: Any) -> Any:
    """A hashable form under which values that merge as one coordinate are equal: 0.0 and
    -0.0, 1 and 1.0 (but not true and 1), lists and tables by content."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, int | float):
        return ("number", float(value) + 0.0 if abs(value) < 2**53 else value)
    if isinstance(value, list):
        return ("list", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        return ("table", tuple(sorted((str(k), _canonical(v)) for k, v in value.items())))
    return ("other", repr(value))


def _repeats(key: str, values: list[Any]) -> list[str]:
    """A value listed twice on one axis: both copies would write one result cell."""
    seen: dict[Any, Any] = {}
    for v in values:
        c = _canonical(v)
        if c in seen:
            same = f"{seen[c]!r} and {v!r} are" if repr(seen[c]) != repr(v) else f"{v!r} is"
            return [f"sweep.{json.dumps(key)} = {values!r}: {same} the same value listed twice; list each value once"]
        seen[c] = v
    return []


def _repeated_points(points: list[dict[str, Any]], mode: str, only_runs: bool) -> list[str]:
    """Two runs of one sweep point (a zip whose rows repeat, two equal [[runs]] entries)."""
    seen: dict[Any, int] = {}
    for i, point in enumerate(points):
        c = _canonical(point)
        if c in seen:
            what = "[[runs]] entries" if only_runs else f"sweep ({mode}) points"
            shown = ", ".join(f"{k} = {v!r}" for k, v in point.items())
            return [f"{what} {seen[c]} and {i} are the same point ({shown}); each point must differ"]
        seen[c] = i
    return []


def _axis_problems(where: str, key: str) -> list[str]:
    """A swept key must name a part of a run (a spec key other than sweep/runs/seeds/ensemble/
    report); what lies below its first segment is checked when each run is validated."""
    top = key.split(".")[0]
    if top not in TOP_KEYS:
        close = difflib.get_close_matches(top, sorted(TOP_KEYS), n=1)
        return [f"{where}: {top!r} is not a spec key" + (f" (did you mean {close[0]!r}?)" if close else "")]
    if top in NOT_RUN_KEYS:
        return [f"{where}: {top!r} is not part of a run and cannot differ between runs"]
    if top in SAME_FOR_ALL_RUNS:
        return [f"{where}: {top!r} names the experiment and cannot differ between runs"]
    return []


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """[[runs]] entries may use dotted keys or nested tables; both become dotted keys."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def expand(raw: dict[str, Any], source: str = "<spec>") -> list[tuple[dict[str, Any], int, dict[str, Any]]]:
    """(sweep point, seed, single-run dict) for every run, seeds innermost."""
    out = []
    for point in sweep_points(raw, source):
        run = copy.deepcopy({k: v for k, v in raw.items() if k not in ("sweep", "runs")})
        for key, value in point.items():
            set_dotted(run, key, value, source)
        for seed in raw.get("seeds", [0]):
            out.append((point, seed, run))
    return out


def get_dotted(d: dict[str, Any], key: str, default: Any = "") -> Any:
    """``d["a"]["b"][0]["c"]`` from ``"a.b.0.c"`` (list entries by index); ``default`` where
    the path names nothing."""
    node: Any = d
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return default
    return node


def set_dotted(d: dict[str, Any], key: str, value: Any, source: str = "<spec>") -> None:
    """Set ``d["a"]["b"][0]["c"]`` from ``"a.b.0.c"``, creating tables as needed."""
    parts = key.split(".")
    node: Any = d
    for depth, part in enumerate(parts[:-1]):
        nxt = parts[depth + 1]
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                _raise([f"sweep key {key!r}: {'.'.join(parts[:depth])} has no entry {part}"], source)
            node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node:
                node[part] = [] if nxt.isdigit() else {}
            elif part == "optimizer" and isinstance(node[part], str):
                node[part] = {"name": node[part]}  # `optimizer = "adam"` is shorthand for a table
            node = node[part]
        else:
            _raise([f"sweep key {key!r}: {'.'.join(parts[:depth])} is not a table"], source)
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            _raise([f"sweep key {key!r}: {'.'.join(parts[:-1])} has no entry {last}"], source)
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        _raise([f"sweep key {key!r}: {'.'.join(parts[:-1])} is not a table"], source)
