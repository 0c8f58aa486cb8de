"""Checksummed downloads with mirror fall-back (``aebench data download NAME``)."""

from __future__ import annotations

import hashlib
import urllib.request
import warnings
from pathlib import Path

from aebench.atomic import atomic_write
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
# https first; the lab's server has long served plain http too, tried last
LISA = ["https://www.iro.umontreal.ca/~lisa/icml2007data/", "http://www.iro.umontreal.ca/~lisa/icml2007data/"]
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


def validate_archive(name: str, path: Path) -> None:
    """Check an original variation archive's contents before it is kept: a zip holding one
    ``*train*.amat`` and one ``*test*.amat`` with the original row counts, 784 pixels in
    [0, 1] plus an integer label per row. (No checksum was ever published for these.)"""
    import zipfile

    import numpy as np

    from aebench.data.amat import classes_of, row_problem
    from aebench.data.variations import SIZES

    if not zipfile.is_zipfile(path):
        raise DataError(f"{path.name} is not a zip archive")
    train_rows, valid_rows, test_rows = SIZES[name]
    with zipfile.ZipFile(path) as zf:
        members = [m for m in zf.namelist() if m.endswith(".amat")]
        for part, rows in (("train", train_rows + valid_rows), ("test", test_rows)):
            found = [m for m in members if part in Path(m).name]
            if len(found) != 1:
                raise DataError(f"{path.name} must hold one *{part}*.amat file (found {len(found)})")
            n = 0
            with zf.open(found[0]) as fh:
                for line in fh:
                    row = np.array(line.split(), dtype=np.float64) if line.strip() else None
                    if row is None:
                        continue
                    problem = row_problem(row, 784, classes_of(name))
                    if problem:
                        raise DataError(
                            f"{path.name}:{found[0]} line {n + 1} is not 784 pixels in [0, 1] and an integer "
                            f"label: {problem}"
                        )
                    n += 1
            if n != rows:
                raise DataError(f"{path.name}:{found[0]} has {n} rows; the original has {rows}")


def download(name: str, dest: Path, mirrors: list[str] | None = None) -> dict[str, str]:
    """Fetch every file of ``name`` into ``dest``, trying each mirror in turn.

    MNIST is checked against its known SHA-256 sums; a variation archive (no published
    sum) is validated by content (``validate_archive``) and unpacked. A file that fails is
    never kept, and a ``dest`` folder created here is removed again when nothing was saved.
    """
    default, sums = sources(name)
    bases = [m if m.endswith("/") else m + "/" for m in (mirrors or []) + default]
    created = not dest.exists()
    got = {}
    try:
        for fname, digest in sums.items():
            got[fname] = _from_any(name, fname, digest, bases, dest)
            if digest is None:
                warnings.warn(
                    f"{fname} has no published checksum; its contents were validated; sha256 {got[fname]}", stacklevel=2
                )
        if name == "mnist":
            atomic_write(dest / "SHA256SUMS", lambda p: p.write_text("".join(f"{d}  {f}\n" for f, d in got.items())))
    except BaseException:
        if created and dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()
        raise
    return got


def _from_any(name: str, fname: str, digest: str | None, bases: list[str], dest: Path) -> str:
    import tempfile
    import zipfile

    errors = []
    for base in bases:
        with tempfile.TemporaryDirectory(prefix=".aebench-download-") as tmp:
            part = Path(tmp) / fname
            try:
                sha = fetch(base + fname, part, digest)
                if digest is None:
                    validate_archive(name, part)
            except (OSError, DataError, ValueError) as exc:
                errors.append(f"{base}: {exc}")
                continue
            dest.mkdir(parents=True, exist_ok=True)
            if digest is None:
                with zipfile.ZipFile(part) as zf:
                    for member in (m for m in zf.namelist() if m.endswith(".amat")):
                        data = zf.read(member)
                        atomic_write(dest / Path(member).name, lambda p, data=data: p.write_bytes(data))
            atomic_write(dest / fname, lambda p, part=part: p.write_bytes(part.read_bytes()))
            return sha
    raise DataError(f"could not download {fname} for {name!r} from any mirror: " + "; ".join(errors))


__all__ = ["download", "fetch", "sources"]
