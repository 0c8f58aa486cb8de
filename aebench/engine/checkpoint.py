"""Checkpoints: ``weights_only`` loadable files, written atomically, in the output folder or
in any fsspec store (``--checkpoints URL``)."""

from __future__ import annotations

import errno
import io
import os
import pickle
import re
import uuid
import warnings
from pathlib import Path
from typing import Any, Protocol

import torch

from aebench.atomic import atomic_write
from aebench.errors import ResultsError
from aebench.urls import mask


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda p: torch.save(state, p))


def load_checkpoint(
    path: Path, map_location: torch.device | str = "cpu", strict: bool = False
) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None if it is absent; a truncated, corrupt or unsafe one
    is None with a warning (the run restarts from scratch), or with ``strict`` a
    :class:`ResultsError` saying which."""
    if not (path.is_file() or path.is_symlink()):  # absent, or a folder or pipe: nothing to resume
        return None
    try:
        # O_NOFOLLOW: a link (e.g. one put in place of runs/.ensemble-*.pt while the sweep runs)
        # is refused by the open itself, so none can be swapped in after a check
        fh = open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NOFOLLOW))
    except FileNotFoundError:  # removed since the check
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ResultsError(
                f"checkpoint {path} is a symbolic link; aebench reads only its own plain files and will not follow "
                "it. Remove the link."
            ) from None
        raise
    try:
        with fh:
            return torch.load(fh, map_location=map_location, weights_only=True)
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


class CheckpointSlot(Protocol):
    """Where one batch's checkpoint lives between epochs: ``save`` replaces it whole,
    ``load`` returns it (None if absent or unreadable), ``remove`` deletes it."""

    def save(self, state: dict[str, Any]) -> None: ...

    def load(self, map_location: torch.device | str = "cpu") -> dict[str, Any] | None: ...

    def remove(self) -> None: ...


class FileSlot:
    """A checkpoint file on a local (or shared) disk, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def save(self, state: dict[str, Any]) -> None:
        save_checkpoint(self.path, state)

    def load(self, map_location: torch.device | str = "cpu") -> dict[str, Any] | None:
        return load_checkpoint(self.path, map_location)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def __repr__(self) -> str:
        return str(self.path)


class UrlSlot:
    """A checkpoint in an fsspec store (``file://``, ``s3://``, ``gcs://``, ``memory://`` ...):
    written to a temporary name, then moved over the checkpoint (a rename on file systems that
    have one; object stores replace an object whole anyway)."""

    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url
        self.fs, self.path = fsspec.core.url_to_fs(url)

    def save(self, state: dict[str, Any]) -> None:
        buf = io.BytesIO()
        torch.save(state, buf)
        tmp = f"{self.path}.{uuid.uuid4().hex[:8]}.tmp"
        parent = self.path.rsplit("/", 1)[0]
        if parent:
            self.fs.makedirs(parent, exist_ok=True)
        with self.fs.open(tmp, "wb") as fh:
            fh.write(buf.getvalue())
        self.fs.mv(tmp, self.path)

    def load(self, map_location: torch.device | str = "cpu") -> dict[str, Any] | None:
        try:
            if not self.fs.exists(self.path):
                return None
            with self.fs.open(self.path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            warnings.warn(
                f"checkpoint {mask(self.url)} cannot be read ({mask(exc, self.url)}); the run restarts from scratch.",
                stacklevel=2,
            )
            return None
        try:
            return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
        except Exception as exc:
            warnings.warn(
                f"checkpoint {mask(self.url)} {_why_unloadable(exc)}; the run restarts from scratch.", stacklevel=2
            )
            return None

    def remove(self) -> None:
        try:
            self.fs.rm(self.path)
        except FileNotFoundError:
            pass

    def __repr__(self) -> str:
        return mask(self.url)


def checkpoint_slot(where: str | Path) -> CheckpointSlot:
    """A slot for a local path, or for a URL with a protocol (``memory://...``, ``s3://...``)."""
    if isinstance(where, str) and "://" in where:
        return UrlSlot(where)
    return FileSlot(Path(where))
