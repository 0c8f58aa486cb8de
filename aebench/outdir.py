"""What aebench writes under an output folder, and the check that it is aebench's own.

Every path aebench writes or locks below ``--out`` (``.lock``, ``spec.toml``,
``results.nc``, ``notes.json``, ``runs/<id>/`` and its files, ``runs/.ensemble-*.pt``, the report and
``report_files/``) must be a plain file or a real folder, or absent: a symbolic link or a
non-regular file (a FIFO, a device, a folder where a file belongs) is refused with one
message naming it (a :class:`ResultsError`, exit 2) and never followed. The ``--out``
folder itself may be reached through a link: it is the user's own choice of place.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

from aebench.errors import ResultsError

#: the files of one run folder, ``runs/<run-id>/``
RUN_FILES = ("spec.json", "status.json", "metrics.nc", "checkpoint.pt", "error.log")
#: the launch's note and tags (:mod:`aebench.catalogue`), written by ``aebench tag`` and the Workbench
NOTES_FILE = "notes.json"
#: the files and folders at the top of an output folder
TOP_FILES = (".lock", "spec.toml", "results.nc", "report.html", "report.md", NOTES_FILE)
TOP_FOLDERS = ("runs", "report_files")
#: what aebench's atomic writes leave at the top when killed: ``.<file>.XXXXXXXX.tmp`` of these
#: (``probe``: the dask executor's shared-disk probe)
TOP_TEMPORARIES = (*TOP_FILES, "probe")


def what_is(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "a plain file" if stat.S_ISREG(mode) else "not a plain file"


def check_own(root: Path, path: Path, kind: Literal["file", "folder"] = "file") -> None:
    """Refuse ``path`` (below ``root``) unless it and every folder between them is aebench's
    own kind of thing: folders real folders, the last a plain file (or folder), none a link.
    An absent path (or one below an absent folder) is fine: aebench creates it."""
    node = Path(root)
    parts = Path(path).relative_to(root).parts
    for i, part in enumerate(parts):
        node = node / part
        try:
            mode = os.lstat(node).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISLNK(mode):
            raise ResultsError(
                f"{node} is a symbolic link; aebench writes only inside {root} and will not follow it. Remove the link."
            )
        want_folder = i < len(parts) - 1 or kind == "folder"
        if want_folder and not stat.S_ISDIR(mode):
            raise ResultsError(
                f"{node} is {what_is(mode)} where aebench keeps its own folder; move it away or choose another --out."
            )
        if not want_folder and not stat.S_ISREG(mode):
            raise ResultsError(
                f"{node} is {what_is(mode)} where aebench keeps its own file; move it away or choose another --out."
            )


def check_output_tree(out: Path, run_ids: list[str]) -> None:
    """Every path a run of ``run_ids`` writes under ``out`` (checked before anything starts)."""
    out = Path(out)
    for name in TOP_FILES:
        check_own(out, out / name)
    for name in TOP_FOLDERS:
        check_own(out, out / name, "folder")
    check_report_files(out)
    runs = out / "runs"
    if runs.is_dir():
        for p in runs.glob(".ensemble-*.pt"):
            check_own(out, p)
    for run_id in run_ids:
        check_own(out, runs / run_id, "folder")
        for name in RUN_FILES:
            check_own(out, runs / run_id / name)


def check_report_files(out: Path) -> None:
    """The report's files: ``report.html``, ``report.md``, ``report_files/`` and the figures in it."""
    out = Path(out)
    for name in ("report.html", "report.md"):
        check_own(out, out / name)
    files = out / "report_files"
    check_own(out, files, "folder")
    if files.is_dir():
        for p in files.iterdir():
            if p.suffix in (".png", ".svg"):
                check_own(out, p)


def held(path: Path) -> bool:
    """Whether a live aebench process holds ``path/.lock`` (a lock whose holder died is free)."""
    import fcntl

    lock = path / ".lock"
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
