"""Atomic files: written through a temporary file and renamed, so a crash leaves the old file or the new one.

Used by the results, the data cache, downloads, reports and checkpoints alike (no engine import).
"""

from __future__ import annotations

import json
import os
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


def clean_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files a killed write left in ``folder`` and its run folders (the caller holds the lock)."""
    removed = []
    for pattern in (
        f".*{TMP_SUFFIX}",
        f"runs/*/.*{TMP_SUFFIX}",
        f"runs/.*{TMP_SUFFIX}",
        f"report_files/.*{TMP_SUFFIX}",
    ):
        for p in folder.glob(pattern):
            if p.is_file() and not p.is_symlink():
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str)))


def write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda p: p.write_bytes(data))
