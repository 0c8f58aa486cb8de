"""Data sets: full MNIST from the embedded IDX files, and scikit-learn's 8×8 digits."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
from pydantic import Field

from aebench.components import DataSplits, Dataset, DatasetParams, Split
from aebench.data import read_idx, verify_sums
from aebench.errors import DataError
from aebench.hookspecs import hookimpl

MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}


def default_mnist_dir() -> Path:
    """``$AEBENCH_MNIST``, else the ``data/mnist`` folder of the aebench checkout."""
    env = os.environ.get("AEBENCH_MNIST")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "data" / "mnist"


class SubsetParams(DatasetParams):
    eval_subset: int | None = Field(
        None, ge=1, description="Use only the first N rows of the validation and test splits."
    )


def take(split: Split, n: int | None, what: str) -> Split:
    if n is None:
        return split
    if n > len(split.y):
        raise DataError(f"{what} = {n} is larger than the split ({len(split.y)} rows).")
    return Split(split.x[:n], split.y[:n])


class MnistParams(SubsetParams):
    path: str | None = Field(None, description="Folder with the IDX files and SHA256SUMS; default: data/mnist.")
    normalize: bool = Field(True, description="Scale pixels from 0..255 to [0, 1].")


@functools.lru_cache(maxsize=4)
def _read_mnist(folder: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    path = Path(folder)
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


@hookimpl
def aebench_datasets():
    return [Mnist, Digits]
