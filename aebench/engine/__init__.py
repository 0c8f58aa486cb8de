"""The training engine: member batches, stage losses, the trainer, optimizers, checkpoints.

What plug-ins receive (``RunContext``, ``StageBatch``, records, results) is public API in
:mod:`aebench.context`."""
