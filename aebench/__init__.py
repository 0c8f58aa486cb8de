"""aebench: a plug-in workbench for training and comparing deep autoencoders."""

from __future__ import annotations

__version__ = "0.1.0"

from aebench.errors import AebenchError, DataError, PluginError, ResultsError, SpecError
from aebench.hookspecs import hookimpl
from aebench.plugins import register_plugin, registry
from aebench.results import load_model, load_results
from aebench.spec import Spec
from aebench.sweep import run

__all__ = [
    "AebenchError",
    "DataError",
    "PluginError",
    "ResultsError",
    "SpecError",
    "Spec",
    "hookimpl",
    "load_model",
    "load_results",
    "register_plugin",
    "registry",
    "run",
    "__version__",
]
