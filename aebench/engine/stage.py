"""The loss of one mini-batch in one stage (Zhou et al. eq. 8, 11, 12; supervised, hybrid)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aebench.components import Stage
from aebench.engine.context import RunContext


class StageLoss:
    """Precomputes, for one stage, which corruption and regularizer applies where."""

    def __init__(self, ctx: RunContext, stage: Stage) -> None:
        self.ctx, self.stage = ctx, stage
        n = ctx.model.n_layers
        self.first = min(stage.train_layers)
        # Frozen lower layers are run clean, without gradient, unless the stage corrupts
        # every layer (the joint objective with a frozen part: alpha schedule).
        self.start = self.first if stage.corrupt != "all" else 0

        def corrupting(i: int) -> bool:
            return stage.corrupt == "all" or (stage.corrupt == "trained" and i in stage.train_layers)

        self.input_noise = {
            i: [c for c in ctx.corruptions if c.site == "input" and c.applies_to(i, n)] if corrupting(i) else []
            for i in range(stage.depth)
        }
        self.pre_noise = {
            i: [c for c in ctx.corruptions if c.site == "preactivation" and c.applies_to(i, n)] if corrupting(i) else []
            for i in range(stage.depth)
        }
        self.penalties = {
            i: [r for r in ctx.regularizers if r.applies_to(i) and r.params.weight > 0] if stage.regularize else []
            for i in stage.train_layers
        }

    def _pre_noise(self, i: int):
        noises = self.pre_noise[i]
        if not noises:
            return None
        g = self.ctx.generator

        def apply(a: torch.Tensor) -> torch.Tensor:
            for c in noises:
                a = c(a, g)
            return a

        return apply

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ctx, stage, model, g = self.ctx, self.stage, self.ctx.model, self.ctx.generator
        if stage.target == "custom":
            return stage.objective(ctx, stage, x, y)
        h = x
        if self.start > 0:
            with torch.no_grad():
                h = model.encode(x, upto=self.start)
        local_target = h
        penalty = None
        for i in range(self.start, stage.depth):
            for c in self.input_noise[i]:
                h = c(h, g)
            h_in = h
            h = model.encode_layer(i, h, self._pre_noise(i))
            for r in self.penalties.get(i, ()):
                term = r.params.weight * r.penalty(model.layer_view(i), h_in, h)
                penalty = term if penalty is None else penalty + term
        loss = self._objective(x, y, h, local_target)
        return loss if penalty is None else loss + penalty

    def _objective(self, x, y, code, local_target):
        stage, model = self.stage, self.ctx.model
        if stage.target == "local":
            j = stage.depth - 1
            return model.reconstruction_loss(local_target, model.decode_layer(j, code, activate=False), j)
        if stage.target == "labels":
            return F.cross_entropy(self.ctx.head(code), y)
        recon = model.reconstruction_loss(x, model.decode(code, stage.depth, activate=False), 0)
        if stage.target == "hybrid":
            return F.cross_entropy(self.ctx.head(code), y) + stage.alpha * recon
        return recon
