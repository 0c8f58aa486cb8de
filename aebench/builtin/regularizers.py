"""Per-layer regularizers R^i (Zhou et al. eq. 8, weighted by λ^i = ``weight``)."""

from __future__ import annotations

import torch

from aebench.components import Regularizer, RegularizerParams, per_member
from aebench.functional import contractive_penalty, kl_sparsity
from aebench.hookspecs import hookimpl


def _weights(layer) -> list[torch.Tensor]:
    # With tied weights the decoder weight *is* the encoder's: count it once.
    if layer.decoder_weight.data_ptr() == layer.weight.data_ptr():
        return [layer.weight]
    return [layer.weight, layer.decoder_weight]


class WeightL2(Regularizer):
    name = "weight-l2"
    summary = "Weight decay: Σ W² over the layer's encoder (and untied decoder) weights."

    def penalty(self, layer, h_in, h_out):
        return sum(w.pow(2).sum() for w in _weights(layer))


class WeightL1(Regularizer):
    name = "weight-l1"
    summary = "Σ |W| over the layer's encoder (and untied decoder) weights."

    def penalty(self, layer, h_in, h_out):
        return sum(w.abs().sum() for w in _weights(layer))


class ActivityL1(Regularizer):
    name = "activity-l1"
    summary = "Sparse activity: batch mean of Σ_j |h_j|."

    def penalty(self, layer, h_in, h_out):
        return h_out.abs().sum() / h_out.shape[0]


class KLParams(RegularizerParams):
    rho: float = per_member(0.05, gt=0, lt=1, description="Target mean activation ρ of each unit.")


class KLSparsity(Regularizer):
    name = "kl-sparsity"
    summary = "Σ_j KL(ρ || ρ̂_j), ρ̂_j the batch-mean activation (sigmoid units)."
    Params = KLParams

    def penalty(self, layer, h_in, h_out):
        return kl_sparsity(h_out, self.params.rho)


class Contractive(Regularizer):
    name = "contractive"
    summary = "Contractive: batch mean of ||∂h/∂h_in||_F² in closed form (Rifai et al. 2011)."

    def penalty(self, layer, h_in, h_out):
        return contractive_penalty(h_out, layer.weight, activation=layer.activation)


@hookimpl
def aebench_regularizers():
    return [WeightL2, WeightL1, ActivityL1, KLSparsity, Contractive]
