"""The training engine: run contexts, stage losses, the trainer, optimizers, checkpoints, ensembles."""

from aebench.engine.context import RunContext

__all__ = ["RunContext"]
