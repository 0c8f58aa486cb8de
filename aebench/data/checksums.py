"""SHA-256 checksums of data files (``SHA256SUMS`` files as written by sha256sum)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from aebench.errors import DataError


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_sums(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise DataError(f"checksum file {path} is missing.")
    sums = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*")] = digest
    return sums


def verify_sums(folder: Path, names: list[str], sums_file: str = "SHA256SUMS") -> dict[str, str]:
    """Check ``names`` in ``folder`` against its ``SHA256SUMS``; return name -> digest."""
    sums = read_sums(folder / sums_file)
    out = {}
    for name in names:
        path = folder / name
        if not path.is_file():
            raise DataError(f"data file {path} is missing.")
        if name not in sums:
            raise DataError(f"data file {path} has no entry in {folder / sums_file}.")
        digest = sha256_file(path)
        if digest != sums[name]:
            raise DataError(
                f"data file {path} does not match its checksum in {folder / sums_file} "
                f"(expected {sums[name][:12]}…, got {digest[:12]}…): it is corrupt or was replaced."
            )
        out[name] = digest
    return out
