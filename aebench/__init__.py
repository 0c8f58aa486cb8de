"""aebench: a plug-in workbench for training and comparing deep autoencoders."""

from __future__ import annotations

__version__ = "0.1.0"

import os as _os
import sys as _sys


def _launched_as_cli() -> bool:
    """Whether this process is the ``aebench`` command (the script, or ``python -m aebench``)."""
    argv = list(getattr(_sys, "orig_argv", _sys.argv))
    module = argv[argv.index("-m") + 1 : argv.index("-m") + 2] if "-m" in argv else []
    return _os.path.basename(_sys.argv[0]) == "aebench" or module == ["aebench"]


#: SIGTERM / SIGHUP received while the command was still importing (see below)
_EARLY_SIGNAL: list[int] = []


def _stop_while_starting(signum: int, frame: object) -> None:
    from aebench.errors import StopSignal  # a small module: no import of torch behind it

    _EARLY_SIGNAL.append(signum)
    raise StopSignal(signum)  # the CLI reports it as 128 + signum, once its own handlers are in place


if _launched_as_cli():  # until the command's own handlers are in place: a SIGTERM is one line too
    import signal as _signal
    import threading as _threading

    if _threading.current_thread() is _threading.main_thread():
        for _sig in (_signal.SIGTERM, _signal.SIGHUP):
            if _signal.getsignal(_sig) == _signal.SIG_DFL:
                _signal.signal(_sig, _stop_while_starting)

try:  # torch takes seconds to import: a Ctrl-C then is the command's to report, in one line
    from aebench.errors import AebenchError, DataError, PluginError, ResultsError, SpecError
    from aebench.execution import run
    from aebench.hookspecs import hookimpl
    from aebench.plugins import register_plugin, registry
    from aebench.results import load_model, load_results
    from aebench.spec import Spec
except KeyboardInterrupt:
    if not _launched_as_cli():
        raise
    if _EARLY_SIGNAL:
        import signal as _signal

        what = _signal.Signals(_EARLY_SIGNAL[0]).name
        print(f"aebench: stopped by {what} while starting; nothing was done.", file=_sys.stderr)
        raise SystemExit(128 + _EARLY_SIGNAL[0]) from None
    print("aebench: interrupted while starting; nothing was done.", file=_sys.stderr)
    raise SystemExit(130) from None

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
