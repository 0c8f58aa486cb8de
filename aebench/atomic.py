"""Atomic files: written through a temporary file and renamed, so a crash leaves the old file or the new one.

Used by the results, the data cache, downloads, reports and checkpoints alike (no engine import).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aebench.errors import ResultsError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: the process's umask, read once: result files get the mode a plain ``open`` would give them
UMASK = _umask()
TMP_SUFFIX = ".tmp"


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, fsync, then rename over ``path``.

    A crash (or a full disk) leaves either the old file or the new one, never half of one.
    A symbolic link at ``path`` is refused rather than followed (or replaced): aebench
    writes plain files only, inside its folders. The file gets ``0666 & ~umask``, so a
    group can read a shared results folder.
    """
    if path.is_symlink():
        raise ResultsError(
            f"{path} is a symbolic link; aebench writes only plain files and will not follow it. Remove the link."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as exc:  # a read-only or full folder: name the file that could not be written
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~UMASK)
        os.replace(tmp_path, path)
    except OSError as exc:  # name the file the user knows, not our temporary one (or none at all)
        tmp_path.unlink(missing_ok=True)
        if exc.filename in (None, tmp, str(tmp_path)) and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


#: a leftover of :func:`atomic_write`: ``.<file>.<mkstemp's random characters>.tmp``
TEMPORARY = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{1,16}" + re.escape(TMP_SUFFIX) + "$")


def is_temporary(name: str, targets: tuple[str, ...] | None = None) -> bool:
    """Whether ``name`` is a temporary file of :func:`atomic_write` (for one of ``targets``, when given)."""
    found = TEMPORARY.match(name)
    return found is not None and (targets is None or found.group("target") in targets)


def clean_temporaries(folder: Path, top: tuple[str, ...] | None = None, deep: bool = True) -> list[Path]:
    """Remove the temporary files a killed write left in ``folder`` and, with ``deep``, in ``runs/``,
    its run folders and ``report_files/`` (the caller holds the lock); ``top``: at the top, only
    those of these files.

    Nothing is followed: a link (or a non-folder) where a folder belongs is skipped, and only plain
    files named as :func:`atomic_write` names its temporaries are removed."""
    removed: list[Path] = []

    def sweep(where: Path, targets: tuple[str, ...] | None) -> None:
        try:
            entries = list(os.scandir(where))
        except OSError:
            return
        for e in entries:
            if e.is_file(follow_symlinks=False) and is_temporary(e.name, targets):
                Path(e.path).unlink(missing_ok=True)
                removed.append(Path(e.path))

    def real_folders(where: Path) -> list[Path]:
        try:
            return [Path(e.path) for e in os.scandir(where) if e.is_dir(follow_symlinks=False)]
        except OSError:
            return []

    if not Path(folder).is_dir():
        return removed
    sweep(Path(folder), top)
    if not deep:
        return removed
    subfolders = {p.name: p for p in real_folders(Path(folder))}
    if "runs" in subfolders:
        sweep(subfolders["runs"], None)
        for run in real_folders(subfolders["runs"]):
            sweep(run, None)
    if "report_files" in subfolders:
        sweep(subfolders["report_files"], None)
    return removed


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str)))


def write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda p: p.write_bytes(data))
