"""Reader for the original ``.amat`` files of the Larochelle et al. benchmarks.

Each line holds the 784 pixel values (floats in [0, 1], row-major) followed by the label.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aebench.errors import DataError


def read_amat(path: str | Path, n_features: int = 784) -> tuple[np.ndarray, np.ndarray]:
    """(x as uint8 = round(255·value), y as int64) from an ``.amat`` file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} is missing.")
    try:
        table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataError(f"data file {path} is not an .amat table ({exc}).") from None
    if table.shape[1] != n_features + 1:
        raise DataError(
            f"data file {path} has {table.shape[1]} columns; an .amat row is {n_features} pixels + a label."
        )
    x, y = table[:, :-1], table[:, -1]
    if x.min() < 0 or x.max() > 1 or not np.allclose(y, np.round(y)):
        raise DataError(f"data file {path}: pixels must lie in [0, 1] and labels be integers.")
    return np.rint(x * 255).astype(np.uint8), y.astype(np.int64)


def find_amat(folder: str | Path) -> tuple[Path, Path]:
    """The ``*train*.amat`` and ``*test*.amat`` files of an unpacked original archive."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"amat folder {folder} does not exist.")
    train = sorted(folder.glob("*train*.amat"))
    test = sorted(folder.glob("*test*.amat"))
    if len(train) != 1 or len(test) != 1:
        raise DataError(
            f"{folder} must hold one *train*.amat and one *test*.amat file (found {len(train)} and {len(test)})."
        )
    return train[0], test[0]
