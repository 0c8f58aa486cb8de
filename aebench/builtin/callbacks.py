"""The Trainer's own control, as callbacks like anyone's: early stopping, the divergence
check and checkpoints (``default = True``: in every run unless a spec lists them with its
own Params). Each reads what the stage's target declares (``run.criterion``,
``run.start_loss``), never a target's name."""

from __future__ import annotations

import math
from typing import Any

import torch
from pydantic import Field

from aebench.components import MAX_EPOCHS, Callback, CallbackParams
from aebench.hookspecs import hookimpl


# ------------------------------------------------------------------- early stopping
class EarlyStoppingParams(CallbackParams):
    patience: int | None = Field(
        None,
        ge=1,
        le=MAX_EPOCHS,
        description=(
            "Epochs without a better value before a stage stops; default: each stage's own `patience` (a "
            "schedule's, e.g. finetune's), and no early stopping in a stage without one. Set here, it applies to "
            "every stage whose target declares a criterion."
        ),
    )
    monitor: str | None = Field(
        None,
        description=(
            "The per-epoch value to watch, as the epoch's metrics name it (e.g. 'recon_error/valid'); "
            "default: the criterion the stage's target declares."
        ),
    )
    higher_is_better: bool = Field(False, description="With `monitor`: a larger value is better.")
    min_delta: float = Field(0.0, ge=0, description="An improvement smaller than this does not count.")
    restore_best: bool = Field(True, description="At the end of a stage, go back to the weights of its best epoch.")


class EarlyStopping(Callback):
    name = "early-stopping"
    summary = "Stops a stage when its monitored validation value has not improved for `patience` epochs."
    Params = EarlyStoppingParams
    default = True

    def __init__(self, params: EarlyStoppingParams | None = None) -> None:
        super().__init__(params)
        self.reset()

    def reset(self) -> None:
        self.best: float | None = None
        self.best_epoch = 0
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.missing = 0  # epochs of this stage without the watched value

    def rule(self, run: Any) -> tuple[str, bool, int] | None:
        """(metric key, higher is better, patience) in the current stage, or None: no early stopping."""
        p, stage = self.params, run.stage
        patience = p.patience if p.patience is not None else stage.patience
        if patience is None:
            return None
        if p.monitor is not None:
            return p.monitor, p.higher_is_better, patience
        criterion = run.criterion
        if criterion is None:
            if stage.patience is not None and p.patience is None:  # asked for by the stage itself
                run.fail(
                    f"stage {stage.label!r} sets patience = {stage.patience}, but its target ({stage.target!r}) "
                    "declares no validation criterion to stop on (a custom Objective declares one in its "
                    "`criterion`); leave patience out, or give early-stopping a `monitor`."
                )
            return None
        key = f"{criterion.var}/{criterion.split}" if criterion.split else criterion.var
        return key, criterion.higher_is_better, patience

    def on_stage_start(self, run: Any, stage: Any) -> None:
        self.reset()

    def on_epoch_end(self, run: Any, epoch: int, metrics: dict[str, Any]) -> None:
        rule = self.rule(run)
        if rule is None:
            return
        key, higher, patience = rule
        value = metrics.get(key)
        if not isinstance(value, int | float):
            self.missing += 1
            if self.best is None and self.missing >= patience:
                run.fail(
                    f"early stopping of stage {run.stage.label!r} watches {key!r}, which no evaluator or target "
                    f"recorded in {self.missing} epochs (recorded: {', '.join(sorted(metrics))}); add the evaluator "
                    "that records it (e.g. evaluate.recon for recon_error) or set early-stopping's monitor."
                )
            return
        delta = self.params.min_delta
        better = self.best is None or (value > self.best + delta if higher else value < self.best - delta)
        if better and math.isfinite(value):
            self.best, self.best_epoch = float(value), epoch
            self.best_weights = run.weights() if self.params.restore_best else None
        elif epoch - self.best_epoch >= patience:
            run.stop_stage(f"early stop of {run.stage.label} at epoch {epoch}: no better {key} for {patience} epochs")

    def on_stage_end(self, run: Any, stage: Any) -> None:
        if self.best_weights is not None:
            run.load_weights(self.best_weights)
        self.reset()

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "weights": self.best_weights, "missing": self.missing}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.best_weights, self.missing = state["weights"], state["missing"]


# ----------------------------------------------------------------------- divergence
class DivergenceParams(CallbackParams):
    factor: float = Field(
        100.0, gt=1, description="An epoch's mean loss this many times its stage's first batch is a blow-up."
    )
    floor: float = Field(1.0, ge=0, description="A loss below this is never a blow-up.")


class Divergence(Callback):
    name = "divergence"
    summary = "Fails a run whose loss or weights become non-finite, or whose loss blows up far above its stage's start."
    Params = DivergenceParams
    default = True

    def on_train_epoch_end(self, run: Any, epoch: int, loss: float) -> None:
        tensors = [*run.model.parameters(), *(run.head.parameters() if run.head is not None else [])]
        reason = diverged(loss, run.start_loss, tensors, epoch, run.stage.label, self.params.factor, self.params.floor)
        if reason:
            run.fail(reason)


def diverged(
    loss: float, start: float | None, tensors: list[torch.Tensor], epoch: int, label: str, factor: float, floor: float
) -> str | None:
    """Why training diverged, or None: a non-finite loss or weight, or a loss blown far above
    where the stage began (an lr of 1e12 "finishes" with errors of 1e15 nats otherwise);
    ``start`` is None where the target's loss is no yardstick (contrastive divergence)."""
    if not math.isfinite(loss):
        return f"training diverged: the loss became {loss} in epoch {epoch} ({label})."
    if start is not None and math.isfinite(start) and loss > floor and loss > factor * abs(start):
        return (
            f"training diverged: the loss rose to {loss:.4g} in epoch {epoch} ({label}), over {factor:g}× "
            f"its starting {start:.4g}; lower the learning rate."
        )
    if any(not bool(torch.isfinite(t).all()) for t in tensors):
        return f"training diverged: a weight became non-finite in epoch {epoch} ({label})."
    return None


# ----------------------------------------------------------------------- checkpoints
class CheckpointParams(CallbackParams):
    every: int = Field(
        1, ge=1, le=MAX_EPOCHS, description="Write the resumable checkpoint every N epochs (--resume goes back to it)."
    )


class Checkpoint(Callback):
    name = "checkpoint"
    summary = "Writes the resumable checkpoint (weights, optimizer, records, callbacks' states) every N epochs."
    Params = CheckpointParams
    default = True

    def on_epoch_end(self, run: Any, epoch: int, metrics: dict[str, Any]) -> None:
        if epoch % self.params.every == 0:
            run.request_checkpoint()


@hookimpl
def aebench_callbacks():
    return [EarlyStopping, Divergence, Checkpoint]
