"""aebench: a plug-in workbench for training and comparing deep autoencoders."""

from __future__ import annotations

import os as _os
import sys as _sys

from aebench.version import __version__


def _launched_as_cli() -> bool:
    """Whether this process is the ``aebench`` command (the script, or ``python -m aebench``)."""
    argv = list(getattr(_sys, "orig_argv", _sys.argv))
    module = argv[argv.index("-m") + 1 : argv.index("-m") + 2] if "-m" in argv else []
    return _os.path.basename(_sys.argv[0]) == "aebench" or module == ["aebench"]


try:  # torch takes seconds to import: a Ctrl-C then is the command's to report, in one line
    from aebench import catalogue
    from aebench.compare import open_results
    from aebench.errors import AebenchError, DataError, PluginError, ResultsError, SpecError
    from aebench.execution import run
    from aebench.hookspecs import hookimpl
    from aebench.plugins import register_plugin, registry
    from aebench.results import load_model, load_results
    from aebench.spec import Spec
except KeyboardInterrupt:
    if not _launched_as_cli():
        raise
    print("aebench: interrupted while starting; nothing was done.", file=_sys.stderr)
    raise SystemExit(130) from None

__all__ = [
    "AebenchError",
    "DataError",
    "PluginError",
    "ResultsError",
    "SpecError",
    "Spec",
    "catalogue",
    "hookimpl",
    "load_model",
    "load_results",
    "open_results",
    "register_plugin",
    "registry",
    "run",
    "__version__",
]
