"""An ipywidgets UI that composes installed plug-ins into a spec, runs it, and shows it live.

The form follows the spec model (:class:`aebench.spec.SpecModel`): each top-level key has a
widget (component pickers for component tables, one widget per typed field for the rest),
or, with none (``[[runs]]``, ``[[report]]``), passes through unchanged, so a spec loaded and
exported again keeps every key. Runs go through :func:`aebench.run` into
``aebench-runs/<name>-N/`` beside the notebook; Stop keeps checkpoints and Resume continues
the same folder.
"""

from __future__ import annotations

import base64
import copy
import html
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import ipywidgets as W
import torch
import xarray as xr

import aebench
from aebench.errors import AebenchError, SpecError, describe_os_error
from aebench.options import DEVICES
from aebench.spec import Spec, SpecModel, get_dotted, set_dotted
from aebench.ui.forms import RED, STYLE, ComponentPicker, FieldInput, ParamsForm, from_text, input_for, to_text
from aebench.ui.values import toml_value

DEFAULT: dict[str, Any] = {
    "name": "workbench",
    "seeds": [0],
    "data": {"name": "mnist", "subset": 1000, "eval_subset": 500},
    "model": {"name": "stacked", "layers": [256, 256]},
    "corruption": {"name": "gaussian", "level": 0.3},
    "schedule": {"name": "joint", "epochs": 5},
    "optimizer": {"name": "rmsprop", "lr": 0.001},
    "evaluate": {"recon": {}},
}
#: the folder (relative to the kernel's working directory: beside the notebook) launches go to
RUNS_FOLDER = "aebench-runs"
#: accordion sections, in order; every widget of the form sits in one
SECTIONS = (
    "experiment",
    "data",
    "model",
    "corruption",
    "regularizers",
    "schedule (stages)",
    "optimizer",
    "evaluators",
    "sweep, seeds, device",
)
#: top-level keys with a component picker (or a list of them), and their section
COMPONENT_KEYS = {
    "data": 1,
    "model": 2,
    "corruption": 3,
    "regularizers": 4,
    "schedule": 5,
    "optimizer": 6,
    "evaluate": 7,
    "sweep": 8,
}
#: top-level keys without a widget: kept exactly as loaded
PASS_THROUGH = ("runs", "report")
#: sections of the typed top-level fields that get one widget each (others: "experiment")
FIELD_SECTIONS = {"seeds": 8, "precision": 8, "ensemble": 8, "compile": 8}
#: at most this many per-run progress rows (ensembles and sweeps: the running ones first)
MAX_BARS = 8


class ListOf(W.VBox):
    """Add/remove a list of component pickers (regularizers, chained schedule stages, corruptions)."""

    def __init__(
        self, kind: str, registry, tables: list[dict[str, Any]], label: str, key: str, minimum: int = 0, **kw: Any
    ) -> None:
        self.kind, self.registry, self.label, self.key, self.minimum, self.kw = kind, registry, label, key, minimum, kw
        self.items: list[ComponentPicker] = []
        self.as_list = True  # written as a list even with one entry (set from the loaded spec)
        self.add_button = W.Button(description=f"add {label}", icon="plus")
        self.add_button.on_click(lambda _b: self.add({"name": self._first()}))
        self.box = W.VBox()
        super().__init__([self.box, self.add_button])
        self.set(tables)

    def _first(self) -> str:
        names = [n for n in self.registry.names(self.kind) if not self.registry.entry(self.kind, n).example]
        return (names or self.registry.names(self.kind))[0]

    def add(self, table: dict[str, Any]) -> None:
        where = f"{self.key}[{len(self.items)}]"
        picker = ComponentPicker(
            self.kind, self.registry, table, label=f"{self.label} {len(self.items) + 1}", where=where, **self.kw
        )
        remove = W.Button(description="remove", icon="minus", layout=W.Layout(width="100px"))
        row = W.HBox([picker, remove])
        remove.on_click(lambda _b: self._remove(picker))
        picker.row = row
        self.items.append(picker)
        self.box.children = [p.row for p in self.items]

    def _remove(self, picker: ComponentPicker) -> None:
        if len(self.items) > self.minimum:
            self.items.remove(picker)
            self.box.children = [p.row for p in self.items]

    def set(self, tables: list[dict[str, Any]]) -> None:
        self.items = []
        self.box.children = []
        for t in tables:
            self.add(t)

    def tables(self) -> list[dict[str, Any]]:
        return [p.table() for p in self.items]

    def problems(self) -> list[str]:
        out = []
        for i, item in enumerate(self.items):  # named as the spec names it: `schedule` or `schedule[1]`
            item.form.where = self.key if len(self.items) == 1 and not self.as_list else f"{self.key}[{i}]"
            out += item.problems()
        return out


