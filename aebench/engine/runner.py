"""Train a batch of members (a solo run is one): stages, evaluators, checkpoints, callbacks."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from aebench.components import Stage
from aebench.context import EpochRecord, MemberResult, RunContext
from aebench.engine.checkpoint import CheckpointSlot, checkpoint_slot
from aebench.engine.context import to_device
from aebench.engine.members import Members
from aebench.engine.optim import make_member_optimizer
from aebench.engine.stage import StageBatch
from aebench.errors import AebenchError, RunFailed
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
    compile: bool = False  # the batch loss under torch.compile (spec key ``compile``)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise AebenchError(f"--device {name} was asked for, but torch sees no CUDA device on this machine.")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise AebenchError(f"--device {name} was asked for, but torch sees {n} CUDA device(s): cuda:0..cuda:{n - 1}.")
    return torch.device(name)


def build_context(
    run, device: torch.device, reg: Registry | None = None, data=None, shared: RunContext | None = None
) -> RunContext:
    """Build model, data, corruptions, regularizers and stages for ``run`` (a RunSpec).

    ``data``: its DataSplits when already loaded (sent to a cluster worker that lacks them);
    ``shared``: a context of the same data set (see :func:`build_contexts`), whose data and
    device copy of the splits this one reads instead of loading its own."""
    reg = reg or registry()
    if shared is not None:
        data = shared.data
    elif data is None:
        data = run.data.build(reg).load()
    init_gen = torch.Generator().manual_seed(run.seed)  # CPU: same init on every device
    model = run.model.cls(reg)(run.model.params, data.n_inputs, init_gen).to(device)
    stages = [s for sched in run.schedules for s in sched.build(reg).stages(model.n_layers)]
    ctx = RunContext(
        run_id=run.run_id,
        spec=run,
        model=model,
        data=data,
        splits=shared.splits if shared is not None else to_device(data, device),
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


def build_contexts(
    runs: list, device: torch.device, reg: Registry | None = None, data_for: Callable[[Any], Any] | None = None
) -> list[RunContext]:
    """The contexts of a batch's members: runs of one data set share one load of it and one
    device copy of its splits (members only read them), so S members hold the data once.
    ``data_for(run)``: the run's DataSplits when already loaded (or None), as ``build_context``'s ``data``."""
    contexts: list[RunContext] = []
    for run in runs:
        shared = next((c for c in contexts if c.spec.data == run.data), None)
        data = data_for(run) if data_for is not None and shared is None else None
        contexts.append(build_context(run, device, reg, data=data, shared=shared))
    return contexts


class Trainer:
    """Trains a batch of S ≥ 1 members (a solo run is S = 1) through their stages.

    Each member gets what its solo run would: its own generator, learning rate, optimizer
    state, records (one row per epoch), early stopping (a member that stops keeps its best
    weights and stops changing while the others go on), divergence check (one member's
    blow-up fails that member only), callbacks and stop request. The checkpoint, written
    after every epoch, holds all S members.
    """

    def __init__(
        self,
        ctxs: RunContext | list[RunContext],
        evaluators: list,
        opts: RunOptions,
        checkpoint: Path | CheckpointSlot | None = None,
        reg: Registry | None = None,
    ) -> None:
        if isinstance(ctxs, RunContext):  # one run: Trainer(ctx, evaluators, ...)
            ctxs, evaluators = [ctxs], [evaluators]
        if len(ctxs) > 1 and ctxs[0].spec.precision == "float16":  # the spec refuses this too
            raise AebenchError("ensemble = true trains in float32 or bfloat16: float16 needs loss scaling per run.")
        self.ctxs, self.evaluators, self.opts = ctxs, evaluators, opts
        self.checkpoint = checkpoint_slot(checkpoint) if isinstance(checkpoint, Path) else checkpoint
        self.reg = reg or registry()
        self.members = Members(ctxs)
        S = len(ctxs)
        self.records: list[list[EpochRecord]] = [[] for _ in ctxs]
        self.steps = [0] * S
        self.stage_idx = self.stage_epoch = 0
        self.stage_ref: list[float | None] = [None] * S  # each member's first loss of the stage: the blow-up yardstick
        self.best: list[dict[str, Any] | None] = [None] * S  # early stopping: best validation error and weights
        self.pinned: dict[int, dict[str, torch.Tensor]] = {}  # member -> weights it keeps while the others train
        self.finished: set[int] = set()  # stopped for good (a callback's stop request)
        self.failed: dict[int, str] = {}
        self.opt_state: dict[str, Any] | None = None
        self.initial = self.members.state_dict()
        self.bar = _bar(0, self._label(), RunOptions(opts.device, progress=False))  # run() opens the real one
        for ctx, records in zip(ctxs, self.records):
            ctx.records = records  # the same list: evaluators see the epochs as they come

    # ---------------------------------------------------------------- checkpoints
    def state(self, optimizer) -> dict[str, Any]:
        return {
            "format": 2,
            "members": [c.run_id for c in self.ctxs],
            "tensors": self.members.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "initial": self.initial,
            "best": self.best,
            "pinned": [self.pinned.get(s) for s in range(len(self.ctxs))],
            "finished": sorted(self.finished),
            "failed": json.dumps({str(k): v for k, v in self.failed.items()}),
            "stop_reasons": [c.stop_reason for c in self.ctxs],
            "stage_idx": self.stage_idx,
            "stage_epoch": self.stage_epoch,
            "steps": self.steps,
            "stage_ref": self.stage_ref,
            "generators": [c.generator.get_state() for c in self.ctxs],
            "records": json.dumps([[r.to_json() for r in rs] for rs in self.records]),
        }

    def restore(self) -> bool:
        """Continue from the checkpoint, if it is a readable one of these very members."""
        if self.checkpoint is None or not self.opts.resume:
            return False
        st = self.checkpoint.load(self.ctxs[0].device)
        if st is None or st.get("format") != 2 or st.get("members") != [c.run_id for c in self.ctxs]:
            return False  # absent, unreadable, of other members, or a finished run's final weights
        self.members.load_state_dict(st["tensors"])
        self.initial, self.best, self.opt_state = st["initial"], st["best"], st["optimizer"]
        self.pinned = {s: w for s, w in enumerate(st["pinned"]) if w is not None}
        self.finished = set(st["finished"])
        self.failed = {int(k): v for k, v in json.loads(st["failed"]).items()}
        for ctx, reason, g in zip(self.ctxs, st["stop_reasons"], st["generators"]):
            ctx.stop_reason = reason
            ctx.generator.set_state(g.cpu())
        self.stage_idx, self.stage_epoch = st["stage_idx"], st["stage_epoch"]
        self.steps, self.stage_ref = list(st["steps"]), list(st["stage_ref"])
        self.records = [[EpochRecord.from_json(r) for r in rs] for rs in json.loads(st["records"])]
        for ctx, records in zip(self.ctxs, self.records):
            ctx.records = records
        return True

    # ------------------------------------------------------------------- training
    def _alive(self) -> list[int]:
        return [s for s in range(len(self.ctxs)) if s not in self.finished and s not in self.failed]

    def run(self) -> list[MemberResult]:
        """Train every stage; returns each member's result (records, failure, stop reason, hook errors)."""
        stages = self.ctxs[0].stages
        for s, reason in self.failed.items():  # resumed with members that had failed: the live view hears it again
            self._tell_failure(s, reason, len(self.records[s]) + 1)
        bar = self.bar = _bar(sum(s.epochs for s in stages), self._label(), self.opts)
        bar.update(max(len(r) for r in self.records))
        try:
            while self.stage_idx < len(stages) and self._alive():
                self.run_stage()
                self.end_stage()
                self.stage_idx, self.stage_epoch, self.opt_state = self.stage_idx + 1, 0, None
        finally:
            bar.close()
        for s, weights in self.pinned.items():  # a member stopped by its callback keeps the weights it stopped with
            self.members.load_member_state(s, weights)
        self.members.write_back()
        return [
            MemberResult(
                run_id=ctx.run_id,
                records=records,
                failure=self.failed.get(s),
                stop_reason=ctx.checked_stop_reason(),
                hook_errors=ctx.hook_errors,
                train_seconds=float(sum(r.seconds for r in records)),
            )
            for s, (ctx, records) in enumerate(zip(self.ctxs, self.records))
        ]

    def train_stage(self, index: int) -> None:
        """Train stage ``index`` from its first epoch (one step of :meth:`run`; for tests and
        notebooks that look between stages)."""
        self.stage_idx, self.stage_epoch, self.opt_state = index, 0, None
        self.run_stage()
        self.end_stage()
        self.members.write_back()

    def _label(self) -> str:
        """The bar's name: the sweep point and seed(s), as the results name the runs (not the run folder)."""
        from aebench.progress import run_label

        specs = [c.spec for c in self.ctxs]
        if not all(hasattr(sp, "point") and hasattr(sp, "seed") for sp in specs):
            return self.ctxs[0].run_id if len(self.ctxs) == 1 else f"{self.ctxs[0].run_id} +{len(self.ctxs) - 1}"
        return run_label([sp.point for sp in specs], [sp.seed for sp in specs])

    def _stages(self) -> list[Stage]:
        return [c.stages[self.stage_idx] for c in self.ctxs]

    def _trainable(self, stage: Stage) -> list[torch.nn.Parameter]:
        params = [p for i in stage.train_layers for p in self.members.layer_parameters(i)]
        return params + (self.members.head_parameters() if stage.train_head else [])

    def _optimizer(self, stages: list[Stage]):
        trainable = self._trainable(stages[0])
        ids = {id(p) for p in trainable}
        for p in self.members.named_tensors().values():
            p.requires_grad_(id(p) in ids)
        lrs = [st.lr or c.spec.optimizer.params.lr for st, c in zip(stages, self.ctxs)]
        rule = self.ctxs[0].spec.optimizer.build(self.reg)  # members share every field but lr
        opt = make_member_optimizer(trainable, rule, lrs, self.ctxs[0].device)
        if self.opt_state is not None:
            opt.load_state_dict(self.opt_state)
        return opt

    def run_stage(self) -> None:
        stages = self._stages()
        stage = stages[0]
        if stage.reinit and self.stage_epoch == 0:  # a from-scratch stage: the run's initial weights
            self.members.load_state_dict(self.initial)
        optimizer = self._optimizer(stages)
        loss_fn = StageBatch(self.members, stages)
        if self.opts.compile:
            loss_fn = compiled(loss_fn, self.ctxs[0].device)
        while self.stage_epoch < stage.epochs and self._training():
            totals, n_batches, seconds = self.train_epoch(stage, loss_fn, optimizer)
            self.stage_epoch += 1
            self.members.write_back()
            for s in sorted(self.members.active):
                self.end_epoch(s, stages[s], float(totals[s]) / max(n_batches, 1), n_batches, seconds)
            # the epoch that just ended: its loss first, then the count (an update redraws, a late postfix would not)
            self.bar.set_postfix(
                stage=stage.label, loss=f"{float(totals.mean()) / max(n_batches, 1):.4g}", refresh=False
            )
            self.bar.update(1)
            if self.checkpoint is not None:
                self.checkpoint.save(self.state(optimizer))

    def _training(self) -> bool:
        """Who trains this epoch: members neither failed, finished nor stopped in this stage."""
        self.members.active = {s for s in self._alive() if s not in self.pinned}
        return bool(self.members.active)

    def end_stage(self) -> None:
        """Members that stopped early take back their best weights and rejoin for the next stage."""
        for s, ctx in enumerate(self.ctxs):
            if self.best[s] is not None:
                self.members.load_member_state(s, self.best[s]["weights"])
                self.best[s] = None
            if s not in self.finished:
                self.pinned.pop(s, None)
                ctx.stop_reason = None
        self.stage_ref = [None] * len(self.ctxs)

    def train_epoch(self, stage: Stage, loss_fn: StageBatch, optimizer) -> tuple[torch.Tensor, int, float]:
        """One pass over the training split: each member's summed batch losses, the batches, seconds per member."""
        ctx, stop, members = self.ctxs[0], self.opts.stop, self.members
        train = ctx.splits["train"]  # members share their data; each has its own order
        bs = ctx.spec.optimizer.params.batch_size
        for m in members.modules():
            m.train()
        t0 = time.perf_counter()
        perm = self._permutations(len(train))
        total = torch.zeros(members.size, device=ctx.device)
        n_batches = 0
        amp = _autocast(ctx.device, ctx.spec.precision)
        # float16 gradients underflow without loss scaling; bfloat16 has float32's range
        scaler = torch.amp.GradScaler(ctx.device.type) if ctx.spec.precision == "float16" else None
        pinned = list(self.pinned.items())  # (a solo run that has stopped trains no more epochs)
        for start in range(0, len(train), bs):
            if stop is not None and stop.is_set():
                raise RunInterrupted("stopped")
            idx = perm[..., start : start + bs]
            with amp:
                losses = loss_fn(train.rows(idx), train.y[idx])
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                losses.sum().backward()
                optimizer.step()
            else:
                scaler.scale(losses.sum()).backward()
                scaler.step(optimizer)
                scaler.update()
            for s, weights in pinned:  # stopped members do not change while the others train
                members.load_member_state(s, weights)
            total += losses.detach().float()
            if n_batches == 0 and self.stage_epoch == 0:
                self.stage_ref = [float(v) for v in losses.detach().float()]
            n_batches += 1
        if ctx.device.type == "cuda":
            torch.cuda.synchronize(ctx.device)
        seconds = (time.perf_counter() - t0) / members.size  # each member's share of the batched epoch
        return total, n_batches, seconds

    def _permutations(self, n: int) -> torch.Tensor:
        """Each active member's shuffle from its own generator; (n,) solo, (S, n) batched."""
        ctx, members = self.ctxs[0], self.members
        if not members.batched:
            return torch.randperm(n, generator=ctx.generator, device=ctx.device)
        rest = torch.arange(n, device=ctx.device)  # an inactive member draws nothing
        return torch.stack(
            [
                torch.randperm(n, generator=c.generator, device=ctx.device) if s in members.active else rest
                for s, c in enumerate(self.ctxs)
            ]
        )

    def end_epoch(self, s: int, stage: Stage, mean: float, n_batches: int, seconds: float) -> None:
        """Member ``s``'s epoch: divergence check, record, early stopping, callbacks, stop requests."""
        ctx = self.ctxs[s]
        self.steps[s] += n_batches
        epoch = len(self.records[s]) + 1
        # a custom objective (e.g. contrastive divergence) is no loss to compare with its start
        start = self.stage_ref[s] if stage.target != "custom" else None
        params = [self.members.part(p, s) for p in self._trainable(stage)]
        try:  # one member's blow-up fails that member's run; the others go on
            check_divergence(mean, start, params, epoch, stage.label)
        except RunFailed as exc:
            self.failed[s] = str(exc)
            self._tell_failure(s, str(exc), epoch)
            return
        record = epoch_record(ctx, self.evaluators[s], stage, epoch, mean, self.steps[s], seconds)
        if stage.target in ("labels", "hybrid"):
            record.values["class_error"] = _class_error(ctx)
        self.records[s].append(record)
        self.early_stopping(s, stage, record)
        metrics = _scalars(record)
        total = sum(x.epochs for x in ctx.stages)
        if self.opts.hooks:  # each member's callbacks and live view, named by its run id
            ctx.note_hook_errors(call_hook(self.reg, "aebench_on_epoch_end", run=ctx, epoch=epoch, metrics=metrics))
        if self.opts.on_epoch is not None:
            attrs = {k: {a: str(v) for a, v in da.attrs.items()} for k, da in record.values.items()}
            self.opts.on_epoch(ctx.run_id, {**metrics, "epoch": epoch, "total_epochs": total, "attrs": attrs})
        reason = ctx.checked_stop_reason()
        if reason:  # early stop (this stage) or a callback's stop request (the run)
            if not reason.startswith("stage:"):
                self.finished.add(s)
            self.pinned[s] = self.members.member_state(s)

    def _tell_failure(self, s: int, reason: str, epoch: int) -> None:
        """The live view (``on_epoch``) hears of a member's failure now, not when its batch ends."""
        if self.opts.on_epoch is not None:
            self.opts.on_epoch(self.ctxs[s].run_id, {"failure": reason, "epoch": epoch})

    def early_stopping(self, s: int, stage: Stage, record: EpochRecord) -> None:
        if stage.patience is None:
            return
        err = record.by_split("class_error")["valid"]
        best = self.best[s]
        if best is None or err < best["error"]:
            self.best[s] = {"error": err, "epoch": record.epoch, "weights": self.members.member_state(s)}
        elif record.epoch - best["epoch"] >= stage.patience:
            self.ctxs[s].stop_reason = f"stage: early stop of {stage.label} at epoch {record.epoch}"


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


