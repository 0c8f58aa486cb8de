"""An ipywidgets UI that composes installed plug-ins into a spec, runs it, and shows it live.

The form is generated from the spec model (:class:`aebench.spec.SpecModel`) and the
registry (:func:`aebench.spec.component_slots`): each component key gets a section of pickers
whose forms come from the plug-ins' ``Params`` (one widget per field, its description beside
it), every other typed key one widget; keys without one (``[[runs]]``, ``[[report]]``) pass
through unchanged, so a spec loaded and exported again keeps every key. No list of keys or
sections is kept here: a new kind, key or field appears by itself. Runs go through :func:`aebench.run` into
``aebench-runs/<name>-N/`` beside the notebook; Stop keeps checkpoints and Resume continues
the same folder.
"""

from __future__ import annotations

import base64
import copy
import html
import io
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import ipywidgets as W
import numpy as np
import torch
import xarray as xr
from pydantic import StrictStr

import aebench
from aebench.errors import AebenchError, SpecError, describe_os_error
from aebench.options import DEVICES
from aebench.spec import Spec, SpecModel, component_slots, get_dotted, kind_slot, set_dotted, sweep_points
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
#: the first section (the experiment's name and texts) and the last (how it runs); between
#: them one section per component key of the spec model (aebench.spec.component_slots)
FIRST_SECTION = "experiment"
RUN_SECTION = "sweep, seeds, device"
#: top-level keys without a widget: kept exactly as loaded
PASS_THROUGH = ("runs", "report")
#: at most this many per-run progress rows (ensembles and sweeps: the running ones first)
MAX_BARS = 8
#: x axes of the live plot: what each is read from in an epoch's metrics, and its label
X_AXES = {"epoch": ("epoch", "epoch (all stages)"), "gradient steps": ("steps", "gradient steps")}


