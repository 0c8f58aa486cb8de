"""Corruption processes Q(h_c | h): applied to layer inputs while training only."""

from __future__ import annotations

import torch

from aebench.components import Corruption, CorruptionParams, per_member
from aebench.hookspecs import hookimpl


class NoneParams(CorruptionParams):
    pass


class NoCorruption(Corruption):
    name = "none"
    summary = "No corruption (a plain autoencoder)."
    Params = NoneParams

    def __call__(self, h, generator):
        return h


class GaussianParams(CorruptionParams):
    level: float = per_member(0.3, ge=0, description="Standard deviation σ of the added noise N(0, σ²).")


class Gaussian(Corruption):
    name = "gaussian"
    summary = "Additive isotropic Gaussian noise: h + σ ε, ε ~ N(0, I)."
    Params = GaussianParams

    def __call__(self, h, generator):
        return h + self.params.level * torch.randn(h.shape, generator=generator, device=h.device, dtype=h.dtype)


class MaskingParams(CorruptionParams):
    level: float = per_member(0.25, ge=0, le=1, description="Fraction of units set to zero, each independently.")


class Masking(Corruption):
    name = "masking"
    summary = "Masking noise: each unit is set to 0 with probability `level`."
    Params = MaskingParams

    def __call__(self, h, generator):
        keep = torch.rand(h.shape, generator=generator, device=h.device) >= self.params.level
        return h * keep


class SaltPepperParams(CorruptionParams):
    level: float = per_member(0.1, ge=0, le=1, description="Fraction of units replaced by `low` or `high`.")
    low: float = per_member(0.0, description="Value of 'pepper'.")
    high: float = per_member(1.0, description="Value of 'salt'.")


class SaltPepper(Corruption):
    name = "salt-pepper"
    summary = "Salt-and-pepper noise: a fraction `level` of units set to low or high with equal probability."
    Params = SaltPepperParams

    def __call__(self, h, generator):
        p = self.params
        u = torch.rand(h.shape, generator=generator, device=h.device)
        salt = torch.rand(h.shape, generator=generator, device=h.device) < 0.5
        hit = u < p.level
        return torch.where(hit, torch.where(salt, p.high, p.low).to(h.dtype), h)


class CodeNoiseParams(CorruptionParams):
    level: float = per_member(
        4.0, ge=0, description="Standard deviation of Gaussian noise added to the pre-activation."
    )


class CodeNoise(Corruption):
    name = "code-noise"
    summary = "Gaussian noise on the top layer's pre-activation (semantic hashing: pushes codes to binary)."
    Params = CodeNoiseParams
    site = "preactivation"

    def applies_to(self, i: int, n_layers: int) -> bool:
        layers = self.params.layers
        return i == n_layers - 1 if layers is None else i in layers

    def __call__(self, a, generator):
        return a + self.params.level * torch.randn(a.shape, generator=generator, device=a.device, dtype=a.dtype)


@hookimpl
def aebench_corruptions():
    return [NoCorruption, Gaussian, Masking, SaltPepper, CodeNoise]