def epoch_record(
    ctx: RunContext, evaluators: list, stage: Stage, epoch: int, loss: float, steps: int, seconds: float
) -> EpochRecord:
    """One epoch's row of metrics: the training numbers, then every evaluator's ``on_epoch``
    (model in eval mode, no gradient)."""
    record = EpochRecord(epoch, stage.label, loss, steps, seconds)
    ctx.model.eval()
    with torch.no_grad():
        for ev in evaluators:
            record.values.update(ev.on_epoch(ctx, epoch) or {})
    return record


def compiled(loss_fn: StageBatch, device: torch.device):
    """``loss_fn`` (forward and, through AOTAutograd, backward) under ``torch.compile``; on
    CUDA with ``mode="reduce-overhead"``, i.e. CUDA graphs, which is where small batched
    models stop being launch-bound. Random draws from the members' generators run eagerly
    between the compiled pieces, so every member still draws what its solo run draws."""
    mode = "reduce-overhead" if device.type == "cuda" else None
    return torch.compile(loss_fn, mode=mode, dynamic=False)


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


def _scalars(record: EpochRecord) -> dict[str, Any]:
    out = {"loss": record.loss, "stage": record.stage, "steps": record.steps}
    for name, da in record.values.items():
        if da.dims == ("split",):
            out.update({f"{name}/{s}": v for s, v in record.by_split(name).items()})
        elif da.dims == () and da.dtype.kind in "fiu":  # an evaluator's one number per epoch
            out[name] = float(da)
    return out


