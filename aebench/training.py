"""Training from a plug-in: what an evaluator needs to train a private copy of a run.

``train(ctx)`` runs ``ctx.stages`` on ``ctx.model`` (and ``ctx.head``) with the engine's own
Trainer: the same loop, optimizers, early stopping and divergence checks as a run's own
stages — early stopping and the divergence check, the default callbacks with their default
Params — without the run's chosen callbacks, the plug-ins' hooks, checkpoints or progress
bars. An evaluator that fine-tunes
gives it a copy of the run's context (``copy.copy(ctx)`` with a deep-copied model, its own
generator and head, and fresh ``records``), so the run itself is left as trained.
"""

from __future__ import annotations

from aebench.context import EpochRecord, RunContext
from aebench.engine.runner import RunOptions, Trainer
from aebench.errors import RunFailed
from aebench.plugins import registry


def train(ctx: RunContext) -> list[EpochRecord]:
    """Train ``ctx.stages``; returns one record per epoch (``record.by_split("class_error")``
    is the train/valid/test error of a ``labels`` stage). Raises RunFailed if the training
    diverged."""
    ctx.callbacks = [entry.cls() for entry in registry().defaults("callback")]
    result = Trainer(ctx, [], RunOptions(ctx.device, progress=False, hooks=False)).run()[0]
    if result.failure is not None:
        raise RunFailed(result.failure)
    return result.records


__all__ = ["train"]
