"""Data sets: full MNIST from the embedded IDX files, and scikit-learn's 8×8 digits."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from aebench.components import Dataset, DatasetParams, DataSplits, Split
from aebench.data import cache, read_idx, sha256_file, variations, verify_sums
from aebench.data.amat import classes_of, find_amat, read_amat
from aebench.errors import DataError
from aebench.hookspecs import hookimpl

MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}


def default_mnist_dir() -> Path:
    """``$AEBENCH_MNIST``; else the checkout's embedded ``data/mnist``; else the cache
    folder that ``aebench data download mnist`` fills (an installed wheel has no data/)."""
    env = os.environ.get("AEBENCH_MNIST")
    if env:
        return Path(env)
    embedded = Path(__file__).resolve().parents[2] / "data" / "mnist"
    return embedded if embedded.is_dir() else cache.data_home() / "mnist"


class SubsetParams(DatasetParams):
    eval_subset: int | None = Field(
        None, ge=1, description="Use at most the first N rows of the validation and test splits."
    )


def take(split: Split, n: int | None, what: str) -> Split:
    """The first ``n`` rows; ``data.subset`` larger than the split is an error, ``eval_subset`` caps."""
    if n is None:
        return split
    if what == "data.eval_subset":
        n = min(n, len(split.y))
    if n > len(split.y):
        raise DataError(f"{what} = {n} is larger than the split ({len(split.y)} rows).")
    return Split(split.x[:n], split.y[:n])


class MnistParams(SubsetParams):
    path: str | None = Field(None, description="Folder with the IDX files and SHA256SUMS; default: data/mnist.")
    normalize: bool = Field(True, description="Scale pixels from 0..255 to [0, 1].")


@functools.lru_cache(maxsize=4)
def _read_mnist(folder: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    path = Path(folder)
    if not path.is_dir():
        raise DataError(
            f"MNIST folder {path} does not exist: run `aebench data download mnist`, or point "
            "AEBENCH_MNIST (or data.path) at a folder with the four IDX files and their SHA256SUMS."
        )
    sums = verify_sums(path, list(MNIST_FILES.values()))
    arrays = {key: read_idx(path / name) for key, name in MNIST_FILES.items()}
    for part in ("train", "test"):
        if len(arrays[f"{part}_x"]) != len(arrays[f"{part}_y"]):
            raise DataError(f"MNIST {part} images and labels in {path} differ in length.")
    return arrays, sums


class Mnist(Dataset):
    name = "mnist"
    summary = "MNIST digits, 28×28, split 50k train / 10k valid / 10k test as in the papers."
    Params = MnistParams

    def info(self):
        return {"sizes": (50000, 10000, 10000), "cached": "embedded", "checksum": "data/mnist/SHA256SUMS"}

    def load(self) -> DataSplits:
        p = self.params
        arrays, sums = _read_mnist(str(Path(p.path) if p.path else default_mnist_dir()))
        x = arrays["train_x"].reshape(len(arrays["train_x"]), -1)
        y = arrays["train_y"].astype(np.int64)
        test = Split(arrays["test_x"].reshape(len(arrays["test_x"]), -1), arrays["test_y"].astype(np.int64))
        return DataSplits(
            name="mnist",
            train=take(Split(x[:50000], y[:50000]), p.subset, "data.subset"),
            valid=take(Split(x[50000:], y[50000:]), p.eval_subset, "data.eval_subset"),
            test=take(test, p.eval_subset, "data.eval_subset"),
            scale=1 / 255 if p.normalize else 1.0,
            shape=(28, 28),
            n_classes=10,
            checksums=sums,
        )


class Digits(Dataset):
    name = "digits"
    summary = "scikit-learn's 8×8 handwritten digits (1797 images), split 1197/300/300; small and fast."
    Params = SubsetParams

    def load(self) -> DataSplits:
        from sklearn.datasets import load_digits

        d = load_digits()
        x = d.data.astype(np.uint8)  # values 0..16
        y = d.target.astype(np.int64)
        p = self.params
        return DataSplits(
            name="digits",
            train=take(Split(x[:1197], y[:1197]), p.subset, "data.subset"),
            valid=take(Split(x[1197:1497], y[1197:1497]), p.eval_subset, "data.eval_subset"),
            test=take(Split(x[1497:], y[1497:]), p.eval_subset, "data.eval_subset"),
            scale=1 / 16,
            shape=(8, 8),
            n_classes=10,
            checksums={"sklearn.datasets.load_digits": "bundled"},
        )

    def info(self):
        return {"sizes": (1197, 300, 300), "cached": "bundled", "checksum": "scikit-learn"}


class VariationParams(SubsetParams):
    seed: int = Field(0, ge=0, description="Seed of the generating procedure (same seed, same bytes).")
    source: Literal["generated", "amat"] = Field(
        "generated", description="generated here, or read from the original .amat files."
    )
    path: str | None = Field(None, description="With source = 'amat': folder holding *train*.amat and *test*.amat.")


def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 70k embedded MNIST digits as float images in [0, 1] and labels."""
    d = Mnist(Mnist.Params()).load()
    x = np.concatenate([d.train.x, d.valid.x, d.test.x]).reshape(-1, 28, 28) / 255.0
    return x, np.concatenate([d.train.y, d.valid.y, d.test.y])


