"""The training engine: run contexts, member batches, stage losses, the trainer, optimizers, checkpoints."""

from aebench.engine.context import RunContext

__all__ = ["RunContext"]