class ListOf(W.VBox):
    """Add/remove a list of component pickers (regularizers, chained schedule stages, corruptions)."""

    def __init__(self, slot, registry, tables: list[dict[str, Any]], label: str, minimum: int = 0, **kw: Any) -> None:
        self.slot, self.registry, self.label, self.key, self.minimum, self.kw = (
            slot,
            registry,
            label,
            slot.key,
            minimum,
            kw,
        )
        self.items: list[ComponentPicker] = []
        self.as_list = True  # written as a list even with one entry (set from the loaded spec)
        self.add_button = W.Button(description=f"add {label}", icon="plus")
        self.add_button.on_click(lambda _b: self.add({"name": self._first()}))
        self.box = W.VBox()
        super().__init__([self.box, self.add_button])
        self.set(tables)

    def _first(self) -> str:
        names = [n for n in self.slot.models if n not in self.slot.examples]
        return (names or list(self.slot.models))[0]

    def add(self, table: dict[str, Any]) -> None:
        where = f"{self.key}[{len(self.items)}]"
        picker = ComponentPicker(
            self.slot, self.registry, table, label=f"{self.label} {len(self.items) + 1}", where=where, **self.kw
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


class TableSlot:
    """A key holding one component table (``data``, ``model``; ``optimizer``, which may also be
    just its name): a picker and the chosen component's form."""

    def __init__(self, slot, registry, examples: bool) -> None:
        self.slot = slot
        self.picker = ComponentPicker(slot, registry, label=slot.key, where=slot.key, examples=examples)
        self.widget = self.picker

    def set(self, value: Any) -> None:
        self.picker.set(value if isinstance(value, dict) else {"name": value})

    def get(self) -> Any:
        return self.picker.table()

    def problems(self) -> list[str]:
        return self.picker.problems()

    def sweepable(self) -> list[str]:
        return [f"{self.slot.key}.name", *(f"{self.slot.key}.{f}" for f in self.picker.form.fields)]


class ListSlot:
    """A key holding a list of component tables (``regularizers``), or one table or a list
    (``corruption`` per layer input, ``schedule`` chained): add/remove pickers."""

    def __init__(self, slot, registry, examples: bool, required: bool, default: Any) -> None:
        self.slot, self.default = slot, default
        label = slot.kind if slot.key != "schedule" else "stage"
        self.list = ListOf(slot, registry, [], label, minimum=1 if required else 0, examples=examples)
        self.widget = self.list

    def set(self, value: Any) -> None:
        self.list.as_list = self.slot.shape == "list" or isinstance(value, list)  # a list of one is not a table
        self.list.set(value if isinstance(value, list) else [value])

    def _as_list(self) -> bool:
        return self.list.as_list or len(self.list.items) > 1

    def get(self) -> Any:
        tables = self.list.tables()
        if self._as_list():
            return tables
        return tables[0] if tables else copy.deepcopy(self.default)

    def problems(self) -> list[str]:
        return self.list.problems()

    def sweepable(self) -> list[str]:
        keys = []
        for i, p in enumerate(self.list.items):
            prefix = f"{self.slot.key}.{i}" if self._as_list() else self.slot.key
            keys += [f"{prefix}.name", *(f"{prefix}.{f}" for f in p.form.fields)]
        return keys


class ByNameSlot:
    """A key holding a table of components by name (``evaluate``): a checkbox per name, and
    each ticked one's settings under its own name and summary. The loaded order is kept
    (evaluators run in it); names without a checkbox (examples) pass through."""

    def __init__(self, slot, examples: bool, default: dict[str, Any]) -> None:
        self.slot = slot
        names = [n for n in slot.models if examples or n not in slot.examples]
        self.boxes = {n: W.Checkbox(description=n, value=n in default, indent=False) for n in names}
        self.forms = {n: ParamsForm(slot.models[n], where=f"{slot.key}.{n}") for n in names}
        self.panels = {}
        for n in names:
            head = W.HTML(
                f"<b>{html.escape(n)}</b> <i>{html.escape(slot.summaries.get(n, ''))}</i>",
                layout=W.Layout(margin="8px 0 0 0"),
            )
            self.panels[n] = W.VBox([head, self.forms[n]])
            self.panels[n].add_class("aebench-settings")
            self.boxes[n].observe(lambda _c, n=n: self._show(n), names="value")
            self._show(n)
        self.loaded: dict[str, Any] = {}
        row = W.HBox(list(self.boxes.values()), layout=W.Layout(flex_flow="row wrap"))
        self.widget = W.VBox([row, *self.panels.values()])

    def _show(self, name: str) -> None:
        self.panels[name].layout.display = None if self.boxes[name].value else "none"

    def set(self, value: Any) -> None:
        value = value if isinstance(value, dict) else {}
        for name, box in self.boxes.items():
            params = value.get(name)
            self.forms[name].set(params if isinstance(params, dict) else {}, reset=True)
            box.value = name in value
        self.loaded = copy.deepcopy(value)

    def get(self) -> dict[str, Any]:
        order = [*self.loaded, *(n for n in self.boxes if n not in self.loaded)]
        out = {}
        for n in order:
            if n not in self.boxes:
                out[n] = self.loaded[n]
            elif self.boxes[n].value:
                out[n] = self.forms[n].values()
        return out

    def problems(self) -> list[str]:
        return [p for n, box in self.boxes.items() if box.value for p in self.forms[n].problems()]

    def sweepable(self) -> list[str]:
        return [f"{self.slot.key}.{n}.{f}" for n, b in self.boxes.items() if b.value for f in self.forms[n].fields]


def slot_widget(slot, field, registry, examples: bool):
    """The widget for one component key of the spec, chosen by its shape."""
    default = None if field.is_required() else field.get_default(call_default_factory=True)
    if slot.shape == "by-name":
        return ByNameSlot(slot, examples, default or {})
    if slot.shape in ("list", "table-or-list"):
        return ListSlot(slot, registry, examples, field.is_required(), default)
    return TableSlot(slot, registry, examples)


#: the Workbench's attribute names for some component keys (kept for notebooks and tests
#: written before the form was generated; a new key needs none: ``wb.inputs[key]``)
ATTRIBUTES = {"corruption": "corruptions", "schedule": "schedules"}


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


def _in_words(reason: str) -> str:
    """A run's reason as the Workbench says it: its Resume button, not the CLI's --resume flag."""
    return reason.replace("with --resume", "with Resume").replace("--resume", "Resume")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


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
        self._curves: dict[str, dict[int, dict[str, Any]]] = {}  # run id -> epoch -> that epoch's numbers
        self._attrs: dict[str, dict[str, Any]] = {}  # variable -> its long_name and units
        self._rows: dict[str, dict[str, Any]] = {}
        self._last_draw = 0.0
        self._draw_cost = 0.0  # seconds the last redraw took
        self._launched: Spec | None = None
        self._loaded_keys: set[str] = set()
        self._passthrough: dict[str, Any] = {}
        self._labels: dict[str, str] = {}
        self._resuming = False
        self._notes_written = False
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
        """One accordion section per component key of the spec model (its description on top),
        the experiment's texts first and the typed keys of how it runs last."""
        reg = self.registry
        self.slots = component_slots(reg)
        self.inputs: dict[str, Any] = {}
        self.sections: list[str] = [FIRST_SECTION]
        boxes: list[list[W.Widget]] = [[]]
        self.section_of: dict[str, int] = {}
        for key, slot in self.slots.items():
            if not slot.models:  # nothing installed of its kind: no section; a loaded value passes through
                continue
            w = slot_widget(slot, SpecModel.model_fields[key], reg, self.examples)
            self.inputs[key] = w
            self.section_of[key] = len(self.sections)
            self.sections.append(key)
            boxes.append([W.HTML(f"<i class='aebench-help'>{html.escape(slot.description)}</i>"), w.widget])
            if isinstance(w, ByNameSlot):
                setattr(self, ATTRIBUTES.get(key, f"{slot.kind}s"), w.boxes)
                setattr(self, f"{slot.kind}_forms", w.forms)
            else:
                setattr(self, ATTRIBUTES.get(key, key), w.widget)
        self.sections.append(RUN_SECTION)
        boxes.append([])
        self.fields: dict[str, FieldInput] = {}
        for key, field in SpecModel.model_fields.items():  # one widget per other typed top-level field
            if key in self.slots or key in PASS_THROUGH or key == "sweep":
                continue
            inp = input_for(key, field, field.get_default(call_default_factory=True) if not field.is_required() else "")
            self.fields[key] = inp
            texts = field.annotation in (str, StrictStr)  # the name and texts: "experiment"; the rest: how it runs
            boxes[0 if texts else -1].append(inp.row)
        self.kept = W.HTML()
        self._build_notes(boxes[0])
        boxes[0].append(self.kept)
        self._build_sweep(boxes[-1])
        self.compose = W.Accordion(children=[W.VBox(b) for b in boxes])
        self.compose.titles = tuple(self.sections)
        self.compose.selected_index = 0
        self._build_run_area()

    def _build_notes(self, box: list[W.Widget]) -> None:
        """The launch's note and tags (the catalogue's, written into the launch folder; not spec keys)."""
        self.note = W.Textarea(
            description="note",
            placeholder="what this launch tries (kept with its results; aebench ls shows it)",
            style=STYLE,
            layout=W.Layout(width="520px", height="60px"),
        )
        self.tags = W.Text(description="tags", placeholder="baseline, lr-sweep", style=STYLE)
        help_ = "<span class='aebench-help'>kept in the launch folder (notes.json), not in the spec</span>"
        box += [W.HBox([self.note, W.HTML(help_)]), self.tags]

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
        # where the runs train: a registry kind chosen per launch, with its own options (not a spec key)
        slot = kind_slot("executor", self.registry, description="Where the runs train.")
        self.executor_picker = ComponentPicker(slot, self.registry, {"name": "local"}, examples=self.examples)
        self.executor = self.executor_picker.dropdown
        self.run_count = W.HTML()
        for w in (self.sweep_rows, self.sweep_mode):
            w.observe(lambda _c: self._count(), names="value")
        self.fields["seeds"].observe(self._count)
        box[:0] = [self._sweep_adder, self.sweep_rows, self.sweep_mode]
        box += [self.device, self.executor_picker, self.run_count]

    def _build_run_area(self) -> None:
        self.launch_button = W.Button(description="Launch", button_style="success", icon="play")
        self.resume_button = W.Button(
            description="Resume", button_style="info", icon="forward", disabled=True, tooltip="nothing to resume"
        )
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.launch_button.on_click(lambda _b: self._safe(self.launch))
        self.resume_button.on_click(lambda _b: self._safe(self.launch, None, True))
        self.stop_button.on_click(lambda _b: self.stop())
        self.status = W.HTML("ready")
        self.resume_note = W.HTML()
        self.overall = W.FloatProgress(description="runs", min=0, max=1, style=STYLE)
        self.overall_text = W.HTML()
        self.run_bars: dict[str, W.IntProgress] = {}
        self._bar_rows: dict[str, W.HBox] = {}
        self.progress_box = W.VBox()
        self.plot = W.Image(format="png", layout=W.Layout(max_width="900px", display="none"))
        self.plot_var = W.Dropdown(
            options=[("reconstruction error", "recon_error")],
            description="plot",
            style=STYLE,
            layout=W.Layout(width="420px"),
        )
        self.plot_x = W.Dropdown(options=list(X_AXES), description="x axis", style=STYLE)
        for w in (self.plot_var, self.plot_x):
            w.observe(lambda _c: self._draw(force=True), names="value")
        self.save_format = W.Dropdown(options=["svg", "png"], layout=W.Layout(width="80px"))
        save = W.Button(
            description="Save figure",
            icon="save",
            tooltip="write the plot as SVG or PNG (200 dpi)",
            layout=W.Layout(min_width="130px"),
        )
        save.on_click(lambda _b: self._safe(self.save_figure, None, self.save_format.value, line=self.save_note))
        self.save_note = W.HTML()
        self.plot_controls = W.HBox([self.plot_var, self.plot_x, save, self.save_format, self.save_note])
        self.plot_controls.layout.display = "none"
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
        self._build_compare()
        super().__init__(
            [
                self.compose,
                controls,
                self.resume_note,
                W.HBox([self.overall, self.overall_text]),
                self.progress_box,
                self.plot,
                self.plot_controls,
                self.table,
                files,
                self.report_link,
                self.compare,
            ]
        )
        self.add_class("aebench-workbench")

    # ------------------------------------------------------------ compare
    def _build_compare(self) -> None:
        """Compare launches: pick them from the catalogue of ``out`` (every launch folder under
        it), overlay one per-epoch variable (with its units) and show their tables."""
        self.compare_pick = W.SelectMultiple(description="launches", style=STYLE, layout=W.Layout(width="520px"))
        refresh = W.Button(description="refresh list", icon="refresh")
        refresh.on_click(lambda _b: self._safe(self.refresh_launches, line=self.compare_note))
        self.compare_var = W.Dropdown(description="variable", style=STYLE, options=[])
        self.compare_x = W.Dropdown(options=list(X_AXES), description="x axis", style=STYLE)
        go = W.Button(description="Compare", icon="line-chart", button_style="primary")
        go.on_click(lambda _b: self._safe(self.compare_launches, line=self.compare_note))
        for w in (self.compare_var, self.compare_x):
            w.observe(lambda _c: self._compare_redraw(), names="value")
        self.compare_format = W.Dropdown(options=["svg", "png"], layout=W.Layout(width="80px"))
        save = W.Button(description="Save figure", icon="save", layout=W.Layout(min_width="130px"))
        save.on_click(lambda _b: self._safe(self.save_compare, None, self.compare_format.value, line=self.compare_note))
        self.compare_note = W.HTML()
        self.compare_plot = W.Image(format="png", layout=W.Layout(max_width="900px", display="none"))
        self.compare_table = W.HTML()
        self.compare_data: xr.Dataset | None = None
        body = W.VBox(
            [
                W.HBox([self.compare_pick, refresh]),
                W.HBox([self.compare_var, self.compare_x, go]),
                self.compare_plot,
                W.HBox([save, self.compare_format, self.compare_note]),
                self.compare_table,
            ]
        )
        self.compare = W.Accordion(children=[body], titles=("compare launches",))
        self.compare.add_class("aebench-compare")
        opened = lambda c: c["new"] == 0 and self._safe(self.refresh_launches, line=self.compare_note)  # noqa: E731
        self.compare.observe(opened, names="selected_index")

    def refresh_launches(self) -> list[Path]:
        """The launch folders under ``out`` (the catalogue), newest first, offered for comparing."""
        from aebench import catalogue

        found = catalogue.launches(self.out_root) if self.out_root.is_dir() else []
        options = [
            (
                f"{launch.path.name} · {launch.done}/{launch.runs} done"
                + (f" · {', '.join(launch.tags)}" if launch.tags else ""),
                str(launch.path),
            )
            for launch in found
        ]
        chosen = [v for v in self.compare_pick.value if v in {o[1] for o in options}]
        self.compare_pick.options = options
        self.compare_pick.value = tuple(chosen)
        return [Path(o[1]) for o in options]

    def compare_launches(self, paths: list[str | Path] | None = None) -> xr.Dataset:
        """Overlay the chosen launches (``aebench.open_results``: one Dataset along ``launch``)."""
        paths = [Path(p) for p in (paths if paths is not None else self.compare_pick.value)]
        if len(paths) < 1:
            raise AebenchError("pick the launches to compare (one or more) from the list.")
        ds = aebench.open_results(paths)
        self.compare_data = ds
        self.compare_note.value = ""
        per_epoch = [v for v in ds.data_vars if "epoch" in ds[v].dims and ds[v].dtype.kind == "f"]
        current = self.compare_var.value
        self.compare_var.options = [(self._ds_label(ds, v), v) for v in per_epoch]
        if current in per_epoch:
            self.compare_var.value = current
        elif "recon_error" in per_epoch:
            self.compare_var.value = "recon_error"
        self._compare_redraw()
        return ds

    def _ds_label(self, ds: xr.Dataset, var: str) -> str:
        from aebench.tables import units_of

        units = units_of(var, ds)
        return f"{var} ({units})" if units else var

    def _compare_redraw(self) -> None:
        ds = self.compare_data
        if ds is None or not self.compare_var.value:
            return
        buf = io.BytesIO()
        self.compare_figure().savefig(buf, format="png", dpi=80)
        self.compare_plot.value = buf.getvalue()
        self.compare_plot.layout.display = None
        self.compare_table.value = self._compare_tables(ds)

    def compare_figure(self, var: str | None = None, x: str | None = None):
        """The chosen launches' curves of ``var`` in one axes: a colour per launch and run,
        train solid and valid dashed, against epochs or gradient steps."""
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D

        from aebench.tables import metric_info, units_of

        ds = self.compare_data
        if ds is None:
            raise AebenchError("nothing compared yet: pick launches and press Compare.")
        var, x = var or self.compare_var.value, x or self.compare_x.value
        da = ds[var]
        fig = Figure(figsize=(9, 4))
        ax = fig.subplots()
        other = [d for d in da.dims if d not in ("epoch", "split")]
        splits = [s for s in ("train", "valid") if "split" in da.dims and s in da["split"].values]
        stacked = da.stack(curve=other) if other else da.expand_dims(curve=[0])
        steps = ds["steps"].stack(curve=other) if other and "steps" in ds else None
        # what tells the curves apart: the axes with several values, and keys the launches set differently
        named = [d for d in other if da.sizes[d] > 1 or d == "launch"]
        named += [c for c in da.coords if c not in da.dims and not c.startswith("launch_") and "launch" in da[c].dims]
        for i in range(stacked.sizes["curve"]):
            one = stacked.isel(curve=i)
            label = ", ".join(f"{d.split('.')[-1]}={_value(one[d].item())}" for d in named if one[d].size == 1)
            xs = one["epoch"].values
            if x == "gradient steps" and steps is not None:
                xs = steps.isel(curve=i).values
            color = None
            for split, style in zip(splits or [None], ("-", "--")):
                ys = one.sel(split=split).values if split else one.values
                keep = ~(xs != xs) & ~(ys != ys)  # both finite (NaN != NaN)
                if not keep.any():
                    continue
                kw = {"color": color} if color else {"label": label}
                line = ax.plot(xs[keep], ys[keep], style, **kw)[0]
                color = color or line.get_color()
        ax.set_xlabel(X_AXES[x][1])
        units = units_of(var, ds)
        ax.set_ylabel(f"{var} ({units})" if units else var)
        ax.set_title(metric_info(var, ds).title, fontsize=9, loc="left", wrap=True)
        handles, labels = ax.get_legend_handles_labels()
        handles += [Line2D([], [], color="grey", ls=ls) for ls in ("-", "--")[: len(splits)]]
        labels += splits
        if handles:
            ax.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        return fig

    def _compare_tables(self, ds: xr.Dataset) -> str:
        """Each launch's runs side by side: status and the chosen variable at its last epoch."""
        var = self.compare_var.value
        da = ds[var]
        if "epoch" in da.dims:  # each run's last recorded epoch (runs of a launch may stop early)
            order = xr.DataArray(np.arange(da.sizes["epoch"]), dims="epoch")
            last = da.isel(epoch=(da.notnull() * order).argmax("epoch"))
        else:
            last = da
        if "split" in last.dims:
            last = last.sel(split=[s for s in ("valid", "test") if s in last["split"].values])
        frame = last.to_dataframe(name=var)[var]
        if "split" in last.dims:
            frame = frame.unstack("split")
            frame.columns = [f"{var} ({s}, last epoch)" for s in frame.columns]
        else:
            frame = frame.to_frame(f"{var} (last epoch)")
        if "status" in ds:
            status = ds["status"].to_dataframe()["status"]
            frame = frame.join(status, how="left")
            frame = frame[frame["status"] != "missing"]  # a cell the launch never ran (the others' sweep points)
        else:
            frame = frame.dropna(how="all")
        for c in ds.coords:  # the keys the launches set differently, beside their rows
            if c not in ds.dims and not str(c).startswith("launch_") and ds[c].dims == ("launch",):
                frame.insert(0, str(c), [ds[c].sel(launch=k).item() for k in frame.index.get_level_values("launch")])
        return frame.to_html(classes="aebench-compare-table", float_format=lambda v: f"{v:.4g}", na_rep="")

    def save_compare(self, path: str | Path | None = None, fmt: str = "svg") -> Path:
        """Write the comparison figure as SVG or PNG (200 dpi), by default under ``out/compare/``."""
        if fmt not in ("svg", "png"):
            raise AebenchError(f"figures are saved as svg or png, not {fmt!r}.")
        fig = self.compare_figure()
        path = Path(path) if path else self.out_root / "compare" / f"{self.compare_var.value}.{fmt}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, format=fmt, dpi=200, bbox_inches="tight")
        except OSError as exc:
            raise AebenchError(describe(exc)) from None
        self.compare_note.value = f"saved <span class='aebench-saved'>{html.escape(str(path))}</span>"
        return path

    def _safe(self, fn, *args, line: W.HTML | None = None) -> None:
        """A button's action: errors go to the status line, or to ``line`` beside the button
        (the message is the whole story)."""
        try:
            fn(*args)
        except (AebenchError, OSError, ValueError) as exc:
            (line or self.status).value = _red(describe(exc))

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
        for key, w in self.inputs.items():
            w.set(raw[key])
        sweep = dict(raw["sweep"])
        self.sweep_mode.value = sweep.pop("mode", "grid")
        self.sweep_rows.value = "\n".join(f"{k} = {to_text(v)}" for k, v in sweep.items())
        self._passthrough = {k: copy.deepcopy(v) for k, v in raw.items() if k in PASS_THROUGH or k not in self._keys()}
        self.kept.value = self._kept_note()
        self.refresh_sweep_keys()
        self._count()

    def _keys(self) -> set[str]:
        return set(self.fields) | set(self.inputs) | {"sweep"}

    def _kept_note(self) -> str:
        kept = {k: v for k, v in self._passthrough.items() if k in self._loaded_keys}
        if not kept:
            return ""
        what = ", ".join(
            f"[[{k}]] ({len(v)} entr{'y' if len(v) == 1 else 'ies'})" if isinstance(v, list) else k
            for k, v in kept.items()
        )
        return f"<i>kept as loaded (no widget here; written back on export): {html.escape(what)}</i>"

    def _count(self) -> None:
        """How many runs Launch will start: sweep points × seeds (what the spec expands to)."""
        try:
            raw = {**self._passthrough, "sweep": self._sweep(), "seeds": self.fields["seeds"].get()}
            points = len(sweep_points(raw, "the sweep"))
            seeds = raw["seeds"] if isinstance(raw["seeds"], list) else []
            n = points * len(seeds)
            how = f" ({_plural(points, 'sweep point')} × {_plural(len(seeds), 'seed')})"
            self.run_count.value = f"Launch will start <b>{_plural(n, 'run')}</b>{how}"
        except (SpecError, ValueError, TypeError) as exc:
            self.run_count.value = _red(f"the sweep cannot be read: {exc}")

    def add_sweep_axis(self, key: str, values: list[Any]) -> None:
        """Append an axis to the sweep (what the "add axis" button does)."""
        if not isinstance(values, list) or not values:
            raise SpecError(f"sweep values for {key} must be a non-empty list such as [0.1, 0.3]")
        sweep = {k: v for k, v in self._sweep().items() if k != "mode"}
        sweep[key] = values
        self.sweep_rows.value = "\n".join(f"{k} = {to_text(v)}" for k, v in sweep.items())

    def refresh_sweep_keys(self) -> None:
        self.sweep_key.options = self.sweepable_keys()

    def spec_dict(self) -> dict[str, Any]:
        """The spec the widgets describe, as a dictionary (what ``export spec`` writes): every
        key the loaded spec had, plus those changed from the spec model's defaults."""
        values = {
            **{k: inp.get() for k, inp in self.fields.items()},
            **{k: w.get() for k, w in self.inputs.items()},
            "sweep": self._sweep(),
        }
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
        for key, w in self.inputs.items():
            probs = w.problems()
            if probs:
                out.setdefault(self.section_of[key], []).extend(probs)
        if self.executor_picker.problems():
            out.setdefault(len(self.sections) - 1, []).extend(self.executor_picker.problems())
        return out

    @property
    def valid(self) -> bool:
        return not self._mark_sections()

    def _mark_sections(self) -> dict[int, list[str]]:
        """Mark each section header that holds an invalid field (a collapsed one too)."""
        problems = self.problems()
        self.compose.titles = tuple(f"⚠ {t} (invalid)" if i in problems else t for i, t in enumerate(self.sections))
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
            whole = key == "sweep" or (key in self.inputs and self.slots[key].shape == "by-name")
            if whole:  # a table of its own keys (axes, evaluators by name): replaced as given
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
            listed = "; ".join(f"{p} [{self.sections[i]}]" for i, ps in problems.items() for p in ps)
            self.status.value = _red(f"invalid fields, nothing launched: {listed}")
            raise SpecError(f"invalid fields in the Workbench, nothing launched: {listed}")
        self._clear(keep_curves=resume)
        try:
            spec = self._launched if resume and self._launched is not None and out is None else self.spec
            self.out = self._folder(spec, out, resume)
        except AebenchError as exc:
            self.status.value = _red(str(exc))
            raise
        self._launched, self._resuming, self._notes_written = spec, resume, False
        self._labels = {r.run_id: self._label(spec, r) for r in spec.runs}
        self._rows = {r.run_id: {"status": "pending"} for r in spec.runs}
        self._started = time.monotonic()
        self._fractions: dict[str, float] = {}
        self._first_seen: dict[str, tuple[float, int]] = {}
        self.overall.max, self.overall.value = len(spec.runs), 0
        self.launch_button.disabled, self.resume_button.disabled, self.stop_button.disabled = True, True, False
        self.report_button.disabled = True
        self.resume_note.value = ""
        if resume:  # what it reruns, in words (a finished sweep's failed runs start over)
            self._update_resume()
            plan = self.resume_button.tooltip.removeprefix("Resume will ")
            self.resume_button.disabled = True
            self.status.value = f"resuming in {html.escape(str(self.out))}: {html.escape(plan)}"
        else:
            self.status.value = f"running {len(spec.runs)} run(s) in {html.escape(str(self.out))}"
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
        from aebench.tables import key_label  # as the report's columns: schedule=joint, lr=0.1

        keys = spec.sweep_dims()
        parts = [f"{key_label(k, keys)}={_value(v)}" for k, v in run.point.items()]
        if len(spec.raw.get("seeds", [0])) > 1 or not parts:
            parts.append(f"seed {run.seed}")
        return ", ".join(parts)

    def _write_notes(self) -> None:
        """The note and tags of the page, into the launch folder (the catalogue's notes.json)."""
        note, tags = self.note.value.strip(), [t for t in re.split(r"[,\s]+", self.tags.value) if t]
        if self.out is None or not (note or tags) or not (self.out / "spec.toml").is_file():
            return
        from aebench import catalogue

        old = catalogue.notes(self.out)
        catalogue.tag(self.out, add=tags, remove=[t for t in old.tags if t not in tags], note=note)

    def _work(self, spec: Spec, resume: bool) -> None:
        try:
            self.results = aebench.run(
                spec,
                out=self.out,
                executor=self.executor_picker.table(),
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
            self._update_resume()
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
            self._update_resume()
        finally:
            if not self._notes_written:
                self._safe(self._write_notes)
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
        """An epoch of one run (one member of a batch), or a member's failure as it happens."""
        if "failure" in metrics:  # a member of a running batch diverged: say so now, not when the batch ends
            self._member_failed(run_id, str(metrics["failure"]))
            return
        epoch, total = int(metrics["epoch"]), int(metrics["total_epochs"])
        self._curves.setdefault(run_id, {})[epoch] = {k: v for k, v in metrics.items() if k != "attrs"}
        for name, attrs in (metrics.get("attrs") or {}).items():
            self._attrs.setdefault(name, dict(attrs))
        self._rows.setdefault(run_id, {})["status"] = "running"
        self._fractions[run_id] = min(epoch / max(total, 1), 1.0)
        self._progress(run_id, epoch, total)
        self._plot_choices()
        self._draw()

    def _member_failed(self, run_id: str, reason: str) -> None:
        row = self._rows.setdefault(run_id, {})
        row.update(status="failed", reason=reason, live=True)
        self._fractions[run_id] = 1.0
        self._ensure_bar(run_id, 1)
        self._bar_rows[run_id].children[2].value = _red(self._why(row))
        self._show_bars()
        self._overall()
        self._table()
        self._draw(force=True)

    def curve(self, run_id: str, var: str = "recon_error", split: str | None = "valid") -> dict[int, float]:
        """One run's live values of ``var`` (``var/split`` when it has splits) by epoch."""
        key = f"{var}/{split}" if split else var
        return {e: m[key] for e, m in sorted(self._curves.get(run_id, {}).items()) if key in m}

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
        """Runs finished, failed, the fraction done and the ETA: the epochs left (runs not yet
        started count as the mean of those seen) over the epochs trained per second since the
        launch began, every member of a batch counted (they train at once) and nothing credited
        for a run that failed early or for epochs a resumed run had done before."""
        n = len(self._rows)
        finished = [k for k, r in self._rows.items() if r.get("status") in ("done", "failed")]
        fraction = (len(finished) + sum(f for k, f in self._fractions.items() if k not in finished)) / max(n, 1)
        self.overall.value = fraction * n
        elapsed = time.monotonic() - self._started
        seen = {k: (self.run_bars[k].value, self.run_bars[k].max, e0) for k, (_t, e0) in self._first_seen.items()}
        trained = sum(epoch - (e0 - 1) for epoch, _total, e0 in seen.values())
        left = sum(total - epoch for k, (epoch, total, _e0) in seen.items() if k not in finished)
        waiting = [k for k in self._rows if k not in seen and k not in finished]
        left += len(waiting) * (sum(t for _e, t, _e0 in seen.values()) / max(len(seen), 1))
        going = trained > 0 and elapsed > 0 and left > 0 and not self._stop.is_set()  # a stopped launch has none
        eta = f" · ETA {_clock(left * elapsed / trained)}" if going else ""
        failed = sum(r.get("status") == "failed" for r in self._rows.values())
        self.overall_text.value = (
            f"{len(finished)} of {n} runs finished"
            + (_red(f" ({failed} failed)") if failed else "")
            + f" · {fraction:.0%} · elapsed {_clock(elapsed)}{eta}"
        )

    def _run_done(self, run, status: str) -> None:
        if not self._notes_written:  # the folder exists now (aebench.run made it): keep the note with it
            self._notes_written = True
            self._safe(self._write_notes)
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
        reason = _in_words(row.get("reason") or "")
        return f"{row['status']}: {reason}" if reason else str(row["status"])

    def _final_rows(self) -> None:
        for run_id, row in self._rows.items():
            if row.get("live"):  # failed while its batch ran: the batch's stop does not make it "interrupted"
                continue
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

    # ------------------------------------------------------------ resume
    def resume_plan(self) -> dict[str, list[str]]:
        """What Resume would do in the launch folder: run ids by status (``done`` ones are kept;
        ``failed`` ones are trained again from the start; the others continue or start)."""
        spec = self._launched
        if self.out is None or spec is None:
            return {}
        plan: dict[str, list[str]] = {}
        for r in spec.runs:
            status = (self._status_file(r.run_id) or {"status": "not started"})["status"]
            plan.setdefault(status, []).append(r.run_id)
        return plan

    def _update_resume(self) -> None:
        """Resume says what it will rerun, and is off when everything is done."""
        plan = self.resume_plan()
        todo = {k: v for k, v in plan.items() if k != "done"}
        self.resume_button.disabled = not todo
        if not todo:
            self.resume_button.tooltip = "nothing to resume: every run is done"
            self.resume_note.value = ""
            return
        words = {"failed": "rerun {n} failed run{s} from the start", "interrupted": "continue {n} interrupted run{s}"}
        parts = [
            words.get(k, "run {n} " + k + " run{s}").format(n=len(v), s="s" if len(v) != 1 else "")
            for k, v in todo.items()
        ]
        kept = len(plan.get("done", []))
        text = "Resume will " + ", ".join(parts) + (f"; {kept} done run{'s' if kept != 1 else ''} kept" if kept else "")
        self.resume_button.tooltip = text
        self.resume_note.value = f"<span class='aebench-resume-note'>{html.escape(text)}</span>"

    # ------------------------------------------------------------ the live plot
    def _plot_choices(self) -> None:
        """Every per-epoch variable the runs report (an evaluator's too), labelled with its units."""
        names: dict[str, None] = {}
        for points in self._curves.values():
            for m in points.values():
                for k, v in m.items():
                    if isinstance(v, (int, float)) and k not in ("epoch", "total_epochs", "steps"):
                        names.setdefault(k.split("/")[0])
        options = [(self._var_label(n), n) for n in names]
        if [o[1] for o in options] != [o[1] for o in self.plot_var.options]:
            current = self.plot_var.value
            self.plot_var.options = options
            if current in names:
                self.plot_var.value = current

    def _var_label(self, var: str) -> str:
        title, units = self._title_units(var)
        return f"{var} ({units})" if units else var

    def _title_units(self, var: str) -> tuple[str, str]:
        """A variable's title and units: its evaluator's declaration, else the attributes its
        values came with (``long_name``, ``units``)."""
        title, units, _scale = self._shown_as(var)
        return title, units

    def _shown_as(self, var: str) -> tuple[str, str, float]:
        """Title, units and scale (a declared ``Metric(scale=100, units="%")``) of a live variable."""
        from aebench.tables import declared

        attrs = self._attrs.get(var, {})
        metric = declared(self.registry).metrics.get(var)
        title = metric.title if metric is not None else str(attrs.get("long_name", var))
        units = (metric.units if metric is not None and metric.units else "") or str(attrs.get("units", ""))
        scale = float(metric.scale) if metric is not None else 1.0
        if var == "loss":
            title, units = "training objective", units or "per example"
        return title, "" if units == "1" else units, scale

    def _draw(self, force: bool = False) -> None:
        """Redraw the live plot: it is drawn on the training thread, so at most twice a second
        and never more than a fifth of the time (a slow machine draws less often)."""
        if not force and time.monotonic() - self._last_draw < max(0.5, 4 * self._draw_cost):
            return
        if not self._curves and not any(r.get("status") == "failed" for r in self._rows.values()):
            return
        start = time.monotonic()
        buf = io.BytesIO()
        self.figure().savefig(buf, format="png", dpi=80)
        self._last_draw = time.monotonic()
        self._draw_cost = self._last_draw - start
        self.plot.value = buf.getvalue()
        self.plot.layout.display = None  # hidden until there is a figure (no broken-image icon)
        self.plot_controls.layout.display = None

    def figure(self, var: str | None = None, x: str | None = None):
        """The live plot as a matplotlib Figure (not pyplot: drawn from the training thread):
        ``var`` per epoch (train solid, valid dashed), against epochs or gradient steps, stage
        changes marked, failed runs crossed with their reason."""
        import numpy as np
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.ticker import MaxNLocator

        var, x = var or self.plot_var.value or "recon_error", x or self.plot_x.value
        xkey, xlabel = X_AXES[x]
        scale = self._shown_as(var)[2]
        fig = Figure(figsize=(9, 3.8))
        ax = fig.subplots()
        values: list[float] = []
        splits: dict[str, None] = {}
        marked: set[tuple[float, str]] = set()
        for run_id, points in list(self._curves.items()):
            label = self._labels.get(run_id, run_id)
            row = self._rows.get(run_id, {})
            line = None
            for split, style in (("train", "-"), ("valid", "--"), ("test", ":"), (None, "-")):
                key = f"{var}/{split}" if split else var
                pts = [(m[xkey], m[key] * scale) for _e, m in sorted(points.items()) if key in m and xkey in m]
                if not pts:
                    continue
                splits.setdefault(split or "value")
                kw = {"color": line.get_color()} if line is not None else {"label": label}
                drawn = ax.plot([p for p, _ in pts], [v for _, v in pts], style, **kw)[0]
                line = line or drawn
                values += [v for _, v in pts]
            self._stage_marks(ax, points, xkey, marked)
            if row.get("status") == "failed" and line is not None:
                xs, ys = line.get_data()
                ax.plot([xs[-1]], [ys[-1]], "x", color=RED, markersize=10, mew=2)
                ax.annotate(
                    f"failed: {(row.get('reason') or 'failed')[:60]}",
                    (xs[-1], ys[-1]),
                    fontsize=7,
                    color=RED,
                    xytext=(4, 4),
                    textcoords="offset pixels",
                )
                line.set_label(f"{label} (failed)")
        early = [
            f"{self._labels.get(k, k)}: {r.get('reason') or 'failed'}"[:90]
            for k, r in self._rows.items()
            if r.get("status") == "failed"
            and not any(f"{var}/train" in m or var in m for m in self._curves.get(k, {}).values())
        ]
        if early:  # failed before a first value (a diverged member): say so under the axes
            fig.text(0.01, 0.01, "failed: " + "; ".join(early[:3]), fontsize=7, color=RED)
        finite = np.array([v for v in values if np.isfinite(v) and v > 0])
        if finite.size and finite.max() / finite.min() > 30:  # curves span decades: a linear axis flattens most
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(xlabel)
        title, units = self._title_units(var)
        ax.set_ylabel(f"{var} ({units})" if units else var)
        ax.set_title(title, fontsize=9, loc="left", wrap=True)  # the long name above, the units on the axis
        handles, labels = ax.get_legend_handles_labels()
        styles = {"train": "-", "valid": "--", "test": ":"}
        keys = [s for s in splits if s in styles]
        handles = handles[:12] + [Line2D([], [], color="grey", ls=styles[s]) for s in keys]
        labels = labels[:12] + keys
        if marked:
            handles.append(Line2D([], [], color="grey", ls=(0, (1, 2)), lw=0.8))
            labels.append("stage change")
        if handles:
            ax.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        return fig

    @staticmethod
    def _stage_marks(ax, points: dict[int, dict[str, Any]], xkey: str, marked: set) -> None:
        """A dotted line where a run's stage changes (once per place), the new stage named."""
        previous, last_x = None, 0
        for _e, m in sorted(points.items()):
            stage = m.get("stage")
            if previous is not None and stage != previous:
                at = (last_x + m[xkey]) / 2 if xkey == "epoch" else last_x
                if (at, str(stage)) not in marked:
                    marked.add((at, str(stage)))
                    ax.axvline(at, color="grey", ls=(0, (1, 2)), lw=0.8)
                    ax.annotate(
                        str(stage),
                        (at, 1),
                        xycoords=("data", "axes fraction"),
                        fontsize=7,
                        color="grey",
                        xytext=(2, -10),
                        textcoords="offset points",
                    )
            previous, last_x = stage, m.get(xkey, last_x)

    def save_figure(self, path: str | Path | None = None, fmt: str = "svg") -> Path:
        """Write the live plot (as chosen in the page) as SVG or PNG (200 dpi): to ``path``, or
        into the launch folder's ``figures/``; the page links it."""
        if not self._curves and not self._rows:
            raise AebenchError("nothing to save yet: launch a run first (the plot shows its curves).")
        if fmt not in ("svg", "png"):
            raise AebenchError(f"figures are saved as svg or png, not {fmt!r}.")
        var, x = self.plot_var.value or "recon_error", self.plot_x.value
        if path is None:
            folder = (self.out or self.out_root) / "figures"
            path = folder / f"{var}-by-{X_AXES[x][0]}.{fmt}"
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.figure(var, x).savefig(path, format=fmt, dpi=200, bbox_inches="tight")
        except OSError as exc:
            raise AebenchError(describe(exc)) from None
        url = _served_url(path)
        shown = html.escape(str(path))
        self.save_note.value = (
            f"saved <a href='{html.escape(url)}' target='_blank' class='aebench-saved'>{shown}</a>"
            if url
            else f"saved <span class='aebench-saved'>{shown}</span>"
        )
        return path

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
            cells = [html.escape(_value(r.point.get(k, ""))) for k in keys] + [str(r.seed)]
            cells.append(html.escape(status) if status == "done" else _red(status))
            reason = _in_words(row.get("reason") or "")
            cells.append(_red(reason) if status != "done" else html.escape(reason))
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
        return sorted({k for w in self.inputs.values() for k in w.sweepable()})


def _inline(page: Path) -> str:
    """The report's body with its figures embedded, for a notebook outside a Jupyter root; its links
    to the figure files (PNG, SVG) become the files' paths."""
    text = page.read_text()
    body = text.split("<body>", 1)[-1].rsplit("</body>", 1)[0]

    def embed(m: re.Match) -> str:
        try:
            data = base64.b64encode((page.parent / m.group(1)).read_bytes()).decode()
        except OSError:
            return m.group(0)
        return f"src='data:image/png;base64,{data}'"

    def name_file(m: re.Match) -> str:  # a link relative to the page would not resolve inline: name the file
        return f"{m.group(2)}: <code>{html.escape(str(page.parent / m.group(1)))}</code>"

    body = re.sub(r"<a href=['\"](?![a-z]+:|#)([^'\"]+)['\"]>([^<]*)</a>", name_file, body)
    return re.sub(r"src=['\"]([^'\"]+\.png)['\"]", embed, body)
