"""Seed ensembles: S runs of one architecture trained as one batched model (``ensemble = true``).

Members may differ in seed, corruption parameters, regularizer weights and learning rate;
everything with a shape (data, model, stages) must agree. Each member keeps its own
generator, drawn in the same order as its solo run, and its own optimizer state, so each
member's result equals its solo run to float tolerance; the matrix products of all members
run as one batched ``baddbmm``.
"""

from __future__ import annotations

import json
import math
import time
from functools import cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from aebench.models import Stacked
from aebench.components import LayerView, Stage
from aebench.engine.checkpoint import load_checkpoint, save_checkpoint
from aebench.engine.context import RunContext
from aebench.engine.optim import make_optimizer
from aebench.engine.runner import RunInterrupted, _autocast, _scalars, check_divergence, epoch_record, note_hook_errors
from aebench.engine.stage import StageLoss
from aebench.errors import AebenchError, RunFailed
from aebench.functional import activate

#: run-spec paths that may differ between members of one ensemble
FREE = {"seed", "lr", "level", "weight", "rho", "alpha", "low", "high"}


def group_key(run) -> str:
    """Runs with the same key can share one batched model."""

    def strip(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k not in FREE}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    raw = {k: v for k, v in run.raw.items() if k not in ("name", "description")}
    return json.dumps(strip(raw), sort_keys=True, default=str)


@cache
def batched_linear(device_type: str) -> type[torch.autograd.Function]:
    """``h @ W^T + b`` (an encoder) or, with ``decoder``, ``h @ W + b`` (its tied decoder).

    Autograd's own ``bmm`` backward returns the encoder's weight gradient transposed, so a
    tied weight would sum a (S, out, in) and a strided (S, in, out) gradient every step;
    here both come out in the weight's own layout (adding them for 8 members of 256×784:
    1.5 ms strided, 0.16 ms contiguous, on 2 CPU cores). One class per device type, so
    that the backward runs under the forward's autocast state (``precision``).
    """

    class BatchedLinear(torch.autograd.Function):
        @staticmethod
        @torch.amp.custom_fwd(device_type=device_type)
        def forward(ctx, h: torch.Tensor, W: torch.Tensor, b: torch.Tensor, decoder: bool) -> torch.Tensor:
            ctx.save_for_backward(h, W)
            ctx.decoder = decoder
            return torch.baddbmm(b.unsqueeze(1), h, W if decoder else W.transpose(1, 2))

        @staticmethod
        @torch.amp.custom_bwd(device_type=device_type)
        def backward(ctx, g: torch.Tensor):
            h, W = ctx.saved_tensors
            need_h, need_W, need_b, _ = ctx.needs_input_grad
            gh = torch.bmm(g, W.transpose(1, 2) if ctx.decoder else W) if need_h else None
            gW = None
            if need_W:
                gW = torch.bmm(h.transpose(1, 2), g) if ctx.decoder else torch.bmm(g.transpose(1, 2), h)
            return gh, gW, g.sum(1) if need_b else None, None

    return BatchedLinear


class BatchedStack:
    """The weights of S ``stacked`` models as (S, ...) tensors."""

    def __init__(self, models: list[Stacked]) -> None:
        m = models[0]
        if not all(type(x) is Stacked for x in models):
            raise AebenchError("ensemble = true needs model 'stacked' (other models train one run at a time).")
        self.S, self.sizes, self.acts, self.params = len(models), m.sizes, m.acts, m.params
        stack = lambda ts: torch.nn.Parameter(torch.stack([t.detach() for t in ts]).clone())  # noqa: E731
        n = m.n_layers
        self.W = [stack([x.weights[i] for x in models]) for i in range(n)]
        self.b = [stack([x.enc_bias[i] for x in models]) for i in range(n)]
        self.c = [stack([x.dec_bias[i] for x in models]) for i in range(n)]
        self.Wd = [stack([x.dec_weights[i] for x in models]) for i in range(n)] if not m.params.tied else None

    def layer_parameters(self, i: int) -> list[torch.nn.Parameter]:
        return [self.W[i], self.b[i], self.c[i], *([self.Wd[i]] if self.Wd else [])]

    def encode_layer(self, i: int, h: torch.Tensor, noise=None) -> torch.Tensor:
        a = batched_linear(h.device.type).apply(h, self.W[i], self.b[i], False)
        if noise is not None:
            a = noise(a)
        return activate(self.acts[i], a)

    def decode_layer(self, i: int, h: torch.Tensor, act: bool = True) -> torch.Tensor:
        if self.Wd is None:  # tied: W (S, out, in) maps the code back
            pre = batched_linear(h.device.type).apply(h, self.W[i], self.c[i], True)
        else:  # untied: Wd (S, in, out) is an encoder-shaped weight
            pre = batched_linear(h.device.type).apply(h, self.Wd[i], self.c[i], False)
        out_act = self.params.output_activation if i == 0 else self.acts[i - 1]
        return activate(out_act, pre) if act else pre

    def loss(self, target: torch.Tensor, pre: torch.Tensor, i: int) -> torch.Tensor:
        """Per-member loss, summed over units and averaged over the batch: shape (S,)."""
        out_act = self.params.output_activation if i == 0 else self.acts[i - 1]
        if self.params.loss == "cross-entropy" and out_act == "sigmoid":
            return F.binary_cross_entropy_with_logits(pre, target, reduction="none").sum((1, 2)) / pre.shape[1]
        return (activate(out_act, pre) - target).pow(2).sum((1, 2)) / pre.shape[1]

    @torch.no_grad()
    def write_back(self, models: list[Stacked]) -> None:
        for s, m in enumerate(models):
            for i in range(m.n_layers):
                m.weights[i].copy_(self.W[i][s])
                m.enc_bias[i].copy_(self.b[i][s])
                m.dec_bias[i].copy_(self.c[i][s])
                if self.Wd is not None:
                    m.dec_weights[i].copy_(self.Wd[i][s])


