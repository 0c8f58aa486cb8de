"""Progress of runs: tqdm bars in a terminal or a notebook, plain lines anywhere else.

A terminal gets tqdm's bars (a notebook its widgets, through ``tqdm.auto``). Output that is
not a terminal (``| tee log``, a batch job's file, CI) gets :class:`PlainBar`: no escape
codes and no carriage returns, one line when a training stage of a run ends and one when a
run (or a batch of runs) is recorded. Bars are labelled by sweep point and seed
(:func:`run_label`), as the results name them, not by run folder.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def interactive(stream: TextIO | None = None) -> bool:
    """Whether progress may be drawn: ``stream`` (stderr) is a terminal, or this is a Jupyter kernel."""
    stream = stream or sys.stderr
    if "ipykernel" in sys.modules:
        try:
            from IPython import get_ipython

            if get_ipython() is not None:
                return True
        except ImportError:  # pragma: no cover - ipykernel without IPython does not exist
            pass
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or odd stream: plain lines
        return False


def bar(total: int, desc: str, unit: str, position: int = 0, disable: bool = False, leave: bool = False) -> Any:
    """A tqdm bar where output is drawn (see :func:`interactive`), else a :class:`PlainBar`; nothing when
    ``disable``. Both take ``update(n)``, ``set_postfix(**values)``, ``set_postfix_str(s)`` and ``close()``."""
    if disable or interactive():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, disable=disable, position=position, leave=leave)
    return PlainBar(total, desc, unit)


class PlainBar:
    """Progress as plain lines (for pipes and log files).

    A bar of epochs prints one line per training stage, when the stage ends (its ``stage``
    postfix changes, or the bar closes): ``schedule=joint, seed 0: stage layer0 ended at epoch
    3/6, loss 21.3``. A bar of runs prints one line per run recorded: ``runs: 3/8 recorded
    (12 s)``. Any other bar (generating a data set) prints one line when it closes.
    """

    def __init__(self, total: int, desc: str, unit: str, stream: TextIO | None = None) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream or sys.stderr
        self.n = 0
        self.postfix: dict[str, Any] = {}
        self.started = time.monotonic()
        self.closed = False

    def _print(self, text: str) -> None:
        try:
            print(text, file=self.stream, flush=True)
        except (OSError, ValueError):  # a closed pipe must not stop training
            pass

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.unit == "run" and n:
            elapsed = time.monotonic() - self.started
            self._print(f"{self.desc}: {self.n}/{self.total} recorded ({elapsed:.0f} s)")

    def set_postfix(self, ordered: dict[str, Any] | None = None, refresh: bool = True, **values: Any) -> None:
        values = {**(ordered or {}), **values}
        if self.postfix.get("stage") is not None and values.get("stage") != self.postfix.get("stage"):
            self._stage_line()
        self.postfix = values

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = {"": s} if s else {}

    def set_description(self, desc: str = "", refresh: bool = True) -> None:
        self.desc = desc

    def _stage_line(self) -> None:
        stage, loss = self.postfix.get("stage"), self.postfix.get("loss")
        said = f", loss {loss}" if loss is not None else ""
        self._print(f"{self.desc}: stage {stage} ended at {self.unit} {self.n}/{self.total}{said}")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.unit == "epoch" and self.postfix.get("stage") is not None:
            self._stage_line()
        elif self.unit not in ("epoch", "run"):  # other work (generating a data set): one line when it ends
            elapsed = time.monotonic() - self.started
            self._print(f"{self.desc}: {self.n}/{self.total} {self.unit} ({elapsed:.0f} s)")

    def refresh(self) -> None:
        pass

    def __enter__(self) -> PlainBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def run_label(points: list[dict[str, Any]], seeds: list[int]) -> str:
    """A run's (or a batch's) name as the results give it: ``schedule=joint, lr=0.01, seed 0``; members of
    one sweep point: ``..., seeds 0, 1, 2``; members of several: each key's values, ``lr=0.001|0.01, seeds 0,
    1, 2 (6 runs)``."""
    from aebench.tables import key_label

    keys = list(dict.fromkeys(k for p in points for k in p))
    parts = []
    for k in keys:
        values = list(dict.fromkeys(str(p.get(k, "")) for p in points))
        parts.append(f"{key_label(k, keys)}={'|'.join(values)}")
    unique = list(dict.fromkeys(seeds))
    parts.append(f"seed {unique[0]}" if len(unique) == 1 else "seeds " + ", ".join(map(str, unique)))
    several = len({tuple(sorted(map(str, p.items()))) for p in points}) > 1
    return ", ".join(parts) + (f" ({len(points)} runs)" if several else "")


__all__ = ["PlainBar", "bar", "interactive", "run_label"]
