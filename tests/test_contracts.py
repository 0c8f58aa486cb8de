"""Every built-in passes the same contract suite a third-party author runs (aebench.testing)."""

from __future__ import annotations

import pytest
import torch

import aebench
from aebench.components import Corruption
from aebench.testing import check_component

BUILTIN = [
    (kind, name)
    for kind in aebench.registry().kinds()
    for name in aebench.registry().names(kind)
    if aebench.registry().entry(kind, name).dist == "aebench"
    and not (kind == "dataset" and name not in ("digits", "mnist"))
]


@pytest.mark.parametrize("kind,name", BUILTIN, ids=[f"{k}:{n}" for k, n in BUILTIN])
def test_builtin_passes_the_contract(kind, name):
    check_component(aebench.registry().get(kind, name))


def test_the_contract_catches_a_corruption_that_ignores_the_generator():
    class Sloppy(Corruption):
        name = "sloppy"
        summary = "uses the global RNG"

        def __call__(self, h, generator):
            return h + torch.randn(h.shape)

    with pytest.raises(AssertionError, match="generator it is given"):
        check_component(Sloppy)
