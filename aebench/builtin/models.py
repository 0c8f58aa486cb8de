"""The built-in model: the public stacked autoencoder (``aebench.models``), registered by the
same hook a plug-in uses."""

from __future__ import annotations

from aebench.hookspecs import hookimpl
from aebench.models import Stacked, StackedParams


@hookimpl
def aebench_models():
    return [Stacked]


__all__ = ["Stacked", "StackedParams", "aebench_models"]
