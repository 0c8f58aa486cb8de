"""An ipywidgets UI that composes installed plug-ins into a spec, runs it, and shows it live."""

from __future__ import annotations

import copy
import html
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import ipywidgets as W
import torch
import xarray as xr

import aebench
from aebench.errors import AebenchError
from aebench.options import DEVICES, EXECUTORS, PRECISIONS
from aebench.spec import OptimizerParams, Spec, set_dotted
from aebench.ui.forms import ComponentPicker, ParamsForm, from_text, to_text

DEFAULT: dict[str, Any] = {
    "name": "workbench",
    "seeds": [0],
    "data": {"name": "mnist", "subset": 1000, "eval_subset": 500},
    "model": {"name": "stacked", "layers": [256, 256]},
    "corruption": {"name": "gaussian", "level": 0.3},
    "regularizers": [],
    "schedule": {"name": "joint", "epochs": 5},
    "optimizer": {"name": "rmsprop", "lr": 0.001},
    "evaluate": {"recon": {}},
}
STYLE = {"description_width": "140px"}


class ListOf(W.VBox):
    """Add/remove a list of component pickers (regularizers, chained schedule stages, corruptions)."""

    def __init__(self, kind: str, registry, tables: list[dict[str, Any]], label: str, minimum: int = 0) -> None:
        self.kind, self.registry, self.label, self.minimum = kind, registry, label, minimum
        self.items: list[ComponentPicker] = []
        self.add_button = W.Button(description=f"add {label}", icon="plus")
        self.add_button.on_click(lambda _b: self.add({"name": registry.names(kind)[0]}))
        self.box = W.VBox()
        super().__init__([self.box, self.add_button])
        self.set(tables)

    def add(self, table: dict[str, Any]) -> None:
        picker = ComponentPicker(self.kind, self.registry, table, label=f"{self.label} {len(self.items) + 1}")
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

    @property
    def valid(self) -> bool:
        return all(p.valid for p in self.items)


