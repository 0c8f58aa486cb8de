"""Checksummed downloads with mirror fall-back (``aebench data download NAME``)."""

from __future__ import annotations

import hashlib
import urllib.request
import warnings
from pathlib import Path

from aebench.engine.checkpoint import atomic_write
from aebench.errors import DataError

MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
#: SHA-256 of the .gz files, as in data/mnist/SHA256SUMS
MNIST_SUMS = {
    "train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    "train-labels-idx1-ubyte.gz": "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
    "t10k-images-idx3-ubyte.gz": "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
    "t10k-labels-idx1-ubyte.gz": "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
}
LISA = ["http://www.iro.umontreal.ca/~lisa/icml2007data/"]
#: the original archives of the variation sets; their checksums were not published, so a
#: download prints the SHA-256 it got for you to pin (``sums`` = None)
ARCHIVES = {
    "mnist-basic": "mnist.zip",
    "mnist-rot": "mnist_rotation_new.zip",
    "mnist-bg-rand": "mnist_background_random.zip",
    "mnist-bg-img": "mnist_background_images.zip",
    "mnist-bg-img-rot": "mnist_rotation_back_image_new.zip",
    "rect": "rectangles.zip",
    "rect-img": "rectangles_images.zip",
    "convex": "convex.zip",
}


def sources(name: str) -> tuple[list[str], dict[str, str | None]]:
    if name == "mnist":
        return MNIST_MIRRORS, dict(MNIST_SUMS)
    if name in ARCHIVES:
        return LISA, {ARCHIVES[name]: None}
    raise DataError(f"data set {name!r} has no upstream to download; known: mnist, {', '.join(ARCHIVES)}.")


def fetch(url: str, dest: Path, sha256: str | None, timeout: float = 60) -> str:
    """Download ``url`` to ``dest`` atomically and return its SHA-256; raise on mismatch."""
    h = hashlib.sha256()

    def write(tmp: Path) -> None:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as fh:
            while block := resp.read(1 << 20):
                h.update(block)
                fh.write(block)
        if sha256 is not None and h.hexdigest() != sha256:
            raise DataError(f"{url} does not match its checksum (got {h.hexdigest()[:12]}…, expected {sha256[:12]}…)")

    atomic_write(dest, write)
    return h.hexdigest()


def download(name: str, dest: Path, mirrors: list[str] | None = None) -> dict[str, str]:
    """Fetch every file of ``name`` into ``dest``, trying each mirror in turn."""
    default, sums = sources(name)
    bases = [m if m.endswith("/") else m + "/" for m in (mirrors or []) + default]
    got = {}
    for fname, digest in sums.items():
        errors = []
        for base in bases:
            try:
                got[fname] = fetch(base + fname, dest / fname, digest)
                break
            except (OSError, DataError) as exc:
                errors.append(f"{base}: {exc}")
        else:
            raise DataError(f"could not download {fname} for {name!r} from any mirror: " + "; ".join(errors))
        if digest is None:
            warnings.warn(f"{fname} has no published checksum; got sha256 {got[fname]}", stacklevel=2)
    if name == "mnist":
        (dest / "SHA256SUMS").write_text("".join(f"{d}  {f}\n" for f, d in got.items()))
    return got


__all__ = ["download", "fetch", "sources"]
