"""Reader for the IDX format of MNIST (LeCun et al.), plain or gzip-compressed."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from aebench.errors import DataError

# Third byte of the magic number -> element type (IDX spec); byte 4 is the rank.
_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file into an array, checking its magic number and size.

    Raises :class:`DataError` naming the file if it is missing, truncated or malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} is missing.")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:  # gzip raises these for truncated/corrupt streams
        raise DataError(f"data file {path} cannot be read ({exc}); it is truncated or corrupt.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise DataError(f"data file {path} is not an IDX file (bad magic number {raw[:4].hex()}).")
    rank = raw[3]
    header = 4 + 4 * rank
    if len(raw) < header:
        raise DataError(f"data file {path} is truncated inside its header.")
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(rank))
    dtype = np.dtype(_TYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(
            f"data file {path} has {len(raw)} bytes but its header {shape} needs {expected}: truncated or corrupt."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))
