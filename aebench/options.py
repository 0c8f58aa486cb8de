"""The execution options that the CLI, the Workbench and ``aebench.run`` share (one list each).

Kept free of heavy imports, so that ``aebench --help`` stays fast.
"""

from __future__ import annotations

from typing import Literal, get_args

Device = Literal["auto", "cpu", "cuda"]
Executor = Literal["local", "process", "dask"]
Precision = Literal["float32", "bfloat16", "float16"]

DEVICES: tuple[str, ...] = get_args(Device)
EXECUTORS: tuple[str, ...] = get_args(Executor)
PRECISIONS: tuple[str, ...] = get_args(Precision)
