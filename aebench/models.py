"""The stacked autoencoder (Zhou et al. eq. 4–6), tied or untied: public API.

``Stacked`` is what the built-in ``stacked`` model registers and what a plug-in subclasses
(``from aebench.models import Stacked, StackedParams``). Besides the
:class:`aebench.components.Model` interface, its documented accessors are:

- ``sizes``: ``[n_inputs, h1, ..., hN]``; ``acts``: the hidden unit type of each layer;
- ``weights[i]``: encoder weight of layer i, shape (out, in); ``enc_bias[i]``, ``dec_bias[i]``;
- ``dec_weights[i]``: the decoder weight when untied (empty list when tied);
- ``decoder_weight(i)``: the decoder weight, tied or not, shape (in, out);
- ``out_activation(i)``: unit type of decoder i's output (the input space for i = 0).

``Stacked.batch(models)`` returns a :class:`BatchedStacked`: the same accessors with a
leading member axis (``weights[i]`` of shape (S, out, in), ...), which is how S members
(seeds, noise levels, learning rates) train as one model. A subclass that keeps these
accessors batches for free; one that adds parameters overrides ``batch`` (or returns
``None`` to train one run at a time).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator

from aebench.components import LayerView, Model, Params
from aebench.functional import activate as act_fn
from aebench.functional import (
    batched_linear,
    cross_entropy_from_logits,
    member_cross_entropy_from_logits,
    member_squared_error,
    squared_error,
    tied_decode,
)

Activation = Literal["sigmoid", "tanh", "relu", "linear"]


#: the most units one layer may have: a thousand times the papers' widest layers; a wider
#: layer is a typo, and one a machine cannot hold fails as a torch stack dump at run time
MAX_UNITS = 2**20
#: the most weights between two hidden layers (2^32 float32 weights: 16 GiB)
MAX_WEIGHTS = 2**32


class StackedParams(Params):
    layers: list[int] = Field([1000, 1000], min_length=1, description="Hidden units per layer, bottom first.")
    tied: bool = Field(True, description="Tied weights: decoder weight = encoder weight transposed (one parameter).")
    activation: Activation | list[Activation] = Field(
        "sigmoid", description="Hidden unit type, one for all layers or one per layer."
    )
    output_activation: Activation = Field("sigmoid", description="Unit type of the reconstruction of x.")
    loss: Literal["cross-entropy", "squared-error"] = Field(
        "cross-entropy", description="Reconstruction loss; cross-entropy needs outputs in [0, 1] (sigmoid)."
    )
    init: Literal["auto", "glorot", "glorot-x4"] = Field(
        "auto",
        description="Uniform ±sqrt(6/(fan_in+fan_out)) (glorot), ×4 (glorot-x4), or auto: ×4 for sigmoid layers.",
    )

    @field_validator("layers")
    @classmethod
    def _sizes(cls, layers: list[int]) -> list[int]:
        # checked here, naming `model.layers`, not as an allocation failure at run time
        if any(n < 1 for n in layers):
            raise ValueError(f"layers must be positive sizes, got {layers}")
        if any(n > MAX_UNITS for n in layers):
            raise ValueError(f"at most {MAX_UNITS:,} units per layer")
        if any(a * b > MAX_WEIGHTS for a, b in zip(layers, layers[1:])):
            raise ValueError(f"at most {MAX_WEIGHTS:,} weights between two layers")
        return layers

    @model_validator(mode="after")
    def _check(self) -> "StackedParams":
        if isinstance(self.activation, list) and len(self.activation) != len(self.layers):
            raise ValueError(f"activation lists {len(self.activation)} unit types for {len(self.layers)} layers")
        if self.loss == "cross-entropy" and self.output_activation != "sigmoid":
            raise ValueError(
                "loss = 'cross-entropy' is only valid for outputs in [0, 1]: use output_activation = 'sigmoid' "
                "or loss = 'squared-error'"
            )
        return self

    def activations(self) -> list[str]:
        a = self.activation
        return list(a) if isinstance(a, list) else [a] * len(self.layers)


class Stacked(Model):
    name = "stacked"
    summary = "Stacked autoencoder: N layers, tied or untied weights, per-layer unit types."
    Params = StackedParams

    def __init__(self, params: StackedParams, n_inputs: int, generator: torch.Generator) -> None:
        super().__init__()
        self.params = params
        self.sizes = [n_inputs, *params.layers]
        self.acts = params.activations()
        self.weights = torch.nn.ParameterList()
        self.enc_bias = torch.nn.ParameterList()
        self.dec_bias = torch.nn.ParameterList()
        self.dec_weights = torch.nn.ParameterList()
        for i in range(self.n_layers):
            fan_in, fan_out = self.sizes[i], self.sizes[i + 1]
            self.weights.append(torch.nn.Parameter(self._init((fan_out, fan_in), self.acts[i], generator)))
            self.enc_bias.append(torch.nn.Parameter(torch.zeros(fan_out)))
            self.dec_bias.append(torch.nn.Parameter(torch.zeros(fan_in)))
            if not params.tied:
                self.dec_weights.append(torch.nn.Parameter(self._init((fan_in, fan_out), self.acts[i], generator)))

    def _init(self, shape: tuple[int, int], act: str, generator: torch.Generator) -> torch.Tensor:
        mode = self.params.init
        x4 = mode == "glorot-x4" or (mode == "auto" and act == "sigmoid")
        r = math.sqrt(6.0 / (shape[0] + shape[1])) * (4.0 if x4 else 1.0)
        return (torch.rand(shape, generator=generator) * 2 - 1) * r

    @classmethod
    def batch(cls, models: list[Model]) -> "BatchedStacked | None":
        """S members as one :class:`BatchedStacked` (``None`` for a subclass with parameters of its own)."""
        n, tied = models[0].n_layers, models[0].params.tied
        mine = {
            f"{k}.{i}"
            for i in range(n)
            for k in ("weights", "enc_bias", "dec_bias", *(() if tied else ("dec_weights",)))
        }
        if any({name for name, _ in m.named_parameters()} != mine for m in models):
            return None  # a subclass with parameters of its own must say how it batches
        return BatchedStacked(models)

    def out_activation(self, i: int) -> str:
        """Unit type of decoder ``i``'s output h^i (the input space for i = 0)."""
        return self.params.output_activation if i == 0 else self.acts[i - 1]

    def decoder_weight(self, i: int) -> torch.Tensor:
        return self.weights[i].t() if self.params.tied else self.dec_weights[i]

    def encode_layer(self, i: int, h: torch.Tensor, noise=None) -> torch.Tensor:
        a = F.linear(h, self.weights[i], self.enc_bias[i])
        if noise is not None:
            a = noise(a)
        return act_fn(self.acts[i], a)

    def decode_layer(self, i: int, h: torch.Tensor, activate: bool = True) -> torch.Tensor:
        if self.params.tied:
            pre = tied_decode(h, self.weights[i], self.dec_bias[i])
        else:
            pre = F.linear(h, self.dec_weights[i], self.dec_bias[i])
        return act_fn(self.out_activation(i), pre) if activate else pre

    def layer_parameters(self, i: int) -> list[torch.nn.Parameter]:
        params = [self.weights[i], self.enc_bias[i], self.dec_bias[i]]
        if not self.params.tied:
            params.append(self.dec_weights[i])
        return params

    def layer_view(self, i: int) -> LayerView:
        return LayerView(i, self.weights[i], self.enc_bias[i], self.acts[i], self.decoder_weight(i))

    def reconstruction_loss(self, target: torch.Tensor, pre: torch.Tensor, i: int) -> torch.Tensor:
        act = self.out_activation(i)
        if self.params.loss == "cross-entropy" and act == "sigmoid":
            return cross_entropy_from_logits(pre, target)
        # Squared error where cross-entropy is undefined (non-sigmoid hidden units, eq. 12).
        return squared_error(act_fn(act, pre), target)


