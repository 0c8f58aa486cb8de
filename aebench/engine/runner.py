"""Train a batch of members (a solo run is one): stages, evaluators, checkpoints, callbacks.

The Trainer holds no rule of its own about when to stop, when a run has diverged or when to
checkpoint: those are callbacks (:class:`aebench.components.Callback`; the built-in
``early-stopping``, ``divergence`` and ``checkpoint`` are on by default) reading what each
stage's target declares (:func:`aebench.engine.stage.target_of`) and steering the Trainer
through the run's :class:`aebench.context.RunContext` (:class:`MemberControl`)."""

from __future__ import annotations

import json
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
from aebench.engine.stage import StageBatch, Target, target_of
from aebench.errors import AebenchError
from aebench.plugins import Registry, describe_exception, fire, registry


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
        callbacks=[c.build(reg) for c in getattr(run, "callbacks", [])],
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
    state, records (one row per epoch), callbacks (``ctx.callbacks``: early stopping — a
    member that stops keeps its best weights and stops changing while the others go on —,
    the divergence check — one member's blow-up fails that member only —, loggers) and stop
    request. The checkpoint, written after an epoch when a member's callback asks for it
    (the ``checkpoint`` callback: every epoch), holds all S members and their callbacks' states.
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
        self.pinned: dict[int, dict[str, torch.Tensor]] = {}  # member -> weights it keeps while the others train
        self.finished: set[int] = set()  # stopped for good (a callback's stop request)
        self.stage_stopped: set[int] = set()  # stopped for this stage (early stopping)
        self.failed: dict[int, str] = {}
        self.want_checkpoint = False  # a callback asked for a checkpoint after this epoch
        self.opt_state: dict[str, Any] | None = None
        self.initial = self.members.state_dict()
        self.bar = _bar(0, self._label(), RunOptions(opts.device, progress=False))  # run() opens the real one
        for s, (ctx, records) in enumerate(zip(ctxs, self.records)):
            ctx.records = records  # the same list: evaluators see the epochs as they come
            ctx.control = MemberControl(self, s)

    def fire(self, s: int, event: str, **kwargs: Any) -> None:
        """Member ``s``'s callbacks (and, unless ``hooks`` is off, the plug-ins' hook) for ``event``."""
        fire(self.reg, self.ctxs[s], event, hooks=self.opts.hooks, **kwargs)

    # ---------------------------------------------------------------- checkpoints
    def state(self, optimizer) -> dict[str, Any]:
        return {
            "format": 3,
            "members": [c.run_id for c in self.ctxs],
            "tensors": self.members.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "initial": self.initial,
            "callbacks": [self._callback_states(c) for c in self.ctxs],
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
        if st is None or st.get("format") != 3 or st.get("members") != [c.run_id for c in self.ctxs]:
            return False  # absent, unreadable, of other members, of an older format, or a run's final weights
        self.members.load_state_dict(st["tensors"])
        self.initial, self.opt_state = st["initial"], st["optimizer"]
        self.pinned = {s: w for s, w in enumerate(st["pinned"]) if w is not None}
        self.finished = set(st["finished"])
        self.failed = {int(k): v for k, v in json.loads(st["failed"]).items()}
        for ctx, reason, g in zip(self.ctxs, st["stop_reasons"], st["generators"]):
            ctx.stop_reason = reason
            ctx.generator.set_state(g.cpu())
        self.stage_idx, self.stage_epoch = st["stage_idx"], st["stage_epoch"]
        self.steps, self.stage_ref = list(st["steps"]), list(st["stage_ref"])
        self.records = [[EpochRecord.from_json(r) for r in rs] for rs in json.loads(st["records"])]
        for ctx, records, states in zip(self.ctxs, self.records, st["callbacks"]):
            ctx.records = records
            self._load_callback_states(ctx, states)
        return True

    @staticmethod
    def _callback_states(ctx: RunContext) -> list[dict[str, Any]]:
        """Each callback's ``state_dict()`` with its name; one that raises or is not plain data
        (a checkpoint holds tensors and plain data only) is dropped with a ``hook_errors`` line."""
        out = []
        for cb in ctx.callbacks:
            try:
                state = cb.state_dict()
                problem = _not_plain(state)
            except Exception as exc:
                state, problem = None, f"raised {describe_exception(exc)}"
            if problem:
                ctx.note_hook_errors([f"callback {cb.name!r}: state_dict() {problem}; its state is not saved"])
                state = None
            out.append({"name": cb.name, "state": state})
        return out

    @staticmethod
    def _load_callback_states(ctx: RunContext, states: list[dict[str, Any]]) -> None:
        """Give each callback back its saved state (matched by position and name)."""
        for cb, saved in zip(ctx.callbacks, states):
            if saved.get("name") != cb.name or saved.get("state") is None:
                continue
            try:
                cb.load_state_dict(saved["state"])
            except Exception as exc:
                ctx.note_hook_errors([f"callback {cb.name!r}: load_state_dict raised {describe_exception(exc)}"])

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
            for ctx in self.ctxs:
                ctx.control = None  # its controls end with the training
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
        if self.stage_epoch == 0:  # (a run resumed inside the stage has begun it already)
            for s in self._alive():
                self.fire(s, "on_stage_start", stage=stages[s])
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
            if self.want_checkpoint and self.checkpoint is not None:
                self.checkpoint.save(self.state(optimizer))
            self.want_checkpoint = False

    def _training(self) -> bool:
        """Who trains this epoch: members neither failed, finished nor stopped in this stage."""
        self.members.active = {s for s in self._alive() if s not in self.pinned}
        return bool(self.members.active)

    def end_stage(self) -> None:
        """The stage's end for every member (early stopping gives back its best weights);
        members that stopped early rejoin for the next stage."""
        stages = self._stages()
        for s in range(len(self.ctxs)):
            if s not in self.failed:
                self.fire(s, "on_stage_end", stage=stages[s])
        for s, ctx in enumerate(self.ctxs):
            if s not in self.finished:
                self.pinned.pop(s, None)
                ctx.stop_reason = None
        self.stage_stopped.clear()
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
        """Member ``s``'s epoch: its callbacks on the training pass (the divergence check), the
        record, its callbacks on the record (early stopping, loggers), stop requests."""
        ctx = self.ctxs[s]
        self.steps[s] += n_batches
        epoch = len(self.records[s]) + 1
        self.fire(s, "on_train_epoch_end", epoch=epoch, loss=mean)
        if s in self.failed:  # a blow-up is not evaluated: its numbers mean nothing
            self._tell_failure(s, self.failed[s], epoch)
            return
        record = epoch_record(ctx, self.evaluators[s], stage, epoch, mean, self.steps[s], seconds)
        self.records[s].append(record)
        metrics = _scalars(record)
        self.fire(s, "on_epoch_end", epoch=epoch, metrics=metrics)
        if self.opts.on_epoch is not None:
            total = sum(x.epochs for x in ctx.stages)
            attrs = {k: {a: str(v) for a, v in da.attrs.items()} for k, da in record.values.items()}
            self.opts.on_epoch(ctx.run_id, {**metrics, "epoch": epoch, "total_epochs": total, "attrs": attrs})
        if s in self.failed:
            self._tell_failure(s, self.failed[s], epoch)
            return
        reason = ctx.checked_stop_reason()
        if reason or s in self.stage_stopped:  # a callback's stop request (the run), or early stop (this stage)
            if reason:
                self.finished.add(s)
            self.pinned[s] = self.members.member_state(s)

    def _tell_failure(self, s: int, reason: str, epoch: int) -> None:
        """The live view (``on_epoch``) hears of a member's failure now, not when its batch ends."""
        if self.opts.on_epoch is not None:
            self.opts.on_epoch(self.ctxs[s].run_id, {"failure": reason, "epoch": epoch})


class MemberControl:
    """What one member's callbacks may do to the Trainer (``RunContext.stage``, ``criterion``,
    ``start_loss``, ``stop_stage``, ``fail``, ``weights``, ``load_weights``, ``request_checkpoint``)."""

    def __init__(self, trainer: Trainer, s: int) -> None:
        self.trainer, self.s = trainer, s

    def stage(self) -> Stage:
        return self.trainer.ctxs[self.s].stages[self.trainer.stage_idx]

    def target(self) -> Target:
        return target_of(self.stage())

    def criterion(self) -> Any:
        return self.target().criterion

    def start_loss(self) -> float | None:
        return self.trainer.stage_ref[self.s] if self.target().blowup else None

    def stop_stage(self, reason: str) -> None:
        self.trainer.stage_stopped.add(self.s)

    def fail(self, reason: str) -> None:
        self.trainer.failed.setdefault(self.s, reason)

    def weights(self) -> dict[str, torch.Tensor]:
        return self.trainer.members.member_state(self.s)

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        self.trainer.members.load_member_state(self.s, weights)
        self.trainer.members.write_back()

    def request_checkpoint(self) -> None:
        self.trainer.want_checkpoint = True


def _not_plain(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` cannot go into a ``weights_only`` checkpoint, or None."""
    if depth > 50:
        return "returned data nested too deep"
    if value is None or isinstance(value, bool | int | float | str | torch.Tensor):
        return None
    if isinstance(value, list | tuple):
        return next((p for v in value if (p := _not_plain(v, depth + 1))), None)
    if isinstance(value, dict):
        if not all(isinstance(k, str | int) for k in value):
            return "returned a dict with keys that are not text or numbers"
        return next((p for v in value.values() if (p := _not_plain(v, depth + 1))), None)
    return f"returned a {type(value).__name__} (only dicts, lists, text, numbers, booleans, None and tensors are saved)"


def epoch_record(
    ctx: RunContext, evaluators: list, stage: Stage, epoch: int, loss: float, steps: int, seconds: float
) -> EpochRecord:
    """One epoch's row of metrics: the training numbers, the values the stage's target records
    (``class_error`` of a supervised stage, a custom objective's own), then every evaluator's
    ``on_epoch`` (model in eval mode, no gradient)."""
    record = EpochRecord(epoch, stage.label, loss, steps, seconds)
    ctx.model.eval()
    values = target_of(stage).epoch_values
    with torch.no_grad():
        if values is not None:
            record.values.update(values(ctx, stage) or {})
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


def _scalars(record: EpochRecord) -> dict[str, Any]:
    out = {"loss": record.loss, "stage": record.stage, "steps": record.steps}
    for name, da in record.values.items():
        if da.dims == ("split",):
            out.update({f"{name}/{s}": v for s, v in record.by_split(name).items()})
        elif da.dims == () and np.issubdtype(da.dtype, np.number):  # an evaluator's one number per epoch
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