def _bar(total: int, label: str, opts: RunOptions):
    from aebench.progress import bar

    return bar(total, label, "epoch", position=opts.position, disable=not opts.progress)


def records_to_dataset(records: list[EpochRecord]) -> xr.Dataset:
    """Per-epoch records -> Dataset along ``epoch`` (``stage`` names the stage of each epoch)."""
    epochs = [r.epoch for r in records]
    ds = xr.Dataset(coords={"epoch": ("epoch", np.array(epochs, dtype=np.int64), {"long_name": "epoch (all stages)"})})
    ds["stage"] = ("epoch", np.array([r.stage for r in records], dtype=str), {"long_name": "training stage"})
    ds["loss"] = (
        "epoch",
        [r.loss for r in records],
        {"long_name": "training objective (mean over batches)", "units": "nats per example"},
    )
    ds["steps"] = (
        "epoch",
        np.array([r.steps for r in records], dtype=np.int64),
        {"long_name": "gradient steps taken so far", "units": "1"},
    )
    ds["epoch_seconds"] = (
        "epoch",
        [r.seconds for r in records],
        {"long_name": "training time of the epoch", "units": "s"},
    )
    names = dict.fromkeys(n for r in records for n in r.values)
    for name in names:
        arrays = [r.values[name].expand_dims(epoch=[r.epoch]) for r in records if name in r.values]
        ds[name] = xr.concat(arrays, dim="epoch")
    return ds