class BatchedOptimizer:
    """torch's RMSprop / SGD / Adam update rules on (S, ...) parameters with one lr per member."""

    def __init__(self, params: list[torch.nn.Parameter], opt, lrs: torch.Tensor) -> None:
        self.params, self.opt, self.lrs, self.state, self.t = params, opt, lrs, {}, 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, "state": [self.state.get(id(p), {}) for p in self.params]}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        self.t = sd["t"]
        self.state = {id(p): {k: v.to(p.device) for k, v in st.items()} for p, st in zip(self.params, sd["state"])}

    @torch.no_grad()
    def step(self) -> None:
        o, self.t = self.opt, self.t + 1
        for p in self.params:
            g, lr = p.grad, self.lrs.view(-1, *[1] * (p.dim() - 1))
            st = self.state.setdefault(id(p), {})
            if o.name == "rmsprop":
                sq = st.setdefault("sq", torch.zeros_like(p))
                sq.mul_(o.decay).addcmul_(g, g, value=1 - o.decay)
                step = g / sq.sqrt().add_(o.eps)
                if o.momentum > 0:
                    buf = st.setdefault("buf", torch.zeros_like(p))
                    step = buf.mul_(o.momentum).add_(step)
            elif o.name == "sgd":
                step = g
                if o.momentum > 0:
                    buf = st.get("buf")
                    step = st["buf"] = g.clone() if buf is None else buf.mul_(o.momentum).add_(g)
            else:
                m1 = st.setdefault("m", torch.zeros_like(p)).lerp_(g, 1 - o.beta1)
                m2 = st.setdefault("v", torch.zeros_like(p))
                m2.mul_(o.beta2).addcmul_(g, g, value=1 - o.beta2)
                denom = (m2.sqrt() / math.sqrt(1 - o.beta2**self.t)).add_(o.eps)
                step = m1 / denom / (1 - o.beta1**self.t)
            p.sub_(lr * step)


class EnsembleStage:
    """The batch loss of one stage for all members (``input`` and ``local`` targets)."""

    def __init__(self, ctxs: list[RunContext], net: BatchedStack, stage: Stage) -> None:
        if stage.target not in ("input", "local"):
            raise AebenchError(f"ensemble = true trains reconstruction stages only; stage {stage.label!r} is {stage.target}.")
        self.ctxs, self.net, self.stage = ctxs, net, stage
        self.members = [StageLoss(c, stage) for c in ctxs]  # who corrupts / regularizes where, per member
        self.start = self.members[0].start

    def _each(self, h: torch.Tensor, fns_by_member) -> torch.Tensor:
        """Each member's corruptions, drawn from its own generator in its solo run's order."""
        if not any(fns_by_member):
            return h
        rows = []
        for s, fns in enumerate(fns_by_member):
            x = h[s]
            for fn in fns:
                x = fn(x, self.ctxs[s].generator)
            rows.append(x)
        return torch.stack(rows)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        net, stage = self.net, self.stage
        h = x
        if self.start > 0:
            with torch.no_grad():
                for i in range(self.start):
                    h = net.encode_layer(i, h)
        local_target = h
        penalties = [None] * len(self.members)  # per member: the solo run's loss includes its own
        for i in range(self.start, stage.depth):
            h = self._each(h, [m.input_noise[i] for m in self.members])
            h_in = h
            pre_noise = [m.pre_noise[i] for m in self.members]
            noise = (lambda a, pn=pre_noise: self._each(a, pn)) if any(pre_noise) else None
            h = net.encode_layer(i, h, noise)
            for s, m in enumerate(self.members):
                for r in m.penalties.get(i, ()):
                    Wd = net.W[i][s].t() if net.Wd is None else net.Wd[i][s]
                    view = LayerView(i, net.W[i][s], net.b[i][s], net.acts[i], Wd)
                    term = r.params.weight * r.penalty(view, h_in[s], h[s])
                    penalties[s] = term if penalties[s] is None else penalties[s] + term
        if stage.target == "local":
            j = stage.depth - 1
            per_member = net.loss(local_target, net.decode_layer(j, h, act=False), j)
        else:
            for i in reversed(range(1, stage.depth)):
                h = net.decode_layer(i, h)
            per_member = net.loss(x, net.decode_layer(0, h, act=False), 0)
        if any(p is not None for p in penalties):
            per_member = per_member + torch.stack([p if p is not None else per_member.new_zeros(()) for p in penalties])
        self.last = per_member.detach()
        return per_member.sum()


