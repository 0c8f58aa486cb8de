"""Errors that are the user's to fix.

Everything derived from :class:`AebenchError` is reported by the CLI as a one-paragraph
message with exit code 2 and no traceback; anything else is a bug in aebench or a
plug-in and keeps its traceback.
"""

from __future__ import annotations

import errno


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


# ------------------------------------------------------------------ file-system errors (the one place)
# The CLI, the execution package and the Workbench all say a file-system error with these.

#: a write that had a usable path but no room: "saving failed" (exit 1), not bad input (exit 2)
NO_ROOM_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
#: a path that may not be written
NO_ACCESS_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)
#: how torch.save reports a write that ran out of room (its C++ stream writer, no errno)
TORCH_WRITE_FAILS = ("inline_container.cc", "pytorchstreamwriter")


def is_save_failure(exc: BaseException) -> bool:
    """A write that failed for want of space or permission (netCDF and torch report these as
    RuntimeError, with the words only)."""
    if isinstance(exc, OSError) and exc.errno in NO_ROOM_ERRNOS + NO_ACCESS_ERRNOS:
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        w in text for w in ("no space", "disk quota", "read-only file system", "permission denied", *TORCH_WRITE_FAILS)
    )


def os_error_reason(exc: BaseException) -> str:
    """What went wrong, in words (no path): the errno's text, or what torch's internals mean."""
    if any(w in str(exc).lower() for w in TORCH_WRITE_FAILS):
        return "a checkpoint could not be written: is the disk full?"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def describe_os_error(exc: OSError) -> str:
    """``PATH: what went wrong; what to do`` for any OSError (the paths it names, its errno's text)."""
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    what = os_error_reason(exc)
    if exc.errno in NO_ROOM_ERRNOS:
        hint = "free some space (or fix the disk) and run the command again; a run continues with --resume"
    elif exc.errno in NO_ACCESS_ERRNOS:
        hint = "choose a folder you can write, or change its permissions"
    else:
        hint = "check the path"
    return f"{paths}: {what}; {hint}." if paths else f"{what}; {hint}."


def os_error_exit_code(exc: OSError) -> int:
    """1 when a write ran out of room (the input was fine), else 2."""
    return 1 if exc.errno in NO_ROOM_ERRNOS else 2
