"""The loss of one mini-batch in one stage, for every member of a batch (Zhou et al. eq. 8,
11, 12; supervised, hybrid; a plug-in's custom objective).

A stage target names one :class:`Target` in :data:`TARGETS` — the one list of targets: its
loss function, the criterion early stopping watches, whether its loss is a yardstick for a
blow-up, and any per-epoch values it records. Solo runs (S = 1) and batched members use the
same functions. A target adds one entry there, nothing else; the Trainer and its callbacks
read only these declarations (:func:`target_of`), never a target's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import xarray as xr

from aebench.components import Stage, objective_batches
from aebench.context import RunContext
from aebench.engine.members import Members
from aebench.errors import AebenchError
from aebench.hookspecs import Criterion


@dataclass
class Plan:
    """Which corruptions and penalties one member's stage applies at each layer."""

    input_noise: dict[int, list]
    pre_noise: dict[int, list]
    penalties: dict[int, list]


def plan(ctx: RunContext, stage: Stage) -> Plan:
    n = ctx.model.n_layers

    def corrupting(i: int) -> bool:
        return stage.corrupt == "all" or (stage.corrupt == "trained" and i in stage.train_layers)

    def noises(site: str, i: int) -> list:
        return [c for c in ctx.corruptions if c.site == site and c.applies_to(i, n)] if corrupting(i) else []

    return Plan(
        input_noise={i: noises("input", i) for i in range(stage.depth)},
        pre_noise={i: noises("preactivation", i) for i in range(stage.depth)},
        penalties={
            i: [r for r in ctx.regularizers if r.applies_to(i) and r.params.weight > 0] if stage.regularize else []
            for i in stage.train_layers
        },
    )