class EnsembleTrainer:
    """Trains S members as one :class:`BatchedStack`, stage by stage, recording each member's
    epochs as its solo :class:`~aebench.engine.runner.Trainer` would. With a ``checkpoint``
    path the whole ensemble (weights, optimizer state, every member's generator, records)
    is saved after every epoch, so that ``--resume`` continues it where it stopped."""

    def __init__(self, ctxs: list[RunContext], evaluators: list[list], on_epoch=None, stop=None, checkpoint: Path | None = None) -> None:
        if ctxs[0].spec.precision == "float16":  # the spec refuses this too; a direct API call lands here
            raise AebenchError("ensemble = true trains in float32 or bfloat16: float16 needs loss scaling per run.")
        self.ctxs, self.evaluators, self.on_epoch, self.stop, self.checkpoint = ctxs, evaluators, on_epoch, stop, checkpoint
        self.net = BatchedStack([c.model for c in ctxs])
        self.records: list[list[dict]] = [[] for _ in ctxs]
        self.failed: dict[int, str] = {}
        self.stopped: dict[int, dict[str, torch.Tensor]] = {}  # member -> its weights when a callback stopped it
        self.stage_ref: torch.Tensor | None = None  # each member's first loss of the stage: the blow-up yardstick
        self.steps = self.stage_idx = self.stage_epoch = 0
        self.opt_state: dict | None = None
        self.initial = {k: [t.detach().clone() for t in ts] for k, ts in self._tensors().items()}

    # ---------------------------------------------------------------- checkpoints
    def _tensors(self) -> dict[str, list[torch.Tensor]]:
        net = self.net
        return {"W": net.W, "b": net.b, "c": net.c, **({"Wd": net.Wd} if net.Wd is not None else {})}

    def state(self, opt) -> dict[str, Any]:
        return {
            "tensors": {k: [t.detach() for t in ts] for k, ts in self._tensors().items()},
            "optimizer": opt.state_dict(),
            "generators": [c.generator.get_state() for c in self.ctxs],
            "records": json.dumps(self.records),
            "failed": json.dumps({str(k): v for k, v in self.failed.items()}),
            "stopped": {str(k): v for k, v in self.stopped.items()},
            "stage_ref": self.stage_ref,
            "steps": self.steps, "stage_idx": self.stage_idx, "stage_epoch": self.stage_epoch,
        }  # fmt: skip

    def restore(self) -> bool:
        """Continue from the checkpoint, if there is a readable one of this very ensemble."""
        st = load_checkpoint(self.checkpoint, self.ctxs[0].device) if self.checkpoint is not None else None
        if st is None or len(st.get("generators", ())) != len(self.ctxs):
            return False
        with torch.no_grad():
            for k, ts in self._tensors().items():
                for t, saved in zip(ts, st["tensors"][k]):
                    t.copy_(saved)
        for c, g in zip(self.ctxs, st["generators"]):
            c.generator.set_state(g.cpu())
        self.records = json.loads(st["records"])
        self.failed = {int(k): v for k, v in json.loads(st["failed"]).items()}
        self.stopped = {int(k): v for k, v in st.get("stopped", {}).items()}
        self.stage_ref = st.get("stage_ref")
        self.steps, self.stage_idx, self.stage_epoch = st["steps"], st["stage_idx"], st["stage_epoch"]
        self.opt_state = st["optimizer"]
        return True

    # ------------------------------------------------------------------- training
    def run(self) -> list[list[dict]]:
        stages = self.ctxs[0].stages
        while self.stage_idx < len(stages):
            self.run_stage(stages[self.stage_idx])
            self.stage_idx, self.stage_epoch, self.opt_state = self.stage_idx + 1, 0, None
        self.net.write_back([c.model for c in self.ctxs])
        for s, weights in self.stopped.items():  # a member stopped by its callback keeps the weights it stopped with
            self.ctxs[s].model.load_state_dict(weights)
        for s, ctx in enumerate(self.ctxs):
            ctx.extras["records"] = self.records[s]
            if s in self.failed:
                ctx.extras["failed"] = self.failed[s]
        return self.records

    def _optimizer(self, stage: Stage):
        net, ctxs = self.net, self.ctxs
        trainable = [p for i in stage.train_layers for p in net.layer_parameters(i)]
        for i in range(len(net.W)):
            for p in net.layer_parameters(i):
                p.requires_grad_(any(p is q for q in trainable))
        lrs = [stage.lr or c.spec.optimizer.lr for c in ctxs]
        if len(set(lrs)) == 1:  # one lr: torch's fused/multi-tensor kernels act member-wise already
            opt = make_optimizer(trainable, ctxs[0].spec.optimizer, lrs[0])
        else:
            opt = BatchedOptimizer(trainable, ctxs[0].spec.optimizer, torch.tensor(lrs, device=ctxs[0].device))
        if self.opt_state is not None:
            opt.load_state_dict(self.opt_state)
        return opt

    def run_stage(self, stage: Stage) -> None:
        if stage.reinit and self.stage_epoch == 0:  # a from-scratch stage, as in the solo Trainer
            with torch.no_grad():
                for k, ts in self._tensors().items():
                    for t, t0 in zip(ts, self.initial[k]):
                        t.copy_(t0)
        opt = self._optimizer(stage)
        loss_fn = EnsembleStage(self.ctxs, self.net, stage)
        while self.stage_epoch < stage.epochs:
            total, n_batches, seconds = self.train_epoch(loss_fn, opt)
            self.stage_epoch += 1
            self.steps += n_batches
            self.net.write_back([c.model for c in self.ctxs])
            self.record(stage, total, n_batches, seconds)
            if self.checkpoint is not None:
                save_checkpoint(self.checkpoint, self.state(opt))

    def train_epoch(self, loss_fn: EnsembleStage, opt) -> tuple[torch.Tensor, int, float]:
        ctxs, S = self.ctxs, len(self.ctxs)
        device, bs = ctxs[0].device, ctxs[0].spec.optimizer.batch_size
        train = ctxs[0].splits["train"]  # members share their data; each has its own order
        amp = _autocast(device, ctxs[0].spec.precision)
        t0 = time.perf_counter()
        perms = torch.stack([torch.randperm(len(train), generator=c.generator, device=device) for c in ctxs])
        total = torch.zeros(S, device=device)
        n_batches = 0
        for start in range(0, len(train), bs):
            if self.stop is not None and self.stop.is_set():
                raise RunInterrupted("stopped")
            idx = perms[:, start : start + bs]
            x = train.x[idx].to(torch.float32).mul_(train.scale)  # (S, B, features)
            with amp:
                loss = loss_fn(x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss_fn.last
            if n_batches == 0 and self.stage_epoch == 0:
                self.stage_ref = loss_fn.last.detach().clone()
            n_batches += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return total, n_batches, (time.perf_counter() - t0) / S  # each member's share of the batched epoch

    def record(self, stage: Stage, total: torch.Tensor, n_batches: int, seconds: float) -> None:
        n_epochs = sum(x.epochs for x in self.ctxs[0].stages)
        from aebench.plugins import call_hook, registry

        reg = registry()
        for s, ctx in enumerate(self.ctxs):
            if s in self.failed or s in self.stopped:
                continue
            mean = float(total[s]) / n_batches
            epoch = len(self.records[s]) + 1
            ref = None if self.stage_ref is None else float(self.stage_ref[s])
            try:  # one member's blow-up fails that member's run; the others go on
                check_divergence(mean, ref, [], epoch, stage.label)
            except RunFailed as exc:
                self.failed[s] = str(exc)
                continue
            record = epoch_record(ctx, self.evaluators[s], stage, epoch, mean, self.steps, seconds)
            self.records[s].append(record)
            metrics = _scalars(record)
            # each member's callbacks and live view, named by its run id, as in a solo run
            note_hook_errors(ctx, call_hook(reg, "aebench_on_epoch_end", run=ctx, epoch=epoch, metrics=metrics))
            if self.on_epoch is not None:
                self.on_epoch(ctx.run_id, {**metrics, "epoch": epoch, "total_epochs": n_epochs})
            if ctx.stop_reason and not ctx.stop_reason.startswith("stage:"):
                self.stopped[s] = {k: v.detach().clone() for k, v in ctx.model.state_dict().items()}


def train_ensemble(ctxs: list[RunContext], evaluators: list[list], on_epoch=None, stop=None) -> list[list[dict]]:
    """Train all members without checkpoints; returns each member's per-epoch records."""
    return EnsembleTrainer(ctxs, evaluators, on_epoch, stop).run()