@functools.lru_cache(maxsize=4)
def _cached(name: str, seed: int, mtime_ns: int) -> tuple[dict[str, np.ndarray], str] | None:
    """The verified cache file, read once per process (and again when the file changes)."""
    arrays = cache.load_cached(name, seed)
    return None if arrays is None else (arrays, cache.arrays_digest(arrays))


def variation_chunks(name: str, seed: int, first_only: bool = False) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``(split, x, y)`` chunks of a generated variation set, in order: the one procedure that makes it.

    Each split has its own generator (spawned from the set's), and rows are generated 5,000 at a
    time, so the first chunk of a split does not depend on the rest: ``first_only`` yields just
    those three chunks (what :func:`fingerprint` hashes).
    """
    sizes = variations.SIZES[name]
    digits = None
    if name.startswith("mnist"):
        x, y = mnist_digits()
        # Each set draws its own digits (seeded by its name too): the five MNIST-based sets
        # are independent samples, not the same digits in the same order.
        perm = variations.set_rng(name, seed).permutation(len(y))[: sum(sizes)]
        digits = (x[perm], y[perm])
    rngs = variations.set_rng(name, seed).spawn(4)[1:]
    start = 0
    for split, n, rng in zip(("train", "valid", "test"), sizes, rngs):
        for c0 in range(0, min(n, CHUNK) if first_only else n, CHUNK):
            m = min(CHUNK, n - c0)
            part = (
                None
                if digits is None
                else (digits[0][start + c0 : start + c0 + m], digits[1][start + c0 : start + c0 + m])
            )
            yield (split, *variations.generate(name, part, m, rng))
        start += n


#: rows generated at a time (part of the recipe: a generator's draws depend on the chunk size)
CHUNK = 5000


def fingerprint(name: str, seed: int = 0) -> dict[str, str]:
    """split -> sha256 (first 16 hex digits) of the first chunk of that split of a generated set.

    The generation depends on numpy's generator streams, scipy's Qhull (``convex``) and the
    photographs in scikit-image's and scikit-learn's wheels (``*-img``): a change in any of
    them changes a fingerprint. ``tests/test_variations.py`` holds the expected values.
    """
    out = {}
    for split, x, y in variation_chunks(name, seed, first_only=True):
        out[split] = cache.arrays_digest({"x": x, "y": y}, keys=("x", "y"))[:16]
    return out


def make_variation(name: str, seed: int, progress: bool = False) -> tuple[dict[str, np.ndarray], str, bool]:
    """(arrays, checksum, was cached) of a generated variation set, building the cache if needed."""
    npz = cache.paths(name, seed)[0]
    hit = (
        _cached(name, seed, npz.stat().st_mtime_ns)
        if npz.is_file() and cache.recipe_of(name, seed) == variations.RECIPE
        else None
    )
    if hit is not None:
        return hit[0], hit[1], True
    cache.usable_home()  # before minutes of generating: the result must have somewhere to go
    from aebench.progress import bar as progress_bar

    sizes = variations.SIZES[name]
    chunks: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "valid": [], "test": []}
    with progress_bar(sum(sizes), f"generating {name}", "img", disable=not progress, leave=True) as bar:
        for split, x, y in variation_chunks(name, seed):
            chunks[split].append((x, y))
            bar.update(len(y))
    arrays: dict[str, np.ndarray] = {}
    for split, parts in chunks.items():
        arrays[f"{split}_x"] = np.concatenate([c[0] for c in parts])
        arrays[f"{split}_y"] = np.concatenate([c[1] for c in parts])
    digest = cache.store(name, seed, arrays, {"name": name, "seed": seed, "sizes": sizes, "recipe": variations.RECIPE})
    return arrays, digest, False


@functools.lru_cache(maxsize=4)
def _cached(name: str, seed: int, mtime_ns: int) -> tuple[dict[str, np.ndarray], str] | None:
    """The verified cache file, read once per process (and again when the file changes)."""
    arrays = cache.load_cached(name, seed)
    return None if arrays is None else (arrays, cache.arrays_digest(arrays))


class Variation(Dataset):
    """A Larochelle et al. (2007) benchmark, generated (see aebench.data.variations) or read from .amat."""

    Params = VariationParams

    def load(self) -> DataSplits:
        p = self.params
        sizes = variations.SIZES[self.name]
        if p.source == "amat":
            if p.path is None:
                raise DataError(
                    f"data.path is required with source = 'amat' (a folder with the original {self.name} files)."
                )
            train_file, test_file = find_amat(p.path)
            tx, ty = read_amat(train_file, n_classes=classes_of(self.name))
            x, y = read_amat(test_file, n_classes=classes_of(self.name))
            n_train = len(ty) * sizes[0] // (sizes[0] + sizes[1])
            arrays = {
                "train_x": tx[:n_train],
                "train_y": ty[:n_train],
                "valid_x": tx[n_train:],
                "valid_y": ty[n_train:],
                "test_x": x,
                "test_y": y,
            }
            sums = {f.name: sha256_file(f) for f in (train_file, test_file)}
        else:
            arrays, digest, _ = make_variation(self.name, p.seed)
            sums = {f"{self.name}-seed{p.seed}": digest}
        return DataSplits(
            name=self.name,
            train=take(Split(arrays["train_x"], arrays["train_y"]), p.subset, "data.subset"),
            valid=take(Split(arrays["valid_x"], arrays["valid_y"]), p.eval_subset, "data.eval_subset"),
            test=take(Split(arrays["test_x"], arrays["test_y"]), p.eval_subset, "data.eval_subset"),
            scale=1 / 255,
            shape=(28, 28),
            n_classes=int(arrays["train_y"].max()) + 1,
            checksums=sums,
        )

    def provenance(self) -> str:
        return "" if self.params.source == "amat" else "regenerated by aebench's recipes, not the original files"

    def info(self):
        npz, meta = cache.paths(self.name, self.params.seed)
        digest = json.loads(meta.read_text()).get("sha256", "") if meta.is_file() and npz.is_file() else ""
        return {"sizes": variations.SIZES[self.name], "cached": "yes" if digest else "no", "checksum": digest}


class MnistBasic(Variation):
    name = "mnist-basic"
    summary = "MNIST digits re-split 10k / 2k / 50k (Larochelle et al. 2007)."


class MnistRot(Variation):
    name = "mnist-rot"
    summary = "MNIST digits rotated by an angle uniform in [0, 2π); 10k / 2k / 50k."


class MnistBgRand(Variation):
    name = "mnist-bg-rand"
    summary = "MNIST digits on a background of uniform noise; 10k / 2k / 50k."


class MnistBgImg(Variation):
    name = "mnist-bg-img"
    summary = "MNIST digits on patches of natural grey-scale photographs; 10k / 2k / 50k."


class MnistBgImgRot(Variation):
    name = "mnist-bg-img-rot"
    summary = "Rotated MNIST digits on natural-image backgrounds; 10k / 2k / 50k."


class Rect(Variation):
    name = "rect"
    summary = "Tall vs wide rectangle outlines; 1k / 200 / 50k."


class RectImg(Variation):
    name = "rect-img"
    summary = "Tall vs wide rectangles of one image texture on another; 10k / 2k / 50k."


class Convex(Variation):
    name = "convex"
    summary = "Convex vs non-convex white regions; 6k / 2k / 50k."


@hookimpl
def aebench_datasets():
    return [Mnist, Digits, MnistBasic, MnistRot, MnistBgRand, MnistBgImg, MnistBgImgRot, Rect, RectImg, Convex]