class StageBatch:
    """One stage of S members: ``batch(x, y)`` is each member's loss, shape (S,).

    ``stages[s]`` is member s's own Stage (members agree on its shape; ``lr``, ``alpha`` and
    ``options`` may differ). See :class:`aebench.components.Objective` for what a custom
    objective may use.
    """

    def __init__(self, members: Members, stages: list[Stage]) -> None:
        self.members, self.stages, self.stage = members, stages, stages[0]
        self.net, self.contexts, self.each = members.net, members.contexts, members.each
        self.plans = [plan(c, st) for c, st in zip(members.contexts, stages)]
        # Frozen lower layers are run clean, without gradient, unless the stage corrupts
        # every layer (the joint objective with a frozen part: alpha schedule).
        self.start = min(self.stage.train_layers) if self.stage.corrupt != "all" else 0
        self.loss = _target_loss(self.stage, members.size)
        # per layer, each member's corruptions (looked up once per stage, not per batch)
        self.noises = {
            site: {i: [getattr(p, site)[i] for p in self.plans] for i in range(self.stage.depth)}
            for site in ("input_noise", "pre_noise")
        }
        self.alpha = self.member_values(lambda st: st.alpha)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss(self, x, y)

    def member_values(self, get: Callable[[Stage], float]) -> float | torch.Tensor:
        """A per-member number of the stages (e.g. ``alpha``): a float, or an (S,) tensor."""
        values = [get(st) for st in self.stages]
        if len(set(values)) == 1:
            return values[0]
        return torch.tensor(values, device=self.contexts[0].device)

    def _noise(self, h: torch.Tensor, site: str, i: int) -> torch.Tensor:
        lists = self.noises[site][i]
        if not any(lists):
            return h

        def apply(s: int, t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
            for c in lists[s]:
                t = c(t, g)
            return t

        return self.each(h, apply)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The corrupted forward pass of the trained layers: (top code, the clean input of the
        top layer (the local target), each member's summed penalties (S,) or None)."""
        net, stage = self.net, self.stage
        h = x
        if self.start > 0:
            with torch.no_grad():
                h = net.encode(x, upto=self.start)
        local_target = h
        penalties: list[torch.Tensor | None] = [None] * self.members.size
        for i in range(self.start, stage.depth):
            h = self._noise(h, "input_noise", i)
            h_in = h
            pre = (lambda a, i=i: self._noise(a, "pre_noise", i)) if any(self.noises["pre_noise"][i]) else None
            h = net.encode_layer(i, h, pre)
            for s, p in enumerate(self.plans):
                for r in p.penalties.get(i, ()):
                    part = self.members.part
                    term = r.params.weight * r.penalty(self.members.layer_view(s, i), part(h_in, s), part(h, s))
                    penalties[s] = term if penalties[s] is None else penalties[s] + term
        if all(p is None for p in penalties):
            return h, local_target, None
        zero = x.new_zeros(())
        return h, local_target, torch.stack([zero if p is None else p for p in penalties])

    def recon(self, target: torch.Tensor, pre: torch.Tensor, i: int) -> torch.Tensor:
        return self.net.reconstruction_loss(target, pre, i).reshape(-1)


# ------------------------------------------------------------------------- targets
def _with_penalty(objective):
    """A target's loss given the top code, plus each member's penalties."""

    def loss(batch: StageBatch, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        code, local_target, penalty = batch.encode(x)
        value = objective(batch, x, y, code, local_target)
        return value if penalty is None else value + penalty

    return loss


@_with_penalty
def input_loss(batch: StageBatch, x, y, code, local_target) -> torch.Tensor:
    """Reconstruct x through every decoder below the top (eq. 8 / 11)."""
    return batch.recon(x, batch.net.decode(code, batch.stage.depth, activate=False), 0)


@_with_penalty
def local_loss(batch: StageBatch, x, y, code, local_target) -> torch.Tensor:
    """Layer ``depth-1`` reconstructs its own clean input (eq. 12)."""
    j = batch.stage.depth - 1
    return batch.recon(local_target, batch.net.decode_layer(j, code, activate=False), j)


@_with_penalty
def labels_loss(batch: StageBatch, x, y, code, local_target) -> torch.Tensor:
    """Softmax cross-entropy of the head on the top code (supervised fine-tuning)."""
    return batch.members.class_loss(code, y)


@_with_penalty
def hybrid_loss(batch: StageBatch, x, y, code, local_target) -> torch.Tensor:
    """Labels plus ``alpha`` × the input reconstruction."""
    recon = batch.recon(x, batch.net.decode(code, batch.stage.depth, activate=False), 0)
    return batch.members.class_loss(code, y) + batch.alpha * recon


def custom_loss(batch: StageBatch, x, y) -> torch.Tensor:
    """The stage's own :class:`~aebench.components.Objective` (or a per-run function)."""
    objective = batch.stage.objective
    if objective_batches(objective):
        return objective(batch, x, y).reshape(-1)
    return objective(batch.contexts[0], batch.stage, x, y).reshape(1)


def class_error(ctx: RunContext, stage: Stage) -> dict[str, xr.DataArray]:
    """The softmax head's error on every split (what a supervised stage records per epoch)."""
    errs = [ctx.class_error(split) for split in ("train", "valid", "test")]
    attrs = {"long_name": "classification error of the softmax head", "units": "1"}
    return {"class_error": xr.DataArray(errs, dims="split", coords={"split": ["train", "valid", "test"]}, attrs=attrs)}


@dataclass(frozen=True)
class Target:
    """What one stage target is: its batch loss and what the Trainer's callbacks read from it.

    ``criterion``: what early stopping watches (None: nothing, so ``patience`` cannot apply);
    ``blowup``: a mean epoch loss far above the stage's first batch is a divergence;
    ``epoch_values(ctx, stage)``: values recorded every epoch (e.g. ``class_error``);
    ``batchable(stage)``: whether S > 1 members can train it as one batch;
    ``from_objective``: the stage's own ``objective`` declares criterion, blowup and values."""

    loss: Callable[[StageBatch, torch.Tensor, torch.Tensor], torch.Tensor]
    criterion: Criterion | None
    blowup: bool
    epoch_values: Callable[[RunContext, Stage], dict[str, Any] | None] | None = None
    batchable: Callable[[Stage], bool] = lambda stage: True
    from_objective: bool = False


RECON = Criterion("recon_error", words="validation reconstruction error")
CLASS = Criterion("class_error", words="validation classification error")

TARGETS: dict[str, Target] = {
    "input": Target(input_loss, RECON, blowup=True),
    "local": Target(local_loss, None, blowup=True),
    "labels": Target(labels_loss, CLASS, blowup=True, epoch_values=class_error),
    "hybrid": Target(hybrid_loss, CLASS, blowup=True, epoch_values=class_error),
    # a custom stage's objective declares its own (see target_of)
    "custom": Target(
        custom_loss, None, blowup=False, batchable=lambda st: objective_batches(st.objective), from_objective=True
    ),
}


def target_of(stage: Stage) -> Target:
    """The declaration of ``stage``'s target; a custom stage's as its objective declares it."""
    if stage.target not in TARGETS:
        raise AebenchError(f"stage {stage.label!r} has target {stage.target!r}; known targets: {', '.join(TARGETS)}.")
    target = TARGETS[stage.target]
    objective = stage.objective
    if not target.from_objective or objective is None:
        return target
    on_epoch = getattr(objective, "on_epoch", None)
    return Target(
        target.loss,
        getattr(objective, "criterion", None),
        blowup=bool(getattr(objective, "blowup", False)),
        epoch_values=on_epoch if callable(on_epoch) else None,
        batchable=target.batchable,
        from_objective=True,
    )


def _target_loss(stage: Stage, size: int):
    target = target_of(stage)
    if size > 1 and not target.batchable(stage):
        raise AebenchError(
            f"stage {stage.label!r}: its custom objective cannot batch members; train its runs one at a time."
        )
    return target.loss


def StageLoss(ctx: RunContext, stage: Stage) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The scalar batch loss of one run's stage (a solo :class:`StageBatch`)."""
    batch = StageBatch(Members([ctx]), [stage])
    return lambda x, y: batch(x, y)[0]
