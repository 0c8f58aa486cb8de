"""Train one run: stages over the model, evaluators, checkpoints, callbacks."""

from __future__ import annotations

import copy
import json
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from aebench.components import Stage
from aebench.engine.checkpoint import load_checkpoint, save_checkpoint
from aebench.engine.context import RunContext, to_device
from aebench.engine.optim import make_optimizer
from aebench.engine.stage import StageLoss
from aebench.errors import RunFailed
from aebench.plugins import Registry, call_hook, registry


class RunInterrupted(Exception):
    """The run was asked to stop (Ctrl-C, the Workbench's Stop); its checkpoint is kept."""


@dataclass
class RunOptions:
    device: torch.device
    progress: bool = True
    resume: bool = False
    stop: threading.Event | None = None
    position: int = 0  # tqdm bar row
    on_epoch: Any = None  # callable(run_id, metrics) after every epoch (the Workbench's live view)
    hooks: bool = True  # False for an evaluator's private training: plug-in callbacks see runs only


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from aebench.errors import AebenchError

        raise AebenchError("--device cuda was asked for, but torch sees no CUDA device on this machine.")
    return torch.device(name)


def build_context(run, device: torch.device, reg: Registry | None = None) -> RunContext:
    """Build model, data, corruptions, regularizers and stages for ``run`` (a RunSpec)."""
    reg = reg or registry()
    data = run.data.build(reg).load()
    init_gen = torch.Generator().manual_seed(run.seed)  # CPU: same init on every device
    model = run.model.cls(reg)(run.model.params, data.n_inputs, init_gen).to(device)
    stages = [s for sched in run.schedules for s in sched.build(reg).stages(model.n_layers)]
    ctx = RunContext(
        run_id=run.run_id,
        spec=run,
        model=model,
        data=data,
        splits=to_device(data, device),
        device=device,
        generator=torch.Generator(device=device).manual_seed(run.seed),
        corruptions=[c.build(reg) for c in run.corruptions],
        regularizers=[r.build(reg) for r in run.regularizers],
        stages=stages,
    )
    if any(s.train_head for s in stages):
        ctx.head = torch.nn.Linear(model.sizes[-1], max(data.n_classes, 2)).to(device)
        torch.nn.init.zeros_(ctx.head.weight)
        torch.nn.init.zeros_(ctx.head.bias)
    return ctx