class Workbench(W.VBox):
    """Compose an experiment from the installed plug-ins, launch it, watch it, get a Dataset.

    Python API (what the tutorials use): ``wb.set({"model.layers": [500, 500]})``,
    ``wb.spec``, ``wb.launch()``, ``wb.wait()``, ``wb.stop()``, ``wb.results``.
    """

    def __init__(self, spec: dict[str, Any] | str | Path | None = None, out: str | Path | None = None) -> None:
        self.registry = aebench.registry()
        self.out_root = Path(out) if out else Path(tempfile.mkdtemp(prefix="aebench-wb-"))
        self.results: xr.Dataset | None = None
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._curves: dict[str, dict[str, list[float]]] = {}
        self._last_draw = 0.0
        self._launches = 0
        self._build()
        if isinstance(spec, (str, Path)):
            self.load_spec(spec)
        else:
            self.set_spec(copy.deepcopy(spec or DEFAULT))

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        reg = self.registry
        self.name = W.Text(description="name", style=STYLE)
        self.data = ComponentPicker("dataset", reg, label="data set")
        self.model = ComponentPicker("model", reg, label="model")
        self.corruptions = ListOf("corruption", reg, [], "corruption")
        self.regularizers = ListOf("regularizer", reg, [], "regularizer")
        self.schedules = ListOf("schedule", reg, [], "stage", minimum=1)
        self.optimizer = ParamsForm(OptimizerParams)
        self.evaluators = {
            n: W.Checkbox(description=n, value=n == "recon", indent=False) for n in reg.names("evaluator")
        }
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
        add_axis.on_click(lambda _b: self.add_sweep_axis(self.sweep_key.value, from_text(self.sweep_values.value)))
        self._sweep_adder = W.HBox([self.sweep_key, self.sweep_values, add_axis])
        self.seeds = W.Text(description="seeds", style=STYLE, tooltip="a list, e.g. [0, 1, 2]")
        devices = [d for d in DEVICES if d != "cuda" or torch.cuda.is_available()]
        self.device = W.Dropdown(
            options=devices,
            value="auto",
            description="device",
            style=STYLE,
            tooltip=f"CUDA {'available' if torch.cuda.is_available() else 'not available on this machine'}",
        )
        self.executor = W.Dropdown(options=list(EXECUTORS), description="executor", style=STYLE)
        self.ensemble = W.Checkbox(
            description="ensemble (train seeds / shared-shape points as one batched model)", indent=False
        )
        self.precision = W.Dropdown(options=list(PRECISIONS), description="precision", style=STYLE)
        self.launch_button = W.Button(description="Launch", button_style="success", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.launch_button.on_click(lambda _b: self.launch())
        self.stop_button.on_click(lambda _b: self.stop())
        self.status = W.HTML("ready")
        self.overall = W.IntProgress(description="runs", min=0, max=1, style=STYLE)
        self.run_bar = W.IntProgress(description="epochs", min=0, max=1, style=STYLE)
        self.plot = W.Image(format="png", layout=W.Layout(max_width="640px"))
        self.table = W.HTML()
        self.export_path = W.Text(value="spec.toml", description="spec file", style=STYLE)
        export = W.Button(description="export spec as TOML", icon="download")
        load = W.Button(description="load spec", icon="upload")
        report = W.Button(description="open report", icon="file")
        export.on_click(lambda _b: self._safe(self.export_spec, self.export_path.value))
        load.on_click(lambda _b: self._safe(self.load_spec, self.export_path.value))
        report.on_click(lambda _b: self._safe(self.open_report))
        self.report_link = W.HTML()

        compose = W.Accordion(
            children=[
                W.VBox([self.name, self.data]),
                self.model,
                self.corruptions,
                self.regularizers,
                self.schedules,
                self.optimizer,
                W.HBox(list(self.evaluators.values())),
                W.VBox(
                    [
                        self._sweep_adder,
                        self.sweep_rows,
                        self.sweep_mode,
                        self.seeds,
                        self.device,
                        self.executor,
                        self.ensemble,
                        self.precision,
                    ]
                ),
            ]
        )
        for i, title in enumerate(
            [
                "data",
                "model",
                "corruption",
                "regularizers",
                "schedule (stages)",
                "optimizer",
                "evaluators",
                "sweep, seeds, device",
            ]
        ):
            compose.set_title(i, title)
        compose.selected_index = 0
        controls = W.HBox([self.launch_button, self.stop_button, self.status])
        files = W.HBox([self.export_path, export, load, report])
        super().__init__(
            [compose, controls, self.overall, self.run_bar, self.plot, self.table, files, self.report_link]
        )
        self.add_class("aebench-workbench")

    def _safe(self, fn, *args) -> None:
        try:
            fn(*args)
        except (AebenchError, OSError, ValueError) as exc:
            self.status.value = f"<span style='color:#b00020'>{html.escape(str(exc))}</span>"

    # --------------------------------------------------------------------- spec
    def set_spec(self, raw: dict[str, Any]) -> None:
        """Fill every widget from a spec dictionary (as read from TOML)."""
        raw = {**copy.deepcopy(DEFAULT), **raw}
        self.name.value = raw["name"]
        self.data.set(raw["data"])
        self.model.set(raw["model"])
        corr = raw.get("corruption", {"name": "none"})
        self.corruptions.set(corr if isinstance(corr, list) else [corr])
        self.regularizers.set(raw.get("regularizers", []))
        sched = raw["schedule"]
        self.schedules.set(sched if isinstance(sched, list) else [sched])
        opt = raw.get("optimizer", {})
        self.optimizer.set(opt if isinstance(opt, dict) else {"name": opt}, reset=True)
        for name, box in self.evaluators.items():
            box.value = name in raw.get("evaluate", {})
        self._evaluator_params = {k: v for k, v in raw.get("evaluate", {}).items()}
        sweep = dict(raw.get("sweep", {}))
        self.sweep_mode.value = sweep.pop("mode", "grid")
        self.sweep_rows.value = "\n".join(f"{k} = {to_text(v)}" for k, v in sweep.items())
        self.seeds.value = to_text(raw.get("seeds", [0]))
        self.ensemble.value = bool(raw.get("ensemble", False))
        self.precision.value = raw.get("precision", "float32")
        self.refresh_sweep_keys()

    def add_sweep_axis(self, key: str, values: list[Any]) -> None:
        """Append an axis to the sweep (what the "add axis" button does)."""
        if not isinstance(values, list) or not values:
            raise AebenchError(f"sweep values for {key} must be a non-empty list such as [0.1, 0.3]")
        sweep = {k: v for k, v in self._sweep().items() if k != "mode"}
        sweep[key] = values
        self.sweep_rows.value = "\n".join(f"{k} = {to_text(v)}" for k, v in sweep.items())

    def refresh_sweep_keys(self) -> None:
        self.sweep_key.options = self.sweepable_keys()

    def spec_dict(self) -> dict[str, Any]:
        """The spec the widgets describe, as a dictionary (what ``export spec`` writes)."""
        corr = self.corruptions.tables()
        sched = self.schedules.tables()
        raw: dict[str, Any] = {
            "name": self.name.value,
            "seeds": from_text(self.seeds.value),
            "data": self.data.table(),
            "model": self.model.table(),
            "corruption": corr[0] if len(corr) == 1 else (corr or {"name": "none"}),
            "regularizers": self.regularizers.tables(),
            "schedule": sched[0] if len(sched) == 1 else sched,
            "optimizer": {"name": self.optimizer.raw()["name"], **self.optimizer.values()},
            "evaluate": {n: self._evaluator_params.get(n, {}) for n, box in self.evaluators.items() if box.value},
        }
        if self.ensemble.value:
            raw["ensemble"] = True
        if self.precision.value != "float32":
            raw["precision"] = self.precision.value
        sweep = self._sweep()
        if sweep:
            raw["sweep"] = sweep
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

    @property
    def valid(self) -> bool:
        parts = [self.data, self.model, self.corruptions, self.regularizers, self.schedules]
        return all(p.valid for p in parts) and self.optimizer.validate()

    def set(self, values: dict[str, Any] | None = None, **kw: Any) -> Workbench:
        """Set spec fields by dotted key: ``wb.set({"model.layers": [500], "schedule.epochs": 3})``.

        A sweep axis is set with ``{"sweep": {"schedule.name": ["joint", "layerwise"]}}``;
        ``seeds=[0, 1, 2]`` and other top-level keys work as keywords.
        """
        raw = self.spec_dict()
        for key, value in {**(values or {}), **kw}.items():
            if key == "sweep":
                raw["sweep"] = dict(value)
            elif key == "evaluate":
                raw["evaluate"] = dict(value)
            else:
                set_dotted(raw, key, value)
        self.set_spec(raw)
        return self

    def export_spec(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.spec.to_toml())
        self.status.value = f"spec written to {html.escape(str(path))}"
        return path

    def load_spec(self, path: str | Path) -> None:
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise AebenchError(f"cannot load spec {path}: {exc}") from None
        Spec.from_dict(raw, source=str(path), reg=self.registry)  # validate before touching the form
        self.set_spec(raw)
        self.status.value = f"loaded {html.escape(str(path))}"

    # ------------------------------------------------------------------ running
    def launch(self, out: str | Path | None = None, resume: bool = False) -> None:
        """Validate, then run in a background thread (the kernel stays responsive)."""
        if self._thread is not None and self._thread.is_alive():
            raise AebenchError("a run is already in progress; stop it or wait for it.")
        if not self.valid:
            self.status.value = "<span style='color:#b00020'>fix the fields marked in red first</span>"
            raise AebenchError("the form has invalid values (shown in red); nothing was launched.")
        try:
            spec = self.spec
        except AebenchError as exc:
            self.status.value = f"<span style='color:#b00020'>{html.escape(str(exc))}</span>"
            raise
        self._launches += 1
        self.out = Path(out) if out else self.out_root / f"launch-{self._launches}"
        self._stop.clear()
        self._curves = {}
        self.error = None
        self.overall.max, self.overall.value = len(spec.runs), 0
        self.run_bar.value = 0
        self.launch_button.disabled, self.stop_button.disabled = True, False
        self.status.value = f"running {len(spec.runs)} run(s) into {html.escape(str(self.out))}"
        self._thread = threading.Thread(target=self._work, args=(spec, resume), daemon=True)
        self._thread.start()

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
            failed = [s for s in self.results["status"].values.ravel() if s != "done"]
            self.status.value = f"done: {self.overall.value} run(s), {len(failed)} failed; results in wb.results"
        except BaseException as exc:  # the thread must report, not die silently
            stopped = self._stop.is_set()
            self.error = None if stopped else f"{type(exc).__name__}: {exc}"
            self.status.value = (
                "stopped; launch(resume=True) continues"
                if stopped
                else f"<span style='color:#b00020'>{html.escape(self.error)}</span>"
            )
            if (self.out / "results.nc").exists():
                self.results = aebench.load_results(self.out)
        finally:
            self._draw(force=True)
            self._table()
            self.launch_button.disabled, self.stop_button.disabled = False, True

    def _epoch(self, run_id: str, metrics: dict[str, Any]) -> None:
        curves = self._curves.setdefault(run_id, {"train": [], "valid": []})
        for split in ("train", "valid"):
            curves[split].append(metrics.get(f"recon_error/{split}", float("nan")))
        self.run_bar.max, self.run_bar.value = metrics["total_epochs"], metrics["epoch"]
        self._draw()

    def _run_done(self, run, status: str) -> None:
        self.overall.value += 1
        try:
            self.results = aebench.load_results(self.out)
        except AebenchError:
            pass
        self._table()

    def _draw(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_draw < 0.5:
            return  # at most two redraws a second
        self._last_draw = time.monotonic()
        import io

        from matplotlib.figure import Figure  # not pyplot: drawn from the training thread, never shown by it

        if not self._curves:
            return
        # A PNG in an Image widget: a plain trait update, safe from the training thread.
        fig = Figure(figsize=(6, 3))
        ax = fig.subplots()
        for run_id, c in list(self._curves.items()):
            line = ax.plot(range(1, len(c["train"]) + 1), c["train"], label=f"{run_id} train")[0]
            ax.plot(range(1, len(c["valid"]) + 1), c["valid"], "--", color=line.get_color(), label=f"{run_id} valid")
        ax.set_xlabel("epoch (all stages)")
        ax.set_ylabel("reconstruction error")
        ax.legend(fontsize=7)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        self.plot.value = buf.getvalue()

    def _table(self) -> None:
        ds = self.results
        if ds is None:
            return
        rows = []
        keys = [d for d in ds["status"].dims]
        stacked = ds["status"].stack(_run=keys) if keys else ds["status"].expand_dims(_run=[0])
        final = ds.get("recon_error_final")
        for k in range(stacked.sizes["_run"]):
            where = {d: stacked[d].values[k] for d in keys}
            cells = [html.escape(str(v)) for v in where.values()] + [str(stacked.values[k])]
            if final is not None:
                cells.append(f"{float(final.sel(where).sel(split='test')):.2f}")
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        head = "".join(f"<th>{h}</th>" for h in [*keys, "status", *(["test recon error"] if final is not None else [])])
        self.table.value = f"<table class='aebench-results'><tr>{head}</tr>{''.join(rows)}</table>"

    def wait(self, timeout: float | None = None) -> xr.Dataset | None:
        """Block until the launched runs end; return ``wb.results`` (raises if the runs raised)."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self.error:
            raise AebenchError(self.error)
        return self.results

    def stop(self) -> None:
        """Stop after the current mini-batch; finished runs and checkpoints are kept (resumable)."""
        self._stop.set()
        self.status.value = "stopping…"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def open_report(self) -> Path:
        from aebench.report import write_report

        page, _ = write_report(self.out)
        self.report_link.value = (
            f"report: <a href='{html.escape(str(page))}' target='_blank'>{html.escape(str(page))}</a>"
        )
        return page

    def sweepable_keys(self) -> list[str]:
        """Every dotted key a sweep axis can name: each chosen plug-in's params, defaults included."""
        keys = ["data.name", "model.name", "seeds"]
        for section, picker in (("data", self.data), ("model", self.model)):
            keys += [f"{section}.{f}" for f in picker.form.params_cls.model_fields]
        for section, items in (("corruption", self.corruptions.items), ("schedule", self.schedules.items)):
            for i, p in enumerate(items):
                prefix = section if len(items) == 1 else f"{section}.{i}"
                keys += [f"{prefix}.name", *(f"{prefix}.{f}" for f in p.form.params_cls.model_fields)]
        for i, p in enumerate(self.regularizers.items):
            keys += [f"regularizers.{i}.name", *(f"regularizers.{i}.{f}" for f in p.form.params_cls.model_fields)]
        keys += [f"optimizer.{f}" for f in OptimizerParams.model_fields]
        return sorted(set(keys))
