"""The execution options that the CLI, the Workbench and ``aebench.run`` share (one list each).

Kept free of heavy imports, so that ``aebench --help`` stays fast. Executors are a plug-in
kind (``aebench.registry().names("executor")``), not a list here.
"""

from __future__ import annotations

from typing import Literal, get_args

Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["float32", "bfloat16", "float16"]

DEVICES: tuple[str, ...] = get_args(Device)
PRECISIONS: tuple[str, ...] = get_args(Precision)


def device(text: str) -> str:
    """A ``--device`` value: one of :data:`DEVICES`, or ``cuda:K`` (one GPU by its index)."""
    if text in DEVICES or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise ValueError(f"{text!r} is not a device: choose {', '.join(DEVICES)} or cuda:K")