def _served_url(path: Path) -> str | None:
    """The URL under which the Jupyter server of this kernel serves ``path`` (``files/...``),
    or None outside Jupyter or outside its root folder."""
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:
        return None
    infos = []
    for f in Path(jupyter_runtime_dir()).glob("jpserver-*.json"):
        try:
            infos.append(json.loads(f.read_text()))
        except (OSError, ValueError):
            continue
    parent = os.environ.get("JPY_PARENT_PID")  # the server that started this kernel
    mine = [i for i in infos if parent and str(i.get("pid")) == parent] or infos
    path = path.resolve()
    for info in sorted(mine, key=lambda i: -len(str(i.get("root_dir", "")))):
        root = Path(str(info.get("root_dir", "/"))).expanduser().resolve()
        if path.is_relative_to(root):
            base = str(info.get("base_url", "/"))
            return base.rstrip("/") + "/files/" + quote(path.relative_to(root).as_posix())
    return None


def describe(exc: BaseException) -> str:
    """One line for any failure of a launch: aebench's own message, a path for a file-system
    error, else the exception's type and text (never a traceback)."""
    if isinstance(exc, AebenchError):
        return str(exc)
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    return f"{type(exc).__name__}: {exc}"


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _value(v: Any) -> str:
    """A sweep value in a legend: floats as %g, long values ([[runs]] tables) cut short."""
    text = f"{v:g}" if isinstance(v, float) else str(v)
    return text if len(text) <= 24 else text[:23] + "…"


def _red(text: str) -> str:
    return f"<span style='color:{RED}'>{html.escape(text)}</span>"