class Trainer:
    """Runs the stages of one RunContext, recording one row of metrics per epoch."""

    def __init__(self, ctx: RunContext, evaluators: list, opts: RunOptions, checkpoint: Path | None, reg: Registry) -> None:
        self.ctx, self.evaluators, self.opts, self.checkpoint, self.reg = ctx, evaluators, opts, checkpoint, reg
        self.records: list[dict[str, Any]] = []
        self.stage_idx = 0
        self.stage_epoch = 0
        self.steps = 0
        self.opt_state: dict[str, Any] | None = None
        self.best: dict[str, Any] | None = None
        self.initial = copy.deepcopy(ctx.model.state_dict())
        ctx.extras["records"] = self.records

    # ---------------------------------------------------------------- checkpoints
    def state(self, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
        return {
            "model": self.ctx.model.state_dict(),
            "head": self.ctx.head.state_dict() if self.ctx.head is not None else None,
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "initial": self.initial,
            "best": self.best,
            "stage_idx": self.stage_idx,
            "stage_epoch": self.stage_epoch,
            "steps": self.steps,
            "stage_ref": getattr(self, "stage_ref", None),
            "generator": self.ctx.generator.get_state(),
            "records": json.dumps(self.records),
        }

    def restore(self) -> bool:
        if self.checkpoint is None or not self.opts.resume:
            return False
        st = load_checkpoint(self.checkpoint, self.ctx.device)
        if st is None or "stage_idx" not in st:  # absent, unreadable, or an ensemble member's final weights
            return False
        self.ctx.model.load_state_dict(st["model"])
        if st["head"] is not None and self.ctx.head is not None:
            self.ctx.head.load_state_dict(st["head"])
        self.initial, self.best = st["initial"], st["best"]
        self.stage_idx, self.stage_epoch, self.steps = st["stage_idx"], st["stage_epoch"], st["steps"]
        self.opt_state = st["optimizer"]
        self.stage_ref = st.get("stage_ref")
        self.ctx.generator.set_state(st["generator"].cpu())
        self.records = json.loads(st["records"])
        self.ctx.extras["records"] = self.records
        return True

    # ------------------------------------------------------------------- training
    def run(self) -> None:
        ctx = self.ctx
        total = sum(s.epochs for s in ctx.stages)
        bar = _bar(total, ctx.run_id, self.opts)
        bar.update(len(self.records))
        try:
            while self.stage_idx < len(ctx.stages):
                self.run_stage(ctx.stages[self.stage_idx], bar)
                if ctx.stop_reason and not ctx.stop_reason.startswith("stage:"):
                    break
                self.stage_idx, self.stage_epoch, self.opt_state = self.stage_idx + 1, 0, None
                ctx.stop_reason = None
        finally:
            bar.close()

    def _trainable(self, stage: Stage) -> list[torch.nn.Parameter]:
        params = [p for i in stage.train_layers for p in self.ctx.model.layer_parameters(i)]
        if stage.train_head and self.ctx.head is not None:
            params += list(self.ctx.head.parameters())
        return params

    def run_stage(self, stage: Stage, bar) -> None:
        ctx = self.ctx
        if stage.reinit and self.stage_epoch == 0:
            ctx.model.load_state_dict(self.initial)
        trainable = self._trainable(stage)
        ids = {id(p) for p in trainable}
        for p in [*ctx.model.parameters(), *(ctx.head.parameters() if ctx.head is not None else [])]:
            p.requires_grad_(id(p) in ids)
        optimizer = make_optimizer(trainable, ctx.spec.optimizer, stage.lr)
        if self.opt_state is not None:
            optimizer.load_state_dict(self.opt_state)
        loss_fn = StageLoss(ctx, stage)
        while self.stage_epoch < stage.epochs:
            record = self.train_epoch(stage, loss_fn, optimizer)
            self.stage_epoch += 1
            self.records.append(record)
            self.early_stopping(stage, record)
            metrics = _scalars(record)
            if self.opts.hooks:
                note_hook_errors(ctx, call_hook(self.reg, "aebench_on_epoch_end", run=ctx, epoch=record["epoch"], metrics=metrics))
            if self.opts.on_epoch is not None:
                self.opts.on_epoch(ctx.run_id, {**metrics, "epoch": record["epoch"], "total_epochs": sum(s.epochs for s in ctx.stages)})
            if self.checkpoint is not None:
                save_checkpoint(self.checkpoint, self.state(optimizer))
            bar.update(1)
            bar.set_postfix_str(f"{stage.label} loss {record['loss']:.4g}", refresh=False)
            if ctx.stop_reason:
                break
        if stage.patience is not None and self.best is not None:
            ctx.model.load_state_dict(self.best["model"])
            ctx.head.load_state_dict(self.best["head"])
            self.best = None

    def train_epoch(self, stage: Stage, loss_fn: StageLoss, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        ctx, stop = self.ctx, self.opts.stop
        train = ctx.splits["train"]
        bs = ctx.spec.optimizer.batch_size
        ctx.model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(train), generator=ctx.generator, device=ctx.device)
        total = torch.zeros((), device=ctx.device)
        n_batches = 0
        amp = _autocast(ctx.device, ctx.spec.precision)
        # float16 gradients underflow without loss scaling; bfloat16 has float32's range
        scaler = torch.amp.GradScaler(ctx.device.type) if ctx.spec.precision == "float16" else None
        for start in range(0, len(train), bs):
            if stop is not None and stop.is_set():
                raise RunInterrupted("stopped")
            idx = perm[start : start + bs]
            with amp:
                loss = loss_fn(train.rows(idx), train.y[idx])
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            total += loss.detach().float()
            if n_batches == 0 and self.stage_epoch == 0:
                self.stage_ref = float(loss.detach())  # the stage's starting loss: the yardstick of a blow-up
            n_batches += 1
        mean_loss = float(total) / max(n_batches, 1)
        if ctx.device.type == "cuda":
            torch.cuda.synchronize(ctx.device)
        seconds = time.perf_counter() - t0
        self.steps += n_batches
        epoch = len(self.records) + 1
        # a custom objective (e.g. contrastive divergence) is no loss to compare with its start
        start = getattr(self, "stage_ref", None) if stage.target != "custom" else None
        check_divergence(mean_loss, start, self._trainable(stage), epoch, stage.label)
        record = epoch_record(ctx, self.evaluators, stage, epoch, mean_loss, self.steps, seconds)
        if stage.target in ("labels", "hybrid"):
            record["vars"]["class_error"] = _class_error(ctx).to_dict()
        return record

    def early_stopping(self, stage: Stage, record: dict[str, Any]) -> None:
        if stage.patience is None:
            return
        err = record["vars"]["class_error"]["data"][1]  # the valid split
        if self.best is None or err < self.best["error"]:
            self.best = {
                "error": err,
                "epoch": record["epoch"],
                "model": copy.deepcopy(self.ctx.model.state_dict()),
                "head": copy.deepcopy(self.ctx.head.state_dict()),
            }
        elif record["epoch"] - self.best["epoch"] >= stage.patience:
            self.ctx.stop_reason = f"stage: early stop of {stage.label} at epoch {record['epoch']}"


#: an epoch's mean loss this many times its stage's first batch (and above ``BLOWUP_FLOOR``) is a blow-up
BLOWUP_FACTOR = 100.0
BLOWUP_FLOOR = 1.0


def check_divergence(loss: float, start: float | None, params: list[torch.Tensor], epoch: int, label: str) -> None:
    """Raise RunFailed when training diverged: a non-finite loss or weight, or a loss blown far
    above where the stage began (an lr of 1e12 "finishes" with errors of 1e15 nats otherwise)."""
    if not math.isfinite(loss):
        raise RunFailed(f"training diverged: the loss became {loss} in epoch {epoch} ({label}).")
    if start is not None and math.isfinite(start) and loss > BLOWUP_FLOOR and loss > BLOWUP_FACTOR * abs(start):
        raise RunFailed(
            f"training diverged: the loss rose to {loss:.4g} in epoch {epoch} ({label}), over {BLOWUP_FACTOR:g}× "
            f"its starting {start:.4g}; lower the learning rate."
        )
    bad = next((p for p in params if not bool(torch.isfinite(p).all())), None)
    if bad is not None:
        raise RunFailed(f"training diverged: a weight became non-finite in epoch {epoch} ({label}).")


def note_hook_errors(ctx: RunContext, errors: list[str]) -> None:
    """Keep a callback's errors with the run (status.json ``hook_errors``), once each."""
    seen = ctx.extras.setdefault("hook_errors", [])
    seen.extend(e for e in errors if e not in seen)


def epoch_record(ctx: RunContext, evaluators: list, stage: Stage, epoch: int, loss: float, steps: int, seconds: float) -> dict[str, Any]:
    """One epoch's row of metrics: the training numbers, then every evaluator's ``on_epoch``
    (model in eval mode, no gradient)."""
    record = {"epoch": epoch, "stage": stage.label, "loss": loss, "steps": steps, "seconds": seconds, "vars": {}}
    ctx.model.eval()
    with torch.no_grad():
        for ev in evaluators:
            for name, da in (ev.on_epoch(ctx, epoch) or {}).items():
                record["vars"][name] = da.to_dict()
    return record


def _autocast(device: torch.device, precision: str):
    """Mixed precision (opt-in, spec key ``precision``): matmuls in bf16/fp16, weights and
    optimizer state in float32. float16 is meant for CUDA; bfloat16 works on CPU too."""
    import contextlib

    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=getattr(torch, precision))


