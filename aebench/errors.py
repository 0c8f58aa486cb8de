"""Errors that are the user's to fix.

Everything derived from :class:`AebenchError` is reported by the CLI as a one-paragraph
message with exit code 2 and no traceback; anything else is a bug in aebench or a
plug-in and keeps its traceback.
"""

from __future__ import annotations


class AebenchError(Exception):
    """A problem with the user's input (spec, files, plug-ins, data)."""


class SpecError(AebenchError):
    """The experiment spec is invalid; the message names the field and the value."""


class DataError(AebenchError):
    """A data file is missing, truncated or does not match its checksum."""


class PluginError(AebenchError):
    """A plug-in is unknown, conflicting or broken."""


class ResultsError(AebenchError):
    """An output directory cannot be used (locked, belongs to another spec, corrupt)."""


class SaveError(ResultsError):
    """Results could not be saved (disk full, folder gone read-only): exit code 1, since the
    input was fine; the earlier results are intact and the sweep resumes with ``--resume``."""

    exit_code = 1


class StopSignal(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a scheduler's time limit, a closed terminal), raised like Ctrl-C so
    that runs keep their checkpoint and are marked ``interrupted``; the CLI exits 128 + signum."""

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stopped_by(exc: BaseException) -> str:
    """Who stopped a run, for its ``status.json``: a signal by name, or the user (Ctrl-C, Stop)."""
    import signal

    if isinstance(exc, StopSignal) and exc.signum != signal.SIGINT:
        return f"stopped by {signal.Signals(exc.signum).name}"
    return "stopped by the user"


class RunFailed(Exception):
    """Raised inside a run when it must stop as ``failed`` (diverged, bad data)."""
