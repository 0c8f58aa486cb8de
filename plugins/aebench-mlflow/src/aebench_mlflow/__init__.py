"""MLflow tracking for aebench, built only on aebench's public contract (a callback).

Choose it in a spec::

    callbacks = [{ name = "mlflow" }]                                   # a file store in <out>/mlruns
    callbacks = [{ name = "mlflow", tracking_uri = "http://127.0.0.1:5000", experiment = "dae" }]

Each run — each member of an ensemble — is one MLflow run in the experiment named after the
spec: its parameters (the run's spec as dotted keys, seed, sweep point), every epoch's
metrics (step = epoch), the final metrics (the run's scalar results, per split as
``name/split``), and as artifacts ``spec.toml`` (the run's own spec), ``metrics.nc`` (the
run's results, as ``runs/<id>/metrics.nc`` holds them) and ``report.md`` (its final values).
:func:`log_report` attaches the sweep's ``aebench report`` to every run of an output folder.

The MLflow run id is the callback's state, saved in every checkpoint: ``--resume`` (also
after a ``kill -9``) continues the same MLflow run. A store it cannot reach is a warning
and a ``hook_errors`` line; the run goes on unlogged. The local default is MLflow's file
store (``MLFLOW_ALLOW_FILE_STORE`` is set for it: MLflow 3 keeps it in maintenance mode);
any tracking URI MLflow knows (``sqlite:///...`` with SQLAlchemy installed, ``http://...``)
works the same.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

from pydantic import Field

from aebench import hookimpl
from aebench.components import Callback, CallbackParams

#: MLflow's limit on a parameter value's length
MAX_PARAM = 6000


class MlflowParams(CallbackParams):
    tracking_uri: str | None = Field(
        None,
        description=(
            "Where to track: any MLflow tracking URI (http://..., sqlite:///..., file:...) or a folder (relative: "
            "under --out); default: a file store in 'mlruns' under the run's --out."
        ),
    )
    experiment: str | None = Field(None, description="MLflow experiment; default: the spec's name.")
    artifacts: bool = Field(True, description="Log spec.toml, the run's metrics.nc and report.md as artifacts.")
    timeout: float = Field(
        10.0, gt=0, le=600, description="Seconds an HTTP store may take to answer (no retries) before the run goes on."
    )


class Mlflow(Callback):
    name = "mlflow"
    summary = "Tracks each run (each member) in MLflow: parameters, per-epoch and final metrics, spec and results."
    Params = MlflowParams

    def __init__(self, params: MlflowParams | None = None) -> None:
        super().__init__(params)
        self.run_id: str | None = None  # the MLflow run (state)
        self.uri: str | None = None  # where it is tracked (state)
        self.step = 0  # the last epoch logged (state)
        self.client: Any = None
        self.off = False

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "uri": self.uri, "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id, self.uri, self.step = state["run_id"], state["uri"], int(state["step"])

    # ------------------------------------------------------------------ events
    def on_run_start(self, run: Any) -> None:
        def start() -> None:
            if self.uri is None:
                self.uri = tracking_uri(self.params.tracking_uri, run.out)
            self.client = client(self.uri, self.params.timeout)
            if self.run_id is not None:  # --resume: the same MLflow run goes on
                self.client.update_run(self.run_id, status="RUNNING")
                return
            experiment = self.params.experiment or str(run.spec.raw.get("name", "aebench"))
            tags = {"aebench.run_id": run.run_id, "aebench.seed": str(run.spec.seed)}
            if run.out is not None:
                tags["aebench.out"] = str(Path(run.out).resolve())
            created = self.client.create_run(experiment_id(self.client, experiment), run_name=run.run_id, tags=tags)
            self.run_id = created.info.run_id
            from mlflow.entities import Param

            params = [Param(k, v) for k, v in parameters(run).items()]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
                self.client.log_batch(self.run_id, params=params[i : i + 100])
            if self.params.artifacts:
                self.client.log_text(self.run_id, spec_toml(run), "spec.toml")

        self._guard(run, start)

    def on_epoch_end(self, run: Any, epoch: int, metrics: dict[str, Any]) -> None:
        def log() -> None:
            self._log_metrics(numbers(metrics), epoch)
            self.step = epoch

        if self.client is not None:
            self._guard(run, log)

    def on_run_end(self, run: Any, result: Any) -> None:
        def finish() -> None:
            if result is not None:
                final = final_values(result)
                self._log_metrics(final, self.step)
                if self.params.artifacts:
                    self.client.log_text(self.run_id, report_md(run, final), "report.md")
                    self._log_dataset(result, "metrics.nc")
            self.client.set_terminated(self.run_id, status="FINISHED" if result is not None else "FAILED")

        if self.client is not None and self.run_id is not None:
            self._guard(run, finish)

    # ------------------------------------------------------------------ helpers
    def _log_metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in values.items()]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[i : i + 1000])

    def _log_dataset(self, ds: Any, name: str) -> None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            ds.to_netcdf(path, engine="netcdf4")
            self.client.log_artifact(self.run_id, str(path))

    def _guard(self, run: Any, action: Any) -> None:
        """Run ``action``; a failure (no store, a refused connection) is said once and never fails the run."""
        if self.off:
            return
        try:
            action()
        except Exception as exc:
            self.off = True
            text = str(exc).splitlines()[0][:300] if str(exc) else ""
            msg = (
                f"aebench-mlflow: cannot track run {run.run_id} at {self.uri} ({type(exc).__name__}: {text}); "
                "it goes on untracked"
            )
            warnings.warn(msg, stacklevel=2)
            run.note_hook_errors([msg])


# ---------------------------------------------------------------------------- the store
def tracking_uri(given: str | None, out: Path | None) -> str:
    """``given`` as MLflow reads it; a folder (relative: under --out) becomes a ``file:`` URI."""
    if given and "://" in given:
        return given
    path = Path(given.removeprefix("file:") if given else "mlruns").expanduser()
    if not path.is_absolute():
        if out is None:
            raise RuntimeError(f"no output folder on this worker to put {path} under; give an absolute tracking_uri")
        path = Path(out) / path
    return path.resolve().as_uri()


def client(uri: str, timeout: float) -> Any:
    """An ``MlflowClient`` for ``uri`` that gives up on an unreachable server after ``timeout`` s."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(math.ceil(timeout))))
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3: the file store is opt-in
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def experiment_id(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:  # another member or worker created it meanwhile
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


# ---------------------------------------------------------------------------- what is logged
def numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def _dotted(table: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(table, dict) and table:
        for k, v in table.items():
            out.update(_dotted(v, f"{prefix}{k}."))
    elif isinstance(table, list) and table and all(isinstance(v, dict) for v in table):
        for i, v in enumerate(table):
            out.update(_dotted(v, f"{prefix}{i}."))
    else:
        out[prefix.rstrip(".")] = table
    return out


def parameters(run: Any) -> dict[str, str]:
    """The run's spec as dotted keys, its seed and sweep point, as MLflow parameter text."""
    values = {**_dotted(run.spec.raw), "seed": run.spec.seed}
    values.update({f"sweep.{k}": v for k, v in run.spec.point.items()})
    out = {}
    for key, value in sorted(values.items()):
        text = value if isinstance(value, str) else json.dumps(value)
        out[key[:250]] = text[:MAX_PARAM]
    return out


def final_values(ds: Any) -> dict[str, float]:
    """The run's finite scalar results, and per-split ones as ``name/split``."""
    out: dict[str, float] = {}
    for name, da in ds.data_vars.items():
        if da.dtype.kind not in "fiu" or "epoch" in da.dims:
            continue
        if da.dims == ():
            out[str(name)] = float(da)
        elif da.dims == ("split",):
            out.update({f"{name}/{s}": float(da.sel(split=s)) for s in da["split"].values})
    return {k: v for k, v in out.items() if math.isfinite(v)}


def spec_toml(run: Any) -> str:
    import tomli_w

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [plain(v) for v in value if v is not None]
        return value

    return tomli_w.dumps({"seed": run.spec.seed, **plain(run.spec.raw)})


def report_md(run: Any, final: dict[str, float]) -> str:
    rows = "\n".join(f"| {k} | {v:.6g} |" for k, v in sorted(final.items()))
    head = f"# {run.spec.raw.get('name', '')} — {run.run_id} (seed {run.spec.seed})"
    return f"{head}\n\n| result | value |\n|---|---|\n{rows}\n"


def log_report(out: str | Path, tracking: str | None = None) -> int:
    """Attach the sweep's report (``aebench report DIR`` writes ``report.html`` or ``report.md``
    and ``report_files/``) to every MLflow run logged from ``out``; returns how many runs got it."""
    out = Path(out).resolve()
    reports = [p for p in (out / "report.html", out / "report.md") if p.is_file()]
    if not reports:
        raise FileNotFoundError(f"{out} holds no report yet: run `aebench report {out}` first")
    mlflow = client(tracking_uri(tracking, out), 10.0)
    runs = [
        r
        for e in mlflow.search_experiments()
        for r in mlflow.search_runs([e.experiment_id], filter_string=f"tags.`aebench.out` = '{out}'")
    ]
    for r in runs:
        for path in reports:
            mlflow.log_artifact(r.info.run_id, str(path), "report")
        if (out / "report_files").is_dir():
            mlflow.log_artifacts(r.info.run_id, str(out / "report_files"), "report/report_files")
    return len(runs)


@hookimpl
def aebench_callbacks():
    return [Mlflow]


__all__ = ["Mlflow", "log_report"]