def _class_error(ctx: RunContext) -> xr.DataArray:
    errs = [ctx.class_error(split) for split in ("train", "valid", "test")]
    attrs = {"long_name": "classification error of the softmax head", "units": "1"}
    return xr.DataArray(errs, dims="split", coords={"split": ["train", "valid", "test"]}, attrs=attrs)


def _scalars(record: dict[str, Any]) -> dict[str, Any]:
    out = {"loss": record["loss"], "stage": record["stage"], "steps": record["steps"]}
    for name, d in record["vars"].items():
        da = xr.DataArray.from_dict(d)
        if da.dims == ("split",):
            out.update({f"{name}/{s}": float(v) for s, v in zip(da["split"].values, da.values)})
    return out


def _bar(total: int, label: str, opts: RunOptions):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, unit="epoch", disable=not opts.progress, position=opts.position, leave=False)


def records_to_dataset(records: list[dict[str, Any]]) -> xr.Dataset:
    """Per-epoch records -> Dataset along ``epoch`` (``stage`` names the stage of each epoch)."""
    epochs = [r["epoch"] for r in records]
    ds = xr.Dataset(coords={"epoch": ("epoch", np.array(epochs, dtype=np.int64), {"long_name": "epoch (all stages)"})})
    ds["stage"] = ("epoch", np.array([r["stage"] for r in records], dtype=str), {"long_name": "training stage"})
    ds["loss"] = ("epoch", [r["loss"] for r in records], {"long_name": "training objective (mean over batches)", "units": "nats per example"})
    ds["steps"] = ("epoch", np.array([r["steps"] for r in records], dtype=np.int64), {"long_name": "gradient steps taken so far", "units": "1"})
    ds["epoch_seconds"] = ("epoch", [r["seconds"] for r in records], {"long_name": "training time of the epoch", "units": "s"})
    names = dict.fromkeys(n for r in records for n in r["vars"])
    for name in names:
        arrays = [xr.DataArray.from_dict(r["vars"][name]).expand_dims(epoch=[r["epoch"]]) for r in records if name in r["vars"]]
        ds[name] = xr.concat(arrays, dim="epoch")
    return ds
