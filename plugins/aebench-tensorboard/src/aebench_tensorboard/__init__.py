"""TensorBoard logging for aebench, built only on aebench's public contract (a callback).

Choose it in a spec::

    callbacks = [{ name = "tensorboard" }]                 # event files in <out>/tensorboard
    callbacks = [{ name = "tensorboard", logdir = "/data/tb" }]

Each run — each member of an ensemble — is one TensorBoard run, ``<logdir>/<experiment>/<run-id>``:
every epoch's scalars (``loss``, ``recon_error/valid``, ...: what the epoch's metrics hold)
at step = epoch, the spec as text, and at the end the final scalars (``final/...``) with the
hyper-parameters (the run's spec as dotted keys, its seed and sweep point) for the HParams
dashboard. Its state (the run's folder and the last epoch written) is saved in every
checkpoint, so ``--resume`` continues the same TensorBoard run: events written after that
checkpoint by a killed process are purged (``purge_step``) and written again. A folder it
cannot write to is a warning (and a ``hook_errors`` line); the run goes on without it.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

from pydantic import Field

from aebench import hookimpl
from aebench.components import Callback, CallbackParams


class TensorBoardParams(CallbackParams):
    logdir: str | None = Field(
        None,
        description=(
            "Folder of the event files (one sub-folder per experiment, one per run inside it); default: "
            "'tensorboard' under the run's --out. A relative path is taken under --out."
        ),
    )
    hparams: bool = Field(True, description="Write the hyper-parameters and final values for the HParams dashboard.")


class TensorBoard(Callback):
    name = "tensorboard"
    summary = "Logs each run's (each member's) epoch scalars, hyper-parameters and spec to TensorBoard event files."
    Params = TensorBoardParams

    def __init__(self, params: TensorBoardParams | None = None) -> None:
        super().__init__(params)
        self.folder: str | None = None  # this run's TensorBoard run (state)
        self.step = 0  # the last epoch written (state)
        self.resumed = False
        self.writer: Any = None
        self.off = False  # after a failure: warned once, silent since

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"folder": self.folder, "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.folder, self.step, self.resumed = state["folder"], int(state["step"]), True

    # ------------------------------------------------------------------ events
    def on_run_start(self, run: Any) -> None:
        def start() -> None:
            from torch.utils.tensorboard import SummaryWriter

            if self.folder is None:
                root = _root(self.params.logdir, run.out, "tensorboard")
                self.folder = str(root / _safe(str(run.spec.raw.get("name", "aebench"))) / run.run_id)
            # on --resume, events past the checkpoint (a killed process's last epochs) are purged
            self.writer = SummaryWriter(self.folder, purge_step=self.step + 1 if self.resumed else None)
            if not self.resumed:
                toml = _spec_toml(run)
                self.writer.add_text("spec", "```toml\n" + toml + "\n```", global_step=0)
            self.writer.flush()

        self._guard(run, start)

    def on_epoch_end(self, run: Any, epoch: int, metrics: dict[str, Any]) -> None:
        def write() -> None:
            for key, value in metrics.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self.writer.add_scalar(key, float(value), global_step=epoch)
            self.writer.flush()  # a killed process keeps what it logged
            self.step = epoch

        if self.writer is not None:
            self._guard(run, write)

    def on_run_end(self, run: Any, result: Any) -> None:
        def finish() -> None:
            final = _final_values(result) if result is not None else {}
            for key, value in final.items():
                self.writer.add_scalar(f"final/{key}", value, global_step=self.step)
            if self.params.hparams:
                from torch.utils.tensorboard.summary import hparams

                metrics = {f"final/{k}": v for k, v in final.items()}
                for summary in hparams(_hyper_parameters(run), metrics):
                    self.writer.file_writer.add_summary(summary)
            self.writer.close()

        if self.writer is not None:
            self._guard(run, finish)
            self.writer = None

    def _guard(self, run: Any, action: Any) -> None:
        """Run ``action``; a failure (no folder, a full disk) is said once and never fails the run."""
        if self.off:
            return
        try:
            action()
        except Exception as exc:
            self.off = True
            msg = f"aebench-tensorboard: cannot log run {run.run_id} ({type(exc).__name__}: {exc}); it goes on unlogged"
            warnings.warn(msg, stacklevel=2)
            run.note_hook_errors([msg])


# ---------------------------------------------------------------------------- helpers
def _root(folder: str | None, out: Path | None, default: str) -> Path:
    """``folder`` (relative: under --out), or ``default`` under --out."""
    path = Path(folder or default).expanduser()
    if path.is_absolute():
        return path
    if out is None:
        raise RuntimeError(f"no output folder on this worker to put {path} under; give the callback an absolute folder")
    return Path(out) / path


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "aebench"


def _spec_toml(run: Any) -> str:
    import tomli_w

    return tomli_w.dumps({"seed": run.spec.seed, **_plain(run.spec.raw)})


def _plain(value: Any) -> Any:
    """A value TOML can write (None becomes text)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value if v is not None]
    return value


def _dotted(table: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(table, dict):
        for k, v in table.items():
            out.update(_dotted(v, f"{prefix}{k}."))
    elif isinstance(table, list) and all(isinstance(v, dict) for v in table) and table:
        for i, v in enumerate(table):
            out.update(_dotted(v, f"{prefix}{i}."))
    else:
        out[prefix.rstrip(".")] = table
    return out


def _hyper_parameters(run: Any) -> dict[str, Any]:
    """The run's spec as dotted keys (numbers, text and booleans as they are; the rest as JSON text)."""
    values = {**_dotted(run.spec.raw), "seed": run.spec.seed, "run_id": run.run_id}
    return {
        k: v if isinstance(v, bool | int | float | str) else json.dumps(v)
        for k, v in sorted(values.items())
        if k not in ("name", "description")
    }


def _final_values(ds: Any) -> dict[str, float]:
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


@hookimpl
def aebench_callbacks():
    return [TensorBoard]
