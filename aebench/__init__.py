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


#: CPU kernel choices that make results the same on every x86 CPU with AVX2, set before torch loads.
#: MKL (torch's CPU BLAS) and oneDNN otherwise pick code paths by the CPU they find (AVX-512,
#: AMX...), whose different rounding a training run amplifies: the same versions and seeds then give
#: other numbers on another machine. MKL's Conditional Numerical Reproducibility pins its path; a
#: user's own setting wins. (ATen's own kernels are left alone: pinning them changed no result
#: measured here, and made torch.compile's CPU code produce NaN.)
CPU_REPRODUCIBLE = {"MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
if "torch" not in _sys.modules:  # too late once torch is loaded: then the caller chose
    for _key, _value in CPU_REPRODUCIBLE.items():
        _os.environ.setdefault(_key, _value)


def _stop_while_starting(signum: int, frame: object) -> None:
    """SIGTERM / SIGHUP before the command's own handlers are in place: nothing is written yet, so
    say so in one line and leave at once (an exception raised inside a C extension's import would
    come out as that import's error, with a traceback)."""
    import signal

    _os.write(2, f"aebench: stopped by {signal.Signals(signum).name} while starting; nothing was done.\n".encode())
    _os._exit(128 + signum)


if _launched_as_cli():  # the command's own handlers (aebench.cli.main) replace these
    import multiprocessing as _mp
    import signal as _signal
    import threading as _threading

    # not in its worker processes (spawned with the command's argv): they are not starting the command
    if _threading.current_thread() is _threading.main_thread() and _mp.parent_process() is None:
        for _sig in (_signal.SIGTERM, _signal.SIGHUP):
            if _signal.getsignal(_sig) == _signal.SIG_DFL:
                _signal.signal(_sig, _stop_while_starting)

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
    # leave at once: a SystemExit here still unwinds a half-imported torch, and Python may then end
    # by SIGINT instead of the status 130 the command promises (seen on CI)
    _os.write(2, b"aebench: interrupted while starting; nothing was done.\n")
    _os._exit(130)

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
