"""Atomic files: checkpoints (``weights_only`` loadable), JSON and netCDF."""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

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


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda p: torch.save(state, p))


def load_checkpoint(
    path: Path, map_location: torch.device | str = "cpu", strict: bool = False
) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None if it is absent; a truncated, corrupt or unsafe one
    is None with a warning (the run restarts from scratch), or with ``strict`` a
    :class:`ResultsError` saying which."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # any unpickling/zip error means: start this run again
        why = _why_unloadable(exc)
        if strict:
            raise ResultsError(f"checkpoint {path} {why}.") from None
        warnings.warn(f"checkpoint {path} {why}; the run restarts from scratch.", stacklevel=2)
        return None


def _why_unloadable(exc: Exception) -> str:
    """A file that names Python objects (a pickle payload) is refused by ``weights_only``:
    say so, rather than calling it unreadable, since someone may have tampered with it."""
    found = re.search(r"GLOBAL (\S+)", str(exc)) if isinstance(exc, pickle.UnpicklingError) else None
    if found:
        return (
            f"was refused for safety: it names the Python object {found.group(1)}, which a weights-only load "
            "never runs; it was not loaded (aebench writes tensors and plain data only)"
        )
    return f"is unreadable ({type(exc).__name__})"
