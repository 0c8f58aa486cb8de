"""Names that aebench writes into files: result variables (netCDF) and figure files.

A plug-in's evaluator names its result variables; they become netCDF variable names, xarray
attributes and report headings, so they are held to one rule when the evaluator returns them
(:func:`check_results`), not discovered when the file is written. Figure files get a slug of
their name plus a short hash of the full name (:func:`figure_file`), so two names never share a file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

#: a result variable or dimension an evaluator returns: a letter (``λ`` too), then letters, digits, ``_``
RESULT_NAME = re.compile(r"^[^\W\d_]\w{0,99}$")
#: what the run's own record holds: no evaluator may return these (the merge writes them)
RESERVED = ("status", "reason", "train_seconds")


def bad_result_name(name: Any) -> str | None:
    """Why ``name`` cannot name a result variable (or dimension), or None."""
    if not isinstance(name, str):
        return f"{type(name).__name__} {name!r:.60} is not text"
    if not RESULT_NAME.match(name):
        return (
            f"{name[:60]!r}{'...' if len(name) > 60 else ''} is not a result name (a letter, then letters, digits "
            "or _, at most 100 characters: it becomes a netCDF variable)"
        )
    return None


def check_results(evaluator: str, produced: Any) -> str | None:
    """Why what ``evaluator`` returned cannot be results (a mapping of names to arrays), or None."""
    if not isinstance(produced, Mapping):
        return f"evaluator {evaluator!r} returned {type(produced).__name__}, not a mapping of result variables"
    for name, value in produced.items():
        why = bad_result_name(name)
        if why is None and name in RESERVED:
            why = f"{name!r} is the run's own record"
        dims = getattr(value, "dims", ())
        for dim in dims if why is None else ():
            why = bad_result_name(dim)
            if why:
                why = f"its dimension {why}"
                break
        if why:
            return f"evaluator {evaluator!r} returned a result variable that cannot be saved: {why}"
    return None


def slug(name: str, limit: int = 60) -> str:
    """``name`` in file-name characters (letters, digits, ``_.-``), at most ``limit`` of them."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:limit] or "figure"


def figure_file(key: str, shown: str | None = None) -> str:
    """A figure's file name (no suffix): the slug of what it shows plus 8 hex digits of its full key,
    so ``table:λ_err`` and ``table:μ_err`` (one slug) or a plug-in figure named like a table never collide."""
    return f"{slug(shown if shown is not None else key)}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
