"""Reader for the original ``.amat`` files of the Larochelle et al. benchmarks.

Each line holds the 784 pixel values (floats in [0, 1], row-major) followed by the label.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aebench.errors import DataError

#: classes of each variation set whose labels are not the ten digits
CLASSES = {"rect": 2, "rect-img": 2, "convex": 2}


def classes_of(name: str) -> int:
    """How many classes the variation set ``name`` has (labels 0 .. n-1)."""
    return CLASSES.get(name, 10)


def row_problem(row: np.ndarray, n_features: int = 784, n_classes: int | None = None) -> str | None:
    """What is wrong with one ``.amat`` row (pixels then label), or ``None``: a row with nan
    pixels would be cast to 128 and trained on, a label of -3 read as a class of its own."""
    if row.size != n_features + 1:
        return f"has {row.size} values; an .amat row is {n_features} pixels + a label"
    x, label = row[:-1], row[-1]
    bad = np.flatnonzero(~np.isfinite(x) | (x < 0) | (x > 1))
    if bad.size:
        return f"pixel {bad[0]} is {float(x[bad[0]])!r}: pixels must be finite numbers in [0, 1]"
    if not (np.isfinite(label) and label == np.round(label)):
        return f"label {float(label)!r} is not an integer"
    if label < 0 or (n_classes is not None and label >= n_classes):
        allowed = f"0 to {n_classes - 1}" if n_classes is not None else "0 or more"
        return f"label {int(label)} is not a class of this data set ({allowed})"
    return None


def read_amat(path: str | Path, n_features: int = 784, n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(x as uint8 = round(255·value), y as int64) from an ``.amat`` file; every row is
    checked (finite pixels in [0, 1], a label among ``n_classes``) and a bad one named."""
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
    top = n_classes if n_classes is not None else np.inf
    with np.errstate(invalid="ignore"):  # nan compares false: caught by isfinite
        ok = np.isfinite(table).all(1) & (x >= 0).all(1) & (x <= 1).all(1) & (y == np.round(y)) & (y >= 0) & (y < top)
    if not ok.all():
        k = int(np.flatnonzero(~ok)[0])
        raise DataError(f"data file {path}, row {k + 1}: {row_problem(table[k], n_features, n_classes)}.")
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