class BatchedStacked(Model):
    """The weights of S :class:`Stacked` members as (S, ...) tensors, under Stacked's own names.

    Its methods take and return tensors with a leading member axis, (S, B, n); losses are
    one per member, shape (S,). It is built by ``Stacked.batch`` and copies each member's
    weights back into its own model with :meth:`write_back`.
    """

    def __init__(self, models: list[Stacked]) -> None:
        super().__init__()
        m = models[0]
        self.S, self.sizes, self.acts, self.params = len(models), list(m.sizes), list(m.acts), m.params
        stack = lambda ts: torch.nn.Parameter(torch.stack([t.detach() for t in ts]).clone())  # noqa: E731
        n = m.n_layers
        self.weights = torch.nn.ParameterList([stack([x.weights[i] for x in models]) for i in range(n)])
        self.enc_bias = torch.nn.ParameterList([stack([x.enc_bias[i] for x in models]) for i in range(n)])
        self.dec_bias = torch.nn.ParameterList([stack([x.dec_bias[i] for x in models]) for i in range(n)])
        dec = [stack([x.dec_weights[i] for x in models]) for i in range(n)] if not m.params.tied else []
        self.dec_weights = torch.nn.ParameterList(dec)

    out_activation = Stacked.out_activation

    def decoder_weight(self, i: int) -> torch.Tensor:
        """Each member's decoder weight, (S, in, out)."""
        return self.weights[i].transpose(1, 2) if self.params.tied else self.dec_weights[i]

    def encode_layer(self, i: int, h: torch.Tensor, noise=None) -> torch.Tensor:
        a = batched_linear(h.device.type).apply(h, self.weights[i], self.enc_bias[i], False)
        if noise is not None:
            a = noise(a)
        return act_fn(self.acts[i], a)

    def decode_layer(self, i: int, h: torch.Tensor, activate: bool = True) -> torch.Tensor:
        if self.params.tied:  # W (S, out, in) maps the code back
            pre = batched_linear(h.device.type).apply(h, self.weights[i], self.dec_bias[i], True)
        else:  # untied: (S, in, out) is an encoder-shaped weight
            pre = batched_linear(h.device.type).apply(h, self.dec_weights[i], self.dec_bias[i], False)
        return act_fn(self.out_activation(i), pre) if activate else pre

    layer_parameters = Stacked.layer_parameters

    def member_view(self, s: int, i: int) -> LayerView:
        """Member ``s``'s layer ``i``, as its solo model's ``layer_view(i)`` shows it."""
        W = self.weights[i][s]
        return LayerView(i, W, self.enc_bias[i][s], self.acts[i], W.t() if self.params.tied else self.dec_weights[i][s])

    def reconstruction_loss(self, target: torch.Tensor, pre: torch.Tensor, i: int) -> torch.Tensor:
        act = self.out_activation(i)
        if self.params.loss == "cross-entropy" and act == "sigmoid":
            return member_cross_entropy_from_logits(pre, target)
        return member_squared_error(act_fn(act, pre), target)

    @torch.no_grad()
    def write_back(self, models: list[Stacked]) -> None:
        mine = dict(self.named_parameters())
        for s, m in enumerate(models):
            for name, p in m.named_parameters():
                p.copy_(mine[name][s])


__all__ = ["Activation", "BatchedStacked", "Stacked", "StackedParams"]