class Workbench(W.VBox):
    """Compose an experiment from the installed plug-ins, launch it, watch it, get a Dataset.

    Python API (what the tutorials use): ``wb.set({"model.layers": [500, 500]})``,
    ``wb.spec``, ``wb.launch()``, ``wb.wait()``, ``wb.stop()``, ``wb.launch(resume=True)``,
    ``wb.results``, ``wb.open_report()``. ``out`` is the folder launches go to (default
    ``aebench-runs`` beside the notebook), each in ``<name>-N``; ``examples=True`` also offers
    the components that plug-ins mark as examples.
    """

    def __init__(
        self, spec: dict[str, Any] | str | Path | None = None, out: str | Path | None = None, examples: bool = False
    ) -> None:
        self.registry = aebench.registry()
        self.examples = examples
        self.out_root = Path(out) if out else Path(RUNS_FOLDER)
        self.out: Path | None = None
        self.results: xr.Dataset | None = None
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._curves: dict[str, dict[str, dict[int, float]]] = {}
        self._rows: dict[str, dict[str, Any]] = {}
        self._last_draw = 0.0
        self._launched: Spec | None = None
        self._loaded_keys: set[str] = set()
        self._passthrough: dict[str, Any] = {}
        self._shapes: dict[str, bool] = {}  # component key -> written as a list
        self._evaluator_params: dict[str, Any] = {}
        self._labels: dict[str, str] = {}
        self._resuming = False
        self._started = time.monotonic()
        self._fractions: dict[str, float] = {}
        self._first_seen: dict[str, tuple[float, int]] = {}
        self._build()
        if isinstance(spec, (str, Path)):
            self.load_spec(spec)
        else:
            self.set_spec(copy.deepcopy(spec or DEFAULT))

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        reg, ex = self.registry, {"examples": self.examples}
        self.fields: dict[str, FieldInput] = {}
        boxes: list[list[W.Widget]] = [[] for _ in SECTIONS]
        for key, field in SpecModel.model_fields.items():  # one widget per typed top-level field
            if key in COMPONENT_KEYS or key in PASS_THROUGH:
                continue
            inp = input_for(key, field, field.get_default(call_default_factory=True) if not field.is_required() else "")
            self.fields[key] = inp
            boxes[FIELD_SECTIONS.get(key, 0)].append(inp.widget)
        self.kept = W.HTML()
        boxes[0].append(self.kept)
        self.data = ComponentPicker("dataset", reg, label="data set", where="data", **ex)
        self.model = ComponentPicker("model", reg, label="model", where="model", **ex)
        self.corruptions = ListOf("corruption", reg, [], "corruption", "corruption", **ex)
        self.regularizers = ListOf("regularizer", reg, [], "regularizer", "regularizers", **ex)
        self.schedules = ListOf("schedule", reg, [], "stage", "schedule", minimum=1, **ex)
        self.optimizer = ComponentPicker("optimizer", reg, label="optimizer", where="optimizer", **ex)
        self.evaluators = {
            n: W.Checkbox(description=n, value=n == "recon", indent=False)
            for n in reg.names("evaluator")
            if self.examples or not reg.entry("evaluator", n).example
        }
        boxes[1].append(self.data)
        boxes[2].append(self.model)
        boxes[3].append(self.corruptions)
        boxes[4].append(self.regularizers)
        boxes[5].append(self.schedules)
        boxes[6].append(self.optimizer)
        self.evaluator_forms = {
            n: ParamsForm(reg.get("evaluator", n).Params, where=f"evaluate.{n}") for n in self.evaluators
        }
        for name, box in self.evaluators.items():  # an evaluator's params show while it is ticked
            box.observe(lambda _c, n=name: self._show_evaluator(n), names="value")
            self._show_evaluator(name)
        boxes[7].append(W.HBox(list(self.evaluators.values()), layout=W.Layout(flex_flow="row wrap")))
        boxes[7] += list(self.evaluator_forms.values())
        self._build_sweep(boxes[8])
        self.compose = W.Accordion(children=[W.VBox(b) for b in boxes])
        self.compose.titles = SECTIONS
        self.compose.selected_index = 0
        self._build_run_area()

    def _build_sweep(self, box: list[W.Widget]) -> None:
        self.sweep_rows = W.Textarea(
            description="sweep",
            placeholder='one axis a line: schedule.name = ["joint", "layerwise"]',
            style=STYLE,
            layout=W.Layout(width="520px", height="80px"),
        )
        self.sweep_mode = W.Dropdown(options=["grid", "zip"], description="sweep mode", style=STYLE)
        self.sweep_key = W.Dropdown(options=[], description="sweep axis", style=STYLE, layout=W.Layout(width="380px"))
        self.sweep_values = W.Text(description="values", placeholder="[0.1, 0.3, 0.5]", style=STYLE)
        add_axis = W.Button(description="add axis", icon="plus")
        add_axis.on_click(
            lambda _b: self._safe(self.add_sweep_axis, self.sweep_key.value, from_text(self.sweep_values.value))
        )
        self._sweep_adder = W.HBox([self.sweep_key, self.sweep_values, add_axis])
        devices = [d for d in DEVICES if d != "cuda" or torch.cuda.is_available()]
        self.device = W.Dropdown(
            options=devices,
            value="auto",
            description="device",
            style=STYLE,
            tooltip=f"CUDA {'available' if torch.cuda.is_available() else 'not available on this machine'}",
        )
        self.executor = W.Dropdown(
            options=self.registry.names("executor"), value="local", description="executor", style=STYLE
        )
        box[:0] = [self._sweep_adder, self.sweep_rows, self.sweep_mode]
        box += [self.device, self.executor]

    def _build_run_area(self) -> None:
        self.launch_button = W.Button(description="Launch", button_style="success", icon="play")
        self.resume_button = W.Button(
            description="Resume", button_style="info", icon="forward", disabled=True, tooltip="continue the stopped run"
        )
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.launch_button.on_click(lambda _b: self._safe(self.launch))
        self.resume_button.on_click(lambda _b: self._safe(self.launch, None, True))
        self.stop_button.on_click(lambda _b: self.stop())
        self.status = W.HTML("ready")
        self.overall = W.FloatProgress(description="runs", min=0, max=1, style=STYLE)
        self.overall_text = W.HTML()
        self.run_bars: dict[str, W.IntProgress] = {}
        self._bar_rows: dict[str, W.HBox] = {}
        self.progress_box = W.VBox()
        self.plot = W.Image(format="png", layout=W.Layout(max_width="720px", display="none"))
        self.table = W.HTML()
        self.export_path = W.Text(value="spec.toml", description="spec file", style=STYLE)
        export = W.Button(description="export spec as TOML", icon="download")
        load = W.Button(description="load spec", icon="upload")
        self.report_button = W.Button(description="open report", icon="file", disabled=True)
        export.on_click(lambda _b: self._safe(self.export_spec, self.export_path.value))
        load.on_click(lambda _b: self._safe(self.load_spec, self.export_path.value))
        self.report_button.on_click(lambda _b: self._safe(self.open_report))
        self.report_link = W.HTML()
        controls = W.HBox([self.launch_button, self.stop_button, self.resume_button, self.status])
        files = W.HBox([self.export_path, export, load, self.report_button])
        super().__init__(
            [
                self.compose,
                controls,
                W.HBox([self.overall, self.overall_text]),
                self.progress_box,
                self.plot,
                self.table,
                files,
                self.report_link,
            ]
        )
        self.add_class("aebench-workbench")

    def _safe(self, fn, *args) -> None:
        """A button's action: errors go to the status line (the message is the whole story)."""
        try:
            fn(*args)
        except (AebenchError, OSError, ValueError) as exc:
            self.status.value = _red(describe(exc))

    # --------------------------------------------------------------------- spec
    def set_spec(self, raw: dict[str, Any]) -> None:
        """Fill every widget from a spec dictionary (as read from TOML); keys without a widget
        (``[[runs]]``, ``[[report]]``) are kept and written back unchanged."""
        raw = copy.deepcopy(raw)
        self._loaded_keys = set(raw)
        for key, field in SpecModel.model_fields.items():
            if key not in raw:
                required = field.is_required()
                raw[key] = copy.deepcopy(DEFAULT[key]) if required else field.get_default(call_default_factory=True)
        for key, inp in self.fields.items():
            inp.set(raw[key])
        self.data.set(raw["data"])
        self.model.set(raw["model"])
        for key, widget in (("corruption", self.corruptions), ("schedule", self.schedules)):
            value = raw[key]
            self._shapes[key] = widget.as_list = isinstance(value, list)  # a list of one is not a table
            widget.set(value if isinstance(value, list) else [value])
        self.regularizers.set(raw["regularizers"])
        opt = raw["optimizer"]
        self.optimizer.set(opt if isinstance(opt, dict) else {"name": opt})
        evaluate = raw["evaluate"]
        for name, box in self.evaluators.items():
            params = evaluate.get(name)
            self.evaluator_forms[name].set(params if isinstance(params, dict) else {}, reset=True)
            box.value = name in evaluate
        self._evaluator_params = copy.deepcopy(evaluate)  # those without a checkbox (examples) pass through
        sweep = dict(raw["sweep"])
        self.sweep_mode.value = sweep.pop("mode", "grid")
        self.sweep_rows.value = "\n".join(f"{k} = {to_text(v)}" for k, v in sweep.items())
        self._passthrough = {k: copy.deepcopy(v) for k, v in raw.items() if k in PASS_THROUGH or k not in self._keys()}
        self.kept.value = self._kept_note()
        self.refresh_sweep_keys()

    def _show_evaluator(self, name: str) -> None:
        self.evaluator_forms[name].layout.display = None if self.evaluators[name].value else "none"

    def _keys(self) -> set[str]:
        return set(self.fields) | set(COMPONENT_KEYS)

    def _kept_note(self) -> str:
        kept = {k: v for k, v in self._passthrough.items() if k in self._loaded_keys}
        if not kept:
            return ""
        what = ", ".join(
            f"[[{k}]] ({len(v)} entr{'y' if len(v) == 1 else 'ies'})" if isinstance(v, list) else k
            for k, v in kept.items()
        )
        return f"<i>kept as loaded (no widget here; written back on export): {html.escape(what)}</i>"

    def add_sweep_axis(self, key: str, values: list[Any]) -> None:
        """Append an axis to the sweep (what the "add axis" button does)."""
        if not isinstance(values, list) or not values:
            raise SpecError(f"sweep values for {key} must be a non-empty list such as [0.1, 0.3]")
        sweep = {k: v for k, v in self._sweep().items() if k != "mode"}
        sweep[key] = values
        self.sweep_rows.value = "\n".join(f"{k} = {to_text(v)}" for k, v in sweep.items())

    def refresh_sweep_keys(self) -> None:
        self.sweep_key.options = self.sweepable_keys()

    def _component_values(self) -> dict[str, Any]:
        corr = self.corruptions.tables()
        sched = self.schedules.tables()
        return {
            "data": self.data.table(),
            "model": self.model.table(),
            "corruption": corr if self._shapes.get("corruption") or len(corr) > 1 else (corr or [{"name": "none"}])[0],
            "regularizers": self.regularizers.tables(),
            "schedule": sched if self._shapes.get("schedule") or len(sched) != 1 else sched[0],
            "optimizer": self.optimizer.table(),
            "evaluate": self._evaluate(),
            "sweep": self._sweep(),
        }

    def _evaluate(self) -> dict[str, Any]:
        """The ticked evaluators with their params, in the loaded spec's order (evaluators run in
        it), then new ones; evaluators without a checkbox (examples) pass through."""
        order = [*self._evaluator_params, *(n for n in self.evaluators if n not in self._evaluator_params)]
        out = {}
        for n in order:
            if n not in self.evaluators:
                out[n] = self._evaluator_params[n]
            elif self.evaluators[n].value:
                out[n] = self.evaluator_forms[n].values()
        return out

    def spec_dict(self) -> dict[str, Any]:
        """The spec the widgets describe, as a dictionary (what ``export spec`` writes): every
        key the loaded spec had, plus those changed from the spec model's defaults."""
        values = {**{k: inp.get() for k, inp in self.fields.items()}, **self._component_values()}
        raw: dict[str, Any] = {}
        for key, field in SpecModel.model_fields.items():
            if key in values:
                value = values[key]
            elif key in self._passthrough:
                value = self._passthrough[key]
            else:
                continue
            default = None if field.is_required() else field.get_default(call_default_factory=True)
            if key in self._loaded_keys or field.is_required() or value != default:
                raw[key] = value
        raw.update({k: v for k, v in self._passthrough.items() if k not in raw and k in self._loaded_keys})
        return raw

    def _sweep(self) -> dict[str, Any]:
        sweep: dict[str, Any] = {}
        for line in self.sweep_rows.value.splitlines():
            if line.strip():
                key, _, values = line.partition("=")
                sweep[key.strip().strip('"')] = from_text(values)
        if sweep and self.sweep_mode.value == "zip":
            sweep["mode"] = "zip"
        return sweep

    @property
    def spec(self) -> Spec:
        """The validated :class:`aebench.Spec` (raises :class:`aebench.SpecError`)."""
        return Spec.from_dict(self.spec_dict(), source="workbench", reg=self.registry)

    def problems(self) -> dict[int, list[str]]:
        """The form's invalid fields by section index (empty when every field is valid)."""
        out: dict[int, list[str]] = {}
        parts = [
            (1, self.data.problems()),
            (2, self.model.problems()),
            (3, self.corruptions.problems()),
            (4, self.regularizers.problems()),
            (5, self.schedules.problems()),
            (6, self.optimizer.problems()),
            (7, [p for n, box in self.evaluators.items() if box.value for p in self.evaluator_forms[n].problems()]),
        ]
        for i, probs in parts:
            if probs:
                out[i] = probs
        return out

    @property
    def valid(self) -> bool:
        return not self._mark_sections()

    def _mark_sections(self) -> dict[int, list[str]]:
        """Mark each section header that holds an invalid field (a collapsed one too)."""
        problems = self.problems()
        self.compose.titles = tuple(f"⚠ {t} (invalid)" if i in problems else t for i, t in enumerate(SECTIONS))
        return problems

    def set(self, values: dict[str, Any] | None = None, **kw: Any) -> Workbench:
        """Set spec fields by dotted key: ``wb.set({"model.layers": [500], "schedule.epochs": 3})``.

        A sweep axis is set with ``{"sweep": {"schedule.name": ["joint", "layerwise"]}}``;
        ``seeds=[0, 1, 2]`` and other top-level keys work as keywords. The result is validated
        first: a bad key or value raises :class:`aebench.SpecError` naming the field (with the
        close matches, as the CLI does) and leaves the form as it was.
        """
        if values is not None and not isinstance(values, dict):
            raise SpecError(f"wb.set takes a dict of dotted keys and values, not {type(values).__name__}")
        raw = self.spec_dict()
        for key, value in {**(values or {}), **kw}.items():
            if not isinstance(key, str):
                raise SpecError(
                    f"wb.set: the key {key!r} is {type(key).__name__}; name a field by text, e.g. 'model.layers'"
                )
            value = toml_value(value, key)  # numpy values as Python's; a set, a loop, an object: SpecError
            if key in ("sweep", "evaluate"):
                if not isinstance(value, dict):
                    raise SpecError(f"{key} = {value!r}: must be a table (a dict)")
                raw[key] = dict(value)
            else:
                set_dotted(raw, key, value, source="wb.set")
        Spec.from_dict(raw, source="wb.set", reg=self.registry)  # refuse before touching the form
        loaded = self._loaded_keys | set(raw)
        self.set_spec(raw)
        self._loaded_keys = loaded
        return self

    def get(self, key: str) -> Any:
        """The value of a dotted key in the spec the form describes (``wb.get("model.layers")``)."""
        return get_dotted(self.spec_dict(), key, None)

    def export_spec(self, path: str | Path) -> Path:
        path = Path(path)
        text = self.spec.to_toml()
        try:
            path.write_text(text)
        except OSError as exc:
            raise AebenchError(f"cannot write the spec to {path}: {exc.strerror or exc}") from None
        self.status.value = f"spec written to {html.escape(str(path))}"
        return path

    def load_spec(self, path: str | Path) -> None:
        """Read a spec file (validated first: a bad file changes nothing); ``[[report]]``'s
        ``published`` tables are embedded, so an export elsewhere keeps them."""
        spec = Spec.from_toml(path, reg=self.registry)
        self.set_spec(spec.raw)
        self.status.value = f"loaded {html.escape(str(path))}"

    # ------------------------------------------------------------------ running
    def _folder(self, spec: Spec, out: str | Path | None, resume: bool) -> Path:
        """Where a launch writes: ``out``; on resume the stopped launch's folder; else the next
        free ``<root>/<name>-N``."""
        if out is not None:
            return Path(out)
        stem = re.sub(r"[^\w.-]+", "-", spec.name).strip("-.") or "run"
        taken = [
            int(m.group(1))
            for p in (self.out_root.iterdir() if self.out_root.is_dir() else [])
            if (m := re.fullmatch(re.escape(stem) + r"-(\d+)", p.name))
        ]
        if resume:
            if self.out is not None:
                return self.out
            if not taken:
                raise AebenchError(f"nothing to resume: {self.out_root} holds no launch of {spec.name!r}.")
            return self.out_root / f"{stem}-{max(taken)}"
        return self.out_root / f"{stem}-{max(taken, default=0) + 1}"

    def launch(self, out: str | Path | None = None, resume: bool = False) -> None:
        """Validate, then run in a background thread (the kernel stays responsive).

        ``resume=True`` continues the last launch (this Workbench's, or the newest
        ``<name>-N`` folder) from its checkpoints, in the same folder: curves go on.
        """
        if self.running:
            raise AebenchError("a run is already in progress; stop it or wait for it.")
        problems = self._mark_sections()
        if problems:
            listed = "; ".join(f"{p} [{SECTIONS[i]}]" for i, ps in problems.items() for p in ps)
            self.status.value = _red(f"invalid fields, nothing launched: {listed}")
            raise SpecError(f"invalid fields in the Workbench, nothing launched: {listed}")
        self._clear(keep_curves=resume)
        try:
            spec = self._launched if resume and self._launched is not None and out is None else self.spec
            self.out = self._folder(spec, out, resume)
        except AebenchError as exc:
            self.status.value = _red(str(exc))
            raise
        self._launched, self._resuming = spec, resume
        self._labels = {r.run_id: self._label(spec, r) for r in spec.runs}
        self._rows = {r.run_id: {"status": "pending"} for r in spec.runs}
        self._started = time.monotonic()
        self._fractions: dict[str, float] = {}
        self._first_seen: dict[str, tuple[float, int]] = {}
        self.overall.max, self.overall.value = len(spec.runs), 0
        self.launch_button.disabled, self.resume_button.disabled, self.stop_button.disabled = True, True, False
        self.report_button.disabled = True
        verb = "resuming" if resume else "running"
        self.status.value = f"{verb} {len(spec.runs)} run(s) in {html.escape(str(self.out))}"
        self._thread = threading.Thread(target=self._work, args=(spec, resume), daemon=True)
        self._thread.start()

    def _clear(self, keep_curves: bool) -> None:
        """A new launch starts clean: no old table, errors, report link or progress rows."""
        self._stop.clear()
        self.error = None
        self.results = None
        self.table.value = ""
        self.report_link.value = ""
        self.overall_text.value = ""
        self.run_bars, self._bar_rows = {}, {}
        self.progress_box.children = []
        if not keep_curves:
            self._curves = {}
            self.plot.layout.display = "none"
            self.plot.value = b""

    @staticmethod
    def _label(spec: Spec, run) -> str:
        """A run as a legend names it: its sweep values and its seed."""
        keys = spec.sweep_dims()
        lasts = [k.split(".")[-1] for k in keys]
        short = {k: last if lasts.count(last) == 1 else k for k, last in zip(keys, lasts)}  # "lr", unless ambiguous
        parts = [f"{short[k]}={_value(v)}" for k, v in run.point.items()]
        if len(spec.raw.get("seeds", [0])) > 1 or not parts:
            parts.append(f"seed {run.seed}")
        return ", ".join(parts)

    def _work(self, spec: Spec, resume: bool) -> None:
        try:
            self.results = aebench.run(
                spec,
                out=self.out,
                executor=self.executor.value,
                device=self.device.value,
                resume=resume,
                progress=False,
                stop=self._stop,
                on_run_done=self._run_done,
                on_epoch=self._epoch,
            )
            self._final_rows()
            bad = [r for r in self._rows.values() if r["status"] != "done"]
            self.status.value = (
                f"done: {len(self._rows) - len(bad)} of {len(self._rows)} run(s)"
                + (_red(f", {len(bad)} failed (reasons below)") if bad else "")
                + f"; results in wb.results and {html.escape(str(self.out))}"
            )
            self.resume_button.disabled = not bad
        except BaseException as exc:  # the thread must report, not die silently
            stopped = self._stop.is_set()
            self.error = None if stopped else describe(exc)
            self._load_results()
            self._final_rows()
            done = sum(r["status"] == "done" for r in self._rows.values())
            self.status.value = (
                f"stopped after {done} of {len(self._rows)} run(s); Resume (or launch(resume=True)) continues "
                f"in {html.escape(str(self.out))}"
                if stopped
                else _red(self.error)
            )
            self.resume_button.disabled = not (self.out / "spec.toml").is_file()
        finally:
            self._draw(force=True)
            self._table()
            self.launch_button.disabled, self.stop_button.disabled = False, True
            self.report_button.disabled = not (self.out / "results.nc").is_file()

    def _load_results(self) -> None:
        try:
            self.results = aebench.load_results(self.out)
        except (AebenchError, OSError):
            pass

    # ------------------------------------------------------------ live view
    def _epoch(self, run_id: str, metrics: dict[str, Any]) -> None:
        epoch, total = int(metrics["epoch"]), int(metrics["total_epochs"])
        curves = self._curves.setdefault(run_id, {"train": {}, "valid": {}})
        for split in ("train", "valid"):
            curves[split][epoch] = metrics.get(f"recon_error/{split}", float("nan"))
        self._rows.setdefault(run_id, {})["status"] = "running"
        self._fractions[run_id] = min(epoch / max(total, 1), 1.0)
        self._progress(run_id, epoch, total)
        self._draw()

    def _progress(self, run_id: str, epoch: int, total: int) -> None:
        now = time.monotonic()
        t0, e0 = self._first_seen.setdefault(run_id, (now, epoch))  # the rate counts from here
        self._ensure_bar(run_id, total)
        bar = self.run_bars[run_id]
        bar.max, bar.value = max(total, 1), epoch
        rate = (epoch - e0) / (now - t0) if now > t0 and epoch > e0 else 0.0
        eta = f" · ETA {_clock((total - epoch) / rate)}" if rate > 0 and epoch < total else ""
        speed = f" · {1 / rate:.1f} s/epoch" if rate > 0 else ""
        self._bar_rows[run_id].children[2].value = f"epoch {epoch}/{total}{speed}{eta}{self._resumed(run_id)}"
        self._overall()

    def _resumed(self, run_id: str) -> str:
        """ " · resumed at epoch k" for a run this launch continued from its checkpoint."""
        e0 = self._first_seen.get(run_id, (0, 0))[1]
        return f" · resumed at epoch {e0}" if self._resuming and e0 > 1 else ""

    def _ensure_bar(self, run_id: str, total: int) -> None:
        """A progress row for ``run_id`` (its label, a bar, a line of text), made on first use."""
        if run_id in self.run_bars:
            return
        bar = W.IntProgress(min=0, max=max(total, 1), layout=W.Layout(width="240px"))
        self.run_bars[run_id] = bar
        name = html.escape(self._labels.get(run_id, run_id))
        label = W.HTML(f"<code>{name}</code>", layout=W.Layout(width="260px"))
        self._bar_rows[run_id] = W.HBox([label, bar, W.HTML()])
        self._show_bars()

    def _show_bars(self) -> None:
        rows = self._bar_rows
        running = [k for k in rows if self._rows.get(k, {}).get("status") == "running"]
        shown = (list(rows) if len(rows) <= MAX_BARS else running)[:MAX_BARS]
        more = len(running) - len(shown)
        extra = [W.HTML(f"… and {more} more running")] if more > 0 else []
        self.progress_box.children = [rows[k] for k in shown] + extra

    def _overall(self) -> None:
        n = len(self._rows)
        finished = [k for k, r in self._rows.items() if r.get("status") in ("done", "failed")]
        fraction = (len(finished) + sum(f for k, f in self._fractions.items() if k not in finished)) / max(n, 1)
        self.overall.value = fraction * n
        elapsed = time.monotonic() - self._started
        start = sum(max(e0, 0) / max(self.run_bars[k].max, 1) for k, (_t, e0) in self._first_seen.items()) / max(n, 1)
        gained = fraction - start
        eta = f" · ETA {_clock(elapsed / gained * (1 - fraction))}" if gained > 0 and fraction < 1 else ""
        failed = sum(r.get("status") == "failed" for r in self._rows.values())
        self.overall_text.value = (
            f"{len(finished)} of {n} runs finished"
            + (_red(f" ({failed} failed)") if failed else "")
            + f" · {fraction:.0%} · elapsed {_clock(elapsed)}{eta}"
        )

    def _run_done(self, run, status: str) -> None:
        row = self._rows.setdefault(run.run_id, {})
        row.update(self._status_file(run.run_id) or {"status": status})
        self._fractions[run.run_id] = 1.0
        if run.run_id in self._bar_rows or row["status"] != "done":  # a run that failed at once gets a row too
            self._ensure_bar(run.run_id, 1)
            text = self._bar_rows[run.run_id].children[2]
            done = html.escape(row["status"] + self._resumed(run.run_id))
            text.value = done if row["status"] == "done" else _red(self._why(row))
            self._show_bars()
        self._overall()
        self._table()

    def _status_file(self, run_id: str) -> dict[str, Any] | None:
        """A run's ``status.json`` (DESIGN §6): its status and, when it failed, the reason."""
        try:
            data = json.loads((self.out / "runs" / run_id / "status.json").read_text())
        except (OSError, ValueError):
            return None
        return {"status": str(data.get("status", "?")), "reason": str(data.get("reason") or "")}

    @staticmethod
    def _why(row: dict[str, Any]) -> str:
        reason = row.get("reason") or ""
        return f"{row['status']}: {reason}" if reason else str(row["status"])

    def _final_rows(self) -> None:
        for run_id, row in self._rows.items():
            row.update(self._status_file(run_id) or {})
            if run_id in self._bar_rows and row.get("status") == "interrupted":  # no ETA left on a stopped run
                epoch = self.run_bars[run_id].value
                self._bar_rows[run_id].children[2].value = f"stopped at epoch {epoch}; Resume continues"
            if row.get("status") == "done" and "test" not in row:
                row["test"] = self._test_error(run_id)
        self._overall()

    def _test_error(self, run_id: str) -> float | None:
        path = self.out / "runs" / run_id / "metrics.nc"
        try:
            with xr.open_dataset(path) as ds:
                return float(ds["recon_error_final"].sel(split="test")) if "recon_error_final" in ds else None
        except (OSError, ValueError, KeyError):
            return None

    def _draw(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_draw < 0.5:
            return  # at most two redraws a second
        if not self._curves:
            return
        self._last_draw = time.monotonic()
        self.plot.value = self._figure()
        self.plot.layout.display = None  # hidden until there is a figure (no broken-image icon)

    def _figure(self) -> bytes:
        """The live plot as a PNG (a plain trait update: safe from the training thread)."""
        import io

        import numpy as np
        from matplotlib.figure import Figure  # not pyplot: drawn from the training thread, never shown by it
        from matplotlib.lines import Line2D
        from matplotlib.ticker import MaxNLocator

        fig = Figure(figsize=(7.5, 3.4))
        ax = fig.subplots()
        values = []
        for run_id, c in list(self._curves.items()):
            label = self._labels.get(run_id, run_id)
            row = self._rows.get(run_id, {})
            train, valid = sorted(c["train"].items()), sorted(c["valid"].items())
            line = ax.plot([e for e, _ in train], [v for _, v in train], label=label)[0]
            ax.plot([e for e, _ in valid], [v for _, v in valid], "--", color=line.get_color())
            values += [v for _, v in train + valid]
            if row.get("status") == "failed" and train:
                e, v = train[-1]
                ax.plot([e], [v], "x", color=RED, markersize=10, mew=2)
                reason = (row.get("reason") or "failed")[:60]
                ax.annotate(
                    f"failed: {reason}", (e, v), fontsize=7, color=RED, xytext=(4, 4), textcoords="offset pixels"
                )
                line.set_label(f"{label} (failed)")
        early = [
            f"{self._labels.get(k, k)}: {r.get('reason') or 'failed'}"[:90]
            for k, r in self._rows.items()
            if k not in self._curves and r.get("status") == "failed"
        ]
        if early:  # runs that failed before their first epoch have no curve: say so under the axes
            fig.text(0.01, 0.01, "failed: " + "; ".join(early[:3]), fontsize=7, color=RED)
        finite = np.array([v for v in values if np.isfinite(v) and v > 0])
        if finite.size and finite.max() / finite.min() > 30:  # curves span decades: a linear axis flattens most
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch (all stages)")
        ax.set_ylabel("reconstruction error")
        handles, labels = ax.get_legend_handles_labels()
        handles = handles[:12] + [Line2D([], [], color="grey"), Line2D([], [], color="grey", ls="--")]
        labels = labels[:12] + ["train", "valid"]
        ax.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        return buf.getvalue()

    def _table(self) -> None:
        spec = self._launched
        if spec is None:
            return
        keys = spec.sweep_dims()
        head = [*keys, "seed", "status", "reason", "test recon error"]
        rows = []
        for r in spec.runs:
            row = self._rows.get(r.run_id, {})
            status = str(row.get("status", "pending"))
            test = row.get("test")
            cells = [html.escape(str(r.point.get(k, ""))) for k in keys] + [str(r.seed)]
            cells.append(html.escape(status) if status == "done" else _red(status))
            cells.append(_red(row.get("reason") or "") if status != "done" else html.escape(row.get("reason") or ""))
            cells.append(f"{test:.2f}" if isinstance(test, float) else "")
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        self.table.value = f"<table class='aebench-results'><tr>{header}</tr>{''.join(rows)}</table>"

    def wait(self, timeout: float | None = None) -> xr.Dataset | None:
        """Block until the launched runs end; return ``wb.results`` (raises if the launch failed)."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self.error:
            raise AebenchError(self.error)
        return self.results

    def stop(self) -> None:
        """Stop after the current mini-batch; finished runs and checkpoints are kept (Resume continues)."""
        self._stop.set()
        self.status.value = "stopping…"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ report
    def open_report(self) -> Path:
        """Write the launch's report and link it where Jupyter serves it (``files/...``, opens
        in a new tab); outside a Jupyter server's root it is shown inline instead."""
        from aebench.report import write_report

        if self.out is None or not (self.out / "results.nc").is_file():
            raise AebenchError("no results yet: launch a run first (the report is built from results.nc).")
        self.report_link.value = "<i>building the report…</i>"
        self.report_button.disabled = True
        try:
            page, _ = write_report(self.out)
        except BaseException:
            self.report_link.value = ""
            raise
        finally:
            self.report_button.disabled = False
        url = _served_url(page)
        if url is not None:
            self.report_link.value = (
                f"report: <a href='{html.escape(url)}' target='_blank' class='aebench-report-link'>"
                f"{html.escape(str(self.out / page.name))}</a> (opens in a new tab)"
            )
        else:
            self.report_link.value = f"<p>report written to {html.escape(str(page))}</p>" + _inline(page)
        return page

    def sweepable_keys(self) -> list[str]:
        """Every dotted key a sweep axis can name: each chosen plug-in's params, defaults included."""
        keys = ["data.name", "model.name"]
        for section, picker in (("data", self.data), ("model", self.model)):
            keys += [f"{section}.{f}" for f in picker.form.params_cls.model_fields]
        for section, items in (("corruption", self.corruptions.items), ("schedule", self.schedules.items)):
            for i, p in enumerate(items):
                prefix = section if len(items) == 1 else f"{section}.{i}"
                keys += [f"{prefix}.name", *(f"{prefix}.{f}" for f in p.form.params_cls.model_fields)]
        for i, p in enumerate(self.regularizers.items):
            keys += [f"regularizers.{i}.name", *(f"regularizers.{i}.{f}" for f in p.form.params_cls.model_fields)]
        keys += ["optimizer.name", *(f"optimizer.{f}" for f in self.optimizer.form.params_cls.model_fields)]
        return sorted(set(keys))


def _inline(page: Path) -> str:
    """The report's body with its figures embedded, for a notebook outside a Jupyter root."""
    text = page.read_text()
    body = text.split("<body>", 1)[-1].rsplit("</body>", 1)[0]

    def embed(m: re.Match) -> str:
        try:
            data = base64.b64encode((page.parent / m.group(1)).read_bytes()).decode()
        except OSError:
            return m.group(0)
        return f"src='data:image/png;base64,{data}'"

    return re.sub(r"src=['\"]([^'\"]+\.png)['\"]", embed, body)
