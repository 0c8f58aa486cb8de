"""A batch of S members: the unit the Trainer trains (a solo run is S = 1).

Members share every shape (data, model, stages) and may differ in what their Params mark
:func:`~aebench.components.per_member` (seed, noise levels, penalty weights, learning
rates). Each member keeps its own generator, drawn in the order of its solo run, so each
member equals its solo run to float tolerance; with S > 1 the model is the model class's
own batched form (:meth:`~aebench.components.Model.batch`) and the matrix products of all
members run as one batched product.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from aebench.components import LayerView, Model, per_member_fields
from aebench.context import RunContext
from aebench.errors import AebenchError
from aebench.functional import batched_linear


class CannotBatch(AebenchError):
    """These members cannot train as one batch (the executor then trains them one at a time)."""


class HeadStack(torch.nn.Module):
    """The softmax heads of S members as (S, classes, features) and (S, classes) tensors."""

    def __init__(self, heads: list[torch.nn.Linear]) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.stack([h.weight.detach() for h in heads]).clone())
        self.bias = torch.nn.Parameter(torch.stack([h.bias.detach() for h in heads]).clone())

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return batched_linear(code.device.type).apply(code, self.weight, self.bias, False)

    @torch.no_grad()
    def write_back(self, heads: list[torch.nn.Linear]) -> None:
        for s, h in enumerate(heads):
            h.weight.copy_(self.weight[s])
            h.bias.copy_(self.bias[s])


class Members:
    """S run contexts trained together: one (batched) model, S generators, S heads.

    Tensors of a solo batch are (B, n); of S > 1 members (S, B, n). ``part(t, s)`` is member
    s's share of either. Per-member losses are always shape (S,).
    """

    def __init__(self, contexts: list[RunContext]) -> None:
        self.contexts = contexts
        self.size = len(contexts)
        self.generators = [c.generator for c in contexts]
        self.active = set(range(self.size))  # members still training in this epoch
        models = [c.model for c in contexts]
        if self.size == 1:
            self.net, self.head = models[0], contexts[0].head
            return
        net = type(models[0]).batch(models)
        if net is None:
            raise CannotBatch(f"model {models[0].name!r} has no batched form")
        self.net = net.to(contexts[0].device)
        self.head = (
            HeadStack([c.head for c in contexts]).to(contexts[0].device) if contexts[0].head is not None else None
        )

    @property
    def batched(self) -> bool:
        return self.size > 1

    def part(self, t: torch.Tensor, s: int) -> torch.Tensor:
        return t[s] if self.batched else t

    def each(self, h: torch.Tensor, fn: Callable[[int, torch.Tensor, torch.Generator], torch.Tensor]) -> torch.Tensor:
        """``fn(s, h_s, generator_s)`` for every active member (an inactive one passes unchanged
        and draws nothing, as its solo run, which has stopped, would not)."""
        if not self.batched:
            return fn(0, h, self.generators[0])
        return torch.stack([fn(s, h[s], self.generators[s]) if s in self.active else h[s] for s in range(self.size)])

    def layer_view(self, s: int, i: int) -> LayerView:
        return self.net.member_view(s, i) if self.batched else self.net.layer_view(i)

    def class_loss(self, code: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Softmax cross-entropy of each member's head on its top code, shape (S,)."""
        logits = self.head(code)
        if not self.batched:
            return F.cross_entropy(logits, y).reshape(1)
        return F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(self.size, -1).mean(1)

    # ------------------------------------------------------------ parameters, state
    def modules(self) -> list[torch.nn.Module]:
        return [self.net] + ([self.head] if self.head is not None else [])

    def layer_parameters(self, i: int) -> list[torch.nn.Parameter]:
        return list(self.net.layer_parameters(i))

    def head_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.head.parameters()) if self.head is not None else []

    def named_tensors(self) -> dict[str, torch.Tensor]:
        return {f"{k}.{name}": p for k, m in zip(("net", "head"), self.modules()) for name, p in m.named_parameters()}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in self.named_tensors().items()}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, p in self.named_tensors().items():
            p.copy_(state[name])

    def member_state(self, s: int) -> dict[str, torch.Tensor]:
        return {name: self.part(p, s).detach().clone() for name, p in self.named_tensors().items()}

    @torch.no_grad()
    def load_member_state(self, s: int, state: dict[str, torch.Tensor]) -> None:
        for name, p in self.named_tensors().items():
            self.part(p, s).copy_(state[name])

    def write_back(self) -> None:
        """Copy each member's weights into its own model and head (evaluators read those)."""
        if self.batched:
            self.net.write_back([c.model for c in self.contexts])
            if self.head is not None:
                self.head.write_back([c.head for c in self.contexts])


# ------------------------------------------------------------------ which runs batch
def batch_key(run, reg) -> tuple[str | None, str]:
    """Runs with one key can train as members of one batch. Returns ``(key, "")``, or
    ``(None, why)`` for a run that must train alone (a model without a batched form, a custom
    objective that cannot batch)."""
    from aebench.engine.stage import target_of  # deferred: stage builds on Members

    model_cls = run.model.cls(reg)
    if model_cls.batch.__func__ is Model.batch.__func__:
        return None, f"model {run.model.name!r} has no batched form"
    if not run.optimizer.cls(reg).batchable:
        return None, f"optimizer {run.optimizer.name!r} does not act element by element"
    for sched in run.schedules:
        for stage in sched.build(reg).stages(len(getattr(run.model.params, "layers", []) or [0])):
            if not target_of(stage).batchable(stage):
                return None, f"the custom objective of schedule {sched.name!r} cannot batch"
    return json.dumps(_shared(run), sort_keys=True, default=str), ""


def _shared(run) -> dict[str, Any]:
    """What members of one batch must agree on: every field not marked per-member."""

    def strip(c) -> dict[str, Any]:
        return {"name": c.name, **c.params.model_dump(exclude=per_member_fields(type(c.params)))}

    return {
        "data": strip(run.data),
        "model": strip(run.model),
        "corruption": [strip(c) for c in run.corruptions],
        "regularizers": [strip(r) for r in run.regularizers],
        "schedule": [strip(s) for s in run.schedules],
        "optimizer": strip(run.optimizer),
        "precision": run.precision,
    }
