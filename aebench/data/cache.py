"""The generated-data cache under ``$AEBENCH_DATA`` (default ``~/.cache/aebench``).

A cached set is ``<name>-seed<seed>.npz`` plus ``<name>-seed<seed>.json`` holding the
SHA-256 of its arrays' bytes. Files are written atomically; a file whose arrays no longer
match their checksum is reported and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from aebench.engine.checkpoint import atomic_write

KEYS = ("train_x", "train_y", "valid_x", "valid_y", "test_x", "test_y")


def data_home() -> Path:
    return Path(os.environ.get("AEBENCH_DATA", Path.home() / ".cache" / "aebench"))


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in KEYS:
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def paths(name: str, seed: int) -> tuple[Path, Path]:
    base = data_home() / f"{name}-seed{seed}"
    return base.with_suffix(".npz"), base.with_suffix(".json")


def load_cached(name: str, seed: int) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None if absent; a corrupt file is reported and treated as absent."""
    npz, meta = paths(name, seed)
    if not npz.is_file() or not meta.is_file():
        return None
    try:
        expected = json.loads(meta.read_text())["sha256"]
        with np.load(npz) as f:
            arrays = {k: f[k] for k in KEYS}
    except Exception as exc:  # truncated zip, bad JSON, missing key: all mean "rebuild"
        warnings.warn(f"cached data {npz} is unreadable ({type(exc).__name__}); rebuilding it.", stacklevel=2)
        return None
    if arrays_digest(arrays) != expected:
        warnings.warn(f"cached data {npz} does not match its checksum in {meta.name}; rebuilding it.", stacklevel=2)
        return None
    return arrays


def store(name: str, seed: int, arrays: dict[str, np.ndarray], info: dict) -> str:
    npz, meta = paths(name, seed)
    digest = arrays_digest(arrays)

    def write_npz(p: Path) -> None:
        with open(p, "wb") as fh:
            np.savez(fh, **arrays)

    atomic_write(npz, write_npz)
    atomic_write(meta, lambda p: p.write_text(json.dumps({**info, "sha256": digest}, indent=2)))
    return digest
