"""Training from a plug-in: what an evaluator needs to train a private copy of a run.

``train(ctx)`` runs ``ctx.stages`` on ``ctx.model`` (and ``ctx.head``) with the engine's own
Trainer: the same loop, optimizers, early stopping and divergence checks as a run's own
stages, without callbacks, checkpoints or progress bars. An evaluator that fine-tunes
gives it a copy of the run's context (``copy.copy(ctx)`` with a deep-copied model, its own
generator and head), so the run itself is left as trained.
"""

from __future__ import annotations

from typing import Any

from aebench.engine.context import RunContext
from aebench.engine.runner import RunOptions, Trainer
from aebench.errors import RunFailed


def train(ctx: RunContext) -> list[dict[str, Any]]:
    """Train ``ctx.stages``; returns one record per epoch (``record["vars"]["class_error"]
    ["data"]`` is the train/valid/test error of a ``labels`` stage). Raises RunFailed if the
    training diverged."""
    records = Trainer(ctx, [], RunOptions(ctx.device, progress=False, hooks=False)).run()[0]
    if "failed" in ctx.extras:
        raise RunFailed(ctx.extras["failed"])
    return records


__all__ = ["train"]
